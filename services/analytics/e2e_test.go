package analytics

import (
	"bytes"
	"context"
	"encoding/csv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/testing/protocmp"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	busevents "github.com/classwaves/classwaves/pkg/events"
	"github.com/classwaves/classwaves/pkg/testenv"
)

// scenario is one classroom session driven through the bus end to end: two groups of three
// rostered students, five of whom join; readiness; start, a one-minute pause, resume; speech
// activity windows; transcripts with known word counts; Tier 1 and Tier 2 insights; teacher
// prompts; then the end. Redelivered, invalid and foreign events are mixed in.
type scenario struct {
	sessionID, g1, g2 string
	students          [6]string
	t0                time.Time
	// published counts the messages published on the consumed topics.
	published int
}

func newScenario(h *harness) *scenario {
	sc := &scenario{sessionID: newID(), g1: newID(), g2: newID(), t0: h.clock().Add(-time.Hour).Truncate(time.Second)}
	for i := range sc.students {
		sc.students[i] = newID()
	}
	h.sessions.put(sc.context("created"))
	return sc
}

func (sc *scenario) at(seconds int) time.Time { return sc.t0.Add(time.Duration(seconds) * time.Second) }

// context is the session as the session service answers it in status. Students s1..s3 are rostered
// in group 1, s4..s6 in group 2; s1..s5 joined at +10, +20, +30, +40, +50 s; group 1 became ready
// at +60 s, group 2 at +70 s; the session started at +100 s, paused +400..+460 s and ended at
// +760 s: 600 s active.
func (sc *scenario) context(status string) *sessionv1.Session {
	member := func(i int) *sessionv1.GroupMember {
		m := &sessionv1.GroupMember{StudentId: sc.students[i], DisplayName: []string{"Ada", "Ben", "Cy", "Dee", "Eve", "Fay"}[i]}
		if i < 5 {
			m.JoinedAt = ts(sc.at(10 * (i + 1)))
		}
		return m
	}
	s := &sessionv1.Session{
		Id: sc.sessionID, TeacherId: teacher1, SchoolId: schoolA, Title: "Photosynthesis", Status: status,
		TargetGroupSize: 4, LearningObjectives: []string{"Explain how plants make food"},
		GroupCount: 2, StudentCount: 6,
		Groups: []*sessionv1.Group{
			{Id: sc.g2, SessionId: sc.sessionID, Name: "Group 2", GroupNumber: 2, IsReady: true, ReadyAt: ts(sc.at(70)),
				Members: []*sessionv1.GroupMember{member(3), member(4), member(5)}, MemberCount: 3},
			{Id: sc.g1, SessionId: sc.sessionID, Name: "Group 1", GroupNumber: 1, IsReady: true, ReadyAt: ts(sc.at(60)),
				Members: []*sessionv1.GroupMember{member(0), member(1), member(2)}, MemberCount: 3},
		},
	}
	if status != "created" {
		s.ActualStart = ts(sc.at(100))
		s.DurationSeconds = 600
	}
	if status == "ended" {
		s.ActualEnd = ts(sc.at(760))
	}
	return s
}

func (sc *scenario) event(typ, group string, at time.Time) *eventsv1.Event {
	key := group
	if key == "" {
		key = sc.sessionID
	}
	return &eventsv1.Event{Id: newID(), Type: typ, Key: key, OccurredAt: ts(at), SchoolId: schoolA, SessionId: sc.sessionID, GroupId: group}
}

func (sc *scenario) send(h *harness, topic string, ev *eventsv1.Event) {
	h.publish(topic, ev)
	sc.published++
}

func (sc *scenario) status(h *harness, status string, at int) {
	ev := sc.event(busevents.SessionStatusChanged, "", sc.at(at))
	ev.Payload = &eventsv1.Event_SessionStatusChanged{SessionStatusChanged: &eventsv1.SessionStatusChanged{Status: status, TeacherId: teacher1}}
	sc.send(h, h.cfg.SessionEventsTopic, ev)
}

