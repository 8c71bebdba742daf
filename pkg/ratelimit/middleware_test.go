package ratelimit

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/pkg/envelope"
)

// request is one request of a middleware scenario and what it must get.
type request struct {
	method, path, remote string
	wantStatus           int
	wantHeaders          map[string]string // "" means the header must be absent
}

// limitedHeaders are the RateLimit headers of an answer under a limit (reset in seconds).
func limitedHeaders(limit, remaining, reset int, policy string) map[string]string {
	return map[string]string{
		"RateLimit-Limit":     strconv.Itoa(limit),
		"RateLimit-Remaining": strconv.Itoa(remaining),
		"RateLimit-Reset":     strconv.Itoa(reset),
		"RateLimit-Policy":    policy,
		"Retry-After":         "",
	}
}

var unlimited = map[string]string{"RateLimit-Limit": "", "RateLimit-Remaining": "", "Retry-After": ""}

func testConfig() Config {
	c := DefaultConfig()
	c.MaxRequests, c.Window = 3, 3*time.Hour         // 3 per 3h: one per hour
	c.AuthMaxRequests, c.AuthWindow = 2, 2*time.Hour // 2 per 2h: one per hour
	return c
}

// middlewareScenario runs against both backends. Hours-long emission intervals keep Redis (on its
// own clock) deterministic.
var middlewareScenario = []struct {
	name string
	req  request
}{
	{"first request", request{"GET", "/api/v1/sessions", "203.0.113.7:5000", 200, limitedHeaders(3, 2, 3600, "3;w=10800")}},
	{"second", request{"GET", "/api/v1/sessions/abc", "203.0.113.7:5001", 200, limitedHeaders(3, 1, 7200, "3;w=10800")}},
	{"third", request{"POST", "/api/v1/ai/analyze-discussion", "203.0.113.7:5002", 200, limitedHeaders(3, 0, 10800, "3;w=10800")}},
	{"fourth is refused", request{"GET", "/api/v1/sessions", "203.0.113.7:5003", 429, map[string]string{
		"RateLimit-Limit": "3", "RateLimit-Remaining": "0", "Retry-After": "3600", "Content-Type": envelope.ContentType}}},
	{"other spellings of /api are limited too", request{"GET", "/API/v1//sessions", "203.0.113.7:1", 429, nil}},
	{"dot segments do not escape", request{"GET", "/api/v1/health/../sessions", "203.0.113.7:1", 429, nil}},
	{"health is exempt", request{"GET", "/api/v1/health", "203.0.113.7:1", 200, unlimited}},
	{"readiness is exempt", request{"GET", "/api/v1/ready", "203.0.113.7:1", 200, unlimited}},
	{"metrics are exempt", request{"GET", "/metrics", "203.0.113.7:1", 200, unlimited}},
	{"outside /api is not limited", request{"GET", "/socket.io/", "203.0.113.7:1", 200, unlimited}},
	{"another client is not limited", request{"GET", "/api/v1/sessions", "198.51.100.4:1", 200, limitedHeaders(3, 2, 3600, "3;w=10800")}},
	{"auth: the stricter limit shows", request{"POST", "/api/v1/auth/google", "192.0.2.1:1", 200, limitedHeaders(2, 1, 3600, "2;w=7200")}},
	{"auth: second", request{"POST", "/api/v1/auth/refresh", "192.0.2.1:1", 200, limitedHeaders(2, 0, 7200, "2;w=7200")}},
	{"auth: third is refused", request{"GET", "/api/v1/auth/me", "192.0.2.1:1", 429, map[string]string{"RateLimit-Limit": "2", "Retry-After": "3600"}}},
	{"auth requests counted globally too", request{"GET", "/api/v1/sessions", "192.0.2.1:1", 200, limitedHeaders(3, 0, 10800, "3;w=10800")}},
	{"and the global limit follows", request{"GET", "/api/v1/sessions", "192.0.2.1:1", 429, map[string]string{"RateLimit-Limit": "3"}}},
	{"IPv6 clients share their /64", request{"GET", "/api/v1/sessions", "[2001:db8::1]:1", 200, limitedHeaders(3, 2, 3600, "3;w=10800")}},
	{"IPv6 same /64", request{"GET", "/api/v1/sessions", "[2001:db8::ffff]:1", 200, limitedHeaders(3, 1, 7200, "3;w=10800")}},
}

func TestMiddleware(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			mw, err := NewMiddleware(testConfig(), b.new(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			reached := 0
			h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				reached++
				w.WriteHeader(http.StatusOK)
			}))
			for _, s := range middlewareScenario {
				t.Run(s.name, func(t *testing.T) {
					before := reached
					r := httptest.NewRequest(s.req.method, s.req.path, nil)
					r.RemoteAddr = s.req.remote
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != s.req.wantStatus {
						t.Fatalf("status = %d, want %d", w.Code, s.req.wantStatus)
					}
					for k, want := range s.req.wantHeaders {
						got := w.Header().Get(k)
						if k == "RateLimit-Reset" && b.slack > 0 && got != "" {
							continue // Redis's clock moved on; the limiter tests bound it
						}
						if got != want {
							t.Errorf("header %s = %q, want %q", k, got, want)
						}
					}
					if (reached > before) != (s.req.wantStatus == 200) {
						t.Errorf("handler reached = %v, want %v", reached > before, s.req.wantStatus == 200)
					}
					if w.Code == http.StatusTooManyRequests {
						var got envelope.Failure
						if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
							t.Fatalf("429 body %q: %v", w.Body, err)
						}
						want := envelope.Failure{Error: envelope.ErrorBody{Code: "RATE_LIMITED", Message: Message}}
						if diff := cmp.Diff(want, got); diff != "" {
							t.Errorf("429 envelope (-want +got):\n%s", diff)
						}
					}
				})
			}
		})
	}
}

func TestMiddlewareDisabled(t *testing.T) {
	cfg := testConfig()
	cfg.Enabled = false
	mw, err := NewMiddleware(cfg, NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	for range 10 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/auth/me", nil))
		if w.Code != 200 || w.Header().Get("RateLimit-Limit") != "" {
			t.Fatalf("disabled limits answered %d with headers %v", w.Code, w.Header())
		}
	}
}

// failing is a Limiter whose backend is down.
type failing struct{}

func (failing) Allow(context.Context, string, Limit) (Result, error) {
	return Result{}, errors.New("redis: connection refused")
}

// TestMiddlewareFailsOpen: with the limiter down, requests pass.
func TestMiddlewareFailsOpen(t *testing.T) {
	mw, err := NewMiddleware(testConfig(), failing{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	for range 5 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/api/v1/auth/google", nil))
		if w.Code != 200 || w.Header().Get("RateLimit-Limit") != "" {
			t.Fatalf("status = %d with headers %v, want 200 without RateLimit headers", w.Code, w.Header())
		}
	}
}

func TestNewMiddlewareRefusesBadProxies(t *testing.T) {
	cfg := testConfig()
	cfg.TrustedProxies = []string{"10.0.0.0/8", "proxy.internal"}
	if _, err := NewMiddleware(cfg, NewMemory(), nil); err == nil {
		t.Error("NewMiddleware() with an unparsable proxy = nil error")
	}
}
