// Package httpserver is the HTTP plumbing every edge shares: trace ids (X-Trace-Id on every
// response), metrics, panic recovery, access logs with the seed's fields, and OpenTelemetry spans.
package httpserver

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/classwaves/classwaves/pkg/envelope"
	"github.com/classwaves/classwaves/pkg/telemetry"
	"github.com/classwaves/classwaves/pkg/traceid"
)

// Handler wraps next in the shared middleware, outermost first: OpenTelemetry, trace id, metrics,
// access log, panic recovery.
func Handler(logger *slog.Logger, metrics *telemetry.HTTPMetrics, next http.Handler) http.Handler {
	h := recoverer(logger, next)
	h = accessLog(logger, h)
	h = metrics.Middleware(h)
	h = traceIDs(h)
	return otelhttp.NewHandler(h, "http",
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }),
	)
}

// traceIDs echoes a valid incoming X-Trace-Id (or X-Request-Id), else mints one, and puts it in the
// request context and the X-Trace-Id response header before anything else can answer.
func traceIDs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := traceid.Pick(r.Header.Get(traceid.Header), r.Header.Get(traceid.RequestIDHeader))
		w.Header().Set(traceid.Header, id)
		next.ServeHTTP(w, r.WithContext(traceid.NewContext(r.Context(), id)))
	})
}

// recoverer turns a handler panic into a 500 envelope; the process keeps serving.
func recoverer(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				logger.ErrorContext(r.Context(), "http handler panic", "panic", p, "route", r.URL.Path)
				envelope.WriteError(w, r, http.StatusInternalServerError, "INTERNAL_ERROR", "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status code for the access log. It implements Hijack and Flush
// itself, because WebSocket upgraders (gorilla/websocket) and streaming handlers assert
// w.(http.Hijacker) and w.(http.Flusher) directly; Unwrap serves http.ResponseController.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

var (
	_ http.Hijacker = (*statusRecorder)(nil)
	_ http.Flusher  = (*statusRecorder)(nil)
)

// Hijack hands the connection over (a WebSocket upgrade); the access log records 101.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err == nil && s.status == 0 {
		s.status = http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

// Flush sends buffered data to the client (long-polling, server-sent streams).
func (s *statusRecorder) Flush() {
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// accessLog writes one line per request with the seed's fields: route (the route template when the
// router recorded one), statusCode, durationMs; requestId comes from the context through the
// logging handler. It runs inside the metrics middleware, which owns the route holder.
func accessLog(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		level := slog.LevelInfo
		switch {
		case status == http.StatusNotImplemented || status == http.StatusServiceUnavailable:
			level = slog.LevelWarn // known gaps and not-ready answers, not faults
		case status >= 500:
			level = slog.LevelError
		}
		route := telemetry.Route(r.Context())
		if route == "" {
			route = r.URL.Path
		}
		logger.Log(r.Context(), level, "http request",
			"method", r.Method,
			"route", route,
			"path", r.URL.Path,
			"statusCode", status,
			"durationMs", float64(time.Since(start).Microseconds())/1000,
		)
	})
}
