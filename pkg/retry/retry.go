// Package retry holds what clients share to retry a call: the server's own Retry-After, exponential
// backoff with jitter, and a wait that ends with its context. The LLM client (pkg/llm) and the Whisper
// client (services/stt/whisper) use all three; the Redis bus and the load tool use Sleep.
package retry

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// After is how long the server asked the client to wait, from an answer's headers: OpenAI's
// retry-after-ms first, then Retry-After in seconds or as an HTTP date (relative to now). 0 when
// there is none, or when the value is not positive, not in the future, or absurdly large.
func After(h http.Header, now time.Time) time.Duration {
	if v := h.Get("retry-after-ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < 1e9 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 || s > 1e6 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

// Backoff is an exponential backoff: Base for the first retry, doubled for each one after, scaled by
// a jitter factor; Max caps it and any Retry-After.
type Backoff struct {
	Base, Max time.Duration
}

// Delay is the wait before retry number attempt+1: retryAfter (the server's) when positive, else
// Base*2^attempt scaled by 0.5+jitter (jitter in [0, 1), so the factor is in [0.5, 1.5)); both capped
// by Max.
func (b Backoff) Delay(attempt int, retryAfter time.Duration, jitter float64) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, b.Max)
	}
	d := b.Base << min(attempt, 16)
	d = time.Duration(float64(d) * (0.5 + jitter))
	return min(d, b.Max)
}

// Sleep waits d, or less when ctx ends first (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
