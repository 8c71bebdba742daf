package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/config"
	"github.com/classwaves/classwaves/pkg/grpcclient"
	"github.com/classwaves/classwaves/pkg/testenv"
)

// syncBuffer is a log sink safe for the servers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func parseConfig(t testing.TB, env map[string]string, args ...string) Config {
	t.Helper()
	f := config.NewFlagSet("test", config.MapEnv(env))
	var cfg Config
	cfg.RegisterFlags(f)
	if err := f.Parse(args); err != nil {
		t.Fatalf("Parse(%v): %v", args, err)
	}
	return cfg
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // substring of the error; "" means valid
	}{
		{"defaults are valid", nil, nil, ""},
		{"bad NODE_ENV", map[string]string{"NODE_ENV": "prod"}, nil, `NODE_ENV must be one of development, test, production; got "prod"`},
		{"bad LOG_LEVEL", map[string]string{"LOG_LEVEL": "loud"}, nil, `LOG_LEVEL must be one of debug, info, warn, error, silent; got "loud"`},
		{"port out of range", map[string]string{"PORT": "70000"}, nil, "PORT must be between 1 and 65535, got 70000"},
		{"same ports", map[string]string{"PORT": "4000", "GRPC_PORT": "4000"}, nil, "PORT and GRPC_PORT must differ, both are 4000"},
		{"unknown target", nil, []string{"-target=session,nope"}, `unknown target "nope"; valid targets: all, analytics, audit, auth, gateway, guidance, realtime, session, stt`},
		{"empty target", nil, []string{"-target= , "}, "target must name at least one module"},
		{"bad frontend URL", map[string]string{"FRONTEND_URL": "localhost:3001"}, nil, "FRONTEND_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parseConfig(t, tt.env, tt.args...)
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestResolveTargets(t *testing.T) {
	tests := []struct {
		target string
		want   []string
	}{
		{"session", []string{Server, Session}},
		{"gateway, auth", []string{Server, Gateway, Auth}},
		{"all", []string{Server, Auth, Session, STT, Guidance, Analytics, Audit, Realtime, Gateway, All}},
		{"session,session", []string{Server, Session}},
	}
	for _, tt := range tests {
		got, err := resolveTargets(tt.target)
		if err != nil {
			t.Fatalf("resolveTargets(%q): %v", tt.target, err)
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("resolveTargets(%q) = %v, want %v", tt.target, got, tt.want)
		}
	}
}

// start runs an App on free loopback ports and stops it when the test ends.
func start(t testing.TB, env map[string]string, args ...string) (*App, *syncBuffer, func() error) {
	t.Helper()
	base := map[string]string{"PORT": "0", "GRPC_PORT": "0", "HOST": "127.0.0.1", "GRPC_HOST": "127.0.0.1",
		"SQLITE_PATH": filepath.Join(t.TempDir(), "classwaves.db")}
	for k, v := range env {
		base[k] = v
	}
	cfg := parseConfig(t, base, args...)
	logs := &syncBuffer{}
	a, err := New(context.Background(), cfg, logs)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(20 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	waitReady(t, "http://"+a.Addrs().HTTP+"/api/v1/health")
	return a, logs, stop
}

func waitReady(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered", url)
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	return resp.StatusCode, body
}

func TestAllInOneServes(t *testing.T) {
	a, logs, stop := start(t, nil)
	base := "http://" + a.Addrs().HTTP

	code, body := getJSON(t, base+"/api/v1/ready")
	if code != 200 {
		t.Errorf("ready = %d %v, want 200", code, body)
	}

	conn, err := grpcclient.Dial(a.Addrs().GRPC)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	for _, svc := range []string{"", "classwaves.auth.v1.AuthService", "classwaves.auth.v1.AdminService",
		"classwaves.session.v1.SessionService", "classwaves.stt.v1.SttService", "classwaves.guidance.v1.GuidanceService",
		"classwaves.analytics.v1.AnalyticsService", "classwaves.audit.v1.AuditService", "classwaves.realtime.v1.RealtimeService"} {
		resp, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q = %v, %v; want SERVING", svc, resp.GetStatus(), err)
		}
	}

	// Without a token, protected routes answer 401 before anything else (validation included).
	resp, err := http.Post(base+"/api/v1/sessions", "application/json", strings.NewReader(`{"title":""}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(raw), `"code":"TOKEN_MISSING"`) {
		t.Errorf("POST /sessions without a token = %d %s, want 401 TOKEN_MISSING", resp.StatusCode, raw)
	}

	token := devSignIn(t, base)

	// Guidance answers over gRPC with the caller's token, and refuses without one.
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	st1, err := guidancev1.NewGuidanceServiceClient(conn).GetTier1Status(ctx, &guidancev1.GetTier1StatusRequest{})
	if err != nil || st1.GetStatus().GetAnalyzer() != "builtin" {
		t.Errorf("GetTier1Status = %v, %v; want the built-in analyzer's status", st1, err)
	}
	if _, err := guidancev1.NewGuidanceServiceClient(conn).GetTier1Status(context.Background(), &guidancev1.GetTier1StatusRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("GetTier1Status without a token = %v, want UNAUTHENTICATED", err)
	}

	// Validation runs before any handler, through the gateway.
	code, body = do(t, "POST", base+"/api/v1/sessions", `{"title":""}`, token)
	if e, _ := body["error"].(map[string]any); code != 400 || !strings.Contains(fmt.Sprint(e["details"]), "field:title") {
		t.Errorf("POST /sessions with empty title = %d %v, want 400 naming title", code, body)
	}

	hresp, err := http.Get(base + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	handshake, _ := io.ReadAll(hresp.Body)
	hresp.Body.Close()
	if hresp.StatusCode != 200 || !strings.HasPrefix(string(handshake), `0{"sid":`) {
		t.Errorf("/socket.io/ polling handshake = %d %q, want 200 and an Engine.IO open packet", hresp.StatusCode, handshake)
	}
	if code, _ := getJSON(t, base+"/no/such/route"); code != 404 {
		t.Errorf("unknown route = %d, want 404", code)
	}
	mresp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(metrics), `http_requests_total{method="POST",route="/api/v1/sessions",status="400"}`) {
		t.Errorf("/metrics lacks the request counter with its route template:\n%s", metrics)
	}

	if err := stop(); err != nil {
		t.Errorf("Run returned %v after a clean stop", err)
	}
	if !strings.Contains(logs.String(), `"msg":"classwaves stopped"`) {
		t.Errorf("logs lack the clean stop line:\n%s", logs.String())
	}
}

func TestSingleTargetProcess(t *testing.T) {
	redisEnv := testenv.Redis(t)
	a, _, _ := start(t, map[string]string{
		"AUTH_GRPC_ADDR": "127.0.0.1:1", "STT_GRPC_ADDR": "127.0.0.1:1",
		"REDIS_URL": redisEnv.URL, "BUS_KEY_PREFIX": redisEnv.Prefix,
	}, "-target=session")
	conn, err := grpcclient.Dial(a.Addrs().GRPC)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	resp, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "classwaves.session.v1.SessionService"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("session health = %v, %v; want SERVING", resp.GetStatus(), err)
	}
	if _, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "classwaves.auth.v1.AuthService"}); status.Code(err) != codes.NotFound {
		t.Errorf("auth health in a session-only process = %v, want NotFound (not served here)", err)
	}
	if code, _ := getJSON(t, "http://"+a.Addrs().HTTP+"/api/v1/health"); code != 404 {
		t.Errorf("a session-only process answered /api/v1/health with %d, want 404 (no gateway)", code)
	}
}

func TestGatewayNeedsUpstreams(t *testing.T) {
	env := map[string]string{"PORT": "0", "GRPC_PORT": "0", "SQLITE_PATH": filepath.Join(t.TempDir(), "x.db")}
	cfg := parseConfig(t, env, "-target=gateway")
	_, err := New(context.Background(), cfg, io.Discard)
	if want := "AUTH_GRPC_ADDR is required"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("New(no auth, no AUTH_GRPC_ADDR) = %v, want an error containing %q", err, want)
	}
	env["AUTH_GRPC_ADDR"] = "127.0.0.1:1"
	cfg = parseConfig(t, env, "-target=gateway")
	_, err = New(context.Background(), cfg, io.Discard)
	want := "set ANALYTICS_GRPC_ADDR, AUDIT_GRPC_ADDR, GUIDANCE_GRPC_ADDR, REALTIME_GRPC_ADDR, SESSION_GRPC_ADDR, STT_GRPC_ADDR"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("New(gateway without upstreams) = %v, want an error containing %q", err, want)
	}
}

func TestReadinessGoesDownOnStop(t *testing.T) {
	a, _, stop := start(t, nil)
	if got := a.readiness(context.Background()); len(got) == 0 || got[0].GetStatus() != "SERVING" {
		t.Fatalf("readiness before stop = %v, want SERVING", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, c := range a.readiness(context.Background()) {
		if c.GetStatus() != "NOT_SERVING" {
			t.Errorf("after stop %s = %s, want NOT_SERVING", c.GetName(), c.GetStatus())
		}
	}
}

// do sends a JSON request with an optional bearer token and decodes the envelope.
func do(t testing.TB, method, url, body, token string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// devSignIn signs in through the dev fallback (no Google settings outside production) and returns
// the access token.
func devSignIn(t testing.TB, base string) string {
	t.Helper()
	code, body := do(t, "POST", base+"/api/v1/auth/google", `{}`, "")
	data, _ := body["data"].(map[string]any)
	tokens, _ := data["tokens"].(map[string]any)
	token, _ := tokens["accessToken"].(string)
	if code != 200 || data["degradedMode"] != true || token == "" {
		t.Fatalf("dev sign-in = %d %v, want 200 with degradedMode and an access token", code, body)
	}
	return token
}

// TestAuthFlowAsANewUser walks the Auth acceptance path through the real process: dev sign-in,
// /auth/me, refresh, logout, refresh again (401).
func TestAuthFlowAsANewUser(t *testing.T) {
	a, _, _ := start(t, nil)
	base := "http://" + a.Addrs().HTTP
	code, body := do(t, "POST", base+"/api/v1/auth/google", `{}`, "")
	data, _ := body["data"].(map[string]any)
	tokens, _ := data["tokens"].(map[string]any)
	access, _ := tokens["accessToken"].(string)
	refresh, _ := tokens["refreshToken"].(string)
	if code != 200 || access == "" || refresh == "" {
		t.Fatalf("sign-in = %d %v", code, body)
	}
	code, body = do(t, "GET", base+"/api/v1/auth/me", "", access)
	if me, _ := body["data"].(map[string]any); code != 200 || me["teacher"] == nil {
		t.Errorf("/auth/me = %d %v, want 200 with the teacher", code, body)
	}
	code, body = do(t, "POST", base+"/api/v1/auth/refresh", fmt.Sprintf(`{"refreshToken":%q}`, refresh), "")
	data, _ = body["data"].(map[string]any)
	tokens, _ = data["tokens"].(map[string]any)
	newRefresh, _ := tokens["refreshToken"].(string)
	if code != 200 || newRefresh == "" || newRefresh == refresh {
		t.Fatalf("refresh = %d %v, want a rotated refresh token", code, body)
	}
	if code, body = do(t, "POST", base+"/api/v1/auth/logout", fmt.Sprintf(`{"refreshToken":%q}`, newRefresh), access); code != 200 {
		t.Errorf("logout = %d %v, want 200", code, body)
	}
	code, body = do(t, "POST", base+"/api/v1/auth/refresh", fmt.Sprintf(`{"refreshToken":%q}`, newRefresh), "")
	if code != 401 {
		t.Errorf("refresh after logout = %d %v, want 401", code, body)
	}
	code, body = do(t, "POST", base+"/api/v1/auth/refresh", fmt.Sprintf(`{"refreshToken":%q}`, refresh), "")
	if e, _ := body["error"].(map[string]any); code != 401 || (e["code"] != "REFRESH_TOKEN_REUSED" && e["code"] != "REFRESH_TOKEN_REVOKED") {
		t.Errorf("reusing the rotated token = %d %v, want 401 REFRESH_TOKEN_REUSED or _REVOKED", code, body)
	}
}

// TestSessionFlowOverREST is the Session acceptance path through the real process: sign in,
// create a session with 3 groups, students join by code (an under-13 without consent refused),
// mark the groups ready, start, pause, resume, end; illegal transitions 409; another teacher's
// session 404.
func TestSessionFlowOverREST(t *testing.T) {
	a, _, _ := start(t, map[string]string{"E2E_TEST_SECRET": "s3cret"})
	base := "http://" + a.Addrs().HTTP + "/api/v1"
	token := devSignIn(t, base[:len(base)-len("/api/v1")])

	code, body := do(t, "POST", base+"/sessions", `{"title":"Photosynthesis","targetGroupSize":4,
		"learningObjectives":["explain chlorophyll"],
		"groups":[{"name":"A","maxSize":4,"members":[{"displayName":"Ana"},{"displayName":"Ben","under13":true}]},
		          {"name":"B","maxSize":4},{"name":"C","maxSize":4}]}`, token)
	data, _ := body["data"].(map[string]any)
	sess, _ := data["session"].(map[string]any)
	id, _ := sess["id"].(string)
	accessCode, _ := sess["accessCode"].(string)
	groups, _ := sess["groups"].([]any)
	if code != 200 || id == "" || accessCode == "" || len(groups) != 3 || sess["status"] != "created" {
		t.Fatalf("create = %d %v", code, body)
	}

	errCode := func(body map[string]any) any {
		e, _ := body["error"].(map[string]any)
		return e["code"]
	}
	join := func(name string) (int, map[string]any) {
		return do(t, "POST", base+"/sessions/join", fmt.Sprintf(`{"accessCode":%q,"displayName":%q}`, accessCode, name), "")
	}
	if code, body := join("Ben"); code != 403 || errCode(body) != "COPPA_CONSENT_REQUIRED" {
		t.Errorf("under-13 join = %d %v, want 403 COPPA_CONSENT_REQUIRED", code, body)
	}
	if code, body := join("Ana"); code != 200 {
		t.Errorf("join Ana = %d %v", code, body)
	}
	if code, body := join("Cleo"); code != 200 {
		t.Errorf("join Cleo = %d %v", code, body)
	}

	if code, body := do(t, "POST", base+"/sessions/"+id+"/start", `{}`, token); code != 409 || errCode(body) != "GROUPS_NOT_READY" {
		t.Errorf("start with groups not ready = %d %v, want 409 GROUPS_NOT_READY", code, body)
	}
	for _, g := range groups {
		gid := g.(map[string]any)["id"].(string)
		if code, body := do(t, "POST", base+"/sessions/"+id+"/groups/"+gid+"/status", `{"status":"ready","isReady":true}`, token); code != 200 {
			t.Fatalf("mark group ready = %d %v", code, body)
		}
	}
	for _, step := range []struct {
		action, wantStatus string
		wantCode           int
		wantError          string
	}{
		{"start", "active", 200, ""},
		{"resume", "", 409, "SESSION_NOT_PAUSED"},
		{"pause", "paused", 200, ""},
		{"resume", "active", 200, ""},
		{"end", "ended", 200, ""},
		{"pause", "", 409, "SESSION_ALREADY_ENDED"},
		{"start", "", 409, "SESSION_ALREADY_ENDED"},
	} {
		code, body := do(t, "POST", base+"/sessions/"+id+"/"+step.action, `{}`, token)
		data, _ := body["data"].(map[string]any)
		sess, _ := data["session"].(map[string]any)
		if code != step.wantCode || (step.wantStatus != "" && sess["status"] != step.wantStatus) || (step.wantError != "" && errCode(body) != step.wantError) {
			t.Errorf("%s = %d %v, want %d %s%s", step.action, code, body, step.wantCode, step.wantStatus, step.wantError)
		}
	}

	// Another teacher of the same school does not learn that the session exists.
	code, body = do(t, "POST", base+"/auth/generate-test-token", `{"secret":"s3cret","email":"other.teacher@dev.classwaves.test"}`, "")
	data, _ = body["data"].(map[string]any)
	tokens, _ := data["tokens"].(map[string]any)
	other, _ := tokens["accessToken"].(string)
	if code != 200 || other == "" {
		t.Fatalf("test token = %d %v", code, body)
	}
	if code, body := do(t, "GET", base+"/sessions/"+id, "", other); code != 404 || errCode(body) != "SESSION_NOT_FOUND" {
		t.Errorf("another teacher's GET = %d %v, want 404 SESSION_NOT_FOUND", code, body)
	}
}

// TestStopAnswersPendingLongPolls: a Socket.IO long-poll waiting for data must not hold the
// shutdown drain open; the edge closes its sockets before the HTTP server drains (regression: the
// drain used to wait for SHUTDOWN_TIMEOUT_MS and then cut the workers' drain short too).
func TestStopAnswersPendingLongPolls(t *testing.T) {
	a, logs, stop := start(t, map[string]string{"SHUTDOWN_TIMEOUT_MS": "20000"})
	base := "http://" + a.Addrs().HTTP + "/socket.io/?EIO=4&transport=polling"
	resp, err := http.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	open, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var handshake struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(string(open), "0")), &handshake); err != nil || handshake.SID == "" {
		t.Fatalf("handshake %q: %v", open, err)
	}
	polled := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "&sid=" + handshake.SID)
		if err != nil {
			polled <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		polled <- string(b)
	}()
	time.Sleep(300 * time.Millisecond) // let the poll reach the server and wait there
	if err := stop(); err != nil {
		t.Fatalf("Run after stop: %v", err)
	}
	if got := <-polled; got != "1" {
		t.Errorf("pending poll answered %q, want the Engine.IO close packet \"1\"", got)
	}
	if strings.Contains(logs.String(), "drain cut short") {
		t.Errorf("shutdown cut a drain short:\n%s", logs.String())
	}
}

// TestSplitProcessesUseServiceTokens runs auth+stt and session+gateway as two processes: the
// session process has no signing keys, so its internal calls (student tokens from auth, the audio
// drain on end) carry service tokens it gets by exchanging INTERNAL_SERVICE_SECRET.
func TestSplitProcessesUseServiceTokens(t *testing.T) {
	redisEnv := testenv.Redis(t)
	shared := map[string]string{
		"REDIS_URL": redisEnv.URL, "BUS_KEY_PREFIX": redisEnv.Prefix,
		"INTERNAL_SERVICE_SECRET": "a-long-shared-secret-for-tests",
	}
	with := func(extra map[string]string) map[string]string {
		env := map[string]string{}
		for k, v := range shared {
			env[k] = v
		}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	authProc, authLogs, _ := start(t, with(nil), "-target=auth,stt")
	remote := authProc.Addrs().GRPC
	upstreams := map[string]string{}
	for _, name := range []string{"AUTH", "STT", "ANALYTICS", "AUDIT", "GUIDANCE", "REALTIME"} {
		upstreams[name+"_GRPC_ADDR"] = remote
	}
	front, frontLogs, _ := start(t, with(upstreams), "-target=session,gateway")
	base := "http://" + front.Addrs().HTTP
	token := devSignIn(t, base)

	code, body := do(t, "POST", base+"/api/v1/sessions", `{"title":"Split","groups":[{"name":"A","maxSize":4}]}`, token)
	data, _ := body["data"].(map[string]any)
	sess, _ := data["session"].(map[string]any)
	id, _ := sess["id"].(string)
	accessCode, _ := sess["accessCode"].(string)
	if code != 200 || id == "" {
		t.Fatalf("create = %d %v", code, body)
	}
	code, body = do(t, "POST", base+"/api/v1/sessions/join", fmt.Sprintf(`{"accessCode":%q,"displayName":"Ana"}`, accessCode), "")
	data, _ = body["data"].(map[string]any)
	if student, _ := data["token"].(string); code != 200 || student == "" {
		t.Fatalf("join through the split processes = %d %v, want 200 with a student token from auth\nauth process:\n%s\nfront process:\n%s", code, body, authLogs, frontLogs)
	}
	if code, body = do(t, "POST", base+"/api/v1/sessions/"+id+"/end", `{}`, token); code != 200 {
		t.Fatalf("end = %d %v", code, body)
	}
	data, _ = body["data"].(map[string]any)
	if timedOut, _ := data["drainTimedOutGroupIds"].([]any); len(timedOut) != 0 {
		t.Errorf("drain timed out for %v", timedOut)
	}
}

func TestIssueServiceToken(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		secret   string
		wantCode codes.Code
	}{
		{"exchange disabled", nil, "a-long-shared-secret-for-tests", codes.NotFound},
		{"wrong secret", map[string]string{"INTERNAL_SERVICE_SECRET": "a-long-shared-secret-for-tests"}, "another-long-wrong-secret", codes.PermissionDenied},
		{"right secret", map[string]string{"INTERNAL_SERVICE_SECRET": "a-long-shared-secret-for-tests"}, "a-long-shared-secret-for-tests", codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _, _ := start(t, tt.env)
			conn, err := grpcclient.Dial(a.Addrs().GRPC)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			resp, err := authv1.NewAuthServiceClient(conn).IssueServiceToken(context.Background(),
				&authv1.IssueServiceTokenRequest{Service: "session", Secret: tt.secret})
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("IssueServiceToken = %v, want %v", err, tt.wantCode)
			}
			if tt.wantCode != codes.OK {
				return
			}
			claims, err := a.verifier.VerifyToken(context.Background(), resp.GetAccessToken())
			if err != nil || claims.Role != authn.RoleService || claims.Subject != "session" {
				t.Errorf("token verifies as %+v, %v; want a service principal named session", claims, err)
			}
		})
	}
}
