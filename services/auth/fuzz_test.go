package auth

import (
	"strings"
	"testing"
)

// The auth service's own parsers of outside input: the claims of an ID token (after go-oidc
// verified it), presented refresh tokens, and admin page tokens. None may panic, and what they
// accept must be what they promise.

func FuzzDecodeGoogleClaims(f *testing.F) {
	for _, s := range []string{
		`{"sub":"1","email":"A@B.org","email_verified":true,"hd":"B.org","name":"A","picture":"https://x/y"}`,
		`{"sub":"1","email":"a@b","email_verified":"true"}`,
		`{"sub":"1","email":"a@b","email_verified":1}`,
		`{"sub":"","email":"a@b"}`,
		`{"sub":"1","email":"nope"}`,
		`{"sub":"1","email":"a@b","hd":"x y","picture":"javascript:alert(1)"}`,
		`[]`, `null`, `{"email_verified":null,"sub":"1","email":"a@b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := decodeGoogleClaims(b)
		if err != nil {
			return
		}
		if id.Subject == "" || !strings.Contains(id.Email, "@") || id.Email != strings.ToLower(id.Email) ||
			id.HostedDomain != strings.ToLower(id.HostedDomain) || len(id.Email) > maxEmailLen {
			t.Errorf("decodeGoogleClaims(%q) accepted %+v", b, id)
		}
		if id.Picture != "" && !strings.HasPrefix(id.Picture, "https://") {
			t.Errorf("decodeGoogleClaims(%q) kept picture %q", b, id.Picture)
		}
	})
}

func FuzzHashRefreshToken(f *testing.F) {
	raw, _, _ := newRefreshToken()
	for _, s := range []string{raw, "", strings.Repeat("A", 43), strings.Repeat("A", 42) + "=", strings.Repeat("_", 43), "a.b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, ok := hashRefreshToken(s)
		if ok && (len(h) != 32 || len(s) != refreshTokenLen) {
			t.Errorf("hashRefreshToken(%q) = %x, %v", s, h, ok)
		}
	})
}

func FuzzDecodePageToken(f *testing.F) {
	for _, s := range []string{encodePageToken(Cursor{Key: "Lincoln", ID: "5c3e8f2a-4b1d-4c6e-9a7f-000000000001"}), "", "e30", "WyJhIl0", "garbage!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodePageToken(s)
		if err != nil || c == nil {
			return
		}
		if !isUUID(c.ID) {
			t.Errorf("decodePageToken(%q) accepted id %q", s, c.ID)
		}
		if again, err := decodePageToken(encodePageToken(*c)); err != nil || *again != *c {
			t.Errorf("page token round trip of %+v = %+v, %v", *c, again, err)
		}
	})
}
