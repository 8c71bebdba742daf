package gateway

import (
	"net/http"
	"strings"

	"github.com/classwaves/classwaves/pkg/envelope"
)

// cors answers CORS for the two frontends (FRONTEND_URL, STUDENT_APP_URL). Origins are compared
// exactly (scheme, host and port); cookies are allowed because the auth flow may use them.
type cors struct {
	allowed map[string]bool
}

const (
	corsMethods = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
	corsHeaders = "Authorization, Content-Type, X-Trace-Id, X-Request-Id, X-CSRF-Token"
	corsExpose  = "X-Trace-Id, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"
)

func newCORS(origins []string) *cors {
	c := &cors{allowed: map[string]bool{}}
	for _, o := range origins {
		if o = normalizeOrigin(o); o != "" {
			c.allowed[o] = true
		}
	}
	return c
}

func normalizeOrigin(o string) string {
	return strings.ToLower(strings.TrimRight(strings.TrimSpace(o), "/"))
}

// handle sets the CORS headers and reports whether the request should go on (false when it was a
// preflight, answered here).
func (c *cors) handle(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a cross-origin browser request
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	ok := c.allowed[normalizeOrigin(origin)]
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if !ok {
		if preflight {
			envelope.WriteError(w, r, http.StatusForbidden, "CORS_ORIGIN_DENIED", "Origin "+origin+" is not allowed")
			return false
		}
		return true // no CORS headers: the browser refuses to expose the answer
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Set("Access-Control-Expose-Headers", corsExpose)
	if preflight {
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		h.Set("Access-Control-Allow-Methods", corsMethods)
		h.Set("Access-Control-Allow-Headers", corsHeaders)
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return false
	}
	return true
}
