package guidance

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/testenv"
)

func reasonOf(err error) string { return apperr.ReasonOf(status.Convert(err)) }

// TestAuthorization: who may reach a session's guidance. Teachers their own sessions, admins
// their school's, super admins any; everyone else is told the session does not exist.
func TestAuthorization(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	sess := newSession(teacher1, schoolA, 1)
	h.sessions.put(sess)
	tests := []struct {
		name string
		ctx  context.Context
		code codes.Code
		rsn  string
	}{
		{"owning teacher", as(authn.RoleTeacher, teacher1, schoolA), codes.OK, ""},
		{"another teacher of the school", as(authn.RoleTeacher, teacher2, schoolA), codes.NotFound, "SESSION_NOT_FOUND"},
		{"admin of the school", as(authn.RoleAdmin, newID(), schoolA), codes.OK, ""},
		{"admin of another school", as(authn.RoleAdmin, newID(), schoolB), codes.NotFound, "SESSION_NOT_FOUND"},
		{"super admin", as(authn.RoleSuperAdmin, newID(), ""), codes.OK, ""},
		{"student", as(authn.RoleStudent, newID(), schoolA), codes.NotFound, "SESSION_NOT_FOUND"},
		{"no principal", context.Background(), codes.Unauthenticated, "UNAUTHORIZED"},
	}
	for _, tt := range tests {
		calls := map[string]func() error{
			"GetInsights": func() error {
				_, err := h.client.GetInsights(tt.ctx, &guidancev1.GetInsightsRequest{SessionId: sess.Id})
				return err
			},
			"ListPrompts": func() error {
				_, err := h.client.ListPrompts(tt.ctx, &guidancev1.ListPromptsRequest{SessionId: sess.Id})
				return err
			},
		}
		for name, call := range calls {
			err := call()
			if status.Code(err) != tt.code || (tt.rsn != "" && reasonOf(err) != tt.rsn) {
				t.Errorf("%s %s: %v, want %v %s", tt.name, name, err, tt.code, tt.rsn)
			}
		}
	}
	// A session the session service does not know.
	_, err := h.client.GetInsights(as(authn.RoleSuperAdmin, newID(), ""), &guidancev1.GetInsightsRequest{SessionId: newID()})
	if reasonOf(err) != "SESSION_NOT_FOUND" {
		t.Errorf("unknown session: %v", err)
	}
	// The session service down: UNAVAILABLE with a reason, not an internal error.
	h.sessions.down.Store(true)
	_, err = h.client.GetInsights(as(authn.RoleTeacher, teacher1, schoolA), &guidancev1.GetInsightsRequest{SessionId: newSession(teacher1, schoolA, 1).Id})
	if status.Code(err) != codes.Unavailable || reasonOf(err) != "SESSION_SERVICE_UNAVAILABLE" {
		t.Errorf("session service down: %v", err)
	}
	h.sessions.down.Store(false)
	// Validation happens before anything else.
	_, err = h.client.GetInsights(as(authn.RoleTeacher, teacher1, schoolA), &guidancev1.GetInsightsRequest{SessionId: "x"})
	if status.Code(err) != codes.InvalidArgument || reasonOf(err) != apperr.ReasonValidation {
		t.Errorf("bad session id: %v", err)
	}
}

