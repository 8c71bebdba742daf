package telemetry

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// UnmatchedRoute is the route label of a request no router claimed (404s, probes of random paths):
// raw paths never become label values.
const UnmatchedRoute = "unmatched"

// HTTPBuckets are the seed's SLO buckets for http_request_duration_seconds (50 ms to 6.4 s).
var HTTPBuckets = []float64{0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4}

// HTTPMetrics holds the seed's HTTP request metrics.
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTPMetrics registers http_requests_total and http_request_duration_seconds, both labelled
// {method,route,status}, on reg. It panics if they are already registered there, like MustRegister.
func NewHTTPMetrics(reg prometheus.Registerer) *HTTPMetrics {
	labels := []string{"method", "route", "status"}
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests by method, route template and status code.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "HTTP request duration in seconds by method, route template and status code.",
			Buckets: HTTPBuckets,
		}, labels),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// routeHolder is the mutable slot the middleware puts in the request context; the router that
// matches the request fills it.
type routeHolder struct{ route atomic.Pointer[string] }

type routeKey struct{}

// SetRoute records the matched route template (e.g. "/api/v1/sessions/{id}") for the request whose
// context is ctx. Routers call it once they have matched; without the middleware it does nothing.
func SetRoute(ctx context.Context, route string) {
	if h, ok := ctx.Value(routeKey{}).(*routeHolder); ok {
		h.route.Store(&route)
	}
}

// Route returns the route template recorded by SetRoute for ctx's request, or "" (useful for the
// seed's `route` log field).
func Route(ctx context.Context) string {
	if h, ok := ctx.Value(routeKey{}).(*routeHolder); ok {
		if p := h.route.Load(); p != nil {
			return *p
		}
	}
	return ""
}

// Middleware counts and times every request handled by next. The route label is what the inner
// router passed to SetRoute; failing that the pattern net/http.ServeMux matched, when next is a
// ServeMux given this very request; else "unmatched". A request whose connection is hijacked (a
// WebSocket upgrade) is recorded at the moment of the hijack with status 101, so a long-lived
// socket does not count as one very slow request.
func (m *HTTPMetrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		holder := &routeHolder{}
		r = r.WithContext(context.WithValue(r.Context(), routeKey{}, holder))
		rw := &responseWriter{ResponseWriter: w, start: time.Now()}
		rw.record = func(status int) { m.observe(r, holder, status, time.Since(rw.start)) }

		panicking := true
		defer func() {
			if panicking && !rw.recorded {
				// The handler panicked (a recovery middleware further out will answer): count it
				// as the 500 the client will most likely see.
				status := rw.status
				if status == 0 {
					status = http.StatusInternalServerError
				}
				rw.finish(status)
			}
		}()
		next.ServeHTTP(rw, r)
		panicking = false
		status := rw.status
		if status == 0 {
			status = http.StatusOK // nothing written: net/http answers 200 with an empty body
		}
		rw.finish(status)
	})
}

func (m *HTTPMetrics) observe(r *http.Request, holder *routeHolder, status int, d time.Duration) {
	route := UnmatchedRoute
	if p := holder.route.Load(); p != nil && *p != "" {
		route = *p
	} else if r.Pattern != "" {
		route = patternPath(r.Pattern)
	}
	labels := prometheus.Labels{"method": methodLabel(r.Method), "route": route, "status": strconv.Itoa(status)}
	m.requests.With(labels).Inc()
	obs := m.duration.With(labels)
	if sc := trace.SpanContextFromContext(r.Context()); sc.IsSampled() {
		if eo, ok := obs.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(d.Seconds(), prometheus.Labels{"trace_id": sc.TraceID().String()})
			return
		}
	}
	obs.Observe(d.Seconds())
}

// patternPath strips the method and host from a ServeMux pattern ("GET /api/v1/x/{id}").
func patternPath(p string) string {
	if i := strings.IndexByte(p, ' '); i >= 0 {
		p = strings.TrimLeft(p[i+1:], " ")
	}
	if i := strings.IndexByte(p, '/'); i > 0 {
		p = p[i:]
	}
	return p
}

// responseWriter records the status code. It implements Flush and Hijack itself (type assertions
// such as w.(http.Hijacker) keep working) and Unwrap (http.ResponseController reaches the rest).
type responseWriter struct {
	http.ResponseWriter
	status   int
	start    time.Time
	record   func(status int)
	recorded bool
}

var (
	_ http.Flusher  = (*responseWriter)(nil)
	_ http.Hijacker = (*responseWriter)(nil)
	_ io.ReaderFrom = (*responseWriter)(nil)
)

func (w *responseWriter) finish(status int) {
	if w.recorded {
		return
	}
	w.recorded = true
	w.record(status)
}

func (w *responseWriter) WriteHeader(code int) {
	// 1xx responses are informational; the final status comes later.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps the underlying writer's io.ReaderFrom (sendfile for files) in play.
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return io.Copy(w.ResponseWriter, r)
}

// Flush sends buffered data to the client, if the underlying writer can.
func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands the connection to the caller and records the request (status 101 unless a status
// was already written).
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	status := w.status
	if status == 0 {
		status = http.StatusSwitchingProtocols
	}
	w.finish(status)
	return conn, brw, nil
}

// Unwrap returns the wrapped writer for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
