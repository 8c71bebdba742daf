package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	systemv1 "github.com/classwaves/classwaves/pkg/api/classwaves/system/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/grpcclient"
	"github.com/classwaves/classwaves/pkg/grpcserver"
	"github.com/classwaves/classwaves/pkg/httpserver"
	"github.com/classwaves/classwaves/pkg/logging"
	"github.com/classwaves/classwaves/pkg/telemetry"
	"github.com/classwaves/classwaves/pkg/traceid"
)

// The upstreams below are small real gRPC servers written for these tests: they answer fixed
// data so the gateway's mapping can be checked. They run behind the real grpcserver (validation,
// error mapping) on a loopback port and are reached through a real client connection.

var errSessionEnded = apperr.New(codes.FailedPrecondition, "SESSION_ALREADY_ENDED", "session has already ended")

type sessionUpstream struct {
	sessionv1.UnimplementedSessionServiceServer
	gotTraceID chan string
}

func (s *sessionUpstream) GetSession(ctx context.Context, req *sessionv1.GetSessionRequest) (*sessionv1.GetSessionResponse, error) {
	select {
	case s.gotTraceID <- traceid.FromContext(ctx):
	default:
	}
	if req.GetSessionId() == "00000000-0000-4000-8000-000000000404" {
		return nil, apperr.New(codes.NotFound, "SESSION_NOT_FOUND", "session not found").WithCause(io.ErrUnexpectedEOF)
	}
	return &sessionv1.GetSessionResponse{Session: &sessionv1.Session{
		Id: req.GetSessionId(), Title: "Photosynthesis", Status: "created",
		CreatedAt: timestamppb.New(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)),
	}}, nil
}

func (s *sessionUpstream) EndSession(context.Context, *sessionv1.EndSessionRequest) (*sessionv1.EndSessionResponse, error) {
	return nil, errSessionEnded
}

func (s *sessionUpstream) ListSessions(context.Context, *sessionv1.ListSessionsRequest) (*sessionv1.ListSessionsResponse, error) {
	panic("boom: an upstream bug")
}

type analyticsUpstream struct {
	analyticsv1.UnimplementedAnalyticsServiceServer
}

func (analyticsUpstream) GetSessionSummaries(context.Context, *analyticsv1.GetSessionSummariesRequest) (*analyticsv1.GetSessionSummariesResponse, error) {
	return &analyticsv1.GetSessionSummariesResponse{Pending: true, RetryAfterSeconds: 7}, nil
}

func (analyticsUpstream) ExportSessionAnalytics(context.Context, *analyticsv1.ExportSessionAnalyticsRequest) (*analyticsv1.ExportSessionAnalyticsResponse, error) {
	return &analyticsv1.ExportSessionAnalyticsResponse{File: &httpbody.HttpBody{ContentType: "text/csv", Data: []byte("group,words\nA,10\n")}}, nil
}

type authUpstream struct {
	authv1.UnimplementedAuthServiceServer
}

func (authUpstream) GetJwks(context.Context, *authv1.GetJwksRequest) (*authv1.GetJwksResponse, error) {
	return &authv1.GetJwksResponse{Keys: []*authv1.Jwk{{Kty: "OKP", Crv: "Ed25519", X: "abc", Kid: "k1", Alg: "EdDSA", Use: "sig"}}}, nil
}

func (authUpstream) GoogleCallback(context.Context, *authv1.GoogleCallbackRequest) (*authv1.GoogleCallbackResponse, error) {
	return &authv1.GoogleCallbackResponse{RedirectUrl: "http://localhost:3001/auth/done"}, nil
}

type fixture struct {
	url     string
	session *sessionUpstream
}