// TestAnalyzeDiscussion covers the on-demand Tier 1: over lines sent by the client, over the
// stored discussion, and the refusals.
func TestAnalyzeDiscussion(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	g := golden(t, "confused")
	sess := newSession(teacher1, schoolA, 2, g.Objectives...)
	h.sessions.put(sess)
	group, empty := sess.Groups[0].Id, sess.Groups[1].Id
	teacher := as(authn.RoleTeacher, teacher1, schoolA)

	// Lines: "Name: text" names the speaker; analysed, stored, published; no prompt, no cursor.
	var lines []string
	for _, tr := range g.Turns {
		lines = append(lines, tr.Speaker+": "+tr.Text)
	}
	lines = append(lines, "   ")
	resp, err := h.client.AnalyzeDiscussion(teacher, &guidancev1.AnalyzeDiscussionRequest{SessionId: sess.Id, GroupId: group, Transcripts: lines,
		FocusAreas: []string{"topical_cohesion"}})
	if err != nil {
		t.Fatal(err)
	}
	ins := resp.GetInsights()
	if ins.GetId() == "" || ins.GetGroupId() != group || ins.GetSessionId() != sess.Id || ins.GetMetrics().GetConfusionMarkers() < 3 {
		t.Errorf("lines insight %v", ins)
	}
	for _, e := range ins.GetEvidence() {
		if !strings.HasPrefix(e.GetWindowId(), "line-") {
			t.Errorf("evidence of a line %q", e.GetWindowId())
		}
	}
	testenv.Eventually(t, "the published insight", func() bool { return len(h.events.insights(sess.Id, 1)) == 1 })
	if n := len(h.events.prompts(sess.Id)); n != 0 {
		t.Errorf("an analysis of sent lines raised %d prompts", n)
	}

	// Nothing stored yet for the group: NO_TRANSCRIPT.
	_, err = h.client.AnalyzeDiscussion(teacher, &guidancev1.AnalyzeDiscussionRequest{SessionId: sess.Id, GroupId: empty})
	if status.Code(err) != codes.FailedPrecondition || reasonOf(err) != "NO_TRANSCRIPT" {
		t.Errorf("no transcript: %v", err)
	}
	// The stored discussion: half an interval of talk (not analysed by the schedule yet) is
	// analysed on demand, prompts included, and the cursor moves.
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	in := g.Tier1Input(base)
	for _, tr := range in.Turns[:4] {
		h.transcript(sess, group, newID(), tr.Speaker+": "+tr.Text, tr.Start, tr.End)
	}
	h.drained(h.cfg.STTTopic)
	resp, err = h.client.AnalyzeDiscussion(teacher, &guidancev1.AnalyzeDiscussionRequest{SessionId: sess.Id, GroupId: group})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetInsights().GetWindowEnd().AsTime(); !got.Equal(in.Turns[3].End) {
		t.Errorf("stored analysis ends %v, want %v", got, in.Turns[3].End)
	}
	if c, _ := h.svc.store.Cursor(t.Context(), sess.Id, group); !c.Equal(in.Turns[3].End) {
		t.Errorf("cursor %v after an on-demand analysis, want %v", c, in.Turns[3].End)
	}
	// Nothing new: the latest interval again, the cursor unchanged.
	resp, err = h.client.AnalyzeDiscussion(teacher, &guidancev1.AnalyzeDiscussionRequest{SessionId: sess.Id, GroupId: group})
	if err != nil || !resp.GetInsights().GetWindowEnd().AsTime().Equal(in.Turns[3].End) {
		t.Errorf("analysis with nothing new = %v, %v", resp, err)
	}

	tests := []struct {
		name string
		ctx  context.Context
		req  *guidancev1.AnalyzeDiscussionRequest
		code codes.Code
		rsn  string
	}{
		{"unknown group", teacher, &guidancev1.AnalyzeDiscussionRequest{SessionId: sess.Id, GroupId: newID()}, codes.NotFound, "GROUP_NOT_FOUND"},
		{"another teacher", as(authn.RoleTeacher, teacher2, schoolA), &guidancev1.AnalyzeDiscussionRequest{SessionId: sess.Id, GroupId: group}, codes.NotFound, "SESSION_NOT_FOUND"},
		{"no group", teacher, &guidancev1.AnalyzeDiscussionRequest{SessionId: sess.Id}, codes.InvalidArgument, apperr.ReasonValidation},
		{"too long a line", teacher, &guidancev1.AnalyzeDiscussionRequest{SessionId: sess.Id, GroupId: group, Transcripts: []string{strings.Repeat("a", 10001)}}, codes.InvalidArgument, apperr.ReasonValidation},
	}
	for _, tt := range tests {
		_, err := h.client.AnalyzeDiscussion(tt.ctx, tt.req)
		if status.Code(err) != tt.code || reasonOf(err) != tt.rsn {
			t.Errorf("%s: %v, want %v %s", tt.name, err, tt.code, tt.rsn)
		}
	}
	// AI analysis off for the session.
	off := newSession(teacher1, schoolA, 1)
	off.AiAnalysisEnabled = false
	h.sessions.put(off)
	_, err = h.client.AnalyzeDiscussion(teacher, &guidancev1.AnalyzeDiscussionRequest{SessionId: off.Id, GroupId: off.Groups[0].Id, Transcripts: lines})
	if reasonOf(err) != "AI_ANALYSIS_DISABLED" {
		t.Errorf("analysis disabled: %v", err)
	}
	// The analyzer down: ANALYSIS_FAILED, UNAVAILABLE.
	h.an.fail.Store(true)
	_, err = h.client.AnalyzeDiscussion(teacher, &guidancev1.AnalyzeDiscussionRequest{SessionId: sess.Id, GroupId: group, Transcripts: lines})
	if status.Code(err) != codes.Unavailable || reasonOf(err) != "ANALYSIS_FAILED" || strings.Contains(status.Convert(err).Message(), errAnalyzerDown.Error()) {
		t.Errorf("analyzer down: %v", err)
	}
	h.an.fail.Store(false)
}

