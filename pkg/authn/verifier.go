package authn

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// KeySource resolves the kid of a token to the Ed25519 public key that verifies it. It is the
// Verifier's port to the keys:
//   - services/auth/token.KeySet, when the auth service runs in the same process;
//   - CachedKeys over the auth service's GetJwks (NewRemoteKeys) everywhere else.
type KeySource interface {
	// PublicKey returns the key published under kid. It returns an error wrapping ErrUnknownKey
	// when no such key is published (after any refresh the source allows itself), and any other
	// error when the keys cannot be obtained right now.
	PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error)
}

// Option configures a Verifier, CachedKeys or Interceptor; each reads the options that concern it.
type Option func(*options)

type options struct {
	now    func() time.Time
	policy Policy
}

func buildOptions(opts []Option) options {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Verifier checks access tokens locally. It is safe for concurrent use.
//
// A token passes when, in this order: it is at most MaxTokenLen bytes of three base64url (strict)
// segments; its header says alg EdDSA, typ at+jwt and a kid the KeySource knows; the Ed25519
// signature verifies with that key; iss and aud are the configured ones; sub, role, jti, iat and
// exp are present; iat and nbf are not in the future (beyond ClockSkew); the role-specific claims
// are as Claims.Check wants them; and, last, exp has not passed (beyond ClockSkew). Expiry is
// checked last so that TOKEN_EXPIRED is only ever said of a token that is otherwise genuine.
//
// Only EdDSA is accepted: "none", HS256 (including a token MACed with the public key as the
// secret), RS256 and every other algorithm fail before any key is used.
type Verifier struct {
	cfg    Config
	keys   KeySource
	now    func() time.Time
	parser *jwt.Parser
}

// NewVerifier returns a Verifier of tokens issued under cfg whose keys come from keys.
func NewVerifier(cfg Config, keys KeySource, opts ...Option) *Verifier {
	o := buildOptions(opts)
	return &Verifier{
		cfg:  cfg,
		keys: keys,
		now:  o.now,
		// Claims are validated by verifyClaims, in a fixed order, after the signature.
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{Algorithm}),
			jwt.WithStrictDecoding(),
			jwt.WithoutClaimsValidation(),
		),
	}
}

// errKeys marks a KeySource failure other than an unknown kid, so it can be told apart from a bad
// token after golang-jwt wrapped it.
type errKeys struct{ err error }

func (e errKeys) Error() string { return "verification keys unavailable: " + e.err.Error() }
func (e errKeys) Unwrap() error { return e.err }

// VerifyClaims verifies raw (the compact JWS, without "Bearer ") and returns its claims. Errors
// are ErrTokenMissing, ErrTokenExpired, ErrTokenInvalid (with the failed check as cause) or
// ErrKeysUnavailable.
func (v *Verifier) VerifyClaims(ctx context.Context, raw string) (*Claims, error) {
	if raw == "" {
		return nil, ErrTokenMissing
	}
	if len(raw) > MaxTokenLen {
		return nil, ErrTokenInvalid.WithCause(fmt.Errorf("token of %d bytes is longer than %d", len(raw), MaxTokenLen))
	}
	claims := &Claims{}
	_, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if t.Method.Alg() != Algorithm {
			return nil, fmt.Errorf("alg %v", t.Header["alg"])
		}
		if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, TokenType) && !strings.EqualFold(typ, "application/"+TokenType) {
			return nil, fmt.Errorf("typ %q is not %s", typ, TokenType)
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" || len(kid) > maxKeyIDLen {
			return nil, errors.New("kid missing or too long")
		}
		key, err := v.keys.PublicKey(ctx, kid)
		if err != nil {
			if errors.Is(err, ErrUnknownKey) {
				return nil, err
			}
			return nil, errKeys{err}
		}
		return key, nil
	})
	if err != nil {
		if _, ok := errors.AsType[errKeys](err); ok {
			return nil, ErrKeysUnavailable.WithCause(err)
		}
		return nil, ErrTokenInvalid.WithCause(err)
	}
	if err := v.verifyClaims(claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// verifyClaims checks the claims of a token whose signature verified; see Verifier.
func (v *Verifier) verifyClaims(c *Claims) error {
	now := v.now()
	skew := v.cfg.ClockSkew
	invalid := func(format string, args ...any) error {
		return ErrTokenInvalid.WithCause(fmt.Errorf(format, args...))
	}
	switch {
	case c.Issuer != v.cfg.Issuer:
		return invalid("issuer %q, want %q", c.Issuer, v.cfg.Issuer)
	case !slices.Contains(c.Audience, v.cfg.Audience):
		return invalid("audience %q, want %q", c.Audience, v.cfg.Audience)
	case c.ID == "":
		return invalid("jti missing")
	case c.IssuedAt == nil:
		return invalid("iat missing")
	case c.ExpiresAt == nil:
		return invalid("exp missing")
	case c.IssuedAt.After(now.Add(skew)):
		return invalid("issued in the future: iat %v, now %v", c.IssuedAt.Time, now)
	case c.NotBefore != nil && c.NotBefore.After(now.Add(skew)):
		return invalid("not valid yet: nbf %v, now %v", c.NotBefore.Time, now)
	}
	if err := c.Check(); err != nil {
		return ErrTokenInvalid.WithCause(err)
	}
	if !now.Before(c.ExpiresAt.Add(skew)) {
		return ErrTokenExpired.WithCause(fmt.Errorf("expired at %v, now %v", c.ExpiresAt.Time, now))
	}
	return nil
}

// VerifyToken verifies raw (the compact JWS, as a Socket.IO handshake's auth.token carries it) and
// returns its principal. Errors are those of VerifyClaims.
func (v *Verifier) VerifyToken(ctx context.Context, raw string) (Principal, error) {
	c, err := v.VerifyClaims(ctx, raw)
	if err != nil {
		return Principal{}, err
	}
	return c.Principal(), nil
}

// VerifyBearer verifies the token of an Authorization header value ("Bearer <token>"), for HTTP
// handlers and the WebSocket handshake. An empty header answers ErrTokenMissing.
func (v *Verifier) VerifyBearer(ctx context.Context, header string) (Principal, error) {
	raw, err := ParseBearer(header)
	if err != nil {
		return Principal{}, err
	}
	return v.VerifyToken(ctx, raw)
}

// ParseBearer returns the token of an Authorization header value. The scheme is matched
// case-insensitively (RFC 9110 11.1) and the token must be an RFC 6750 b64token no longer than
// MaxTokenLen. An empty header, or a bare "Bearer", answers ErrTokenMissing; anything else that is
// not a bearer token answers ErrTokenInvalid.
func ParseBearer(header string) (string, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return "", ErrTokenMissing
	}
	scheme, rest, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", ErrTokenInvalid.WithCause(errors.New("authorization scheme is not Bearer"))
	}
	tok := strings.TrimLeft(rest, " ")
	if tok == "" {
		return "", ErrTokenMissing
	}
	if len(tok) > MaxTokenLen {
		return "", ErrTokenInvalid.WithCause(fmt.Errorf("token of %d bytes is longer than %d", len(tok), MaxTokenLen))
	}
	if !isB64Token(tok) {
		return "", ErrTokenInvalid.WithCause(errors.New("token has characters outside the b64token set"))
	}
	return tok, nil
}

// isB64Token reports whether s is 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}
