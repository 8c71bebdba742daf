package guidance

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/inproc"
	busevents "github.com/classwaves/classwaves/pkg/events"
	"github.com/classwaves/classwaves/pkg/testenv"
	"github.com/classwaves/classwaves/services/guidance/analyzer"
)

func golden(t testing.TB, name string) analyzer.Golden {
	t.Helper()
	g, err := analyzer.LoadGolden(filepath.Join(analyzer.GoldenDir(), name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestTier1FromBusEvents drives the service with live stt events one at a time: a talking group
// is analysed once its unanalysed transcript spans AI_TIER1_INTERVAL, a silent group (activity
// only) is analysed too and raises a silence alert, and every published event carries the
// contract's fields.
func TestTier1FromBusEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	g := golden(t, "on_topic_collaborative")
	sess := newSession(teacher1, schoolA, 2, g.Objectives...)
	h.sessions.put(sess)
	talk, quiet := sess.Groups[0].Id, sess.Groups[1].Id
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	in := g.Tier1Input(base)

	var transcriptIDs []string
	for i, tr := range in.Turns {
		id := newID()
		transcriptIDs = append(transcriptIDs, id)
		text := tr.Speaker + ": " + tr.Text
		h.transcript(sess, talk, id, text, tr.Start, tr.End)
		h.drained(h.cfg.STTTopic)
		if i == 0 && len(h.events.insights(sess.Id, 1)) != 0 {
			t.Error("analysed before the span reached the interval")
		}
	}
	evs := h.events.insights(sess.Id, 1)
	if len(evs) == 0 {
		t.Fatal("no Tier 1 insight for a talking group")
	}
	for _, ev := range evs {
		ins := insightOf(t, ev)
		if _, err := uuid.Parse(ev.GetId()); err != nil || ev.GetType() != busevents.InsightProduced || ev.GetKey() != talk ||
			ev.GetGroupId() != talk || ev.GetSessionId() != sess.Id || ev.GetSchoolId() != schoolA || ev.GetSchemaVersion() != "1.0" ||
			ev.GetOccurredAt() == nil || ev.GetTraceId() == "" {
			t.Errorf("insight event envelope %v", ev)
		}
		p := ev.GetInsightProduced()
		if p.GetInsightId() != ins.GetId() || p.GetTier() != 1 || p.GetTopicalFocus() != ins.GetMetrics().GetTopicalFocus() ||
			p.GetQuestionCount() != ins.GetMetrics().GetQuestionCount() || p.GetOnTopic() != onTopic(ins.GetMetrics()) {
			t.Errorf("InsightProduced %v does not describe %v", p, ins)
		}
		if ins.GetAnalyzer() != "builtin" || ins.GetConfidence() <= 0 || ins.GetCreatedAt() == nil || ins.GetSessionId() != sess.Id {
			t.Errorf("insight %v", ins)
		}
		if span := ins.GetWindowEnd().AsTime().Sub(ins.GetWindowStart().AsTime()); span < 30*time.Second {
			t.Errorf("insight spans %v, less than the interval", span)
		}
		for _, e := range ins.GetEvidence() {
			if !slices.Contains(transcriptIDs, e.GetWindowId()) {
				t.Errorf("evidence %q is not one of the transcripts", e.GetWindowId())
			}
		}
		// The trace is the triggering transcript's.
		if !slices.ContainsFunc(transcriptIDs, func(id string) bool { return ev.GetTraceId() == "trace-"+id }) {
			t.Errorf("trace id %q is not a triggering event's", ev.GetTraceId())
		}
	}
	if !slices.ContainsFunc(evs, func(ev *eventsv1.Event) bool { return ev.GetInsightProduced().GetOnTopic() }) {
		t.Error("no span of an on-topic discussion counted as on topic")
	}
	// Spans follow each other without overlap or gap.
	for i := 1; i < len(evs); i++ {
		prev, cur := insightOf(t, evs[i-1]), insightOf(t, evs[i])
		if !cur.GetWindowStart().AsTime().Equal(prev.GetWindowEnd().AsTime()) {
			t.Errorf("insight %d starts at %v, the previous ended at %v", i, cur.GetWindowStart().AsTime(), prev.GetWindowEnd().AsTime())
		}
	}
	// A redelivered transcript is stored once and analysed never again.
	n := len(evs)
	last := in.Turns[len(in.Turns)-1]
	h.transcript(sess, talk, transcriptIDs[len(transcriptIDs)-1], "redelivered", last.Start, last.End)
	h.drained(h.cfg.STTTopic)
	if got := len(h.events.insights(sess.Id, 1)); got != n {
		t.Errorf("a redelivered transcript made %d insights, want %d", got, n)
	}
	if d := h.counter("guidance_bus_events_total", map[string]string{"outcome": outcomeDuplicate}); d != 1 {
		t.Errorf("duplicates counted %v, want 1", d)
	}

	// The quiet group: speech activity with no transcript, analysed as silent.
	for i := range 2 {
		start := base.Add(time.Duration(i) * 15 * time.Second)
		h.activity(sess, quiet, newID(), start, start.Add(15*time.Second), 0.4, 14.6, 12)
	}
	testenv.Eventually(t, "the silent group's insight", func() bool {
		return slices.ContainsFunc(h.events.insights(sess.Id, 1), func(ev *eventsv1.Event) bool { return ev.GetGroupId() == quiet })
	})
	testenv.Eventually(t, "the silence alert", func() bool {
		return slices.ContainsFunc(h.events.prompts(sess.Id), func(ev *eventsv1.Event) bool {
			return ev.GetGroupId() == quiet && ev.GetPromptRaised().GetCategory() == CategorySilence
		})
	})
	for _, ev := range h.events.prompts(sess.Id) {
		if ev.GetGroupId() != quiet {
			continue
		}
		pr := ev.GetPromptRaised()
		if ev.GetKey() != quiet || pr.GetKind() != KindAlert || pr.GetPriority() != PriorityHigh || pr.GetTeacherId() != teacher1 ||
			pr.GetMessage() == "" || pr.GetReason() != "nothing was said in the last 30 s" || pr.GetTier() != 1 ||
			!pr.GetExpiresAt().AsTime().Equal(h.clock.Now().Add(h.cfg.PromptTTL)) {
			t.Errorf("silence prompt %v", ev)
		}
	}
	if got := h.counter("guidance_tier1_insight_delivered_total", map[string]string{"school": schoolA}); got != float64(len(h.events.insights(sess.Id, 1))) {
		t.Errorf("tier 1 delivered = %v, want %d", got, len(h.events.insights(sess.Id, 1)))
	}
	if got := h.counter("guidance_prompt_delivery_total", map[string]string{"tier": "tier1", "status": statusOK, "school": schoolA}); got < 1 {
		t.Errorf("prompt deliveries = %v", got)
	}
	if got := h.counter("guidance_prompt_delivery_latency_ms", map[string]string{"tier": "tier1"}); got < 1 {
		t.Errorf("prompt delivery latency observations = %v", got)
	}
}

// TestTier1Skips covers what is not analysed: a span with too few words and no silence (the cursor
// moves past it), a session with AI analysis off, a paused session, and a session the session
// service does not know. Every event is still acknowledged.
func TestTier1Skips(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

	thin := newSession(teacher1, schoolA, 1)
	h.sessions.put(thin)
	g := thin.Groups[0].Id
	h.transcript(thin, g, newID(), "okay yes", base, base.Add(15*time.Second))
	h.activity(thin, g, newID(), base, base.Add(15*time.Second), 12, 3, 1)
	h.transcript(thin, g, newID(), "sure", base.Add(15*time.Second), base.Add(30*time.Second))
	h.drained(h.cfg.STTTopic)
	if n := len(h.events.insights(thin.Id, 1)); n != 0 {
		t.Errorf("a thin span made %d insights", n)
	}
	if n := h.counter("guidance_analyses_total", map[string]string{"tier": "tier1", "status": statusSkipped}); n != 1 {
		t.Errorf("skipped analyses = %v, want 1", n)
	}
	if c, _ := h.svc.store.Cursor(t.Context(), thin.Id, g); !c.Equal(base.Add(30 * time.Second)) {
		t.Errorf("cursor after a skip = %v, want the span's end", c)
	}

	disabled := newSession(teacher1, schoolA, 1)
	disabled.AiAnalysisEnabled = false
	paused := newSession(teacher1, schoolA, 1)
	paused.Status = sessionPaused
	unknown := newSession(teacher1, schoolA, 1) // never put
	h.sessions.put(disabled)
	h.sessions.put(paused)
	for _, s := range []*sessionv1Session{disabled, paused, unknown} {
		for i := range 3 {
			start := base.Add(time.Duration(i) * 15 * time.Second)
			h.transcript(s, s.Groups[0].Id, newID(), "we think the producers make energy from sunlight for the whole food web", start, start.Add(15*time.Second))
		}
	}
	h.drained(h.cfg.STTTopic)
	for _, s := range []*sessionv1Session{disabled, paused, unknown} {
		if n := len(h.events.insights(s.Id, 1)); n != 0 {
			t.Errorf("session %s made %d insights", s.Id, n)
		}
	}
}

// TestSessionEnd: ending a session expires its pending prompts, runs one final Tier 2 (however
// often the status event arrives), and stops Tier 1.
func TestSessionEnd(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	g := golden(t, "off_topic")
	sess := newSession(teacher1, schoolA, 1, g.Objectives...)
	h.sessions.put(sess)
	group := sess.Groups[0].Id
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	h.restart(func() { h.feedGolden(sess, group, g, base) })
	testenv.Eventually(t, "the off-task alert", func() bool { return len(h.events.prompts(sess.Id)) > 0 })
	if len(h.pending(sess.Id)) == 0 {
		t.Fatal("no pending prompt before the end")
	}

	h.status(sess, sessionEnded)
	h.status(sess, sessionEnded) // a duplicate
	h.drained(h.cfg.SessionTopic)
	if n := len(h.events.insights(sess.Id, 2)); n != 1 {
		t.Fatalf("%d final Tier 2 insights, want 1", n)
	}
	if p := h.pending(sess.Id); len(p) != 0 {
		t.Errorf("%d prompts still pending after the end", len(p))
	}
	ev := h.events.insights(sess.Id, 2)[0]
	if ev.GetKey() != sess.Id || ev.GetGroupId() != "" || ev.GetSchoolId() != schoolA {
		t.Errorf("tier 2 event envelope %v", ev)
	}
	t2 := &guidancev1.Tier2Insight{}
	if err := insightDecode.Unmarshal([]byte(ev.GetInsightProduced().GetInsightJson()), t2); err != nil || t2.GetSessionId() != sess.Id || len(t2.GetGroups()) != 1 {
		t.Errorf("tier 2 insight %v, %v", t2, err)
	}
	// Talk after the end is stored but not analysed.
	n1 := len(h.events.insights(sess.Id, 1))
	later := base.Add(10 * time.Minute)
	for i := range 3 {
		start := later.Add(time.Duration(i) * 15 * time.Second)
		h.transcript(sess, group, newID(), "did you watch the game last night it was so good", start, start.Add(15*time.Second))
	}
	h.drained(h.cfg.STTTopic)
	if n := len(h.events.insights(sess.Id, 1)); n != n1 {
		t.Errorf("%d Tier 1 insights after the end, want %d", n, n1)
	}
}

// TestTier2Schedule: an active session with new Tier 1 insights gets a Tier 2 every
// AI_TIER2_INTERVAL, and none without new Tier 1 insights; recommendations become prompts.
func TestTier2Schedule(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	g := golden(t, "dominated")
	sess := newSession(teacher1, schoolA, 1, g.Objectives...)
	h.sessions.put(sess)
	group := sess.Groups[0].Id
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	h.restart(func() { h.feedGolden(sess, group, g, base) })
	testenv.Eventually(t, "a tier 1 insight", func() bool { return len(h.events.insights(sess.Id, 1)) > 0 })
	h.drained(h.cfg.STTTopic)

	ctx := t.Context()
	if ran := h.svc.runDue(ctx); ran != 0 {
		t.Errorf("tier 2 ran %d times before its interval", ran)
	}
	h.clock.Add(h.cfg.Tier2Interval)
	if ran := h.svc.runDue(ctx); ran != 1 {
		t.Fatalf("tier 2 ran %d times when due, want 1", ran)
	}
	// The collector reads the bus asynchronously.
	testenv.Eventually(t, "the tier 2 insight", func() bool { return len(h.events.insights(sess.Id, 2)) >= 1 })
	h.clock.Add(h.cfg.Tier2Interval)
	if ran := h.svc.runDue(ctx); ran != 0 {
		t.Errorf("tier 2 ran %d times without new tier 1 insights", ran)
	}
	h.drained(h.cfg.STTTopic) // also waits for the collector
	if n := len(h.events.insights(sess.Id, 2)); n != 1 {
		t.Fatalf("%d tier 2 insights published, want 1", n)
	}
	// Recommendations became recommendation prompts.
	t2 := &guidancev1.Tier2Insight{}
	if err := insightDecode.Unmarshal([]byte(h.events.insights(sess.Id, 2)[0].GetInsightProduced().GetInsightJson()), t2); err != nil {
		t.Fatal(err)
	}
	var recs int
	for _, ev := range h.events.prompts(sess.Id) {
		if pr := ev.GetPromptRaised(); pr.GetKind() == KindRecommendation {
			recs++
			if pr.GetTier() != 2 || pr.GetMessage() == "" || pr.GetReason() == "" {
				t.Errorf("recommendation prompt %v", pr)
			}
		}
	}
	if len(t2.GetRecommendations()) > 0 && recs == 0 {
		t.Errorf("%d recommendations raised no prompt", len(t2.GetRecommendations()))
	}
	if got := h.counter("guidance_tier2_insight_delivered_total", map[string]string{"school": schoolA}); got != 1 {
		t.Errorf("tier 2 delivered = %v, want 1", got)
	}
}

// TestAnalyzerOutage: a failing analyzer leaves the cursor where it was; the group's next event
// analyses the whole span once the analyzer is back. The failure is counted and shown by status.
func TestAnalyzerOutage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	g := golden(t, "confused")
	sess := newSession(teacher1, schoolA, 1, g.Objectives...)
	h.sessions.put(sess)
	group := sess.Groups[0].Id
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	h.an.fail.Store(true)
	h.restart(func() { h.feedGolden(sess, group, g, base) })
	h.drained(h.cfg.STTTopic)
	if n := len(h.events.insights(sess.Id, 1)); n != 0 {
		t.Fatalf("%d insights from a failing analyzer", n)
	}
	if n := h.counter("guidance_analyses_total", map[string]string{"tier": "tier1", "status": statusFailed}); n < 1 {
		t.Errorf("failed analyses = %v", n)
	}
	if st := h.svc.tierStatus(1); st.GetStatus() != tierDegraded || st.GetFailuresTotal() < 1 {
		t.Errorf("tier 1 status during the outage %v", st)
	}
	h.an.fail.Store(false)
	end := base.Add(time.Minute)
	h.activity(sess, group, newID(), end, end.Add(15*time.Second), 12, 3, 1)
	testenv.Eventually(t, "the analysis after the outage", func() bool { return len(h.events.insights(sess.Id, 1)) == 1 })
	ins := insightOf(t, h.events.insights(sess.Id, 1)[0])
	if !ins.GetWindowStart().AsTime().Equal(base) {
		t.Errorf("after the outage the span starts at %v, want %v (nothing lost)", ins.GetWindowStart().AsTime(), base)
	}
	if st := h.svc.tierStatus(1); st.GetStatus() != tierOnline {
		t.Errorf("tier 1 status after recovery %v", st)
	}
}

// TestSessionServiceOutage: while the session service cannot be asked, events are left
// unacknowledged and delivered again; nothing is lost.
func TestSessionServiceOutage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	g := golden(t, "silent")
	sess := newSession(teacher1, schoolA, 1)
	h.sessions.put(sess)
	h.sessions.down.Store(true)
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	h.feedGolden(sess, sess.Groups[0].Id, g, base)
	testenv.Eventually(t, "a retry", func() bool {
		return h.counter("guidance_bus_events_total", map[string]string{"outcome": outcomeRetry}) > 0
	})
	h.sessions.down.Store(false)
	testenv.Eventually(t, "the analysis after the outage", func() bool { return len(h.events.insights(sess.Id, 1)) == 1 })
}

