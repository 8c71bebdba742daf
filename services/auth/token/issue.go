package token

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/classwaves/classwaves/pkg/authn"
)

// Issued is a signed access token and what it says.
type Issued struct {
	// Token is the compact JWS, sent as "Authorization: Bearer <Token>".
	Token string
	// Claims are the token's claims.
	Claims *authn.Claims
	// ExpiresIn is the token's lifetime (TokenPair.expires_in).
	ExpiresIn time.Duration
}

// ttl is the lifetime of a token for role.
func (ks *KeySet) ttl(role authn.Role) time.Duration {
	switch role {
	case authn.RoleStudent:
		return ks.cfg.StudentTTL
	case authn.RoleService:
		return ks.cfg.ServiceTTL
	default:
		return ks.cfg.AccessTTL
	}
}

// Issue signs an access token for p: staff tokens live AccessTTL, student tokens (which must name
// their school, session and group) StudentTTL, service tokens ServiceTTL. email is put in staff
// tokens only (pass "" otherwise). p must pass authn.Principal.Check.
func (ks *KeySet) Issue(_ context.Context, p authn.Principal, email string) (Issued, error) {
	now := ks.now()
	ttl := ks.ttl(p.Role)
	c := &authn.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    ks.jwt.Issuer,
			Subject:   p.Subject,
			Audience:  jwt.ClaimStrings{ks.jwt.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        rand.Text(),
		},
		Role:      p.Role,
		SchoolID:  p.SchoolID,
		SessionID: p.SessionID,
		GroupID:   p.GroupID,
		Email:     email,
	}
	if err := c.Check(); err != nil {
		return Issued{}, fmt.Errorf("token: refusing to sign: %w", err)
	}
	k, err := ks.signer(now)
	if err != nil {
		return Issued{}, err
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = k.id
	t.Header["typ"] = authn.TokenType
	raw, err := t.SignedString(k.priv)
	if err != nil {
		return Issued{}, fmt.Errorf("token: sign: %w", err)
	}
	return Issued{Token: raw, Claims: c, ExpiresIn: ttl}, nil
}

// IssueService signs a service token (role service, subject service) for internal calls.
func (ks *KeySet) IssueService(ctx context.Context, service string) (Issued, error) {
	return ks.Issue(ctx, authn.Principal{Subject: service, Role: authn.RoleService}, "")
}

// ServiceTokenSource returns the authn.TokenSource of service, for authn.NewServiceCredentials on
// the connections a service in this process opens to the others.
func (ks *KeySet) ServiceTokenSource(service string) authn.TokenSource {
	return serviceTokens{ks: ks, service: service}
}

type serviceTokens struct {
	ks      *KeySet
	service string
}

func (s serviceTokens) Token(ctx context.Context) (string, time.Time, error) {
	iss, err := s.ks.IssueService(ctx, s.service)
	if err != nil {
		return "", time.Time{}, err
	}
	return iss.Token, iss.Claims.ExpiresAt.Time, nil
}