func newFixture(t *testing.T, ready ReadinessFunc) *fixture {
	t.Helper()
	logger := logging.Discard()
	srv := grpcserver.New(grpcserver.DefaultConfig(), logger, grpcserver.WithUnbuiltNote(func(m string) string {
		return "it lands with a later issue"
	}))
	session := &sessionUpstream{gotTraceID: make(chan string, 1)}
	sessionv1.RegisterSessionServiceServer(srv.GRPC(), session)
	analyticsv1.RegisterAnalyticsServiceServer(srv.GRPC(), analyticsUpstream{})
	authv1.RegisterAuthServiceServer(srv.GRPC(), authUpstream{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })

	conn, err := grpcclient.Dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if ready == nil {
		ready = func(context.Context) []*systemv1.ComponentStatus {
			return []*systemv1.ComponentStatus{{Name: "session", Status: "SERVING"}}
		}
	}
	cfg := Config{FrontendURL: "http://localhost:3001", StudentAppURL: "http://localhost:3002"}
	conns := map[Upstream]*grpc.ClientConn{Session: conn, Analytics: conn, Auth: conn}
	gw, err := New(context.Background(), cfg, conns, NewSystem(time.Now().Add(-time.Minute), ready), logger)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", gw)
	reg := telemetry.NewRegistry(telemetry.Config{})
	ts := httptest.NewServer(httpserver.Handler(logger, telemetry.NewHTTPMetrics(reg), mux))
	t.Cleanup(ts.Close)
	return &fixture{url: ts.URL, session: session}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (f *fixture) do(t *testing.T, method, path, body string, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func errorCode(a answer) string {
	e, _ := a.body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestEnvelopeAndErrorMapping(t *testing.T) {
	f := newFixture(t, nil)
	const id = "6f1c7a52-8a0e-4c1e-9d7b-2f9a1d2c3b4a"
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantCode   string // error.code; "" for success
	}{
		{"success is enveloped", "GET", "/api/v1/sessions/" + id, "", 200, ""},
		{"domain not found", "GET", "/api/v1/sessions/00000000-0000-4000-8000-000000000404", "", 404, "SESSION_NOT_FOUND"},
		{"illegal transition is 409", "POST", "/api/v1/sessions/" + id + "/end", "{}", 409, "SESSION_ALREADY_ENDED"},
		{"path param breaks a rule", "GET", "/api/v1/sessions/not-a-uuid", "", 400, "VALIDATION_ERROR"},
		{"malformed JSON body", "POST", "/api/v1/sessions", "{not json", 400, "VALIDATION_ERROR"},
		{"upstream panic is a safe 500", "GET", "/api/v1/sessions", "", 500, "INTERNAL_ERROR"},
		{"unbuilt RPC is 501", "POST", "/api/v1/sessions/join", `{"accessCode":"ABC234","displayName":"Ana"}`, 501, "NOT_IMPLEMENTED"},
		{"unknown route", "GET", "/api/v1/nope", "", 404, "ROUTE_NOT_FOUND"},
		{"wrong method", "DELETE", "/api/v1/sessions/" + id, "", 405, "METHOD_NOT_ALLOWED"},
		{"service not routed here", "GET", "/api/v1/ai/tier1/status", "", 404, "ROUTE_NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.do(t, tt.method, tt.path, tt.body)
			if a.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", a.status, tt.wantStatus, a.raw)
			}
			if got := a.header.Get("X-Trace-Id"); got == "" {
				t.Error("X-Trace-Id header missing")
			}
			if got, want := a.body["requestId"], a.header.Get("X-Trace-Id"); got != want {
				t.Errorf("requestId = %v, want the X-Trace-Id %q", got, want)
			}
			if got, want := a.body["success"], tt.wantCode == ""; got != want {
				t.Errorf("success = %v, want %v", got, want)
			}
			if got := errorCode(a); got != tt.wantCode {
				t.Errorf("error.code = %q, want %q", got, tt.wantCode)
			}
			if strings.Contains(a.raw, "boom") || strings.Contains(a.raw, "unexpected EOF") {
				t.Errorf("internal error text leaked: %s", a.raw)
			}
		})
	}
}

