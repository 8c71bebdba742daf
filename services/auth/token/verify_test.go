package token

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/classwaves/classwaves/pkg/authn"
)

// TestVerifier: the KeySet's own verifier accepts what the KeySet signs, on the KeySet's clock.
func TestVerifier(t *testing.T) {
	clk := newClock()
	ks := newTestKeySet(t, NewMemoryStore(), clk)
	p := authn.Principal{Subject: "t", Role: authn.RoleTeacher, SchoolID: "s"}
	tok := mustIssue(t, ks, p)
	got, err := ks.Verifier().VerifyToken(context.Background(), tok)
	if err != nil || got != p {
		t.Fatalf("VerifyToken() = %+v, %v, want %+v", got, err, p)
	}
	clk.Advance(DefaultConfig().AccessTTL + time.Hour)
	if _, err := ks.Verifier().VerifyToken(context.Background(), tok); !errors.Is(err, authn.ErrTokenExpired) {
		t.Errorf("VerifyToken(after expiry on the KeySet's clock) = %v, want ErrTokenExpired", err)
	}
}