// TestGenerateAndGetInsights covers the on-demand Tier 2 and the insight listing.
func TestGenerateAndGetInsights(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	g := golden(t, "off_topic")
	sess := newSession(teacher1, schoolA, 2, g.Objectives...)
	h.sessions.put(sess)
	g1, g2 := sess.Groups[0].Id, sess.Groups[1].Id
	teacher := as(authn.RoleTeacher, teacher1, schoolA)

	_, err := h.client.GenerateInsights(teacher, &guidancev1.GenerateInsightsRequest{SessionId: sess.Id})
	if reasonOf(err) != "NO_TRANSCRIPT" {
		t.Errorf("tier 2 of an empty session: %v", err)
	}
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	h.restart(func() {
		h.feedGolden(sess, g1, g, base)
		h.feedGolden(sess, g2, golden(t, "on_topic_collaborative"), base)
	})
	testenv.Eventually(t, "tier 1 of both groups", func() bool { return len(h.events.insights(sess.Id, 1)) >= 2 })
	h.drained(h.cfg.STTTopic)

	resp, err := h.client.GenerateInsights(teacher, &guidancev1.GenerateInsightsRequest{SessionId: sess.Id, GroupIds: []string{g1}, AnalysisDepth: "comprehensive"})
	if err != nil {
		t.Fatal(err)
	}
	t2 := resp.GetInsights()
	if t2.GetId() == "" || t2.GetSessionId() != sess.Id || len(t2.GetGroups()) != 1 || t2.GetGroups()[0].GetGroupId() != g1 {
		t.Errorf("tier 2 of one group %v", t2)
	}
	if _, err := h.client.GenerateInsights(teacher, &guidancev1.GenerateInsightsRequest{SessionId: sess.Id, GroupIds: []string{newID()}}); reasonOf(err) != "GROUP_NOT_FOUND" {
		t.Errorf("tier 2 of an unknown group: %v", err)
	}
	if _, err := h.client.GenerateInsights(teacher, &guidancev1.GenerateInsightsRequest{SessionId: sess.Id, AnalysisDepth: "deep"}); reasonOf(err) != apperr.ReasonValidation {
		t.Errorf("bad depth: %v", err)
	}
	testenv.Eventually(t, "the tier 2 event", func() bool { return len(h.events.insights(sess.Id, 2)) == 1 })

	all, err := h.client.GetInsights(teacher, &guidancev1.GetInsightsRequest{SessionId: sess.Id})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.GetTier1()) != 2 || len(all.GetTier2()) != 1 || len(all.GetPrompts()) == 0 || all.GetSessionId() != sess.Id {
		t.Errorf("GetInsights: %d tier 1, %d tier 2, %d prompts", len(all.GetTier1()), len(all.GetTier2()), len(all.GetPrompts()))
	}
	one, _ := h.client.GetInsights(teacher, &guidancev1.GetInsightsRequest{SessionId: sess.Id, GroupId: g2, Tier: 1})
	if len(one.GetTier1()) != 1 || one.GetTier1()[0].GetGroupId() != g2 || len(one.GetTier2()) != 0 {
		t.Errorf("GetInsights(group, tier 1): %d tier 1, %d tier 2", len(one.GetTier1()), len(one.GetTier2()))
	}
	for _, p := range one.GetPrompts() {
		if p.GetGroupId() != g2 {
			t.Errorf("GetInsights(group) answered a prompt of %s", p.GetGroupId())
		}
	}
	lim, _ := h.client.GetInsights(teacher, &guidancev1.GetInsightsRequest{SessionId: sess.Id, Limit: 1})
	if len(lim.GetTier1()) != 1 {
		t.Errorf("GetInsights(limit 1): %d tier 1", len(lim.GetTier1()))
	}
	later, _ := h.client.GetInsights(teacher, &guidancev1.GetInsightsRequest{SessionId: sess.Id, Since: timestamppb.New(h.clock.Now().Add(time.Hour))})
	if len(later.GetTier1())+len(later.GetTier2())+len(later.GetPrompts()) != 0 {
		t.Error("GetInsights(since the future) answered something")
	}
	if _, err := h.client.GetInsights(teacher, &guidancev1.GetInsightsRequest{SessionId: sess.Id, Limit: 501}); reasonOf(err) != apperr.ReasonValidation {
		t.Errorf("limit 501: %v", err)
	}
	// ListPrompts filters by status.
	for st, want := range map[string]bool{"": true, "all": true, "dismissed": false} {
		resp, err := h.client.ListPrompts(teacher, &guidancev1.ListPromptsRequest{SessionId: sess.Id, Status: st})
		if err != nil || (len(resp.GetPrompts()) > 0) != want {
			t.Errorf("ListPrompts(%q) = %d prompts, %v", st, len(resp.GetPrompts()), err)
		}
	}
}