func TestSuccessDataShape(t *testing.T) {
	f := newFixture(t, nil)
	a := f.do(t, "GET", "/api/v1/sessions/6f1c7a52-8a0e-4c1e-9d7b-2f9a1d2c3b4a", "")
	data, _ := a.body["data"].(map[string]any)
	session, _ := data["session"].(map[string]any)
	want := map[string]any{
		"id": "6f1c7a52-8a0e-4c1e-9d7b-2f9a1d2c3b4a", "title": "Photosynthesis", "status": "created",
		"createdAt": "2026-11-25T09:00:00Z", "targetGroupSize": float64(0), "learningObjectives": []any{},
	}
	for k, v := range want {
		if diff := cmp.Diff(v, session[k]); diff != "" {
			t.Errorf("data.session.%s mismatch (-want +got):\n%s", k, diff)
		}
	}
}

func TestValidationFieldViolations(t *testing.T) {
	f := newFixture(t, nil)
	a := f.do(t, "POST", "/api/v1/sessions", `{"title":"","targetGroupSize":99,"groups":[{"name":"","maxSize":50}]}`)
	if a.status != 400 {
		t.Fatalf("status = %d, want 400; body %s", a.status, a.raw)
	}
	e, _ := a.body["error"].(map[string]any)
	details, _ := e["details"].([]any)
	fields := map[string]bool{}
	for _, d := range details {
		if m, ok := d.(map[string]any); ok {
			fields[m["field"].(string)] = true
		}
	}
	for _, want := range []string{"title", "targetGroupSize", "groups[0].name", "groups[0].maxSize"} {
		if !fields[want] {
			t.Errorf("error.details has no violation for %q; details %v", want, details)
		}
	}
}

func TestTraceIDs(t *testing.T) {
	f := newFixture(t, nil)
	path := "/api/v1/sessions/6f1c7a52-8a0e-4c1e-9d7b-2f9a1d2c3b4a"
	tests := []struct {
		name    string
		headers []string
		want    string // "" means minted
	}{
		{"echoes X-Trace-Id", []string{"X-Trace-Id", "trace-abc"}, "trace-abc"},
		{"accepts x-request-id", []string{"X-Request-Id", "req-42"}, "req-42"},
		{"refuses an unsafe id", []string{"X-Trace-Id", "bad id with spaces"}, ""},
		{"mints when absent", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.do(t, "GET", path, "", tt.headers...)
			got := a.header.Get("X-Trace-Id")
			if tt.want != "" && got != tt.want {
				t.Errorf("X-Trace-Id = %q, want %q", got, tt.want)
			}
			if tt.want == "" && (len(got) != 32 || !traceid.Valid(got)) {
				t.Errorf("X-Trace-Id = %q, want a minted 32-char id", got)
			}
			select {
			case upstream := <-f.session.gotTraceID:
				if upstream != got {
					t.Errorf("upstream saw trace id %q, want %q", upstream, got)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("upstream was not called")
			}
		})
	}
}

