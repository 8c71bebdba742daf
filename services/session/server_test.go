package session

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/store/storetest"
	"github.com/classwaves/classwaves/pkg/testenv"
)

func createThreeGroups(t *testing.T, h *harness, ctx context.Context) *sessionv1.Session {
	t.Helper()
	resp, err := h.client.CreateSession(ctx, &sessionv1.CreateSessionRequest{
		Title: "Photosynthesis", TargetGroupSize: 4, LearningObjectives: []string{"light reactions"},
		Groups: []*sessionv1.GroupInput{
			{Name: "Red", LeaderIndex: 0, Members: []*sessionv1.MemberInput{{DisplayName: "Ava"}, {DisplayName: "Ben", Under_13: true}}},
			{Name: "Blue"},
			{Name: "Green"},
		},
	})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return resp.Session
}

// TestFlow is the acceptance flow over gRPC, on both databases: create with 3 groups,
// joins (an under-13 student without consent refused and audited), readiness, start, pause,
// resume, end; illegal transitions answer their reasons; another teacher gets 404.
func TestFlow(t *testing.T) {
	storetest.ForEachProvider(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		s := createThreeGroups(t, h, asTeacher1)
		if len(s.AccessCode) != DefaultAccessCodeLength || strings.ContainsAny(s.AccessCode, "0O1IL") {
			t.Errorf("access code %q: want %d characters of the unambiguous alphabet", s.AccessCode, DefaultAccessCodeLength)
		}
		if got, want := []any{s.Status, s.GroupCount, s.StudentCount}, []any{"created", int32(3), int32(2)}; !cmp.Equal(got, want) {
			t.Errorf("created session (status, groups, students) = %v, want %v", got, want)
		}

		// Another teacher: 404, never 403.
		if _, err := h.client.GetSession(asTeacher2, &sessionv1.GetSessionRequest{SessionId: s.Id}); reason(err) != "SESSION_NOT_FOUND" || status.Code(err) != codes.NotFound {
			t.Errorf("GetSession as another teacher: %v, want NotFound SESSION_NOT_FOUND", err)
		}
		// Admin of the school sees it; an admin of another school does not.
		if _, err := h.client.GetSession(as(authn.RoleAdmin, "admin-a", schoolA), &sessionv1.GetSessionRequest{SessionId: s.Id}); err != nil {
			t.Errorf("GetSession as the school's admin: %v", err)
		}
		if _, err := h.client.GetSession(as(authn.RoleAdmin, "admin-b", schoolB), &sessionv1.GetSessionRequest{SessionId: s.Id}); reason(err) != "SESSION_NOT_FOUND" {
			t.Errorf("GetSession as another school's admin: %v, want SESSION_NOT_FOUND", err)
		}

		// Joins: a walk-in, a rostered student by name, an under-13 rostered student refused.
		walkIn, err := h.client.JoinSession(anonymous, &sessionv1.JoinSessionRequest{AccessCode: strings.ToLower(s.AccessCode), DisplayName: "Cleo"})
		if err != nil {
			t.Fatalf("JoinSession walk-in: %v", err)
		}
		if walkIn.Token != "student-token:"+walkIn.Student.StudentId || walkIn.Group.Name != "Blue" {
			t.Errorf("walk-in: token %q group %q, want its token and the least-full group Blue", walkIn.Token, walkIn.Group.Name)
		}
		ava, err := h.client.JoinSession(anonymous, &sessionv1.JoinSessionRequest{AccessCode: s.AccessCode, DisplayName: "ava"})
		if err != nil || ava.Group.Name != "Red" || !ava.Student.IsLeader {
			t.Fatalf("JoinSession rostered Ava: %v (group %v), want Red as leader", err, ava.GetGroup().GetName())
		}
		_, err = h.client.JoinSession(anonymous, &sessionv1.JoinSessionRequest{AccessCode: s.AccessCode, DisplayName: "Ben"})
		if reason(err) != "COPPA_CONSENT_REQUIRED" {
			t.Fatalf("JoinSession under-13 without consent: %v, want COPPA_CONSENT_REQUIRED", err)
		}
		_, err = h.client.JoinSession(anonymous, &sessionv1.JoinSessionRequest{AccessCode: s.AccessCode, DisplayName: "Dee", Under_13: true})
		if reason(err) != "COPPA_CONSENT_REQUIRED" {
			t.Fatalf("JoinSession self-declared under-13: %v, want COPPA_CONSENT_REQUIRED", err)
		}
		testenv.Eventually(t, "COPPA refusals audited", func() bool {
			n := 0
			for _, typ := range h.audit.auditTypes() {
				if typ == "session.join_refused_coppa" {
					n++
				}
			}
			return n == 2
		})
		// Consent recorded, then Ben joins.
		full, err := h.client.GetSession(asTeacher1, &sessionv1.GetSessionRequest{SessionId: s.Id})
		if err != nil {
			t.Fatal(err)
		}
		benID := full.Session.Groups[0].Members[1].StudentId
		c, err := h.client.RecordParentalConsent(asTeacher1, &sessionv1.RecordParentalConsentRequest{
			SessionId: s.Id, StudentId: benID, Method: "signed_form", GuardianName: "Pat Smith"})
		if err != nil || c.Consent.RecordedBy != teacher1 {
			t.Fatalf("RecordParentalConsent: %v %v", err, c)
		}
		if _, err := h.client.JoinSession(anonymous, &sessionv1.JoinSessionRequest{AccessCode: s.AccessCode, DisplayName: "Ben"}); err != nil {
			t.Fatalf("JoinSession after consent: %v", err)
		}
		testenv.Eventually(t, "member joined events", func() bool { return len(h.events.events(EventGroupMemberJoined)) == 3 })

		// Start is gated on readiness and lists the groups that are not ready.
		_, err = h.client.StartSession(asTeacher1, &sessionv1.StartSessionRequest{SessionId: s.Id})
		if reason(err) != "GROUPS_NOT_READY" {
			t.Fatalf("StartSession with groups not ready: %v, want GROUPS_NOT_READY", err)
		}
		st, _ := status.FromError(err)
		if !strings.Contains(fmt.Sprint(st.Details()), full.Session.Groups[2].Id) {
			t.Errorf("GROUPS_NOT_READY details %v do not list group %s", st.Details(), full.Session.Groups[2].Id)
		}
		for _, g := range full.Session.Groups[:2] {
			if _, err := h.client.UpdateGroupStatus(asService, &sessionv1.UpdateGroupStatusRequest{
				SessionId: s.Id, GroupId: g.Id, Status: "ready", IsReady: true, TraceId: "trace-ready"}); err != nil {
				t.Fatalf("UpdateGroupStatus: %v", err)
			}
		}
		gs, err := h.client.GetGroupsStatus(asTeacher1, &sessionv1.GetGroupsStatusRequest{SessionId: s.Id})
		if err != nil || gs.ReadyCount != 2 || gs.TotalCount != 3 || gs.AllReady {
			t.Fatalf("GetGroupsStatus = %v, %v; want 2 of 3 ready", gs, err)
		}
		started, err := h.client.StartSession(asTeacher1, &sessionv1.StartSessionRequest{SessionId: s.Id, Force: true})
		if err != nil {
			t.Fatalf("forced StartSession: %v", err)
		}
		if diff := cmp.Diff([]string{full.Session.Groups[2].Id}, started.NotReadyGroupIds); diff != "" {
			t.Errorf("forced start not-ready groups (-want +got):\n%s", diff)
		}

		// Illegal transitions, then the legal path.
		h.advance(10 * time.Minute)
		steps := []struct {
			name   string
			call   func() error
			reason string
		}{
			{"start again", func() error {
				_, err := h.client.StartSession(asTeacher1, &sessionv1.StartSessionRequest{SessionId: s.Id, Force: true})
				return err
			}, "SESSION_ALREADY_ACTIVE"},
			{"resume active", func() error {
				_, err := h.client.ResumeSession(asTeacher1, &sessionv1.ResumeSessionRequest{SessionId: s.Id})
				return err
			}, "SESSION_NOT_PAUSED"},
			{"pause", func() error {
				_, err := h.client.PauseSession(asTeacher1, &sessionv1.PauseSessionRequest{SessionId: s.Id})
				return err
			}, ""},
			{"pause paused", func() error {
				_, err := h.client.PauseSession(asTeacher1, &sessionv1.PauseSessionRequest{SessionId: s.Id})
				return err
			}, "SESSION_NOT_ACTIVE"},
			{"pause as another teacher", func() error {
				_, err := h.client.PauseSession(asTeacher2, &sessionv1.PauseSessionRequest{SessionId: s.Id})
				return err
			}, "SESSION_NOT_FOUND"},
			{"resume", func() error {
				h.advance(time.Hour) // paused time does not count
				_, err := h.client.ResumeSession(asTeacher1, &sessionv1.ResumeSessionRequest{SessionId: s.Id})
				return err
			}, ""},
		}
		for _, step := range steps {
			if got := reason(step.call()); got != step.reason {
				t.Errorf("%s: reason %q, want %q", step.name, got, step.reason)
			}
		}
		h.advance(5 * time.Minute)
		h.drainer.timedOut = []string{full.Session.Groups[1].Id}
		ended, err := h.client.EndSession(asTeacher1, &sessionv1.EndSessionRequest{SessionId: s.Id, Reason: "completed"})
		if err != nil {
			t.Fatalf("EndSession: %v", err)
		}
		wantStats := &sessionv1.SessionStats{DurationSeconds: 15 * 60, GroupCount: 3, StudentCount: 3, ReadyGroupCount: 2, JoinedStudentCount: 3}
		if diff := cmp.Diff(wantStats, ended.Stats, cmpProto); diff != "" {
			t.Errorf("end stats (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]time.Duration{DefaultDrainTimeout}, h.drainer.calls); diff != "" {
			t.Errorf("drain timeouts (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(h.drainer.timedOut, ended.DrainTimedOutGroupIds); diff != "" {
			t.Errorf("drain timed out groups (-want +got):\n%s", diff)
		}
		for name, call := range map[string]func() error{
			"end ended": func() error {
				_, err := h.client.EndSession(asTeacher1, &sessionv1.EndSessionRequest{SessionId: s.Id})
				return err
			},
			"update ended": func() error {
				title := "x"
				_, err := h.client.UpdateSession(asTeacher1, &sessionv1.UpdateSessionRequest{SessionId: s.Id, Title: &title})
				return err
			},
			"resume ended": func() error {
				_, err := h.client.ResumeSession(asTeacher1, &sessionv1.ResumeSessionRequest{SessionId: s.Id})
				return err
			},
		} {
			if got := reason(call()); got != "SESSION_ALREADY_ENDED" {
				t.Errorf("%s: reason %q, want SESSION_ALREADY_ENDED", name, got)
			}
		}
		if _, err := h.client.JoinSession(anonymous, &sessionv1.JoinSessionRequest{AccessCode: s.AccessCode, DisplayName: "Late"}); reason(err) != "INVALID_ACCESS_CODE" {
			t.Errorf("JoinSession after end: %v, want INVALID_ACCESS_CODE", err)
		}

		testenv.Eventually(t, "status events", func() bool { return len(h.events.events(EventSessionStatusChanged)) == 4 })
		var got []string
		for _, ev := range h.events.events(EventSessionStatusChanged) {
			got = append(got, ev.GetSessionStatusChanged().PreviousStatus+">"+ev.GetSessionStatusChanged().Status)
			if ev.SchemaVersion != "1.0" || ev.SessionId != s.Id || ev.Key != s.Id {
				t.Errorf("status event envelope %v: want schema 1.0 keyed by the session", ev)
			}
		}
		if diff := cmp.Diff([]string{"created>active", "active>paused", "paused>active", "active>ended"}, got); diff != "" {
			t.Errorf("status events (-want +got):\n%s", diff)
		}
		testenv.Eventually(t, "group events", func() bool { return len(h.events.events(EventGroupStatusChanged)) == 2 })
		if ev := h.events.events(EventGroupStatusChanged)[0]; ev.TraceId != "trace-ready" || !ev.GetGroupStatusChanged().IsReady {
			t.Errorf("group event %v: want trace-ready and ready", ev)
		}
		testenv.Eventually(t, "lifecycle audited", func() bool {
			types := h.audit.auditTypes()
			return slices.Contains(types, "session.end") && slices.Contains(types, "compliance.parental_consent_recorded")
		})
	})
}

var cmpProto = cmp.Comparer(func(a, b *sessionv1.SessionStats) bool {
	return a.String() == b.String()
})

// TestConcurrentJoins: 50 parallel joins never oversubscribe a group nor duplicate a member, on
// both databases. 3 groups of 6 seats take 18 students; repeated names rejoin, they do not
// duplicate.
func TestConcurrentJoins(t *testing.T) {
	storetest.ForEachProvider(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		resp, err := h.client.CreateSession(asTeacher1, &sessionv1.CreateSessionRequest{Title: "Busy", TargetGroupSize: 6,
			Groups: []*sessionv1.GroupInput{{Name: "A"}, {Name: "B"}, {Name: "C"}}})
		if err != nil {
			t.Fatal(err)
		}
		code := resp.Session.AccessCode
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			reasons = map[string]int{}
			byName  = map[string]map[string]bool{}
		)
		for i := range 50 {
			wg.Go(func() {
				name := fmt.Sprintf("student %d", i%25) // every name twice
				r, err := h.client.JoinSession(anonymous, &sessionv1.JoinSessionRequest{AccessCode: code, DisplayName: name})
				mu.Lock()
				defer mu.Unlock()
				reasons[reason(err)]++
				if err == nil {
					if byName[name] == nil {
						byName[name] = map[string]bool{}
					}
					byName[name][r.Student.StudentId] = true
				}
			})
		}
		wg.Wait()
		for name, ids := range byName {
			if len(ids) != 1 {
				t.Errorf("%s joined as %d students, want 1", name, len(ids))
			}
		}
		gs, err := h.client.GetGroupsStatus(asTeacher1, &sessionv1.GetGroupsStatusRequest{SessionId: resp.Session.Id})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		total := 0
		for _, g := range gs.Groups {
			if g.MemberCount > g.MaxSize || int(g.MemberCount) != len(g.Members) {
				t.Errorf("group %s: %d members (%d listed), max %d", g.Name, g.MemberCount, len(g.Members), g.MaxSize)
			}
			for _, m := range g.Members {
				if seen[m.StudentId] {
					t.Errorf("student %s is a member twice", m.StudentId)
				}
				seen[m.StudentId] = true
			}
			total += int(g.MemberCount)
		}
		if total != 18 {
			t.Errorf("members = %d, want 18 (3 groups of 6)", total)
		}
		// 18 names got seats (each joined twice: once new, once rejoined); 7 names found no seat.
		if diff := cmp.Diff(map[string]int{"": 36, "GROUP_FULL": 14}, reasons); diff != "" {
			t.Errorf("join outcomes (-want +got):\n%s", diff)
		}
	})
}