// TestMalformedEvents: nothing a producer sends stops the consumer or changes anything.
func TestMalformedEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	sess := newSession(teacher1, schoolA, 1)
	h.sessions.put(sess)
	group := sess.Groups[0].Id
	ctx := context.Background()
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	raw := [][]byte{nil, []byte("not a protobuf"), {0xff, 0xff, 0xff}}
	for _, p := range raw {
		if _, err := h.bus.Publish(ctx, h.cfg.STTTopic, bus.Outgoing{Key: group, Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	bad := []*eventsv1.Event{
		{Type: busevents.Transcript, SessionId: sess.Id, GroupId: group}, // no payload
		{Type: busevents.Transcript, SessionId: sess.Id, Payload: &eventsv1.Event_TranscriptReady{TranscriptReady: &eventsv1.TranscriptReady{TranscriptId: newID()}}},
		{Type: busevents.Transcript, SessionId: sess.Id, GroupId: group, Payload: &eventsv1.Event_TranscriptReady{TranscriptReady: &eventsv1.TranscriptReady{
			TranscriptId: newID(), Text: "backwards", WindowStart: ts(base.Add(time.Minute)), WindowEnd: ts(base)}}},
		{Type: busevents.SpeechActivity, SessionId: sess.Id, GroupId: group, Payload: &eventsv1.Event_SpeechActivity{SpeechActivity: &eventsv1.SpeechActivity{
			WindowId: newID(), WindowStart: ts(base), WindowEnd: ts(base.Add(15 * time.Second)), SilenceSeconds: math.NaN()}}},
		{Type: busevents.SpeechActivity, SessionId: sess.Id, GroupId: group, Payload: &eventsv1.Event_SpeechActivity{SpeechActivity: &eventsv1.SpeechActivity{
			WindowId: newID(), WindowStart: ts(base), WindowEnd: ts(base.Add(15 * time.Second)), SpeechSeconds: -1}}},
		{Type: busevents.SessionStatusChanged},
		{Type: "stt.something_new", SessionId: sess.Id},
	}
	for _, ev := range bad {
		ev.Key = group
		h.publish(h.cfg.STTTopic, ev)
	}
	testenv.Eventually(t, "every malformed event handled", func() bool {
		return h.counter("guidance_bus_events_total", nil) >= float64(len(raw)+len(bad))
	})
	// An empty payload is an empty event, and an unknown type is not ours: both are ignored.
	if n := h.counter("guidance_bus_events_total", map[string]string{"outcome": outcomeMalformed}); n != float64(len(raw)+len(bad)-2) {
		t.Errorf("malformed = %v, want %d", n, len(raw)+len(bad)-2)
	}
	if turns, _ := h.svc.store.Turns(ctx, sess.Id, group, time.Time{}, time.Time{}, 10); len(turns) != 0 {
		t.Errorf("malformed events stored %d turns", len(turns))
	}
	// The consumer still works.
	for i := range 3 {
		start := base.Add(time.Duration(i) * 15 * time.Second)
		h.activity(sess, group, newID(), start, start.Add(15*time.Second), 0, 15, 15)
	}
	testenv.Eventually(t, "an insight after the malformed events", func() bool { return len(h.events.insights(sess.Id, 1)) == 1 })
}

// TestWordCountAndSpeaker covers what is read from a transcript's text.
func TestWordCountAndSpeaker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text, speaker, rest string
		words               int
	}{
		{"Maria: I think the producers come first.", "Maria", "I think the producers come first.", 6},
		{"Speaker 2: yes", "Speaker 2", "yes", 1},
		{"  plain talk , with -- punctuation  ", "", "plain talk , with -- punctuation", 4},
		{"So here's the thing: we", "", "So here's the thing: we", 5},
		{"A: first line\nB: second line", "", "A: first line\nB: second line", 6},
		{"Note:nospace", "", "Note:nospace", 1},
		{"", "", "", 0},
	}
	for _, tt := range tests {
		sp, rest := splitSpeaker(tt.text)
		if sp != tt.speaker || rest != tt.rest {
			t.Errorf("splitSpeaker(%q) = %q, %q; want %q, %q", tt.text, sp, rest, tt.speaker, tt.rest)
		}
		if got := wordCount(rest); got != tt.words {
			t.Errorf("wordCount(%q) = %d, want %d", rest, got, tt.words)
		}
	}
}

