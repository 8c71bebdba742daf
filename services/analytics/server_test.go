package analytics

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/prometheus/client_golang/prometheus"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/grpcserver"
	"github.com/classwaves/classwaves/pkg/logging"
	"github.com/classwaves/classwaves/pkg/testenv"
)

func TestBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	r := h.replica(harnessOptions{}, nil)
	sc := newScenario(h) // rostered, not started
	unknown := newID()
	teacher := h.as(authn.RoleTeacher, teacher1, schoolA)
	otherTeacher := h.as(authn.RoleTeacher, teacher2, schoolA)
	otherAdmin := h.as(authn.RoleAdmin, admin2, schoolB)
	admin := h.as(authn.RoleAdmin, admin1, schoolA)
	superNoSchool := h.as(authn.RoleSuperAdmin, super1, "")
	future := ts(time.Now().Add(time.Hour))

	analytics := func(ctx context.Context, id string) error {
		_, err := r.client.GetSessionAnalytics(ctx, &analyticsv1.GetSessionAnalyticsRequest{SessionId: id})
		return err
	}
	export := func(ctx context.Context, id string) error {
		_, err := r.client.ExportSessionAnalytics(ctx, &analyticsv1.ExportSessionAnalyticsRequest{SessionId: id})
		return err
	}
	summaries := func(ctx context.Context, id string) error {
		_, err := r.client.GetSessionSummaries(ctx, &analyticsv1.GetSessionSummariesRequest{SessionId: id})
		return err
	}
	tests := []struct {
		name string
		call func() error
		code codes.Code
		rsn  string
	}{
		{"unknown session", func() error { return analytics(teacher, unknown) }, codes.NotFound, "SESSION_NOT_FOUND"},
		{"unknown session export", func() error { return export(teacher, unknown) }, codes.NotFound, "SESSION_NOT_FOUND"},
		{"another teacher's session", func() error { return analytics(otherTeacher, sc.sessionID) }, codes.NotFound, "SESSION_NOT_FOUND"},
		{"another teacher's export", func() error { return export(otherTeacher, sc.sessionID) }, codes.NotFound, "SESSION_NOT_FOUND"},
		{"another school's admin", func() error { return analytics(otherAdmin, sc.sessionID) }, codes.NotFound, "SESSION_NOT_FOUND"},
		{"not a UUID", func() error { return analytics(teacher, "../etc/passwd") }, codes.InvalidArgument, "VALIDATION_ERROR"},
		{"group not a UUID", func() error {
			_, err := r.client.GetGroupSummary(teacher, &analyticsv1.GetGroupSummaryRequest{SessionId: sc.sessionID, GroupId: "x"})
			return err
		}, codes.InvalidArgument, "VALIDATION_ERROR"},
		{"no token", func() error { return analytics(context.Background(), sc.sessionID) }, codes.Unauthenticated, ""},
		{"summaries disabled", func() error { return summaries(teacher, sc.sessionID) }, codes.FailedPrecondition, "SUMMARIES_DISABLED"},
		{"group summary disabled", func() error {
			_, err := r.client.GetGroupSummary(teacher, &analyticsv1.GetGroupSummaryRequest{SessionId: sc.sessionID, GroupId: sc.g1})
			return err
		}, codes.FailedPrecondition, "SUMMARIES_DISABLED"},
		{"system analytics as a teacher", func() error {
			_, err := r.client.GetSystemAnalytics(teacher, &analyticsv1.GetSystemAnalyticsRequest{})
			return err
		}, codes.PermissionDenied, "FORBIDDEN"},
		{"platform analytics as an admin", func() error {
			_, err := r.client.GetPlatformAnalytics(admin, &analyticsv1.GetPlatformAnalyticsRequest{})
			return err
		}, codes.PermissionDenied, "FORBIDDEN"},
		{"components health as a teacher", func() error {
			_, err := r.client.GetComponentsHealth(teacher, &analyticsv1.GetComponentsHealthRequest{})
			return err
		}, codes.PermissionDenied, "FORBIDDEN"},
		{"since in the future", func() error {
			_, err := r.client.GetSystemAnalytics(admin, &analyticsv1.GetSystemAnalyticsRequest{Since: future})
			return err
		}, codes.InvalidArgument, "VALIDATION_ERROR"},
		{"platform since in the future", func() error {
			_, err := r.client.GetPlatformAnalytics(superNoSchool, &analyticsv1.GetPlatformAnalyticsRequest{Since: future})
			return err
		}, codes.InvalidArgument, "VALIDATION_ERROR"},
		{"system analytics without a school", func() error {
			_, err := r.client.GetSystemAnalytics(superNoSchool, &analyticsv1.GetSystemAnalyticsRequest{})
			return err
		}, codes.FailedPrecondition, "SCHOOL_REQUIRED"},
		{"retry an unknown session", func() error {
			_, err := r.client.RetryFinalization(admin, &analyticsv1.RetryFinalizationRequest{SessionId: unknown})
			return err
		}, codes.NotFound, "SESSION_NOT_FOUND"},
	}
	for _, tt := range tests {
		err := tt.call()
		code, rsn := codeReason(err)
		if code != tt.code || (tt.rsn != "" && rsn != tt.rsn) {
			t.Errorf("%s: %v, want %v %s", tt.name, err, tt.code, tt.rsn)
		}
	}

	// Nothing of that changed anything: no session was recorded, nothing was published.
	if _, found, err := r.store.Session(context.Background(), unknown); err != nil || found {
		t.Errorf("unknown session recorded: %v %v", found, err)
	}
	if n := len(published(t, h.bus, h.cfg.EventsTopic, EventFinalized)); n != 0 {
		t.Errorf("%d events published", n)
	}

	// The owner reads the (empty) live analytics of the session that has not started.
	resp, err := r.client.GetSessionAnalytics(teacher, &analyticsv1.GetSessionAnalyticsRequest{SessionId: sc.sessionID})
	if err != nil {
		t.Fatal(err)
	}
	if a := resp.GetAnalytics(); a.GetStatus() != statusLive || a.GetGroupCount() != 2 || a.GetStudentCount() != 6 || a.GetJoinedStudentCount() != 5 || a.GetDurationSeconds() != 0 {
		t.Errorf("analytics before the start = %v", a)
	}

	// The session service down, nothing stored about the session: unavailable, not a guess.
	h.sessions.setDown(true)
	if code, rsn := codeReason(analytics(teacher, sc.sessionID)); code != codes.Unavailable || rsn != "SESSION_SERVICE_UNAVAILABLE" {
		t.Errorf("session service down: %v %s, want SESSION_SERVICE_UNAVAILABLE", code, rsn)
	}
}