// run publishes everything up to (not including) the end.
func (sc *scenario) run(h *harness) {
	cfg := h.cfg
	for i := range 5 {
		g := sc.g1
		if i >= 3 {
			g = sc.g2
		}
		ev := sc.event(busevents.GroupMemberJoined, g, sc.at(10*(i+1)))
		ev.Payload = &eventsv1.Event_GroupMemberJoined{GroupMemberJoined: &eventsv1.GroupMemberJoined{StudentId: sc.students[i], MemberCount: 3}}
		sc.send(h, cfg.SessionEventsTopic, ev)
	}
	for _, r := range []struct {
		g  string
		at int
	}{{sc.g1, 60}, {sc.g2, 70}} {
		ev := sc.event(busevents.GroupStatusChanged, r.g, sc.at(r.at))
		ev.Payload = &eventsv1.Event_GroupStatusChanged{GroupStatusChanged: &eventsv1.GroupStatusChanged{Status: "ready", IsReady: true}}
		sc.send(h, cfg.SessionEventsTopic, ev)
	}
	sc.status(h, "active", 100)
	sc.status(h, "paused", 400)
	sc.status(h, "active", 460)

	// Speech activity: group 1 windows (10, 5, 3), (12, 3, 2), (8, 7, 6); group 2 (4, 11, 9), (6, 9, 8)
	// as (speech, silence, longest silence) seconds.
	speech := func(g string, n int, sp, si, lo float64) *eventsv1.Event {
		ev := sc.event(busevents.SpeechActivity, g, sc.at(100+15*n))
		ev.Payload = &eventsv1.Event_SpeechActivity{SpeechActivity: &eventsv1.SpeechActivity{WindowId: newID(),
			WindowStart: ts(sc.at(100 + 15*n)), WindowEnd: ts(sc.at(115 + 15*n)), SpeechSeconds: sp, SilenceSeconds: si, LongestSilenceSeconds: lo}}
		return ev
	}
	var redeliver []*eventsv1.Event
	for i, w := range [][3]float64{{10, 5, 3}, {12, 3, 2}, {8, 7, 6}} {
		ev := speech(sc.g1, i, w[0], w[1], w[2])
		sc.send(h, cfg.STTEventsTopic, ev)
		if i == 1 {
			redeliver = append(redeliver, ev)
		}
	}
	for i, w := range [][3]float64{{4, 11, 9}, {6, 9, 8}} {
		sc.send(h, cfg.STTEventsTopic, speech(sc.g2, i, w[0], w[1], w[2]))
	}
	// Invalid: negative speech. Ignored: a budget alert.
	sc.send(h, cfg.STTEventsTopic, speech(sc.g2, 9, -5, 1, 1))
	budget := sc.event(busevents.BudgetAlert, "", sc.at(300))
	budget.Payload = &eventsv1.Event_BudgetAlert{BudgetAlert: &eventsv1.BudgetAlert{Percent: 50}}
	sc.send(h, cfg.STTEventsTopic, budget)

	// Transcripts: group 1 three windows of 6, 7 and 5 words; group 2 one of 4 words and one empty.
	transcript := func(g string, n int, text string, words int32) *eventsv1.Event {
		ev := sc.event(busevents.Transcript, g, sc.at(120+15*n))
		ev.Payload = &eventsv1.Event_TranscriptReady{TranscriptReady: &eventsv1.TranscriptReady{TranscriptId: newID(), Text: text,
			Confidence: 0.9, WindowStart: ts(sc.at(100 + 15*n)), WindowEnd: ts(sc.at(115 + 15*n)), WordCount: words}}
		return ev
	}
	for i, tr := range []struct {
		text  string
		words int32
	}{{"Plants use sunlight to make food.", 6}, {"Chlorophyll captures light energy in the leaves.", 7}, {"Why do leaves look green?", 5}} {
		ev := transcript(sc.g1, i, tr.text, tr.words)
		sc.send(h, cfg.STTEventsTopic, ev)
		if i == 0 {
			redeliver = append(redeliver, ev)
		}
	}
	sc.send(h, cfg.STTEventsTopic, transcript(sc.g2, 0, "I think it rains.", 4))
	sc.send(h, cfg.STTEventsTopic, transcript(sc.g2, 1, "", 0))

	// Tier 1: group 1 on topic with 1 and 2 questions, then off topic; group 2 off topic, then on
	// topic with 1 question. One Tier 2 insight.
	insight := func(g string, tier int32, onTopic bool, q int32) *eventsv1.Event {
		ev := sc.event(busevents.InsightProduced, g, sc.at(500))
		ev.Payload = &eventsv1.Event_InsightProduced{InsightProduced: &eventsv1.InsightProduced{InsightId: newID(), Tier: tier,
			InsightJson: "{}", TopicalFocus: 0.5, QuestionCount: q, OnTopic: onTopic}}
		return ev
	}
	for _, in := range []struct {
		g  string
		on bool
		q  int32
	}{{sc.g1, true, 1}, {sc.g1, true, 2}, {sc.g1, false, 0}, {sc.g2, false, 0}, {sc.g2, true, 1}} {
		ev := insight(in.g, 1, in.on, in.q)
		sc.send(h, cfg.GuidanceEventsTopic, ev)
		if in.q == 2 {
			redeliver = append(redeliver, ev)
		}
	}
	sc.send(h, cfg.GuidanceEventsTopic, insight("", 2, false, 0))

	// Prompts: three raised; the first acknowledged, the second dismissed.
	prompts := []string{newID(), newID(), newID()}
	for _, id := range prompts {
		ev := sc.event(busevents.PromptRaised, sc.g1, sc.at(550))
		ev.Payload = &eventsv1.Event_PromptRaised{PromptRaised: &eventsv1.PromptRaised{PromptId: id, Kind: "alert", Message: "m", TeacherId: teacher1, Tier: 1}}
		sc.send(h, cfg.GuidanceEventsTopic, ev)
	}
	for i, st := range []string{"acknowledged", "dismissed"} {
		ev := sc.event(busevents.PromptActed, sc.g1, sc.at(600))
		ev.Payload = &eventsv1.Event_PromptActed{PromptActed: &eventsv1.PromptActed{PromptId: prompts[i], Status: st}}
		sc.send(h, cfg.GuidanceEventsTopic, ev)
	}

	// Redeliveries: the same events (same ids) again.
	for _, ev := range redeliver {
		topic := cfg.STTEventsTopic
		if ev.Type == busevents.InsightProduced {
			topic = cfg.GuidanceEventsTopic
		}
		sc.send(h, topic, ev)
	}
}

