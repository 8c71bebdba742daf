package telemetry

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/classwaves/classwaves/pkg/config"
)

// scrape fetches /metrics from a real server over reg and returns the exposition text.
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	srv := httptest.NewServer(MetricsHandler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", resp.StatusCode, b)
	}
	return string(b)
}

// recoverer stands in for the recovery middleware that sits outside the metrics in production.
func recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if recover() != nil {
				w.WriteHeader(http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func TestMiddlewareMetrics(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/sessions/{id}", func(w http.ResponseWriter, r *http.Request) {})
	tests := []struct {
		name    string
		method  string
		path    string
		handler http.Handler
		want    string // labels of the one expected series
	}{
		{
			"handler writes nothing", "GET", "/x",
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
			`method="GET",route="unmatched",status="200"`,
		},
		{
			"body without WriteHeader", "POST", "/x",
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") }),
			`method="POST",route="unmatched",status="200"`,
		},
		{
			"explicit status and route template", "DELETE", "/api/v1/sessions/42",
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				SetRoute(r.Context(), "/api/v1/sessions/{id}")
				http.Error(w, "gone", http.StatusNotFound)
				w.WriteHeader(http.StatusOK) // superfluous: ignored
			}),
			`method="DELETE",route="/api/v1/sessions/{id}",status="404"`,
		},
		{
			"route set by a nested handler on a derived context", "GET", "/a/1",
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx, cancel := context.WithCancel(r.Context())
				defer cancel()
				SetRoute(ctx, "/a/{n}")
				if got := Route(r.Context()); got != "/a/{n}" {
					t.Errorf("Route() = %q, want /a/{n}", got)
				}
			}),
			`method="GET",route="/a/{n}",status="200"`,
		},
		{
			"ServeMux pattern when nobody set a route", "GET", "/api/v1/sessions/7", mux,
			`method="GET",route="/api/v1/sessions/{id}",status="200"`,
		},
		{
			"ServeMux 404", "GET", "/nope", mux,
			`method="GET",route="unmatched",status="404"`,
		},
		{
			"informational status then final", "PUT", "/x",
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusEarlyHints)
				w.WriteHeader(http.StatusCreated)
			}),
			`method="PUT",route="unmatched",status="201"`,
		},
		{
			"unknown method is bounded", "BREW", "/x",
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
			`method="OTHER",route="unmatched",status="200"`,
		},
		{
			"panic counts as 500", "GET", "/x",
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") }),
			`method="GET",route="unmatched",status="500"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewHTTPMetrics(reg)
			srv := httptest.NewUnstartedServer(recoverer(m.Middleware(tt.handler)))
			srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the superfluous WriteHeader is deliberate
			srv.Start()
			defer srv.Close()
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()

			got := scrape(t, reg)
			for _, want := range []string{
				"http_requests_total{" + tt.want + "} 1\n",
				"http_request_duration_seconds_count{" + tt.want + "} 1\n",
				`http_request_duration_seconds_bucket{` + tt.want + `,le="0.05"}`,
				`http_request_duration_seconds_bucket{` + tt.want + `,le="6.4"}`,
			} {
				if !strings.Contains(got, want) {
					t.Errorf("scrape lacks %q:\n%s", want, got)
				}
			}
			if n := strings.Count(got, "http_requests_total{"); n != 1 {
				t.Errorf("scrape has %d http_requests_total series, want 1:\n%s", n, got)
			}
		})
	}
}

func TestHijack(t *testing.T) {
	tests := []struct {
		name   string
		hijack func(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error)
	}{
		{"type assertion", func(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error) {
			h, ok := w.(http.Hijacker)
			if !ok {
				return nil, nil, errors.New("not a Hijacker")
			}
			return h.Hijack()
		}},
		{"ResponseController", func(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error) {
			return http.NewResponseController(w).Hijack()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewHTTPMetrics(reg)
			done := make(chan struct{})
			srv := httptest.NewServer(m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				SetRoute(r.Context(), "/socket.io/")
				conn, brw, err := tt.hijack(w)
				if err != nil {
					t.Errorf("hijack: %v", err)
					return
				}
				go func() { // owns the upgraded connection until the client hangs up
					defer close(done)
					defer conn.Close()
					brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
					brw.Flush()
					line, _ := brw.ReadString('\n')
					brw.WriteString("echo " + line)
					brw.Flush()
				}()
			})))
			defer srv.Close()

			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status = %d, want 101", resp.StatusCode)
			}
			io.WriteString(conn, "ping\n")
			if got, _ := br.ReadString('\n'); got != "echo ping\n" {
				t.Errorf("read %q over the hijacked connection, want %q", got, "echo ping\n")
			}
			conn.Close()
			<-done

			want := `http_requests_total{method="GET",route="/socket.io/",status="101"} 1`
			if got := scrape(t, reg); !strings.Contains(got, want) {
				t.Errorf("scrape lacks %q:\n%s", want, got)
			}
		})
	}
}

func TestFlush(t *testing.T) {
	tests := []struct {
		name  string
		flush func(w http.ResponseWriter) error
	}{
		{"type assertion", func(w http.ResponseWriter) error {
			f, ok := w.(http.Flusher)
			if !ok {
				return errors.New("not a Flusher")
			}
			f.Flush()
			return nil
		}},
		{"ResponseController", func(w http.ResponseWriter) error { return http.NewResponseController(w).Flush() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewHTTPMetrics(prometheus.NewRegistry())
			release := make(chan struct{})
			srv := httptest.NewServer(m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "first\n")
				if err := tt.flush(w); err != nil {
					t.Errorf("flush: %v", err)
				}
				<-release // the client must see "first" before the handler returns
				io.WriteString(w, "second\n")
			})))
			defer srv.Close()
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			if got, err := br.ReadString('\n'); got != "first\n" {
				t.Fatalf("first line = %q (%v), want flushed %q", got, err, "first\n")
			}
			close(release)
			if got, _ := br.ReadString('\n'); got != "second\n" {
				t.Errorf("second line = %q, want %q", got, "second\n")
			}
		})
	}
}

func TestSetRouteWithoutMiddleware(t *testing.T) {
	ctx := context.Background()
	SetRoute(ctx, "/x") // must not panic
	if got := Route(ctx); got != "" {
		t.Errorf("Route() = %q, want empty", got)
	}
}

func TestMetricsHandlerMethods(t *testing.T) {
	reg := prometheus.NewRegistry()
	for _, tt := range []struct {
		method string
		want   int
	}{{"GET", 200}, {"HEAD", 200}, {"POST", 405}} {
		rec := httptest.NewRecorder()
		MetricsHandler(reg).ServeHTTP(rec, httptest.NewRequest(tt.method, "/metrics", nil))
		if rec.Code != tt.want {
			t.Errorf("%s /metrics = %d, want %d", tt.method, rec.Code, tt.want)
		}
	}
}

func TestNewRegistry(t *testing.T) {
	for _, tt := range []struct {
		disabled bool
		wantGo   bool
	}{{false, true}, {true, false}} {
		got := scrape(t, NewRegistry(Config{DefaultMetricsDisabled: tt.disabled}))
		if has := strings.Contains(got, "go_goroutines "); has != tt.wantGo {
			t.Errorf("DefaultMetricsDisabled=%v: go_goroutines present = %v, want %v", tt.disabled, has, tt.wantGo)
		}
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{"defaults", nil, Config{ServiceName: "classwaves", SampleRatio: 1}, ""},
		{
			"seed and OTel variables",
			map[string]string{"OTEL_SERVICE_NAME": "cw-session", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
				"OTEL_TRACES_SAMPLER_ARG": "0.25", "METRICS_DEFAULT_DISABLED": "1"},
			Config{ServiceName: "cw-session", OTLPEndpoint: "http://collector:4317", SampleRatio: 0.25, DefaultMetricsDisabled: true}, "",
		},
		{
			"invalid values",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
			Config{ServiceName: "classwaves", OTLPEndpoint: "collector:4317", SampleRatio: 1.5},
			"OTEL_EXPORTER_OTLP_ENDPOINT must be an absolute http or https URL, got \"collector:4317\"\n" +
				"OTEL_TRACES_SAMPLER_ARG must be between 0 and 1, got 1.5",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			f := config.NewFlagSet("t", config.MapEnv(tt.env))
			c.RegisterFlags(f)
			if err := f.Parse(nil); err != nil {
				t.Fatal(err)
			}
			if c != tt.want {
				t.Errorf("Config = %+v, want %+v", c, tt.want)
			}
			err := c.Validate()
			if got := fmt.Sprint(err); (tt.wantErr == "" && err != nil) || (tt.wantErr != "" && got != tt.wantErr) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestSetup(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"without exporter", Config{ServiceName: "classwaves-test", SampleRatio: 1}},
		// Nothing listens there: start must not fail and shutdown must honour its deadline.
		{"with unreachable OTLP endpoint", Config{ServiceName: "classwaves-test", SampleRatio: 1, OTLPEndpoint: "http://127.0.0.1:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := NewRegistry(Config{DefaultMetricsDisabled: true})
			shutdown, err := Setup(context.Background(), tt.cfg, reg)
			if err != nil {
				t.Fatalf("Setup() error = %v", err)
			}

			_, span := otel.Tracer("test").Start(context.Background(), "op")
			if !span.SpanContext().TraceID().IsValid() || !span.SpanContext().IsSampled() {
				t.Errorf("span context = %+v, want a valid sampled trace id", span.SpanContext())
			}
			span.End()

			counter, err := otel.Meter("test").Int64Counter("classwaves.test.events", metric.WithDescription("test"))
			if err != nil {
				t.Fatal(err)
			}
			counter.Add(context.Background(), 2)
			if got, want := scrape(t, reg), "classwaves_test_events_total"; !strings.Contains(got, want) {
				t.Errorf("scrape lacks the OTel counter %q:\n%s", want, got)
			}
			if got := otel.GetTextMapPropagator().Fields(); !contains(got, "traceparent") || !contains(got, "baggage") {
				t.Errorf("propagator fields = %v, want traceparent and baggage", got)
			}

			const deadline = 500 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			err = shutdown(ctx)
			if tt.cfg.OTLPEndpoint == "" && err != nil {
				t.Errorf("shutdown() error = %v", err)
			}
			// A span that cannot be delivered is given up at the deadline, not retried for ever (the
			// slack only tells a hang from a slow machine).
			if elapsed := time.Since(start); elapsed > deadline+10*time.Second {
				t.Errorf("shutdown() took %v with a %v deadline", elapsed, deadline)
			}
			if got := scrape(t, reg); strings.Contains(got, "classwaves_test_events_total") {
				t.Errorf("OTel metrics still exported after shutdown:\n%s", got)
			}
		})
	}
}

func TestSetupRejectsInvalidConfig(t *testing.T) {
	_, err := Setup(context.Background(), Config{ServiceName: "x", SampleRatio: 2}, prometheus.NewRegistry())
	if want := "OTEL_TRACES_SAMPLER_ARG must be between 0 and 1, got 2"; err == nil || err.Error() != want {
		t.Errorf("Setup() error = %v, want %q", err, want)
	}
	if _, err := Setup(context.Background(), Config{ServiceName: "x", SampleRatio: 1}, nil); err == nil {
		t.Error("Setup(nil registry) error = nil, want an error")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