func TestSummariesFailedFinalization(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{mod: func(c *Config) { c.SummariesEnabled = true }})
	r := h.replica(harnessOptions{}, nil)
	sc := newScenario(h)
	sc.run(h)
	h.sessions.setDown(true)
	sc.end(h)
	testenv.Eventually(t, "the failed event", func() bool { return len(published(t, h.bus, h.cfg.EventsTopic, EventFinalized)) == 1 })
	h.sessions.setDown(false)
	teacher := h.as(authn.RoleTeacher, teacher1, schoolA)
	_, err := r.client.GetSessionSummaries(teacher, &analyticsv1.GetSessionSummariesRequest{SessionId: sc.sessionID})
	if code, rsn := codeReason(err); code != codes.FailedPrecondition || rsn != "FINALIZATION_FAILED" {
		t.Errorf("summaries of a failed finalization: %v, want FINALIZATION_FAILED", err)
	}
	// The admin's retry finalizes and builds the summaries.
	if _, err := r.client.RetryFinalization(h.as(authn.RoleAdmin, admin1, schoolA), &analyticsv1.RetryFinalizationRequest{SessionId: sc.sessionID}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "summaries ready", func() bool { return len(published(t, h.bus, h.cfg.EventsTopic, EventSummariesReady)) == 1 })
	sum, err := r.client.GetSessionSummaries(teacher, &analyticsv1.GetSessionSummariesRequest{SessionId: sc.sessionID})
	if err != nil || sum.GetPending() || sum.GetSummary().GetText() == "" {
		t.Errorf("summaries after the retry = %v, %v", sum, err)
	}
}