// end ends the session at +760 s.
func (sc *scenario) end(h *harness) {
	h.sessions.put(sc.context("ended"))
	sc.status(h, "ended", 760)
}

// want is the analytics the scenario must yield, computed by hand.
func (sc *scenario) want() *analyticsv1.SessionAnalytics {
	return &analyticsv1.SessionAnalytics{
		SessionId: sc.sessionID,
		// 5 joined of 6 rostered: 500/6 = 83.333… → 83.33.
		ParticipationRate: 83.33,
		// P = 5/6; S = speaking 40 / (40 + silence 35) = 0.5333…; T = on topic (2 + 1) / Tier 1 (3 + 2)
		// = 0.6; Q = 4 questions / 2 groups / (600 s / 600) = 2 per group per 10 min, / 3 = 0.6667.
		// 100 × (0.4 × 0.83333 + 0.3 × 0.53333 + 0.2 × 0.6 + 0.1 × 0.66667)
		//   = 100 × (0.33333 + 0.16 + 0.12 + 0.06667) = 68.00
		EngagementScore:     68,
		DurationSeconds:     600,
		GroupCount:          2,
		StudentCount:        6,
		JoinedStudentCount:  5,
		InsightCount:        6, // 3 + 2 Tier 1, 1 Tier 2
		PromptCount:         3,
		PromptsAcknowledged: 1,
		SpeakingSeconds:     40, // 30 + 10
		SilenceSeconds:      35, // 15 + 20
		WordCount:           22, // 18 + 4
		// Two groups speaking 30 s and 10 s: |30 − 10| / (30 + 10) = 0.5.
		GroupBalanceGini: 0.5,
		Groups: []*analyticsv1.GroupMetrics{
			{
				GroupId: sc.g1, GroupName: "Group 1", MemberCount: 3,
				SpeakingSeconds: 30, SilenceSeconds: 15, LongestSilenceSeconds: 6, // 10+12+8, 5+3+7, max(3,2,6)
				WordCount: 18, TurnCount: 3, // 6+7+5 words in 3 windows
				ParticipationGini: -1, // transcripts do not tell speakers apart
				OnTopicRatio:      2.0 / 3, QuestionCount: 3, InsightCount: 3,
				FirstJoinAt: ts(sc.at(10)), ReadyAt: ts(sc.at(60)),
			},
			{
				GroupId: sc.g2, GroupName: "Group 2", MemberCount: 2,
				SpeakingSeconds: 10, SilenceSeconds: 20, LongestSilenceSeconds: 9, // 4+6, 11+9, max(9,8)
				WordCount: 4, TurnCount: 1, // the empty window is no turn
				ParticipationGini: -1,
				OnTopicRatio:      0.5, QuestionCount: 1, InsightCount: 2,
				FirstJoinAt: ts(sc.at(40)), ReadyAt: ts(sc.at(70)),
			},
		},
	}
}

