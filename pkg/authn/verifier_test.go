package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
)

func TestVerifyToken(t *testing.T) {
	k := newTestKey(t, "k1")
	other := newTestKey(t, "k1") // same kid, different key: a forged signature
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(k.pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pubX := []byte(base64.RawURLEncoding.EncodeToString(k.pub))

	with := func(role Role, edit func(*Claims)) *Claims {
		c := claimsFor(role)
		edit(c)
		return c
	}
	teacher := claimsFor(RoleTeacher)
	ed := func(c *Claims) string { return k.sign(t, c) }

	tests := []struct {
		name       string
		raw        string
		want       Principal // on success
		wantCode   codes.Code
		wantReason string
	}{
		{"teacher", ed(teacher), Principal{Subject: "user-1", Role: RoleTeacher, SchoolID: "school-a"}, codes.OK, ""},
		{"student", ed(claimsFor(RoleStudent)), Principal{Subject: "user-1", Role: RoleStudent, SchoolID: "school-a", SessionID: "session-1", GroupID: "group-1"}, codes.OK, ""},
		{"service", ed(claimsFor(RoleService)), Principal{Subject: "session", Role: RoleService}, codes.OK, ""},
		{"super admin without school", ed(with(RoleSuperAdmin, func(c *Claims) { c.SchoolID = "" })), Principal{Subject: "user-1", Role: RoleSuperAdmin}, codes.OK, ""},
		{"audience list containing ours", ed(with(RoleTeacher, func(c *Claims) { c.Audience = jwt.ClaimStrings{"other", "classwaves-api"} })), Principal{Subject: "user-1", Role: RoleTeacher, SchoolID: "school-a"}, codes.OK, ""},
		{"expired within skew", ed(with(RoleTeacher, func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-20 * time.Second)) })), Principal{Subject: "user-1", Role: RoleTeacher, SchoolID: "school-a"}, codes.OK, ""},
		{"issued slightly in the future", ed(with(RoleTeacher, func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(testNow.Add(20 * time.Second)) })), Principal{Subject: "user-1", Role: RoleTeacher, SchoolID: "school-a"}, codes.OK, ""},
		{"typ application/at+jwt", signWith(t, jwt.SigningMethodEdDSA, k.priv, "k1", "application/at+jwt", teacher), Principal{Subject: "user-1", Role: RoleTeacher, SchoolID: "school-a"}, codes.OK, ""},

		{"empty", "", Principal{}, codes.Unauthenticated, ReasonTokenMissing},
		{"expired", ed(with(RoleTeacher, func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-time.Minute)) })), Principal{}, codes.Unauthenticated, ReasonTokenExpired},
		{"expired at exactly now plus skew", ed(with(RoleTeacher, func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-30 * time.Second)) })), Principal{}, codes.Unauthenticated, ReasonTokenExpired},
		{"expired and of another issuer", ed(with(RoleTeacher, func(c *Claims) {
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-time.Hour))
			c.Issuer = "evil"
		})), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"expired with a bad signature", signWith(t, jwt.SigningMethodEdDSA, other.priv, "k1", TokenType, with(RoleTeacher, func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-time.Hour)) })), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"bad signature", signWith(t, jwt.SigningMethodEdDSA, other.priv, "k1", TokenType, teacher), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"alg none", signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k1", TokenType, teacher), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"HS256 with the raw public key as secret", signWith(t, jwt.SigningMethodHS256, []byte(k.pub), "k1", TokenType, teacher), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"HS256 with the PEM public key as secret", signWith(t, jwt.SigningMethodHS256, pubPEM, "k1", TokenType, teacher), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"HS256 with the JWK x as secret", signWith(t, jwt.SigningMethodHS256, pubX, "k1", TokenType, teacher), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"RS256", signWith(t, jwt.SigningMethodRS256, rsaKey, "k1", TokenType, teacher), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"ES256", signWith(t, jwt.SigningMethodES256, ecKey, "k1", TokenType, teacher), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"wrong issuer", ed(with(RoleTeacher, func(c *Claims) { c.Issuer = "https://evil.example" })), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"wrong audience", ed(with(RoleTeacher, func(c *Claims) { c.Audience = jwt.ClaimStrings{"another-api"} })), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"no audience", ed(with(RoleTeacher, func(c *Claims) { c.Audience = nil })), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"unknown kid", signWith(t, jwt.SigningMethodEdDSA, k.priv, "k2", TokenType, teacher), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"no kid", signWith(t, jwt.SigningMethodEdDSA, k.priv, "", TokenType, teacher), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"kid too long", signWith(t, jwt.SigningMethodEdDSA, k.priv, strings.Repeat("k", 129), TokenType, teacher), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"typ JWT", signWith(t, jwt.SigningMethodEdDSA, k.priv, "k1", "", teacher), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"no jti", ed(with(RoleTeacher, func(c *Claims) { c.ID = "" })), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"no iat", ed(with(RoleTeacher, func(c *Claims) { c.IssuedAt = nil })), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"no exp", ed(with(RoleTeacher, func(c *Claims) { c.ExpiresAt = nil })), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"no subject", ed(with(RoleTeacher, func(c *Claims) { c.Subject = "" })), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"issued in the future", ed(with(RoleTeacher, func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(testNow.Add(time.Hour)) })), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"not valid yet", ed(with(RoleTeacher, func(c *Claims) { c.NotBefore = jwt.NewNumericDate(testNow.Add(time.Hour)) })), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"unknown role", ed(with(RoleTeacher, func(c *Claims) { c.Role = "root" })), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"teacher without school", ed(with(RoleTeacher, func(c *Claims) { c.SchoolID = "" })), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"teacher with a session scope", ed(with(RoleTeacher, func(c *Claims) { c.SessionID = "session-1" })), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"student without group", ed(with(RoleStudent, func(c *Claims) { c.GroupID = "" })), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"student with an email", ed(with(RoleStudent, func(c *Claims) { c.Email = "kid@example.com" })), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"service with a school", ed(with(RoleService, func(c *Claims) { c.SchoolID = "school-a" })), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"two segments", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0", Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"garbage", "not a token", Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"padded base64", ed(teacher) + "==", Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
		{"too long", ed(teacher) + strings.Repeat("A", MaxTokenLen), Principal{}, codes.Unauthenticated, ReasonTokenInvalid},
	}
	v := NewVerifier(DefaultConfig(), staticKeys{"k1": k.pub}, WithClock(fixedClock))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.VerifyToken(context.Background(), tt.raw)
			code, reason := codeReason(err)
			if code != tt.wantCode || reason != tt.wantReason {
				t.Fatalf("VerifyToken() = %v, %q (%v), want %v, %q", code, reason, err, tt.wantCode, tt.wantReason)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("VerifyToken() principal mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyClaimsKeepsEverything(t *testing.T) {
	k := newTestKey(t, "k1")
	want := claimsFor(RoleTeacher)
	v := NewVerifier(DefaultConfig(), staticKeys{"k1": k.pub}, WithClock(fixedClock))
	got, err := v.VerifyClaims(context.Background(), k.sign(t, want))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("VerifyClaims() mismatch (-want +got):\n%s", diff)
	}
	pb := got.Proto()
	if pb.GetTokenId() != "jti-1" || pb.GetEmail() != want.Email || !pb.GetExpiresAt().AsTime().Equal(want.ExpiresAt.Time) || pb.GetRole() != "teacher" {
		t.Errorf("Proto() = %v", pb)
	}
}