// TestHandleKeyOrder: when a message of a key fails, it and the key's later messages are left
// unacknowledged; other keys' messages are not.
func TestHandleKeyOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	sess := newSession(teacher1, schoolA, 2)
	h.sessions.put(sess)
	mk := func(group string) bus.Message {
		ev := &eventsv1.Event{Id: newID(), Type: busevents.SpeechActivity, Key: group, SessionId: sess.Id, GroupId: group,
			Payload: &eventsv1.Event_SpeechActivity{SpeechActivity: &eventsv1.SpeechActivity{
				WindowId: newID(), WindowStart: ts(time.Unix(0, 0)), WindowEnd: ts(time.Unix(15, 0))}}}
		b, _ := proto.Marshal(ev)
		return bus.Message{ID: newID(), Key: group, Payload: b}
	}
	a, b := sess.Groups[0].Id, sess.Groups[1].Id
	msgs := []bus.Message{mk(a), mk(b), mk(a), mk(b)}
	var calls atomic.Int32
	h.svc.afterKey = func(ms []bus.Message) error {
		calls.Add(1)
		if ms[0].Key == a {
			return errors.New("crash before the acknowledgement")
		}
		return nil
	}
	err := h.svc.handleBatch(t.Context(), msgs)
	var be *bus.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("handleBatch = %v, want a BatchError", err)
	}
	slices.Sort(be.Failed)
	want := []string{msgs[0].ID, msgs[2].ID}
	slices.Sort(want)
	if !slices.Equal(be.Failed, want) || calls.Load() != 2 {
		t.Errorf("failed %v, want %v (calls %d)", be.Failed, want, calls.Load())
	}
}