// stoppedHealth is a gRPC server whose health says NOT_SERVING.
func stoppedHealth(t *testing.T) string {
	t.Helper()
	srv := grpcserver.New(grpcserver.DefaultConfig(), logging.Discard())
	srv.SetServing("classwaves.stt.v1.SttService", false)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.GRPC().Stop() })
	return lis.Addr().String()
}

func TestComponentsHealth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()
	r := h.replica(harnessOptions{components: []Component{
		{Name: "session", Conn: h.sessConn},
		{Name: "stt", Conn: dial(t, stoppedHealth(t)), Service: "classwaves.stt.v1.SttService"},
		{Name: "guidance", Conn: dial(t, deadAddr), Service: "classwaves.guidance.v1.GuidanceService"},
		{Name: "audit", Conn: h.sessConn, Service: "classwaves.audit.v1.AuditService"},
	}}, nil)
	sc := newScenario(h)
	sc.run(h)
	waitHandled(t, sc.published, r)

	resp, err := r.client.GetComponentsHealth(h.as(authn.RoleAdmin, admin1, schoolA), &analyticsv1.GetComponentsHealthRequest{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*analyticsv1.ComponentHealth{}
	for _, c := range resp.GetComponents() {
		byName[c.GetName()] = c
	}
	want := map[string]string{
		"analytics": "healthy", "database": "healthy", "bus": "healthy",
		"session": "healthy", "stt": "unhealthy", "guidance": "unhealthy", "audit": "unknown",
	}
	for name, st := range want {
		if got := byName[name].GetStatus(); got != st {
			t.Errorf("%s: %q (%s), want %q", name, got, byName[name].GetMessage(), st)
		}
	}
	if resp.GetStatus() != "degraded" || len(resp.GetComponents()) != len(want) {
		t.Errorf("overall %q with %d components, want degraded with %d", resp.GetStatus(), len(resp.GetComponents()), len(want))
	}
	own := byName["analytics"].GetFigures()
	// The scenario published 36 messages: 1 invalid, 1 ignored, 3 redelivered, so 31 applied; the
	// session is active.
	if own["events_processed"] != 31 || own["active_sessions"] != 1 || own["finalized_sessions"] != 0 {
		t.Errorf("own figures = %v", own)
	}
	if byName["session"].GetLatencyMs() <= 0 {
		t.Errorf("session latency = %v", byName["session"].GetLatencyMs())
	}
}

func TestNewStartStop(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	client := sessionv1.NewSessionServiceClient(h.sessConn)
	bad := DefaultConfig()
	bad.FinalizeLease = 0
	for _, tt := range []struct {
		name string
		new  func() (*Service, error)
	}{
		{"no database", func() (*Service, error) { return New(DefaultConfig(), nil, h.bus, client, nil, nil, nil, nil, nil) }},
		{"bad config", func() (*Service, error) { return New(bad, h.db, h.bus, client, nil, nil, nil, nil, nil) }},
		{"no bus", func() (*Service, error) { return New(DefaultConfig(), h.db, nil, client, nil, nil, nil, nil, nil) }},
		{"no session client", func() (*Service, error) { return New(DefaultConfig(), h.db, h.bus, nil, nil, nil, nil, nil, nil) }},
		{"component without a connection", func() (*Service, error) {
			return New(DefaultConfig(), h.db, h.bus, client, nil, []Component{{Name: "x"}}, nil, nil, nil)
		}},
	} {
		if _, err := tt.new(); err == nil {
			t.Errorf("%s: New accepted", tt.name)
		}
	}
	svc, err := New(DefaultConfig(), h.db, h.bus, client, BuiltinSummarizer{}, nil, h.audit, logging.Discard(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if got := ServiceNames(); len(got) != 1 || got[0] != "classwaves.analytics.v1.AnalyticsService" {
		t.Errorf("ServiceNames = %v", got)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err == nil {
		t.Error("Start twice succeeded")
	}
	if err := svc.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := svc.Stop(context.Background()); err != nil {
		t.Errorf("Stop twice: %v", err)
	}
	if svc.spawn(func(context.Context) {}) {
		t.Error("a job was spawned after Stop")
	}
}
