package retry

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		headers map[string]string
		want    time.Duration
	}{
		{nil, 0},
		{map[string]string{"Retry-After": "2"}, 2 * time.Second},
		{map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{map[string]string{"Retry-After": "0"}, 0},
		{map[string]string{"Retry-After": "-3"}, 0},
		{map[string]string{"Retry-After": "Tue, 04 Mar 2025 10:00:07 GMT"}, 7 * time.Second},
		{map[string]string{"Retry-After": "Tue, 04 Mar 2025 09:59:00 GMT"}, 0},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{"Retry-After": "9", "retry-after-ms": "1500"}, 1500 * time.Millisecond},
		{map[string]string{"Retry-After": "9", "retry-after-ms": "x"}, 9 * time.Second},
		{map[string]string{"Retry-After": " 3 "}, 3 * time.Second},
		// Values that would overflow a time.Duration are not waited for.
		{map[string]string{"Retry-After": "1e300"}, 0},
		{map[string]string{"Retry-After": "9", "retry-after-ms": "1e300"}, 9 * time.Second},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.headers {
			h.Set(k, v)
		}
		if got := After(h, now); got != tt.want {
			t.Errorf("After(%v) = %v, want %v", tt.headers, got, tt.want)
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second} {
		if got := b.Delay(i, 0, 0.5); got != want {
			t.Errorf("Delay(%d) = %v, want %v", i, got, want)
		}
	}
	if got := b.Delay(0, 0, 0); got != 50*time.Millisecond {
		t.Errorf("Delay with the smallest jitter = %v, want 50ms", got)
	}
	if got := b.Delay(0, 300*time.Millisecond, 0.9); got != 300*time.Millisecond {
		t.Errorf("Delay with Retry-After 300ms = %v", got)
	}
	if got := b.Delay(0, time.Hour, 0.5); got != time.Second {
		t.Errorf("Delay with Retry-After 1h = %v, want the 1s cap", got)
	}
	if got := b.Delay(1000, 0, 0.99); got != time.Second {
		t.Errorf("Delay(1000) = %v, want the 1s cap (no overflow)", got)
	}
}

func TestSleep(t *testing.T) {
	t.Parallel()
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep = %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep with a canceled context = %v, want context.Canceled", err)
	}
}
