package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPrivateKeyPEM(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := MarshalPrivateKeyPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "-----BEGIN PRIVATE KEY-----\n") {
		t.Errorf("PEM = %q, want a PKCS#8 PRIVATE KEY block", b)
	}
	got, err := ParsePrivateKeyPEM(b)
	if err != nil || !got.Equal(priv) {
		t.Fatalf("ParsePrivateKeyPEM(MarshalPrivateKeyPEM()) = %v, want the key back", err)
	}
	if _, err := ParsePrivateKeyPEM(append(b, "\n  \n"...)); err != nil {
		t.Errorf("trailing whitespace: %v", err)
	}

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"empty":          nil,
		"not PEM":        []byte("hello"),
		"wrong type":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}),
		"not PKCS#8":     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
		"ECDSA key":      pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}),
		"trailing block": append(append([]byte{}, b...), b...),
	}
	for name, in := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := ParsePrivateKeyPEM(in); err == nil {
				t.Error("ParsePrivateKeyPEM() = nil error, want a refusal")
			}
		})
	}
}

func TestMemoryStore(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	t0 := start
	k := func(id string, created time.Time) StoredKey {
		return StoredKey{ID: id, PrivateKeyPEM: []byte("pem-" + id), CreatedAt: created}
	}
	if err := s.RotateKey(ctx, "x", k("a", t0), t0); !errors.Is(err, ErrRotationConflict) {
		t.Fatalf("RotateKey(empty store, current x) = %v, want ErrRotationConflict", err)
	}
	if err := s.RotateKey(ctx, "", k("a", t0), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateKey(ctx, "", k("b", t0), t0); !errors.Is(err, ErrRotationConflict) {
		t.Fatalf("RotateKey(stale current \"\") = %v, want ErrRotationConflict", err)
	}
	if err := s.RotateKey(ctx, "a", k("b", t0.Add(time.Hour)), t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateKey(ctx, "a", k("c", t0.Add(time.Hour)), t0); !errors.Is(err, ErrRotationConflict) {
		t.Fatalf("RotateKey(retired current) = %v, want ErrRotationConflict", err)
	}
	if err := s.RotateKey(ctx, "b", k("a", t0), t0); err == nil {
		t.Fatal("RotateKey(duplicate id) = nil error")
	}
	keys, err := s.LoadKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID != "a" || !keys[0].RetiredAt.Equal(t0.Add(2*time.Hour)) || keys[1].ID != "b" || !keys[1].RetiredAt.IsZero() {
		t.Fatalf("LoadKeys() = %+v, want a retired at t0+2h and b current", keys)
	}
	keys[0].PrivateKeyPEM[0] = 'X'
	if again, _ := s.LoadKeys(ctx); again[0].PrivateKeyPEM[0] != 'p' {
		t.Error("LoadKeys() shares its PEM bytes with the store")
	}
	if n, err := s.DeleteRetiredBefore(ctx, t0.Add(2*time.Hour)); err != nil || n != 0 {
		t.Errorf("DeleteRetiredBefore(retirement time) = %d, %v, want 0", n, err)
	}
	if n, err := s.DeleteRetiredBefore(ctx, t0.Add(3*time.Hour)); err != nil || n != 1 {
		t.Errorf("DeleteRetiredBefore(later) = %d, %v, want 1 (the current key is never deleted)", n, err)
	}
}
