package authn

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
)

func TestJWK(t *testing.T) {
	k := newTestKey(t, "kid-1")
	jwk := NewJWK(k.kid, k.pub)
	want := &authv1.Jwk{Kty: "OKP", Crv: "Ed25519", Kid: "kid-1", Alg: "EdDSA", Use: "sig", X: jwk.GetX()}
	if diff := cmp.Diff(want, jwk, protocmp.Transform()); diff != "" {
		t.Errorf("NewJWK() mismatch (-want +got):\n%s", diff)
	}
	if len(jwk.GetX()) != 43 || strings.ContainsAny(jwk.GetX(), "+/=") {
		t.Errorf("x = %q, want 43 characters of unpadded base64url", jwk.GetX())
	}
	got, err := PublicKeyFromJWK(jwk)
	if err != nil || !got.Equal(k.pub) {
		t.Fatalf("PublicKeyFromJWK(NewJWK()) = %x, %v, want the key back", got, err)
	}

	edit := func(f func(*authv1.Jwk)) *authv1.Jwk {
		c := NewJWK(k.kid, k.pub)
		f(c)
		return c
	}
	bad := map[string]*authv1.Jwk{
		"RSA":            edit(func(j *authv1.Jwk) { j.Kty, j.N, j.E = "RSA", "abc", "AQAB" }),
		"X25519":         edit(func(j *authv1.Jwk) { j.Crv = "X25519" }),
		"alg HS256":      edit(func(j *authv1.Jwk) { j.Alg = "HS256" }),
		"use enc":        edit(func(j *authv1.Jwk) { j.Use = "enc" }),
		"no kid":         edit(func(j *authv1.Jwk) { j.Kid = "" }),
		"short x":        edit(func(j *authv1.Jwk) { j.X = j.X[:40] }),
		"padded x":       edit(func(j *authv1.Jwk) { j.X += "=" }),
		"std base64 x":   edit(func(j *authv1.Jwk) { j.X = strings.NewReplacer("-", "+", "_", "/").Replace(j.X) + "+" }),
		"y set":          edit(func(j *authv1.Jwk) { j.Y = "AAAA" }),
		"empty":          {},
		"kid too long":   edit(func(j *authv1.Jwk) { j.Kid = strings.Repeat("k", 200) }),
		"x not a string": edit(func(j *authv1.Jwk) { j.X = "!!!!" }),
	}
	for name, jwk := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := PublicKeyFromJWK(jwk); err == nil {
				t.Errorf("PublicKeyFromJWK(%v) = nil error, want a refusal", jwk)
			}
		})
	}
	// Without alg and use, a JWK is still an Ed25519 signing key (both are optional in RFC 7517).
	if _, err := PublicKeyFromJWK(edit(func(j *authv1.Jwk) { j.Alg, j.Use = "", "" })); err != nil {
		t.Errorf("PublicKeyFromJWK(no alg, no use) = %v, want nil", err)
	}
}

// fakeJWKS is a JWKSFetcher that counts fetches and serves what it is told.
type fakeJWKS struct {
	mu      sync.Mutex
	keys    []*authv1.Jwk
	err     error
	fetches atomic.Int32
}

func (f *fakeJWKS) set(keys []*authv1.Jwk, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys, f.err = keys, err
}

func (f *fakeJWKS) FetchJWKS(context.Context) ([]*authv1.Jwk, error) {
	f.fetches.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.keys, f.err
}

// clock is a controllable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: testNow} }

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

