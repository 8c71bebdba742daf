package authn

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/metadata"
)

// countingSource mints "tok-<n>" tokens that live 15 minutes.
type countingSource struct {
	clk   *clock
	n     int
	fails bool
}

func (s *countingSource) Token(context.Context) (string, time.Time, error) {
	if s.fails {
		return "", time.Time{}, errors.New("no signing key")
	}
	s.n++
	return "tok-" + string(rune('0'+s.n)), s.clk.Now().Add(15 * time.Minute), nil
}

func TestServiceCredentials(t *testing.T) {
	clk := newClock()
	src := &countingSource{clk: clk}
	creds := NewServiceCredentials(src, WithClock(clk.Now))
	get := func(ctx context.Context) map[string]string {
		t.Helper()
		md, err := creds.GetRequestMetadata(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return md
	}
	ctx := context.Background()
	if diff := cmp.Diff(map[string]string{"authorization": "Bearer tok-1"}, get(ctx)); diff != "" {
		t.Errorf("first call (-want +got):\n%s", diff)
	}
	clk.Advance(13 * time.Minute)
	if got := get(ctx)["authorization"]; got != "Bearer tok-1" {
		t.Errorf("within lifetime: %q, want the cached token", got)
	}
	clk.Advance(time.Minute) // 1 minute before expiry: renewed
	if got := get(ctx)["authorization"]; got != "Bearer tok-2" {
		t.Errorf("near expiry: %q, want a new token", got)
	}
	forwarded := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer user-token")
	if got := get(forwarded); len(got) != 0 {
		t.Errorf("with a forwarded user token: %v, want nothing added", got)
	}
	if creds.RequireTransportSecurity() {
		t.Error("RequireTransportSecurity() = true, want false (loopback and cluster calls)")
	}
	src.fails = true
	clk.Advance(time.Hour)
	if _, err := creds.GetRequestMetadata(ctx); err == nil {
		t.Error("GetRequestMetadata() with a failing source = nil error")
	}
}
