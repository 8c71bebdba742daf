package analytics

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/classwaves/classwaves/gateway"
	systemv1 "github.com/classwaves/classwaves/pkg/api/classwaves/system/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/testenv"
)

// restServer puts the real REST gateway in front of a replica's gRPC server.
func (h *harness) restServer(r *replica) *httptest.Server {
	h.t.Helper()
	conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = conn.Close() })
	ready := func(context.Context) []*systemv1.ComponentStatus { return nil }
	gw, err := gateway.New(context.Background(), gateway.Config{FrontendURL: "https://teachers.classwaves.test", StudentAppURL: "https://students.classwaves.test"},
		map[gateway.Upstream]*grpc.ClientConn{gateway.Analytics: conn}, gateway.NewSystem(time.Now(), ready), slog.New(slog.DiscardHandler))
	if err != nil {
		h.t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	h.t.Cleanup(srv.Close)
	return srv
}

// bearer is a raw access token of role for subject in school.
func (h *harness) bearer(role authn.Role, subject, school string) string {
	raw, _, err := h.iss.sign(authn.Principal{Subject: subject, Role: role, SchoolID: school})
	if err != nil {
		h.t.Fatal(err)
	}
	return raw
}

func get(t *testing.T, url, token string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// TestREST drives the contract's REST paths through the real gateway: 404 for a session that is
// not there or not the caller's, 400 for a malformed id, 202 with Retry-After while summaries are
// pending, the CSV sent raw.
func TestREST(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{mod: func(c *Config) { c.SummariesEnabled = true }})
	r := h.replica(harnessOptions{}, nil)
	srv := h.restServer(r)
	sc := newScenario(h)
	sc.run(h)
	h.sessions.put(sc.context("active"))
	waitHandled(t, sc.published, r)
	teacher := h.bearer(authn.RoleTeacher, teacher1, schoolA)
	other := h.bearer(authn.RoleTeacher, teacher2, schoolA)

	errorCode := func(body []byte) string {
		var env struct {
			Success bool
			Error   struct{ Code string }
		}
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		return env.Error.Code
	}
	for _, tt := range []struct {
		path, token string
		status      int
		code        string
	}{
		{"/api/v1/analytics/session/" + newID(), teacher, 404, "SESSION_NOT_FOUND"},
		{"/api/v1/sessions/" + sc.sessionID + "/analytics", other, 404, "SESSION_NOT_FOUND"},
		{"/api/v1/analytics/session/not-a-uuid", teacher, 400, "VALIDATION_ERROR"},
		{"/api/v1/analytics/system", teacher, 403, "FORBIDDEN"},
	} {
		status, _, body := get(t, srv.URL+tt.path, tt.token)
		if status != tt.status || errorCode(body) != tt.code {
			t.Errorf("GET %s: %d %s, want %d %s", tt.path, status, body, tt.status, tt.code)
		}
	}

	status, _, body := get(t, srv.URL+"/api/v1/sessions/"+sc.sessionID+"/analytics", teacher)
	var live struct {
		Success bool
		Data    struct {
			Analytics struct {
				Status          string
				EngagementScore float64
				Groups          []struct{ ParticipationGini float64 }
			}
		}
	}
	if err := json.Unmarshal(body, &live); err != nil || status != 200 || !live.Success || live.Data.Analytics.Status != "live" ||
		live.Data.Analytics.EngagementScore != 68 || len(live.Data.Analytics.Groups) != 2 || live.Data.Analytics.Groups[0].ParticipationGini != -1 {
		t.Errorf("live analytics: %d %s", status, body)
	}

	status, hdr, body := get(t, srv.URL+"/api/v1/sessions/"+sc.sessionID+"/summaries", teacher)
	if status != http.StatusAccepted || hdr.Get("Retry-After") != "5" {
		t.Errorf("pending summaries: %d Retry-After %q %s, want 202 with Retry-After 5", status, hdr.Get("Retry-After"), body)
	}
	status, hdr, body = get(t, srv.URL+"/api/v1/analytics/session/"+sc.sessionID+"/export", teacher)
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || !strings.HasPrefix(string(body), "record,session_id,status,") {
		t.Errorf("export: %d %q %q", status, hdr.Get("Content-Type"), body)
	}

	sc.end(h)
	testenv.Eventually(t, "summaries ready", func() bool { return len(published(t, h.bus, h.cfg.EventsTopic, EventSummariesReady)) == 1 })
	status, _, body = get(t, srv.URL+"/api/v1/sessions/"+sc.sessionID+"/groups/"+sc.g2+"/summary", teacher)
	if status != 200 || !strings.Contains(string(body), `"keyPoints":["I think it rains."]`) {
		t.Errorf("group summary: %d %s", status, body)
	}
}