func TestCachedKeys(t *testing.T) {
	k1, k2 := newTestKey(t, "k1"), newTestKey(t, "k2")
	cfg := DefaultConfig() // refresh at most every 5s, keys fresh for 10m
	type step struct {
		advance   time.Duration
		serve     []*authv1.Jwk // when not nil, what the fetcher serves from now on
		fail      bool          // the fetcher fails from now on
		kid       string
		want      ed25519.PublicKey // nil: an error is wanted
		wantErr   error             // checked with errors.Is when want is nil (nil: any error)
		fetchesTo int32             // total fetches after the step
	}
	jwk := func(k testKey) *authv1.Jwk { return NewJWK(k.kid, k.pub) }
	tests := []struct {
		name  string
		steps []step
	}{
		{"first lookup fetches, later ones use the cache", []step{
			{serve: []*authv1.Jwk{jwk(k1)}, kid: "k1", want: k1.pub, fetchesTo: 1},
			{advance: time.Minute, kid: "k1", want: k1.pub, fetchesTo: 1},
		}},
		{"unknown kid refreshes once, then is refused without fetching", []step{
			{serve: []*authv1.Jwk{jwk(k1)}, kid: "k1", want: k1.pub, fetchesTo: 1},
			{advance: 10 * time.Second, kid: "nope", wantErr: ErrUnknownKey, fetchesTo: 2},
			{kid: "nope-2", wantErr: ErrUnknownKey, fetchesTo: 2},
			{advance: 4 * time.Second, kid: "nope-3", wantErr: ErrUnknownKey, fetchesTo: 2},
			{advance: time.Second, kid: "nope-4", wantErr: ErrUnknownKey, fetchesTo: 3},
		}},
		{"a rotated key is found by the refresh its kid triggers", []step{
			{serve: []*authv1.Jwk{jwk(k1)}, kid: "k1", want: k1.pub, fetchesTo: 1},
			{advance: 6 * time.Second, serve: []*authv1.Jwk{jwk(k2), jwk(k1)}, kid: "k2", want: k2.pub, fetchesTo: 2},
			{kid: "k1", want: k1.pub, fetchesTo: 2},
		}},
		{"stale keys are fetched again and dropped keys forgotten", []step{
			{serve: []*authv1.Jwk{jwk(k1)}, kid: "k1", want: k1.pub, fetchesTo: 1},
			{advance: 11 * time.Minute, serve: []*authv1.Jwk{jwk(k2)}, kid: "k1", wantErr: ErrUnknownKey, fetchesTo: 2},
			{kid: "k2", want: k2.pub, fetchesTo: 2},
		}},
		{"known keys keep verifying while auth is down", []step{
			{serve: []*authv1.Jwk{jwk(k1)}, kid: "k1", want: k1.pub, fetchesTo: 1},
			{advance: 11 * time.Minute, fail: true, kid: "k1", want: k1.pub, fetchesTo: 2},
			{advance: time.Second, kid: "k1", want: k1.pub, fetchesTo: 2},
		}},
		{"never fetched is not an unknown key", []step{
			{fail: true, kid: "k1", fetchesTo: 1},
			{kid: "k1", fetchesTo: 1},
			{advance: 5 * time.Second, serve: []*authv1.Jwk{jwk(k1)}, kid: "k1", want: k1.pub, fetchesTo: 2},
		}},
		{"keys of other kinds are skipped", []step{
			{serve: []*authv1.Jwk{{Kty: "RSA", Kid: "r1", N: "x", E: "AQAB"}, jwk(k1)}, kid: "k1", want: k1.pub, fetchesTo: 1},
		}},
		{"an empty set is a failure", []step{
			{serve: []*authv1.Jwk{}, kid: "k1", fetchesTo: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			f := &fakeJWKS{}
			c := NewCachedKeys(cfg, f, WithClock(clk.Now))
			for i, s := range tt.steps {
				clk.Advance(s.advance)
				switch {
				case s.fail:
					f.set(nil, errors.New("auth unavailable"))
				case s.serve != nil:
					f.set(s.serve, nil)
				}
				got, err := c.PublicKey(context.Background(), s.kid)
				if s.want != nil {
					if err != nil || !got.Equal(s.want) {
						t.Fatalf("step %d: PublicKey(%q) = %x, %v, want the key", i, s.kid, got, err)
					}
				} else {
					if err == nil {
						t.Fatalf("step %d: PublicKey(%q) = %x, want an error", i, s.kid, got)
					}
					if s.wantErr != nil && !errors.Is(err, s.wantErr) {
						t.Fatalf("step %d: PublicKey(%q) error = %v, want %v", i, s.kid, err, s.wantErr)
					}
					if s.wantErr == nil && errors.Is(err, ErrUnknownKey) {
						t.Fatalf("step %d: PublicKey(%q) error = %v, want an unavailability, not an unknown key", i, s.kid, err)
					}
				}
				if got := f.fetches.Load(); got != s.fetchesTo {
					t.Fatalf("step %d: fetches = %d, want %d", i, got, s.fetchesTo)
				}
			}
		})
	}
}

// A flood of tokens with random kids, all at once, costs one fetch.
func TestCachedKeysFloodFetchesOnce(t *testing.T) {
	f := &fakeJWKS{}
	k := newTestKey(t, "k1")
	f.set([]*authv1.Jwk{NewJWK(k.kid, k.pub)}, nil)
	c := NewCachedKeys(DefaultConfig(), f, WithClock(fixedClock))
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			if _, err := c.PublicKey(context.Background(), fmt.Sprintf("random-%d", i)); !errors.Is(err, ErrUnknownKey) {
				t.Errorf("PublicKey(random) error = %v, want ErrUnknownKey", err)
			}
		})
	}
	wg.Wait()
	if got := f.fetches.Load(); got != 1 {
		t.Errorf("fetches = %d, want 1", got)
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Errorf("Refresh() = %v", err)
	}
	if got := f.fetches.Load(); got != 1 {
		t.Errorf("fetches after an early Refresh = %d, want 1 (rate-limited)", got)
	}
}

// blockingJWKS answers its first fetch and blocks the later ones until released.
type blockingJWKS struct {
	keys     []*authv1.Jwk
	calls    atomic.Int32
	fetching chan struct{}
	release  chan struct{}
}

func (b *blockingJWKS) FetchJWKS(ctx context.Context) ([]*authv1.Jwk, error) {
	if b.calls.Add(1) == 1 {
		return b.keys, nil
	}
	close(b.fetching)
	<-b.release
	return nil, errors.New("auth unavailable")
}

// While a refresh of stale keys hangs (auth down), tokens of known keys keep verifying at once.
func TestCachedKeysStaleDoesNotWait(t *testing.T) {
	k := newTestKey(t, "k1")
	f := &blockingJWKS{keys: []*authv1.Jwk{NewJWK(k.kid, k.pub)}, fetching: make(chan struct{}), release: make(chan struct{})}
	clk := newClock()
	c := NewCachedKeys(DefaultConfig(), f, WithClock(clk.Now))
	if _, err := c.PublicKey(context.Background(), "k1"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	done := make(chan error, 1)
	go func() {
		_, err := c.PublicKey(context.Background(), "k1")
		done <- err
	}()
	<-f.fetching
	got, err := c.PublicKey(context.Background(), "k1")
	if err != nil || !got.Equal(k.pub) {
		t.Fatalf("PublicKey() during a hanging refresh = %v, want the known key", err)
	}
	close(f.release)
	if err := <-done; err != nil {
		t.Errorf("PublicKey() that refreshed = %v, want the stale key", err)
	}
}
