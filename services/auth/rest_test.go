package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/classwaves/classwaves/gateway"
	systemv1 "github.com/classwaves/classwaves/pkg/api/classwaves/system/v1"
	"github.com/classwaves/classwaves/pkg/config"
)

// restServer puts the real REST gateway in front of the harness's gRPC server.
func (h *harness) restServer() *httptest.Server {
	h.t.Helper()
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	ready := func(context.Context) []*systemv1.ComponentStatus { return nil }
	gw, err := gateway.New(context.Background(), gateway.Config{FrontendURL: testFrontendURL, StudentAppURL: "https://students.classwaves.test"},
		map[gateway.Upstream]*grpc.ClientConn{gateway.Auth: conn}, gateway.NewSystem(time.Now(), ready), slog.New(slog.DiscardHandler))
	if err != nil {
		h.t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	h.t.Cleanup(srv.Close)
	return srv
}

// call sends a JSON request and returns the status, headers and decoded envelope.
func call(t *testing.T, method, url, bearerToken string, body any) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+bearerToken)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, url, raw, err)
		}
	}
	return resp.StatusCode, resp.Header, env
}

// field returns env's value at a dotted path ("data.tokens.accessToken").
func field(env map[string]any, path string) any {
	var v any = env
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// TestRESTNewUser is the acceptance walk-through over REST, as a new user would try it with curl:
// sign in through the dev fallback, /auth/me, refresh, logout, refresh again (401).
func TestRESTNewUser(t *testing.T) {
	h := newHarness(t, nil, func(c *Config) { c.Environment, c.GoogleClientID = config.Development, "" })
	base := h.restServer().URL + "/api/v1/auth"

	code, _, env := call(t, "POST", base+"/google", "", map[string]any{})
	if code != http.StatusOK || field(env, "data.degradedMode") != true || field(env, "data.teacher.email") != DevTeacherEmail {
		t.Fatalf("POST /auth/google = %d %v", code, env)
	}
	access, refresh := field(env, "data.tokens.accessToken").(string), field(env, "data.tokens.refreshToken").(string)

	code, _, env = call(t, "GET", base+"/me", access, nil)
	if code != http.StatusOK || field(env, "data.teacher.id") != DevTeacherID || field(env, "data.school.id") != DevSchoolID {
		t.Fatalf("GET /auth/me = %d %v", code, env)
	}
	code, _, env = call(t, "POST", base+"/refresh", "", map[string]any{"refreshToken": refresh})
	if code != http.StatusOK {
		t.Fatalf("POST /auth/refresh = %d %v", code, env)
	}
	refresh = field(env, "data.tokens.refreshToken").(string)
	code, _, env = call(t, "POST", base+"/logout", access, map[string]any{"refreshToken": refresh})
	if code != http.StatusOK || field(env, "data.revokedFamilies") != float64(1) {
		t.Fatalf("POST /auth/logout = %d %v", code, env)
	}
	code, _, env = call(t, "POST", base+"/refresh", "", map[string]any{"refreshToken": refresh})
	if code != http.StatusUnauthorized || field(env, "error.code") != ReasonRefreshTokenRevoked || field(env, "success") != false {
		t.Fatalf("POST /auth/refresh after logout = %d %v, want 401 %s", code, env, ReasonRefreshTokenRevoked)
	}
	code, _, env = call(t, "GET", base+"/me", "", nil)
	if code != http.StatusUnauthorized {
		t.Errorf("GET /auth/me without a token = %d %v, want 401", code, env)
	}
}

// TestRESTTestTokensInProduction: in production the test-token routes answer exactly like a route
// the gateway does not have.
func TestRESTTestTokensInProduction(t *testing.T) {
	h := newHarness(t, nil, func(c *Config) { c.Environment = config.Production })
	srv := h.restServer()
	strip := func(env map[string]any) map[string]any {
		delete(env, "requestId")
		return env
	}
	for _, path := range []string{generateTestTokenPath, issueTestTokenPath} {
		for _, body := range []map[string]any{{"secret": testSecret, "role": "teacher"}, {}, {"role": "bogus"}} {
			code, hdr, env := call(t, "POST", srv.URL+path, "", body)
			// A route the gateway does not know, at the same depth: its answer differs only in the path.
			absent := path + "-absent"
			wantCode, wantHdr, wantEnv := call(t, "POST", srv.URL+absent, "", body)
			if msg, ok := field(wantEnv, "error.message").(string); ok {
				wantEnv["error"].(map[string]any)["message"] = strings.Replace(msg, absent, path, 1)
			}
			if code != wantCode || code != http.StatusNotFound || hdr.Get("Content-Type") != wantHdr.Get("Content-Type") {
				t.Errorf("POST %s %v = %d (%s), want %d (%s)", path, body, code, hdr.Get("Content-Type"), wantCode, wantHdr.Get("Content-Type"))
			}
			if diff := cmp.Diff(strip(wantEnv), strip(env)); diff != "" {
				t.Errorf("POST %s %v body differs from an absent route's (-absent +got):\n%s", path, body, diff)
			}
		}
	}
}

// TestRESTCallback: the redirect flow starts with a 302 to the provider and a binding cookie.
func TestRESTCallback(t *testing.T) {
	h := newHarness(t, nil, nil)
	code, hdr, _ := call(t, "GET", h.restServer().URL+"/api/v1/auth/google/callback", "", nil)
	if code != http.StatusFound || !strings.HasPrefix(hdr.Get("Location"), h.op.Issuer()+"/authorize?") {
		t.Fatalf("GET /auth/google/callback = %d, Location %q", code, hdr.Get("Location"))
	}
	c, err := http.ParseSetCookie(hdr.Get("Set-Cookie"))
	if err != nil || c.Name != bindingCookie || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("Set-Cookie = %q (%v)", hdr.Get("Set-Cookie"), err)
	}
}