func TestVerifyKeysUnavailable(t *testing.T) {
	k := newTestKey(t, "k1")
	v := NewVerifier(DefaultConfig(), failingKeys{}, WithClock(fixedClock))
	_, err := v.VerifyToken(context.Background(), k.sign(t, claimsFor(RoleTeacher)))
	if code, reason := codeReason(err); code != codes.Unavailable || reason != "SERVICE_UNAVAILABLE" {
		t.Errorf("VerifyToken() = %v, %q, want Unavailable, SERVICE_UNAVAILABLE", code, reason)
	}
}

func TestVerifyBearer(t *testing.T) {
	k := newTestKey(t, "k1")
	tok := k.sign(t, claimsFor(RoleAdmin))
	v := NewVerifier(DefaultConfig(), staticKeys{"k1": k.pub}, WithClock(fixedClock))
	tests := []struct {
		header     string
		wantReason string
	}{
		{"Bearer " + tok, ""},
		{"bearer " + tok, ""},
		{"  BEARER   " + tok + "  ", ""},
		{"", ReasonTokenMissing},
		{"   ", ReasonTokenMissing},
		{"Bearer", ReasonTokenMissing},
		{"Bearer   ", ReasonTokenMissing},
		{tok, ReasonTokenInvalid},
		{"Basic dXNlcjpwYXNz", ReasonTokenInvalid},
		{"Bearer " + tok + " extra", ReasonTokenInvalid},
		{"Bearer " + tok + "\x00", ReasonTokenInvalid},
		{"Bearer\t" + tok, ReasonTokenInvalid},
		{"Bearer =", ReasonTokenInvalid},
	}
	for _, tt := range tests {
		name := tt.header
		if len(name) > 24 {
			name = name[:24]
		}
		t.Run(name, func(t *testing.T) {
			p, err := v.VerifyBearer(context.Background(), tt.header)
			if _, reason := codeReason(err); reason != tt.wantReason {
				t.Fatalf("VerifyBearer() reason = %q (%v), want %q", reason, err, tt.wantReason)
			}
			if err == nil && p.Role != RoleAdmin {
				t.Errorf("VerifyBearer() role = %q, want admin", p.Role)
			}
		})
	}
}

