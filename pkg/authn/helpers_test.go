package authn

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/classwaves/classwaves/pkg/apperr"
)

// testNow is the verifiers' clock in these tests.
var testNow = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return testNow }

// testKey is an Ed25519 signing key with its kid.
type testKey struct {
	kid  string
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

func newTestKey(t testing.TB, kid string) testKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, priv: priv, pub: pub}
}

// staticKeys is a KeySource over a fixed map.
type staticKeys map[string]ed25519.PublicKey

func (s staticKeys) PublicKey(_ context.Context, kid string) (ed25519.PublicKey, error) {
	if k, ok := s[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownKey, kid)
}

// failingKeys is a KeySource whose keys cannot be obtained.
type failingKeys struct{}

func (failingKeys) PublicKey(context.Context, string) (ed25519.PublicKey, error) {
	return nil, fmt.Errorf("dial auth: connection refused")
}

// claimsFor returns valid claims of a principal of role, issued at testNow for 15 minutes.
func claimsFor(role Role) *Claims {
	c := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    "classwaves",
			Subject:   "user-1",
			Audience:  jwt.ClaimStrings{"classwaves-api"},
			ExpiresAt: jwt.NewNumericDate(testNow.Add(15 * time.Minute)),
			NotBefore: jwt.NewNumericDate(testNow),
			IssuedAt:  jwt.NewNumericDate(testNow),
			ID:        "jti-1",
		},
		Role:     role,
		SchoolID: "school-a",
	}
	switch role {
	case RoleStudent:
		c.SessionID, c.GroupID = "session-1", "group-1"
		c.ExpiresAt = jwt.NewNumericDate(testNow.Add(4 * time.Hour))
	case RoleService:
		c.Subject, c.SchoolID = "session", ""
	case RoleTeacher, RoleAdmin, RoleSuperAdmin:
		c.Email = "teacher@school-a.example"
	}
	return c
}

// signWith signs claims with method and key, setting the kid and typ headers (typ "" leaves
// golang-jwt's default "JWT"; kid "" leaves it out).
func signWith(t testing.TB, method jwt.SigningMethod, key any, kid, typ string, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	if typ != "" {
		tok.Header["typ"] = typ
	}
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// sign signs claims as the issuer does, with k.
func (k testKey) sign(t testing.TB, claims jwt.Claims) string {
	t.Helper()
	return signWith(t, jwt.SigningMethodEdDSA, k.priv, k.kid, TokenType, claims)
}

// codeReason returns the gRPC code and apperr reason of err.
func codeReason(err error) (codes.Code, string) {
	st := apperr.ToStatus(err)
	if st == nil {
		return codes.OK, ""
	}
	return st.Code(), apperr.ReasonOf(st)
}

// statusCodeReason is codeReason for an error received by a gRPC client.
func statusCodeReason(err error) (codes.Code, string) {
	st, _ := status.FromError(err)
	return st.Code(), apperr.ReasonOf(st)
}
