package token

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/classwaves/classwaves/pkg/authn"
)

// start is the tests' clock start.
var start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// clock is a controllable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: start} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestKeySet returns a KeySet over store with default settings and clk.
func newTestKeySet(t *testing.T, store KeyStore, clk *clock) *KeySet {
	t.Helper()
	ks, err := NewKeySet(context.Background(), DefaultConfig(), authn.DefaultConfig(), store, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// verifier returns a verifier with clk over keys.
func verifier(keys authn.KeySource, clk *clock) *authn.Verifier {
	return authn.NewVerifier(authn.DefaultConfig(), keys, authn.WithClock(clk.Now))
}

// kidOf returns the kid header of a token, without verifying it.
func kidOf(t *testing.T, raw string) string {
	t.Helper()
	tok, _, err := parser.ParseUnverified(raw, &authn.Claims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := tok.Header["kid"].(string)
	return kid
}