// TestStatusAndHealth covers the status RPCs and the detailed health.
func TestStatusAndHealth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.LLM.Tier2Endpoint = "http://127.0.0.1:9/v1" })
	teacher := as(authn.RoleTeacher, teacher1, schoolA)
	s1, err := h.client.GetTier1Status(teacher, &guidancev1.GetTier1StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st := s1.GetStatus(); st.GetStatus() != tierOnline || st.GetAnalyzer() != "builtin" || st.GetEndpointConfigured() || st.GetIntervalSeconds() != 30 {
		t.Errorf("tier 1 status %v", st)
	}
	s2, _ := h.client.GetTier2Status(teacher, &guidancev1.GetTier2StatusRequest{})
	if st := s2.GetStatus(); !st.GetEndpointConfigured() || st.GetIntervalSeconds() != 180 {
		t.Errorf("tier 2 status %v", st)
	}
	hl, err := h.client.GetGuidanceHealth(teacher, &guidancev1.GetGuidanceHealthRequest{})
	if err != nil || hl.GetStatus() != healthHealthy || hl.GetTier1() == nil || hl.GetTimestamp() == nil {
		t.Errorf("health %v, %v", hl, err)
	}
	h.an.fail.Store(true)
	sess := newSession(teacher1, schoolA, 1)
	h.sessions.put(sess)
	_, _ = h.client.AnalyzeDiscussion(teacher, &guidancev1.AnalyzeDiscussionRequest{SessionId: sess.Id, GroupId: sess.Groups[0].Id, Transcripts: []string{"hello there"}})
	hl, _ = h.client.GetGuidanceHealth(teacher, &guidancev1.GetGuidanceHealthRequest{})
	if hl.GetStatus() != healthDegraded || hl.GetTier1().GetFailuresTotal() != 1 || hl.GetTier1().GetLastRunAt() == nil {
		t.Errorf("health with a failing analyzer %v", hl)
	}
	// Stopped: not ready.
	h.stopSvc(h.svc)
	if _, err := h.client.ListPrompts(teacher, &guidancev1.ListPromptsRequest{SessionId: sess.Id}); reasonOf(err) != "GUIDANCE_NOT_READY" {
		t.Errorf("after Stop: %v", err)
	}
	hl, _ = h.client.GetGuidanceHealth(teacher, &guidancev1.GetGuidanceHealthRequest{})
	if hl.GetStatus() != healthUnhealthy || hl.GetTier1().GetStatus() != tierOffline {
		t.Errorf("health after Stop %v", hl)
	}
}