// sessionv1Session shortens the session type in tables.
type sessionv1Session = sessionv1.Session

// TestEmitFailures: when the bus refuses the service's events, the insight is still stored and
// answered, and the failure is counted by type (guidance_emits_failed_total) and in the health.
func TestEmitFailures(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	// The events topic holds one message and refuses the next (nothing acknowledges it).
	b, err := inproc.New(inproc.Options{Topics: map[string]inproc.TopicOptions{cfg.EventsTopic: {MaxLen: 1, Overflow: inproc.RejectNew}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	h := newHarness(t, nil, withBus(b))
	g := golden(t, "confused")
	sess := newSession(teacher1, schoolA, 1, g.Objectives...)
	h.sessions.put(sess)
	var lines []string
	for _, tr := range g.Turns {
		lines = append(lines, tr.Speaker+": "+tr.Text)
	}
	teacher := as(authn.RoleTeacher, teacher1, schoolA)
	for range 2 {
		if _, err := h.client.AnalyzeDiscussion(teacher, &guidancev1.AnalyzeDiscussionRequest{SessionId: sess.Id, GroupId: sess.Groups[0].Id, Transcripts: lines}); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.counter("guidance_tier1_insight_delivered_total", nil); n != 1 {
		t.Errorf("delivered = %v, want 1", n)
	}
	if n := h.counter("guidance_emits_failed_total", map[string]string{"type": emitTier1}); n != 1 {
		t.Errorf("tier1 emits failed = %v, want 1", n)
	}
	hl, _ := h.client.GetGuidanceHealth(teacher, &guidancev1.GetGuidanceHealthRequest{})
	if hl.GetEmitsFailedTotal() != 1 {
		t.Errorf("health emits failed = %d, want 1", hl.GetEmitsFailedTotal())
	}
	stored, _ := h.client.GetInsights(teacher, &guidancev1.GetInsightsRequest{SessionId: sess.Id})
	if len(stored.GetTier1()) != 2 {
		t.Errorf("%d insights stored, want 2", len(stored.GetTier1()))
	}
}

// TestTranscriptGrace: stt publishes a window's speech activity before its transcript (the
// transcription call sits between them). A span whose speech has no transcript yet waits for it,
// so the analysis measures the words instead of reporting "speech but nothing transcribed"; once
// the grace has passed (transcription off or failing) the span is analysed without them.
func TestTranscriptGrace(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.Tier1Interval = 10 * time.Second
		c.Tier1MinWords = 5
		c.TranscriptGrace = 20 * time.Second
	})
	sess := newSession(teacher1, schoolA, 1, "explain how plants use light energy to make glucose")
	h.sessions.put(sess)
	group := sess.Groups[0].Id
	base := h.clock.Now()
	h.restart(func() {})

	// The window closed a second ago; its transcript is on its way.
	h.clock.Add(16 * time.Second)
	h.activity(sess, group, newID(), base, base.Add(15*time.Second), 12, 3, 1)
	h.drained(h.cfg.STTTopic)
	if n := len(h.events.insights(sess.Id, 1)); n != 0 {
		t.Fatalf("%d insights before the transcript arrived, want 0 (the span waits for it)", n)
	}
	h.transcript(sess, group, newID(), "Plants use light energy from the sun to make glucose in their leaves.", base, base.Add(15*time.Second))
	testenv.Eventually(t, "the analysis with the transcript", func() bool { return len(h.events.insights(sess.Id, 1)) == 1 })
	if ins := insightOf(t, h.events.insights(sess.Id, 1)[0]); ins.GetMetrics().GetTopicalFocus() == 0 || len(ins.GetEvidence()) == 0 {
		t.Errorf("the analysis did not measure the transcript: %v", ins)
	}

	// Transcription never comes (off, failed): after the grace the span is analysed without it.
	next := base.Add(15 * time.Second)
	h.activity(sess, group, newID(), next, next.Add(15*time.Second), 12, 3, 1)
	h.drained(h.cfg.STTTopic)
	if n := len(h.events.insights(sess.Id, 1)); n != 1 {
		t.Fatalf("%d insights inside the grace, want still 1", n)
	}
	h.clock.Add(40 * time.Second) // the second window closed 26 s ago
	later := next.Add(15 * time.Second)
	h.activity(sess, group, newID(), later, later.Add(15*time.Second), 0.5, 14.5, 10)
	testenv.Eventually(t, "the analysis after the grace", func() bool { return len(h.events.insights(sess.Id, 1)) == 2 })
}