var analyticsOpts = []cmp.Option{
	protocmp.Transform(),
	protocmp.IgnoreFields(&analyticsv1.SessionAnalytics{}, "computed_at", "finalized_at", "status", "failure_reason"),
	cmpopts.EquateApprox(0, 1e-9),
}

// waitHandled waits until the replicas handled n messages.
func waitHandled(t testing.TB, n int, rs ...*replica) {
	t.Helper()
	testenv.Eventually(t, "events handled", func() bool {
		total := int64(0)
		for _, r := range rs {
			total += r.svc.eventsHandled.Load()
		}
		return total >= int64(n)
	})
}

func TestSessionEndToEnd(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	r := h.replica(harnessOptions{}, nil)
	sc := newScenario(h)
	sc.run(h)
	h.sessions.put(sc.context("active"))
	waitHandled(t, sc.published, r)

	teacher := h.as(authn.RoleTeacher, teacher1, schoolA)
	// Live: computed from the current measures while the session runs.
	live, err := r.client.GetSessionAnalytics(teacher, &analyticsv1.GetSessionAnalyticsRequest{SessionId: sc.sessionID})
	if err != nil {
		t.Fatal(err)
	}
	if got := live.GetAnalytics().GetStatus(); got != statusLive {
		t.Errorf("live status = %q, want live", got)
	}
	if diff := cmp.Diff(sc.want(), live.GetAnalytics(), analyticsOpts...); diff != "" {
		t.Errorf("live analytics mismatch (-want +got):\n%s", diff)
	}
	if n := len(published(t, h.bus, h.cfg.EventsTopic, EventFinalized)); n != 0 {
		t.Errorf("%d finalized events before the end", n)
	}

	sc.end(h)
	testenv.Eventually(t, "the finalized event", func() bool { return len(published(t, h.bus, h.cfg.EventsTopic, EventFinalized)) == 1 })
	ev := published(t, h.bus, h.cfg.EventsTopic, EventFinalized)[0]
	if !ev.GetAnalyticsFinalized().GetOk() || ev.GetSessionId() != sc.sessionID || ev.GetSchoolId() != schoolA || ev.GetKey() != sc.sessionID {
		t.Errorf("finalized event = %v", ev)
	}

	// Final: the stored result, for both REST paths (one RPC).
	for _, ctx := range []context.Context{teacher, h.as(authn.RoleAdmin, admin1, schoolA), h.as(authn.RoleSuperAdmin, super1, "")} {
		final, err := r.client.GetSessionAnalytics(ctx, &analyticsv1.GetSessionAnalyticsRequest{SessionId: sc.sessionID})
		if err != nil {
			t.Fatal(err)
		}
		a := final.GetAnalytics()
		if a.GetStatus() != statusFinalized || a.GetFinalizedAt() == nil || a.GetComputedAt() == nil {
			t.Errorf("final status %q finalized_at %v computed_at %v", a.GetStatus(), a.GetFinalizedAt(), a.GetComputedAt())
		}
		if diff := cmp.Diff(sc.want(), a, analyticsOpts...); diff != "" {
			t.Errorf("final analytics mismatch (-want +got):\n%s", diff)
		}
	}

	// A redelivered end changes nothing and publishes nothing.
	sc.status(h, "ended", 760)
	waitHandled(t, sc.published, r)
	if n := len(published(t, h.bus, h.cfg.EventsTopic, EventFinalized)); n != 1 {
		t.Errorf("%d finalized events after a second end, want 1", n)
	}

	// CSV export.
	exp, err := r.client.ExportSessionAnalytics(teacher, &analyticsv1.ExportSessionAnalyticsRequest{SessionId: sc.sessionID})
	if err != nil {
		t.Fatal(err)
	}
	if ct := exp.GetFile().GetContentType(); ct != "text/csv; charset=utf-8" {
		t.Errorf("content type %q", ct)
	}
	rows, err := csv.NewReader(bytes.NewReader(exp.GetFile().GetData())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("%d CSV rows, want header + 2 groups + session: %q", len(rows), rows)
	}
	col := func(row []string, name string) string {
		for i, h := range rows[0] {
			if h == name {
				return row[i]
			}
		}
		t.Fatalf("no column %s", name)
		return ""
	}
	checks := []struct{ row, col, want string }{
		{"1", "record", "group"}, {"1", "group_name", "Group 1"}, {"1", "speaking_seconds", "30"}, {"1", "word_count", "18"},
		{"1", "on_topic_ratio", "0.6666666666666666"}, {"1", "participation_gini", "-1"},
		{"2", "group_id", sc.g2}, {"2", "longest_silence_seconds", "9"}, {"2", "question_count", "1"},
		{"3", "record", "session"}, {"3", "engagement_score", "68"}, {"3", "participation_rate", "83.33"},
		{"3", "duration_seconds", "600"}, {"3", "group_balance_gini", "0.5"}, {"3", "status", "finalized"},
	}
	for _, c := range checks {
		row := rows[int(c.row[0]-'0')]
		if got := col(row, c.col); got != c.want {
			t.Errorf("CSV row %s %s = %q, want %q", c.row, c.col, got, c.want)
		}
	}

	// The school's and the platform's figures include the session.
	sys, err := r.client.GetSystemAnalytics(h.as(authn.RoleAdmin, admin1, schoolA), &analyticsv1.GetSystemAnalyticsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantSchool := &analyticsv1.SchoolAnalytics{
		SchoolId: schoolA, TeacherCount: 1, SessionCount: 1, ActiveSessionCount: 0, StudentCount: 5,
		AverageEngagementScore: 68, AverageParticipationRate: 83.33,
		TranscriptionMinutes: 1.25, // 5 transcribed windows of 15 s = 75 s
		InsightCount:         6,
	}
	if diff := cmp.Diff(wantSchool, sys.GetSchool(), protocmp.Transform()); diff != "" {
		t.Errorf("system analytics mismatch (-want +got):\n%s", diff)
	}
	plat, err := r.client.GetPlatformAnalytics(h.as(authn.RoleSuperAdmin, super1, ""), &analyticsv1.GetPlatformAnalyticsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if plat.GetSchoolCount() != 1 || plat.GetSessionCount() != 1 || plat.GetStudentCount() != 5 || len(plat.GetSchools()) != 1 {
		t.Errorf("platform analytics = %v", plat)
	}
	other, err := r.client.GetSystemAnalytics(h.as(authn.RoleAdmin, admin2, schoolB), &analyticsv1.GetSystemAnalyticsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&analyticsv1.SchoolAnalytics{SchoolId: schoolB}, other.GetSchool(), protocmp.Transform()); diff != "" {
		t.Errorf("another school's analytics mismatch (-want +got):\n%s", diff)
	}
}

func TestSummaries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{mod: func(c *Config) { c.SummariesEnabled = true }})
	r := h.replica(harnessOptions{}, nil)
	sc := newScenario(h)
	sc.run(h)
	h.sessions.put(sc.context("active"))
	waitHandled(t, sc.published, r)
	teacher := h.as(authn.RoleTeacher, teacher1, schoolA)

	// Not ended: pending, with the retry hint.
	sum, err := r.client.GetSessionSummaries(teacher, &analyticsv1.GetSessionSummariesRequest{SessionId: sc.sessionID})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.GetPending() || sum.GetRetryAfterSeconds() != 5 || sum.GetSummary() != nil {
		t.Errorf("summaries before the end = %v, want pending with retry after 5", sum)
	}
	gs, err := r.client.GetGroupSummary(teacher, &analyticsv1.GetGroupSummaryRequest{SessionId: sc.sessionID, GroupId: sc.g1})
	if err != nil {
		t.Fatal(err)
	}
	if !gs.GetPending() || gs.GetRetryAfterSeconds() != 5 {
		t.Errorf("group summary before the end = %v, want pending", gs)
	}
	texts, err := r.store.TranscriptTexts(context.Background(), sc.sessionID)
	if err != nil || len(texts) != 4 {
		t.Errorf("kept transcript texts = %d, %v; want the 4 non-empty windows", len(texts), err)
	}

	sc.end(h)
	testenv.Eventually(t, "summaries ready", func() bool { return len(published(t, h.bus, h.cfg.EventsTopic, EventSummariesReady)) == 1 })
	ready := published(t, h.bus, h.cfg.EventsTopic, EventSummariesReady)[0]
	if diff := cmp.Diff([]string{sc.g1, sc.g2}, ready.GetSummariesReady().GetGroupIds()); diff != "" {
		t.Errorf("summaries:ready groups mismatch (-want +got):\n%s", diff)
	}
	sum, err = r.client.GetSessionSummaries(teacher, &analyticsv1.GetSessionSummariesRequest{SessionId: sc.sessionID})
	if err != nil {
		t.Fatal(err)
	}
	if sum.GetPending() || sum.GetSummary().GetSummarizer() != BuiltinName || sum.GetSummary().GetSessionId() != sc.sessionID {
		t.Fatalf("summaries = %v", sum)
	}
	wantText := "Photosynthesis: 2 groups; 5 of 6 students joined (83% participation). Active for 10m 00s; engagement score 68/100." +
		" Most talkative: Group 1 (30s); quietest: Group 2 (10s)."
	if got := sum.GetSummary().GetText(); got != wantText {
		t.Errorf("session summary text = %q, want %q", got, wantText)
	}
	metas := []*analyticsv1.GroupSummaryMeta{
		{GroupId: sc.g1, GroupName: "Group 1", Status: "ready"}, {GroupId: sc.g2, GroupName: "Group 2", Status: "ready"},
	}
	if sc.g2 < sc.g1 {
		metas[0], metas[1] = metas[1], metas[0]
	}
	if diff := cmp.Diff(metas, sum.GetGroups(), protocmp.Transform()); diff != "" {
		t.Errorf("group metas mismatch (-want +got):\n%s", diff)
	}
	gs, err = r.client.GetGroupSummary(teacher, &analyticsv1.GetGroupSummaryRequest{SessionId: sc.sessionID, GroupId: sc.g1})
	if err != nil {
		t.Fatal(err)
	}
	wantKeyPoints := []string{"Plants use sunlight to make food.", "Chlorophyll captures light energy in the leaves.", "Why do leaves look green?"}
	if diff := cmp.Diff(wantKeyPoints, gs.GetSummary().GetKeyPoints()); diff != "" {
		t.Errorf("group 1 key points mismatch (-want +got):\n%s", diff)
	}
	if got := gs.GetSummary().GetGroupId(); got != sc.g1 || gs.GetPending() {
		t.Errorf("group summary = %v", gs)
	}
	texts, err = r.store.TranscriptTexts(context.Background(), sc.sessionID)
	if err != nil || len(texts) != 0 {
		t.Errorf("transcript texts after the summaries = %d, %v; want none kept", len(texts), err)
	}

	// A group of another session, and summaries off.
	if _, err := r.client.GetGroupSummary(teacher, &analyticsv1.GetGroupSummaryRequest{SessionId: sc.sessionID, GroupId: newID()}); err == nil {
		t.Error("a foreign group's summary was answered")
	} else if code, rsn := codeReason(err); rsn != "GROUP_NOT_FOUND" {
		t.Errorf("foreign group: %v %s, want GROUP_NOT_FOUND", code, rsn)
	}
}
