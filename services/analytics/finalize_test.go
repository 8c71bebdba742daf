package analytics

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/redisbus"
	busevents "github.com/classwaves/classwaves/pkg/events"
	"github.com/classwaves/classwaves/pkg/store/storetest"
	"github.com/classwaves/classwaves/pkg/testenv"
)

// endedMessage is the scenario's session-ended event as a delivered bus message.
func (sc *scenario) endedMessage(t testing.TB, h *harness) (*eventsv1.Event, bus.Message) {
	t.Helper()
	ev := sc.event(busevents.SessionStatusChanged, "", sc.at(760))
	ev.Payload = &eventsv1.Event_SessionStatusChanged{SessionStatusChanged: &eventsv1.SessionStatusChanged{Status: "ended", PreviousStatus: "active", TeacherId: teacher1}}
	ev.SchemaVersion = "1.0"
	payload, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return ev, bus.Message{ID: "1-0", Topic: h.cfg.SessionEventsTopic, Key: sc.sessionID, Payload: payload, Deliveries: 2}
}

// TestExactlyOnceAcrossReplicas: two replicas on one PostgreSQL database and one Redis bus (the
// microservices deployment) both receive the session-ended event, concurrently and twice each (a
// redelivery), besides the bus delivering it to one of them: one result, one event.
func TestExactlyOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	env := testenv.Redis(t)
	newBus := func() bus.Bus {
		// Two partitions per topic, so both replicas consume; short leases, so the partitions settle
		// quickly when the second replica joins.
		b, err := redisbus.New(redisbus.Options{Prefix: env.Prefix, Default: redisbus.TopicOptions{Partitions: 2},
			LeaseTTL: time.Second, ReadBlock: 100 * time.Millisecond}, env.Client(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	busA, busB := newBus(), newBus()
	h := newHarness(t, harnessOptions{db: storetest.OpenPostgres(t), bus: busA})
	a := h.replica(harnessOptions{}, busA)
	b := h.replica(harnessOptions{}, busB)
	sc := newScenario(h)
	sc.run(h)
	h.sessions.put(sc.context("ended"))
	waitHandled(t, sc.published, a, b)

	ev, msg := sc.endedMessage(t, h)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 2 {
		for _, r := range []*replica{a, b} {
			wg.Go(func() {
				<-start
				if err := r.svc.handleMessage(context.Background(), msg); err != nil {
					t.Errorf("handleMessage: %v", err)
				}
			})
		}
	}
	h.publish(h.cfg.SessionEventsTopic, ev) // the same event id, through the bus
	close(start)
	wg.Wait()
	waitHandled(t, sc.published+1+4, a, b)

	events := published(t, busA, h.cfg.EventsTopic, EventFinalized)
	if len(events) != 1 {
		t.Fatalf("%d AnalyticsFinalized events, want 1: %v", len(events), events)
	}
	if !events[0].GetAnalyticsFinalized().GetOk() {
		t.Errorf("finalized event = %v, want ok", events[0])
	}
	var rows int
	if err := h.db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM analytics.session_analytics WHERE session_id = $1", sc.sessionID).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Errorf("%d session_analytics rows, want 1", rows)
	}
	f, found, err := a.store.Finalization(context.Background(), sc.sessionID)
	if err != nil || !found {
		t.Fatalf("finalization: %v %v", found, err)
	}
	if f.Status != statusFinalized || f.Attempts != 1 || !f.Published || f.EventID != events[0].GetId() {
		t.Errorf("finalization = %+v, want finalized in one attempt, its event %s published", f, events[0].GetId())
	}
	// Both replicas answer the same stored result.
	for _, r := range []*replica{a, b} {
		resp, err := r.client.GetSessionAnalytics(h.as(authn.RoleTeacher, teacher1, schoolA), &analyticsv1.GetSessionAnalyticsRequest{SessionId: sc.sessionID})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(sc.want(), resp.GetAnalytics(), analyticsOpts...); diff != "" {
			t.Errorf("analytics mismatch (-want +got):\n%s", diff)
		}
	}
}

// TestTakeover: a replica that claimed a finalization and died leaves a lease that runs out; the
// sweeper takes the session over and publishes once; the dead owner's late write is refused. An
// ended session whose finalization never started, and an outcome left unpublished, are recovered.
func TestTakeover(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	r := h.replica(harnessOptions{}, nil)
	ctx := context.Background()
	sc := newScenario(h)
	sc.run(h)
	h.sessions.put(sc.context("ended"))
	waitHandled(t, sc.published, r)

	// A replica claimed the session and died.
	if out, _, err := r.store.Claim(ctx, ClaimRequest{SessionID: sc.sessionID, Owner: "dead/1", Now: h.clock(), Lease: h.cfg.FinalizeLease}); err != nil || out != Claimed {
		t.Fatalf("Claim = %v, %v", out, err)
	}
	sc.status(h, "ended", 760) // handled while the dead replica's lease holds: in progress
	waitHandled(t, sc.published, r)
	r.svc.sweepOnce(ctx)
	if n := len(published(t, h.bus, h.cfg.EventsTopic, EventFinalized)); n != 0 {
		t.Fatalf("%d events while the lease holds", n)
	}

	h.advance(h.cfg.FinalizeLease + time.Second)
	r.svc.sweepOnce(ctx)
	testenv.Eventually(t, "the takeover's event", func() bool { return len(published(t, h.bus, h.cfg.EventsTopic, EventFinalized)) >= 1 })
	f, _, err := r.store.Finalization(ctx, sc.sessionID)
	if err != nil || f.Status != statusFinalized || f.Attempts != 2 {
		t.Errorf("finalization after takeover = %+v, %v; want finalized at attempt 2", f, err)
	}
	if err := r.store.Complete(ctx, "dead/1", FinalResult{SessionID: sc.sessionID, FinalizedAt: h.clock(), JSON: []byte("{}"), EventID: newID()}); err != errLostClaim {
		t.Errorf("the dead owner's late Complete = %v, want errLostClaim", err)
	}
	r.svc.sweepOnce(ctx)

	// An ended session whose finalization never started (its event was handled, the replica died
	// before claiming).
	sc2 := newScenario(h)
	h.sessions.put(sc2.context("ended"))
	if _, err := r.store.Apply(ctx, Change{EventID: newID(), Kind: kindSessionStatus, Type: busevents.SessionStatusChanged,
		SessionID: sc2.sessionID, SchoolID: schoolA, At: h.clock(), Status: "ended", TeacherID: teacher1}); err != nil {
		t.Fatal(err)
	}
	// An outcome stored but never published (the bus was down, the replica died).
	sc3 := newScenario(h)
	if out, _, err := r.store.Claim(ctx, ClaimRequest{SessionID: sc3.sessionID, Owner: "dead/2", Now: h.clock(), Lease: h.cfg.FinalizeLease}); err != nil || out != Claimed {
		t.Fatalf("Claim = %v, %v", out, err)
	}
	lostEvent := newID()
	if err := r.store.Fail(ctx, sc3.sessionID, "dead/2", reasonSessionUnavailable, lostEvent, h.clock()); err != nil {
		t.Fatal(err)
	}
	r.svc.sweepOnce(ctx) // too recent for either
	h.advance(h.cfg.FinalizeLease + time.Second)
	r.svc.sweepOnce(ctx)
	r.svc.sweepOnce(ctx)
	testenv.Eventually(t, "the recovered events", func() bool { return len(published(t, h.bus, h.cfg.EventsTopic, EventFinalized)) >= 3 })
	time.Sleep(50 * time.Millisecond) // anything extra would be published by now
	events := published(t, h.bus, h.cfg.EventsTopic, EventFinalized)
	bySession := map[string][]*eventsv1.Event{}
	for _, ev := range events {
		bySession[ev.GetSessionId()] = append(bySession[ev.GetSessionId()], ev)
	}
	for _, s := range []string{sc.sessionID, sc2.sessionID, sc3.sessionID} {
		if len(bySession[s]) != 1 {
			t.Errorf("session %s: %d finalized events, want 1", s, len(bySession[s]))
		}
	}
	if got := bySession[sc3.sessionID]; len(got) == 1 && (got[0].GetId() != lostEvent || got[0].GetAnalyticsFinalized().GetOk() ||
		got[0].GetAnalyticsFinalized().GetFailureReason() != reasonSessionUnavailable) {
		t.Errorf("republished event = %v, want the stored failure %s", got[0], lostEvent)
	}
	if got := bySession[sc2.sessionID]; len(got) == 1 && !got[0].GetAnalyticsFinalized().GetOk() {
		t.Errorf("missed session's event = %v, want ok", got[0])
	}
}

// TestFailureAndRetry: the session service is down when the session ends: the finalization fails
// with a reason (analytics:failed); the analytics stay readable from what the bus told; a
// redelivered end does not retry; an admin's retry succeeds and publishes once; retrying a
// finalized session answers it without publishing.
func TestFailureAndRetry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	r := h.replica(harnessOptions{}, nil)
	sc := newScenario(h)
	sc.run(h)
	waitHandled(t, sc.published, r)
	h.sessions.put(sc.context("active"))
	admin := h.as(authn.RoleAdmin, admin1, schoolA)

	// Retrying a running session is refused.
	_, err := r.client.RetryFinalization(admin, &analyticsv1.RetryFinalizationRequest{SessionId: sc.sessionID})
	if code, rsn := codeReason(err); code != codes.FailedPrecondition || rsn != "SESSION_NOT_ENDED" {
		t.Errorf("retry of a live session: %v, want SESSION_NOT_ENDED", err)
	}

	h.sessions.setDown(true)
	sc.end(h)
	testenv.Eventually(t, "the failed event", func() bool { return len(published(t, h.bus, h.cfg.EventsTopic, EventFinalized)) == 1 })
	failed := published(t, h.bus, h.cfg.EventsTopic, EventFinalized)[0].GetAnalyticsFinalized()
	if failed.GetOk() || failed.GetFailureReason() != reasonSessionUnavailable {
		t.Errorf("failed event = %v, want ok=false %q", failed, reasonSessionUnavailable)
	}

	// While the session service is down, the owner still reads the live measures, marked failed.
	resp, err := r.client.GetSessionAnalytics(h.as(authn.RoleTeacher, teacher1, schoolA), &analyticsv1.GetSessionAnalyticsRequest{SessionId: sc.sessionID})
	if err != nil {
		t.Fatal(err)
	}
	if a := resp.GetAnalytics(); a.GetStatus() != statusFailed || a.GetFailureReason() != reasonSessionUnavailable || a.GetWordCount() != 22 {
		t.Errorf("analytics while down = status %q reason %q words %d", a.GetStatus(), a.GetFailureReason(), a.GetWordCount())
	}
	_, err = r.client.GetSessionAnalytics(h.as(authn.RoleTeacher, teacher2, schoolA), &analyticsv1.GetSessionAnalyticsRequest{SessionId: sc.sessionID})
	if code, rsn := codeReason(err); code != codes.NotFound || rsn != "SESSION_NOT_FOUND" {
		t.Errorf("another teacher while down: %v, want SESSION_NOT_FOUND", err)
	}

	// A redelivered end does not retry a failure.
	sc.status(h, "ended", 760)
	waitHandled(t, sc.published, r)
	if n := len(published(t, h.bus, h.cfg.EventsTopic, EventFinalized)); n != 1 {
		t.Errorf("%d events after a redelivered end, want 1", n)
	}

	h.sessions.setDown(false)
	for _, tt := range []struct {
		name string
		ctx  context.Context
		code codes.Code
		rsn  string
	}{
		{"teacher", h.as(authn.RoleTeacher, teacher1, schoolA), codes.PermissionDenied, "FORBIDDEN"},
		{"another school's admin", h.as(authn.RoleAdmin, admin2, schoolB), codes.NotFound, "SESSION_NOT_FOUND"},
	} {
		_, err := r.client.RetryFinalization(tt.ctx, &analyticsv1.RetryFinalizationRequest{SessionId: sc.sessionID})
		if code, rsn := codeReason(err); code != tt.code || rsn != tt.rsn {
			t.Errorf("retry as %s: %v, want %v %s", tt.name, err, tt.code, tt.rsn)
		}
	}
	retried, err := r.client.RetryFinalization(admin, &analyticsv1.RetryFinalizationRequest{SessionId: sc.sessionID})
	if err != nil {
		t.Fatal(err)
	}
	if retried.GetAnalytics().GetStatus() != statusFinalized {
		t.Errorf("retried status %q", retried.GetAnalytics().GetStatus())
	}
	if diff := cmp.Diff(sc.want(), retried.GetAnalytics(), analyticsOpts...); diff != "" {
		t.Errorf("retried analytics mismatch (-want +got):\n%s", diff)
	}
	events := published(t, h.bus, h.cfg.EventsTopic, EventFinalized)
	if len(events) != 2 || !events[1].GetAnalyticsFinalized().GetOk() {
		t.Fatalf("events after the retry = %v, want the failure then one success", events)
	}
	// Again, as a super admin: the finalized result, nothing published.
	again, err := r.client.RetryFinalization(h.as(authn.RoleSuperAdmin, super1, ""), &analyticsv1.RetryFinalizationRequest{SessionId: sc.sessionID})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(retried.GetAnalytics(), again.GetAnalytics(), analyticsOpts...); diff != "" {
		t.Errorf("second retry mismatch (-want +got):\n%s", diff)
	}
	if n := len(published(t, h.bus, h.cfg.EventsTopic, EventFinalized)); n != 2 {
		t.Errorf("%d events after retrying a finalized session, want 2", n)
	}
	f, _, err := r.store.Finalization(context.Background(), sc.sessionID)
	if err != nil || f.Attempts != 2 || f.FailureReason != "" {
		t.Errorf("finalization = %+v, %v", f, err)
	}
}