func TestSpecialAnswers(t *testing.T) {
	f := newFixture(t, nil)
	t.Run("pending summaries are 202 with Retry-After", func(t *testing.T) {
		a := f.do(t, "GET", "/api/v1/sessions/6f1c7a52-8a0e-4c1e-9d7b-2f9a1d2c3b4a/summaries", "")
		if a.status != 202 || a.header.Get("Retry-After") != "7" {
			t.Errorf("status %d Retry-After %q, want 202 and 7", a.status, a.header.Get("Retry-After"))
		}
		if a.body["success"] != true {
			t.Errorf("body %s, want a success envelope", a.raw)
		}
	})
	t.Run("CSV export is raw", func(t *testing.T) {
		a := f.do(t, "GET", "/api/v1/analytics/session/6f1c7a52-8a0e-4c1e-9d7b-2f9a1d2c3b4a/export", "")
		if a.status != 200 || a.header.Get("Content-Type") != "text/csv" || a.raw != "group,words\nA,10\n" {
			t.Errorf("got %d %q %q, want 200 text/csv and the CSV", a.status, a.header.Get("Content-Type"), a.raw)
		}
	})
	t.Run("JWKS is bare RFC 7517 JSON", func(t *testing.T) {
		a := f.do(t, "GET", "/api/v1/auth/.well-known/jwks.json", "")
		want := map[string]any{"keys": []any{map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "abc", "kid": "k1", "alg": "EdDSA", "use": "sig"}}}
		if diff := cmp.Diff(want, a.body); diff != "" {
			t.Errorf("JWKS mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("OAuth callback redirects", func(t *testing.T) {
		a := f.do(t, "GET", "/api/v1/auth/google/callback?code=x&state=y", "")
		if a.status != 302 || a.header.Get("Location") != "http://localhost:3001/auth/done" {
			t.Errorf("got %d Location %q, want 302 to the frontend", a.status, a.header.Get("Location"))
		}
	})
}

func TestHealthAndReadiness(t *testing.T) {
	f := newFixture(t, nil)
	a := f.do(t, "GET", "/api/v1/health", "")
	data, _ := a.body["data"].(map[string]any)
	if a.status != 200 || data["status"] != "healthy" || data["timestamp"] == nil {
		t.Errorf("health = %d %s, want 200 healthy with timestamp", a.status, a.raw)
	}
	if up, _ := data["uptime"].(float64); up < 59 {
		t.Errorf("uptime = %v, want about 60 seconds", data["uptime"])
	}
	if a := f.do(t, "GET", "/api/v1/ready", ""); a.status != 200 {
		t.Errorf("ready = %d %s, want 200", a.status, a.raw)
	}

	notReady := newFixture(t, func(context.Context) []*systemv1.ComponentStatus {
		return []*systemv1.ComponentStatus{{Name: "classwaves.session.v1.SessionService", Status: "NOT_SERVING"}}
	})
	a = notReady.do(t, "GET", "/api/v1/ready", "")
	if a.status != 503 || errorCode(a) != "NOT_READY" || !strings.Contains(a.raw, "SessionService") {
		t.Errorf("ready = %d %s, want 503 NOT_READY naming the service", a.status, a.raw)
	}
}

func TestCORS(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name       string
		method     string
		origin     string
		preflight  bool
		wantStatus int
		wantAllow  string
	}{
		{"frontend preflight", "OPTIONS", "http://localhost:3001", true, 204, "http://localhost:3001"},
		{"student app simple request", "GET", "http://localhost:3002", false, 200, "http://localhost:3002"},
		{"unknown origin preflight refused", "OPTIONS", "https://evil.example", true, 403, ""},
		{"unknown origin simple request gets no CORS headers", "GET", "https://evil.example", false, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := []string{"Origin", tt.origin}
			if tt.preflight {
				headers = append(headers, "Access-Control-Request-Method", "POST")
			}
			a := f.do(t, tt.method, "/api/v1/health", "", headers...)
			if a.status != tt.wantStatus {
				t.Errorf("status = %d, want %d", a.status, tt.wantStatus)
			}
			if got := a.header.Get("Access-Control-Allow-Origin"); got != tt.wantAllow {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.wantAllow)
			}
		})
	}
}

func TestJSONFieldPath(t *testing.T) {
	tests := map[string]string{
		"title":                   "title",
		"groups[0].max_size":      "groups[0].maxSize",
		"scheduled_start.seconds": "scheduledStart.seconds",
		"learning_objectives[12]": "learningObjectives[12]",
		"metadata[\"a_b\"]":       "metadata[\"a_b\"]",
	}
	for in, want := range tests {
		if got := jsonFieldPath(in); got != want {
			t.Errorf("jsonFieldPath(%q) = %q, want %q", in, got, want)
		}
	}
}
