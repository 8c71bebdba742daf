package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// discoveryRetryAfter is how long a failed discovery is remembered: sign-ins in the meantime fail
// fast (GOOGLE_UNAVAILABLE) instead of each waiting for an unreachable provider.
const discoveryRetryAfter = 5 * time.Second

// googleScopes are what the sign-in asks for: the ID token's identity, e-mail and profile.
var googleScopes = []string{oidc.ScopeOpenID, "email", "profile"}

// googleIdentity is what a verified Google ID token says about the person signing in.
type googleIdentity struct {
	Subject       string
	Email         string // lower case
	EmailVerified bool
	HostedDomain  string // lower case; "" for a consumer account
	Name          string
	Picture       string
	Nonce         string
}

// googleClient is the adapter to the OpenID provider (Google, or a local provider in tests). It
// discovers the provider lazily, once: the first sign-in pays for it, and a provider that is down
// at start-up does not stop the service.
type googleClient struct {
	cfg    Config
	client *http.Client
	// now is the service's clock, for the ID token expiry check.
	now func() time.Time

	mu       sync.Mutex
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	failedAt time.Time
	failure  error
}

// discover returns the provider and its ID token verifier, discovering them on first use.
func (g *googleClient) discover(ctx context.Context) (*oidc.Provider, *oidc.IDTokenVerifier, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.provider != nil {
		return g.provider, g.verifier, nil
	}
	if g.failure != nil && time.Since(g.failedAt) < discoveryRetryAfter {
		return nil, nil, errGoogleUnavailable.WithCause(g.failure)
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, g.client), g.cfg.GoogleIssuer)
	if err != nil {
		if ctx.Err() == nil {
			g.failedAt, g.failure = time.Now(), err
		}
		return nil, nil, errGoogleUnavailable.WithCause(fmt.Errorf("discovering %s: %w", g.cfg.GoogleIssuer, err))
	}
	// The key set fetches keys with this context (its cancellation is ignored), refreshing them
	// when a token names a key id it does not know.
	keyCtx := oidc.ClientContext(context.Background(), g.client)
	g.provider = p
	g.verifier = p.VerifierContext(keyCtx, &oidc.Config{ClientID: g.cfg.GoogleClientID, Now: g.now})
	g.failure = nil
	return g.provider, g.verifier, nil
}

// oauthConfig is the OAuth client for redirectURI.
func (g *googleClient) oauthConfig(p *oidc.Provider, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     g.cfg.GoogleClientID,
		ClientSecret: g.cfg.GoogleClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  redirectURI,
		Scopes:       googleScopes,
	}
}

// authURL is where the redirect flow sends the browser: the provider's authorization endpoint
// with state, an S256 PKCE challenge of verifier, and nonce.
func (g *googleClient) authURL(ctx context.Context, state, verifier, nonce string) (string, error) {
	p, _, err := g.discover(ctx)
	if err != nil {
		return "", err
	}
	return g.oauthConfig(p, g.cfg.GoogleRedirectURI).AuthCodeURL(state,
		oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce),
		oauth2.SetAuthURLParam("prompt", "select_account")), nil
}

// exchange trades an authorization code for the ID token at the provider's token endpoint,
// passing the PKCE verifier when there is one. A code the provider refuses (RFC 6749 error
// answer) is GOOGLE_CODE_INVALID; a provider that cannot be reached is GOOGLE_UNAVAILABLE.
func (g *googleClient) exchange(ctx context.Context, code, verifier, redirectURI string) (string, error) {
	p, _, err := g.discover(ctx)
	if err != nil {
		return "", err
	}
	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	tok, err := g.oauthConfig(p, redirectURI).Exchange(context.WithValue(ctx, oauth2.HTTPClient, g.client), code, opts...)
	if err != nil {
		if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok && re.Response != nil &&
			re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
			return "", errGoogleCodeInvalid.WithCause(fmt.Errorf("token endpoint: %s", re.ErrorCode))
		}
		return "", errGoogleUnavailable.WithCause(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", errGoogleTokenInvalid.WithCause(errors.New("token endpoint answered no id_token"))
	}
	return raw, nil
}

// verify checks an ID token with go-oidc (signature against the provider's keys, issuer,
// audience GOOGLE_CLIENT_ID, expiry) and returns what it says. email_verified and hd are the
// caller's to judge.
func (g *googleClient) verify(ctx context.Context, raw string) (googleIdentity, error) {
	_, v, err := g.discover(ctx)
	if err != nil {
		return googleIdentity{}, err
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		return googleIdentity{}, errGoogleTokenInvalid.WithCause(err)
	}
	var payload json.RawMessage
	if err := tok.Claims(&payload); err != nil {
		return googleIdentity{}, errGoogleTokenInvalid.WithCause(err)
	}
	id, err := decodeGoogleClaims(payload)
	if err != nil {
		return googleIdentity{}, errGoogleTokenInvalid.WithCause(err)
	}
	return id, nil
}

// Limits on identity claims, so that what a provider sends always fits the teacher columns.
const (
	maxSubjectLen = 255
	maxEmailLen   = 254
	maxNameLen    = 200
	maxPictureLen = 2048
)

// flexBool is a JSON boolean that may arrive as a string ("true"/"false"): Google has sent
// email_verified both ways.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case bool:
		*b = flexBool(x)
	case string:
		*b = flexBool(strings.EqualFold(x, "true"))
	case nil:
		*b = false
	default:
		return fmt.Errorf("not a boolean: %s", data)
	}
	return nil
}

// decodeGoogleClaims reads the identity from a verified ID token's payload. It refuses a payload
// without a usable subject or e-mail, lower-cases e-mail and hosted domain, and drops a name or
// picture that does not fit (never the sign-in for it).
func decodeGoogleClaims(payload []byte) (googleIdentity, error) {
	var c struct {
		Subject       string   `json:"sub"`
		Email         string   `json:"email"`
		EmailVerified flexBool `json:"email_verified"`
		HostedDomain  string   `json:"hd"`
		Name          string   `json:"name"`
		Picture       string   `json:"picture"`
		Nonce         string   `json:"nonce"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return googleIdentity{}, fmt.Errorf("id token claims: %w", err)
	}
	id := googleIdentity{
		Subject:       c.Subject,
		Email:         strings.ToLower(strings.TrimSpace(c.Email)),
		EmailVerified: bool(c.EmailVerified),
		HostedDomain:  strings.ToLower(strings.TrimSpace(c.HostedDomain)),
		Nonce:         c.Nonce,
	}
	if id.Subject == "" || len(id.Subject) > maxSubjectLen || !utf8.ValidString(id.Subject) {
		return googleIdentity{}, errors.New("id token has no usable sub")
	}
	local, domain, ok := strings.Cut(id.Email, "@")
	if !ok || local == "" || domain == "" || len(id.Email) > maxEmailLen || !utf8.ValidString(id.Email) ||
		strings.ContainsAny(id.Email, " \t\r\n") {
		return googleIdentity{}, errors.New("id token has no usable email")
	}
	if len(id.HostedDomain) > 253 || strings.ContainsAny(id.HostedDomain, " \t\r\n") || !utf8.ValidString(id.HostedDomain) {
		id.HostedDomain = "" // no registered school has such a domain
	}
	if name := strings.TrimSpace(c.Name); utf8.ValidString(name) && utf8.RuneCountInString(name) <= maxNameLen {
		id.Name = name
	}
	if u, err := url.Parse(c.Picture); err == nil && u.Scheme == "https" && u.Host != "" && len(c.Picture) <= maxPictureLen {
		id.Picture = c.Picture
	}
	return id, nil
}
