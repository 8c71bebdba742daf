package ratelimit

import (
	"log/slog"
	"math"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/envelope"
)

// Message is the client message of a 429.
const Message = "Too many requests, please try again later."

// exempt are the paths no limit applies to (probes and scrapes), matched exactly on the path as
// received, so /api/v1/health/../sessions is not exempt.
var exempt = map[string]bool{
	"/api/v1/health": true,
	"/api/v1/ready":  true,
	"/metrics":       true,
}

// Middleware applies the HTTP limits of Config: the global limit to /api/**, and before it the
// stricter auth limit to /api/v1/auth/**, both per client IP. Paths are matched after cleaning
// (dot segments, double slashes) and case-insensitively, so no spelling of a limited route
// escapes.
//
// Every limited response carries RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset and
// RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers, as express-rate-limit's standardHeaders)
// of the tighter limit; a refused one is answered 429 with Retry-After and the error envelope
// (code RATE_LIMITED). When the limiter fails (Redis down), the request passes and the failure is
// logged: the limits protect the service, they must not take it down.
type Middleware struct {
	cfg     Config
	limiter Limiter
	ip      *ClientIP
	logger  *slog.Logger
}

// NewMiddleware returns the middleware of cfg over l. It fails only when cfg.TrustedProxies does
// not parse (Validate reports the same).
func NewMiddleware(cfg Config, l Limiter, logger *slog.Logger) (*Middleware, error) {
	ip, err := NewClientIP(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Middleware{cfg: cfg, limiter: l, ip: ip, logger: logger}, nil
}

// scope says which limits apply to a path.
func scope(p string) (global, auth bool) {
	if exempt[p] {
		return false, false
	}
	c := strings.ToLower(path.Clean("/" + p))
	global = c == "/api" || strings.HasPrefix(c, "/api/")
	auth = c == "/api/v1/auth" || strings.HasPrefix(c, "/api/v1/auth/")
	return global, auth
}

// Handler wraps next.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	if !m.cfg.Enabled {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		global, auth := scope(r.URL.Path)
		if !global && !auth {
			next.ServeHTTP(w, r)
			return
		}
		client := m.ip.Key(r)
		var tightest *Result
		check := func(name string, l Limit) bool {
			res, err := m.limiter.Allow(r.Context(), name+":"+client, l)
			if err != nil {
				m.logger.WarnContext(r.Context(), "rate limiter unavailable; request let through",
					slog.String("limit", name), slog.String("error", err.Error()))
				return true
			}
			if tightest == nil || !res.Allowed || res.Remaining < tightest.Remaining {
				tightest = &res
			}
			return res.Allowed
		}
		ok := true
		if auth {
			ok = check("auth", m.cfg.AuthLimit())
		}
		if ok && global {
			ok = check("global", m.cfg.GlobalLimit())
		}
		if tightest != nil {
			SetHeaders(w.Header(), *tightest)
		}
		if !ok {
			WriteTooMany(w, r, *tightest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// seconds rounds d up to whole seconds (never below 0).
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

// SetHeaders sets the RateLimit headers of res: RateLimit-Limit (the burst), RateLimit-Remaining,
// RateLimit-Reset (seconds until the burst is whole again) and RateLimit-Policy ("burst;w=period").
func SetHeaders(h http.Header, res Result) {
	h.Set("RateLimit-Limit", strconv.Itoa(res.Limit.Burst))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(res.Remaining, 0)))
	h.Set("RateLimit-Reset", strconv.FormatInt(seconds(res.ResetAfter), 10))
	h.Set("RateLimit-Policy", strconv.Itoa(res.Limit.Burst)+";w="+strconv.FormatInt(seconds(res.Limit.Period), 10))
}

// WriteTooMany answers 429 with Retry-After (whole seconds, at least 1) and the error envelope,
// code RATE_LIMITED.
func WriteTooMany(w http.ResponseWriter, r *http.Request, res Result) {
	w.Header().Set("Retry-After", strconv.FormatInt(max(seconds(res.RetryAfter), 1), 10))
	envelope.WriteError(w, r, http.StatusTooManyRequests, apperr.ReasonRateLimited, Message)
}