func TestListSessions(t *testing.T) {
	h := newHarness(t, storetest.OpenSQLite(t))
	var ids []string
	for i := range 5 {
		h.advance(time.Minute)
		r, err := h.client.CreateSession(asTeacher1, &sessionv1.CreateSessionRequest{Title: fmt.Sprintf("s%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Session.Id)
	}
	if _, err := h.client.CreateSession(asTeacher2, &sessionv1.CreateSessionRequest{Title: "other"}); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(ids) // newest first
	tests := []struct {
		name string
		req  *sessionv1.ListSessionsRequest
		want []string
	}{
		{"default", &sessionv1.ListSessionsRequest{}, ids},
		{"limit", &sessionv1.ListSessionsRequest{Limit: 2}, ids[:2]},
		{"dashboard ignores limit", &sessionv1.ListSessionsRequest{View: "dashboard", Limit: 50}, ids[:3]},
		{"status", &sessionv1.ListSessionsRequest{Status: "ended"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := h.client.ListSessions(asTeacher1, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range r.Sessions {
				got = append(got, s.Id)
			}
			for _, s := range r.Dashboard {
				got = append(got, s.Id)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
	// Paging walks every session once.
	var got []string
	tok := ""
	for {
		r, err := h.client.ListSessions(asTeacher1, &sessionv1.ListSessionsRequest{Limit: 2, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range r.Sessions {
			got = append(got, s.Id)
		}
		if tok = r.NextPageToken; tok == "" {
			break
		}
	}
	if diff := cmp.Diff(ids, got); diff != "" {
		t.Errorf("paged ids (-want +got):\n%s", diff)
	}
	if _, err := h.client.ListSessions(asTeacher1, &sessionv1.ListSessionsRequest{PageToken: "garbage"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad page token: %v, want InvalidArgument", err)
	}
}

func TestRealtimeAuthorizeAndPurge(t *testing.T) {
	h := newHarness(t, storetest.OpenSQLite(t))
	s := createThreeGroups(t, h, asTeacher1)
	j, err := h.client.JoinSession(anonymous, &sessionv1.JoinSessionRequest{AccessCode: s.AccessCode, DisplayName: "Ava"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, subject, role, school, group string
		allowed                            bool
		reason                             string
	}{
		{"owner", teacher1, "teacher", schoolA, "", true, ""},
		{"other teacher", teacher2, "teacher", schoolA, "", false, "SESSION_NOT_FOUND"},
		{"school admin", "adm", "admin", schoolA, "", true, ""},
		{"member in own group", j.Student.StudentId, "student", schoolA, j.Group.Id, true, ""},
		{"member in other group", j.Student.StudentId, "student", schoolA, newID(), false, "GROUP_FORBIDDEN"},
		{"stranger", newID(), "student", schoolA, "", false, "SESSION_FORBIDDEN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := h.client.AuthorizeRealtimeJoin(asService, &sessionv1.AuthorizeRealtimeJoinRequest{
				Subject: tc.subject, Role: tc.role, SchoolId: tc.school, SessionId: s.Id, GroupId: tc.group})
			if err != nil {
				t.Fatal(err)
			}
			if r.Allowed != tc.allowed || r.Reason != tc.reason {
				t.Errorf("allowed %v reason %q, want %v %q", r.Allowed, r.Reason, tc.allowed, tc.reason)
			}
		})
	}

	ctxResp, err := h.client.GetSessionContext(asService, &sessionv1.GetSessionContextRequest{SessionId: s.Id})
	if err != nil || len(ctxResp.Session.Groups) != 3 || ctxResp.Session.LearningObjectives[0] != "light reactions" {
		t.Fatalf("GetSessionContext = %v, %v", ctxResp, err)
	}
	// Analysis needs the members (names to redact, join times): the context carries them.
	var names []string
	for _, g := range ctxResp.Session.Groups {
		for _, m := range g.Members {
			names = append(names, m.DisplayName)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"Ava", "Ben"}) {
		t.Errorf("GetSessionContext members = %v, want [Ava Ben]", names)
	}

	if _, err := h.client.EndSession(asTeacher1, &sessionv1.EndSessionRequest{SessionId: s.Id}); err != nil {
		t.Fatal(err)
	}
	purge := func(dry bool) []string {
		r, err := h.client.PurgeExpiredSessions(asService, &sessionv1.PurgeExpiredSessionsRequest{DryRun: dry})
		if err != nil {
			t.Fatal(err)
		}
		return r.PurgedSessionIds
	}
	h.advance(DefaultRetentionDays*24*time.Hour - time.Hour)
	if got := purge(false); len(got) != 0 {
		t.Errorf("purge before retention: %v, want nothing", got)
	}
	h.advance(2 * time.Hour)
	if diff := cmp.Diff([]string{s.Id}, purge(true)); diff != "" {
		t.Errorf("dry run (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{s.Id}, purge(false)); diff != "" {
		t.Errorf("purge (-want +got):\n%s", diff)
	}
	if _, err := h.client.GetSession(asTeacher1, &sessionv1.GetSessionRequest{SessionId: s.Id}); reason(err) != "SESSION_NOT_FOUND" {
		t.Errorf("GetSession after purge: %v, want SESSION_NOT_FOUND", err)
	}
	testenv.Eventually(t, "purge audited", func() bool {
		n := 0
		for _, typ := range h.audit.auditTypes() {
			if typ == "compliance.retention_purge" {
				n++
			}
		}
		return n == 3
	})
}