// FuzzParseBearer: no header panics the parser, and whatever it accepts is a b64token within the
// length bound.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"", "Bearer", "Bearer abc.def.ghi", "bearer a==", "Basic x", "Bearer \x00", "Bearer " + strings.Repeat("a", MaxTokenLen+1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, err := ParseBearer(header)
		if err != nil {
			if _, reason := codeReason(err); reason != ReasonTokenMissing && reason != ReasonTokenInvalid {
				t.Fatalf("ParseBearer(%q) reason = %q", header, reason)
			}
			return
		}
		if tok == "" || len(tok) > MaxTokenLen || !isB64Token(tok) {
			t.Fatalf("ParseBearer(%q) accepted %q", header, tok)
		}
	})
}

// FuzzVerifyToken: no token panics the verifier, and only the genuine seed token passes.
func FuzzVerifyToken(f *testing.F) {
	k := newTestKey(f, "k1")
	good := k.sign(f, claimsFor(RoleTeacher))
	f.Add(good)
	f.Add(signWith(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k1", TokenType, claimsFor(RoleTeacher)))
	f.Add(signWith(f, jwt.SigningMethodHS256, []byte(k.pub), "k1", TokenType, claimsFor(RoleTeacher)))
	f.Add("e30.e30.")
	f.Add("..")
	f.Add(`eyJhbGciOiJFZERTQSIsImtpZCI6WzFdfQ.eyJhdWQiOnt9fQ.AA`)
	v := NewVerifier(DefaultConfig(), staticKeys{"k1": k.pub}, WithClock(fixedClock))
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := v.VerifyToken(context.Background(), raw)
		if err == nil {
			if raw != good {
				// Ed25519 signatures are not malleable and base64 decoding is strict: only the
				// issued token itself verifies.
				t.Fatalf("VerifyToken(%q) accepted a token that was not issued: %+v", raw, p)
			}
			return
		}
		if _, reason := codeReason(err); reason != ReasonTokenMissing && reason != ReasonTokenInvalid && reason != ReasonTokenExpired {
			t.Fatalf("VerifyToken(%q) reason = %q", raw, reason)
		}
	})
}
