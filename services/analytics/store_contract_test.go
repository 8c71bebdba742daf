package analytics

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	busevents "github.com/classwaves/classwaves/pkg/events"
	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/store/storetest"
)

// TestStoreContract runs the Store contract against SQLite and PostgreSQL.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	storetest.ForEachProvider(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		st := newSQLStore(db)
		now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
		st.now = func() time.Time { return now }
		ctx := context.Background()
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := st.Migrate(ctx); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		t.Run("apply", func(t *testing.T) { testApply(t, st, now) })
		t.Run("claims", func(t *testing.T) { testClaims(t, st, now) })
		t.Run("summaries", func(t *testing.T) { testSummaryPhase(t, st, now) })
		t.Run("stats", func(t *testing.T) { testStats(t, st, now) })
	})
}

func apply(t *testing.T, st *sqlStore, c Change) bool {
	t.Helper()
	if c.EventID == "" {
		c.EventID = newID()
	}
	applied, err := st.Apply(context.Background(), c)
	if err != nil {
		t.Fatalf("Apply %+v: %v", c, err)
	}
	return applied
}

func testApply(t *testing.T, st *sqlStore, now time.Time) {
	ctx := context.Background()
	s, g1, g2 := newID(), newID(), newID()
	at := func(sec int) time.Time { return now.Add(time.Duration(sec) * time.Second) }
	status := func(status string, sec int) Change {
		return Change{Kind: kindSessionStatus, Type: busevents.SessionStatusChanged, SessionID: s, SchoolID: schoolA, At: at(sec), Status: status, TeacherID: teacher1}
	}
	speech := Change{EventID: newID(), Kind: kindSpeech, Type: busevents.SpeechActivity, SessionID: s, GroupID: g1, At: at(5), Speech: 10, Silence: 5, LongestSilence: 3}
	if !apply(t, st, speech) {
		t.Fatal("first Apply not applied")
	}
	if apply(t, st, speech) {
		t.Error("a redelivered event was applied again")
	}
	apply(t, st, Change{Kind: kindSpeech, Type: busevents.SpeechActivity, SessionID: s, GroupID: g1, At: at(6), Speech: 2, Silence: 7.5, LongestSilence: 7.5})
	apply(t, st, Change{Kind: kindSpeech, Type: busevents.SpeechActivity, SessionID: s, GroupID: g1, At: at(7), Speech: 1, Silence: 1, LongestSilence: 1})
	apply(t, st, status("active", 10))
	apply(t, st, status("paused", 20))
	apply(t, st, status("active", 30))
	apply(t, st, status("ended", 40))
	apply(t, st, status("active", 50)) // late: an ended session stays ended
	for i, sp := range []string{"", "spk-a", "spk-a", "spk-b"} {
		apply(t, st, Change{Kind: kindTranscript, Type: busevents.Transcript, SessionID: s, GroupID: g1, At: at(60 + i), TranscriptID: newID(),
			Words: int64(3 + i), Seconds: 15, Speaker: sp, Text: "text " + sp, WindowStart: at(60 + i)})
	}
	apply(t, st, Change{Kind: kindTranscript, Type: busevents.Transcript, SessionID: s, GroupID: g2, At: at(70), TranscriptID: newID(), Words: 0, Seconds: 15})
	apply(t, st, Change{Kind: kindGroupStatus, Type: busevents.GroupStatusChanged, SessionID: s, GroupID: g2, At: at(80), Ready: false})
	apply(t, st, Change{Kind: kindGroupStatus, Type: busevents.GroupStatusChanged, SessionID: s, GroupID: g2, At: at(81), Ready: true})
	apply(t, st, Change{Kind: kindGroupStatus, Type: busevents.GroupStatusChanged, SessionID: s, GroupID: g2, At: at(82), Ready: true})
	students := []string{newID(), newID(), newID()}
	apply(t, st, Change{Kind: kindMemberJoined, Type: busevents.GroupMemberJoined, SessionID: s, GroupID: g2, At: at(92), StudentID: students[0]})
	apply(t, st, Change{Kind: kindMemberJoined, Type: busevents.GroupMemberJoined, SessionID: s, GroupID: g2, At: at(91), StudentID: students[1]})
	apply(t, st, Change{Kind: kindMemberJoined, Type: busevents.GroupMemberJoined, SessionID: s, GroupID: g2, At: at(99), StudentID: students[1]}) // rejoin event
	apply(t, st, Change{Kind: kindMemberJoined, Type: busevents.GroupMemberJoined, SessionID: s, GroupID: g1, At: at(93), StudentID: students[2]})
	apply(t, st, Change{Kind: kindInsight, Type: busevents.InsightProduced, SessionID: s, GroupID: g1, At: at(100), Tier: 1, OnTopic: true, Questions: 2})
	apply(t, st, Change{Kind: kindInsight, Type: busevents.InsightProduced, SessionID: s, GroupID: g1, At: at(101), Tier: 1, OnTopic: false, Questions: 1})
	apply(t, st, Change{Kind: kindInsight, Type: busevents.InsightProduced, SessionID: s, At: at(102), Tier: 2})
	p1, p2, p3 := newID(), newID(), newID()
	apply(t, st, Change{Kind: kindPromptRaised, Type: busevents.PromptRaised, SessionID: s, GroupID: g1, At: at(110), PromptID: p1})
	apply(t, st, Change{Kind: kindPromptRaised, Type: busevents.PromptRaised, SessionID: s, GroupID: g1, At: at(111), PromptID: p2})
	apply(t, st, Change{Kind: kindPromptActed, Type: busevents.PromptActed, SessionID: s, At: at(112), PromptID: p1, PromptState: "acknowledged"})
	apply(t, st, Change{Kind: kindPromptActed, Type: busevents.PromptActed, SessionID: s, At: at(113), PromptID: p3, PromptState: "acknowledged"}) // acted before raised arrived
	apply(t, st, Change{Kind: kindPromptRaised, Type: busevents.PromptRaised, SessionID: s, GroupID: g1, At: at(114), PromptID: p3})

	got, found, err := st.Session(ctx, s)
	if err != nil || !found {
		t.Fatalf("Session = %v, %v", found, err)
	}
	start, end := at(10), at(40)
	want := SessionState{SessionID: s, SchoolID: schoolA, TeacherID: teacher1, Status: "ended", StartedAt: &start, EndedAt: &end,
		SessionInsights: 1, Prompts: 3, PromptsAcknowledged: 2, FirstSeen: now}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("session mismatch (-want +got):\n%s", diff)
	}
	groups, err := st.Groups(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	ready, j1, j2 := at(81), at(93), at(91)
	wantGroups := []GroupState{
		{GroupID: g1, SpeakingSeconds: 13, SilenceSeconds: 13.5, LongestSilenceSeconds: 7.5, TranscribedSeconds: 60,
			Words: 3 + 4 + 5 + 6, Turns: 4, Questions: 3, Tier1: 2, OnTopic: 1, Insights: 2, Members: 1, FirstJoinAt: &j1,
			SpeakerWords: map[string]int64{"spk-a": 4 + 5, "spk-b": 6}},
		{GroupID: g2, TranscribedSeconds: 15, ReadyAt: &ready, Members: 2, FirstJoinAt: &j2},
	}
	if g2 < g1 {
		wantGroups[0], wantGroups[1] = wantGroups[1], wantGroups[0]
	}
	if diff := cmp.Diff(wantGroups, groups); diff != "" {
		t.Errorf("groups mismatch (-want +got):\n%s", diff)
	}
	members, err := st.Members(ctx, s)
	if err != nil || len(members) != 3 || members[0].StudentID != students[1] || !members[0].JoinedAt.Equal(at(91)) {
		t.Errorf("Members = %+v, %v", members, err)
	}
	texts, err := st.TranscriptTexts(ctx, s)
	if err != nil || len(texts) != 4 || texts[0].Text != "text " || texts[3].Text != "text spk-b" || !texts[1].WindowStart.Equal(at(61)) {
		t.Errorf("TranscriptTexts = %+v, %v", texts, err)
	}
	if _, found, err := st.Session(ctx, newID()); err != nil || found {
		t.Errorf("unknown session: %v %v", found, err)
	}
	if _, err := st.Apply(ctx, Change{Kind: kindSpeech, SessionID: s}); err == nil {
		t.Error("a change without an event id was applied")
	}

	// Concurrent increments of one group from many writers lose nothing.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if _, err := st.Apply(ctx, Change{EventID: newID(), Kind: kindSpeech, Type: busevents.SpeechActivity, SessionID: s, GroupID: g2, At: now, Speech: 1, Silence: 0.5}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	groups, err = st.Groups(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if g.GroupID == g2 && (g.SpeakingSeconds != 40 || g.SilenceSeconds != 20) {
			t.Errorf("after 40 concurrent increments: speaking %v silence %v, want 40 and 20", g.SpeakingSeconds, g.SilenceSeconds)
		}
	}

	// RecordContext names the groups and records the roster.
	if err := st.RecordContext(ctx, ContextRecord{SessionID: s, SchoolID: schoolA, TeacherID: teacher1, Title: "T", Objectives: []string{"o1", "o2"},
		GroupCount: 2, StudentCount: 7, Groups: []GroupName{{GroupID: g1, Name: "Reds"}, {GroupID: g2, Name: "Blues"}}}, now); err != nil {
		t.Fatal(err)
	}
	got, _, _ = st.Session(ctx, s)
	if got.Title != "T" || got.StudentCount != 7 || got.GroupCount != 2 || !cmp.Equal(got.Objectives, []string{"o1", "o2"}) || got.Status != "ended" {
		t.Errorf("after RecordContext: %+v", got)
	}
	groups, _ = st.Groups(ctx, s)
	for _, g := range groups {
		if (g.GroupID == g1 && g.Name != "Reds") || (g.GroupID == g2 && g.Name != "Blues") {
			t.Errorf("group %s named %q", g.GroupID, g.Name)
		}
	}

	// Old event ids and kept transcript text are forgotten.
	if n, err := st.Purge(ctx, now.Add(time.Hour)); err != nil || n == 0 {
		t.Errorf("Purge = %d, %v", n, err)
	}
	if !apply(t, st, speech) {
		t.Error("a purged event id is still known")
	}
	if texts, err := st.TranscriptTexts(ctx, s); err != nil || len(texts) != 0 {
		t.Errorf("texts after Purge = %v, %v", texts, err)
	}
}

func testClaims(t *testing.T, st *sqlStore, now time.Time) {
	ctx := context.Background()
	s := newID()
	lease := 30 * time.Second
	claim := func(owner string, at time.Time, retry bool) (ClaimOutcome, Finalization) {
		t.Helper()
		out, f, err := st.Claim(ctx, ClaimRequest{SessionID: s, Owner: owner, Now: at, Lease: lease, RetryFailed: retry})
		if err != nil {
			t.Fatal(err)
		}
		return out, f
	}
	if out, f := claim("a", now, false); out != Claimed || f.Status != statusFinalizing || f.Owner != "a" || f.Attempts != 1 || !f.LeaseUntil.Equal(now.Add(lease)) {
		t.Fatalf("first claim = %v %+v", out, f)
	}
	if out, _ := claim("b", now.Add(time.Second), true); out != InProgress {
		t.Errorf("claim during the lease = %v, want InProgress", out)
	}
	// The lease ran out: b takes over; a's late writes are refused.
	if out, f := claim("b", now.Add(lease+time.Second), false); out != Claimed || f.Owner != "b" || f.Attempts != 2 {
		t.Fatalf("takeover = %v %+v", out, f)
	}
	if err := st.Fail(ctx, s, "a", "x", newID(), now); !errors.Is(err, errLostClaim) {
		t.Errorf("Fail by the old owner = %v", err)
	}
	if err := st.Complete(ctx, "a", FinalResult{SessionID: s, FinalizedAt: now, JSON: []byte(`{}`), EventID: newID()}); !errors.Is(err, errLostClaim) {
		t.Errorf("Complete by the old owner = %v", err)
	}
	failEvent := newID()
	if err := st.Fail(ctx, s, "b", reasonSessionUnavailable, failEvent, now.Add(lease+2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if out, f := claim("c", now.Add(lease+3*time.Second), false); out != AlreadyFailed || f.FailureReason != reasonSessionUnavailable || f.EventID != failEvent || f.Published {
		t.Errorf("claim after a failure = %v %+v", out, f)
	}
	if err := st.MarkPublished(ctx, s, failEvent); err != nil {
		t.Fatal(err)
	}
	if out, f := claim("c", now.Add(lease+4*time.Second), true); out != Claimed || f.Attempts != 3 || f.FailureReason != "" || f.EventID != "" {
		t.Fatalf("retry of a failure = %v %+v", out, f)
	}
	end := now.Add(time.Hour)
	r := FinalResult{SessionID: s, SchoolID: schoolA, TeacherID: teacher1, ParticipationRate: 50, EngagementScore: 61.5, DurationSeconds: 600,
		GroupCount: 2, StudentCount: 4, JoinedStudentCount: 2, InsightCount: 3, PromptCount: 1, SpeakingSeconds: 12.5, WordCount: 40,
		EndedAt: &end, FinalizedAt: now.Add(lease + 5*time.Second), JSON: []byte(`{"sessionId":"x"}`), EventID: newID()}
	if err := st.Complete(ctx, "c", r); err != nil {
		t.Fatal(err)
	}
	if err := st.Complete(ctx, "c", r); !errors.Is(err, errLostClaim) {
		t.Errorf("second Complete = %v, want errLostClaim", err)
	}
	if out, _ := claim("d", now.Add(2*time.Hour), true); out != AlreadyFinalized {
		t.Errorf("claim of a finalized session = %v", out)
	}
	js, found, err := st.FinalAnalytics(ctx, s)
	if err != nil || !found || string(js) != `{"sessionId":"x"}` && string(js) != `{"sessionId": "x"}` {
		t.Errorf("FinalAnalytics = %s %v %v", js, found, err)
	}
	f, found, err := st.Finalization(ctx, s)
	if err != nil || !found || f.Status != statusFinalized || f.EventID != r.EventID || f.Published || f.SummaryStatus != "" {
		t.Errorf("Finalization = %+v %v %v", f, found, err)
	}
	if _, found, err := st.Finalization(ctx, newID()); err != nil || found {
		t.Errorf("Finalization of an unknown session: %v %v", found, err)
	}

	// The outbox: the unpublished event is found by the sweep once stale, taken once, and marked.
	later := now.Add(3 * time.Hour)
	w, err := st.Sweep(ctx, later, later.Add(-lease), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Unpublished) != 1 || w.Unpublished[0].EventID != r.EventID {
		t.Fatalf("unpublished = %+v", w.Unpublished)
	}
	ok1, err1 := st.ClaimRepublish(ctx, s, r.EventID, later.Add(-lease), later)
	ok2, err2 := st.ClaimRepublish(ctx, s, r.EventID, later.Add(-lease), later)
	if err1 != nil || err2 != nil || !ok1 || ok2 {
		t.Errorf("ClaimRepublish twice = %v %v, %v %v; want true then false", ok1, err1, ok2, err2)
	}
	if err := st.MarkPublished(ctx, s, r.EventID); err != nil {
		t.Fatal(err)
	}
	w, err = st.Sweep(ctx, later.Add(time.Hour), later, 10)
	if err != nil || len(w.Unpublished) != 0 {
		t.Errorf("unpublished after MarkPublished = %+v, %v", w.Unpublished, err)
	}

	// Concurrent claims: exactly one wins.
	s2 := newID()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		won int
	)
	for i := range 6 {
		wg.Go(func() {
			out, _, err := st.Claim(ctx, ClaimRequest{SessionID: s2, Owner: string(rune('a' + i)), Now: now, Lease: lease})
			if err != nil {
				t.Error(err)
				return
			}
			if out == Claimed {
				mu.Lock()
				won++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d concurrent claims won, want 1", won)
	}
	// Stuck (lease ran out) and missed (ended, never claimed) sessions are found by the sweep.
	s3 := newID()
	apply(t, st, Change{Kind: kindSessionStatus, Type: busevents.SessionStatusChanged, SessionID: s3, At: now, Status: "ended"})
	w, err = st.Sweep(ctx, now.Add(time.Minute), now.Add(time.Second), 100)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(w.Finalize, s2) || !contains(w.Finalize, s3) || contains(w.Finalize, s) {
		t.Errorf("sweep finalize = %v, want %s and %s", w.Finalize, s2, s3)
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func testSummaryPhase(t *testing.T, st *sqlStore, now time.Time) {
	ctx := context.Background()
	s, g1, g2 := newID(), newID(), newID()
	lease := 30 * time.Second
	apply(t, st, Change{Kind: kindTranscript, Type: busevents.Transcript, SessionID: s, GroupID: g1, At: now, TranscriptID: newID(), Words: 2, Text: "hello there", WindowStart: now})
	if out, _, err := st.Claim(ctx, ClaimRequest{SessionID: s, Owner: "a", Now: now, Lease: lease}); err != nil || out != Claimed {
		t.Fatalf("Claim = %v %v", out, err)
	}
	r := FinalResult{SessionID: s, SchoolID: schoolA, TeacherID: teacher1, FinalizedAt: now, JSON: []byte(`{}`), EventID: newID(),
		Summaries: []GroupName{{GroupID: g1, Name: "One"}, {GroupID: g2, Name: "Two"}}, SummaryLeaseUntil: now.Add(lease)}
	if err := st.Complete(ctx, "a", r); err != nil {
		t.Fatal(err)
	}
	set, err := st.Summaries(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if set.Status != summaryPending || len(set.Rows) != 3 {
		t.Fatalf("summaries after Complete = %+v", set)
	}
	for _, row := range set.Rows {
		if row.Status != summaryPending || row.JSON != nil {
			t.Errorf("row %+v, want pending without content", row)
		}
	}
	// The finalizer holds the summaries claim; nobody else gets it during the lease.
	if ok, err := st.ClaimSummaries(ctx, s, "b", now.Add(time.Second), now.Add(lease)); err != nil || ok {
		t.Errorf("ClaimSummaries during the lease = %v %v", ok, err)
	}
	w, err := st.Sweep(ctx, now.Add(time.Second), now, 10)
	if err != nil || contains(w.Summaries, s) {
		t.Errorf("sweep during the summaries lease = %v %v", w.Summaries, err)
	}
	w, err = st.Sweep(ctx, now.Add(lease+time.Second), now, 10)
	if err != nil || !contains(w.Summaries, s) {
		t.Errorf("sweep after the summaries lease = %v %v", w.Summaries, err)
	}
	if ok, err := st.ClaimSummaries(ctx, s, "b", now.Add(lease+time.Second), now.Add(2*lease)); err != nil || !ok {
		t.Fatalf("ClaimSummaries after the lease = %v %v", ok, err)
	}
	rows := []SummaryRow{
		{GroupID: "", Status: summaryReady, JSON: []byte(`{"text":"s"}`), Summarizer: BuiltinName},
		{GroupID: g1, GroupName: "One", Status: summaryReady, JSON: []byte(`{"text":"g1"}`), Summarizer: BuiltinName},
		{GroupID: g2, GroupName: "Two", Status: summaryReady, JSON: []byte(`{"text":"g2"}`), Summarizer: BuiltinName},
	}
	if err := st.SaveSummaries(ctx, s, "a", rows, newID(), now); !errors.Is(err, errLostClaim) {
		t.Errorf("SaveSummaries by the old owner = %v", err)
	}
	ev := newID()
	if err := st.SaveSummaries(ctx, s, "b", rows, ev, now.Add(lease+2*time.Second)); err != nil {
		t.Fatal(err)
	}
	set, err = st.Summaries(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, row := range set.Rows {
		got[row.GroupID+"/"+row.Status+"/"+row.GroupName] = string(row.JSON)
	}
	want := map[string]string{"/ready/": `{"text": "s"}`, g1 + "/ready/One": `{"text": "g1"}`, g2 + "/ready/Two": `{"text": "g2"}`}
	if set.Status != summaryReady || !cmp.Equal(want, got, cmpopts.AcyclicTransformer("nospace", func(s string) string {
		out := []rune{}
		for _, r := range s {
			if r != ' ' {
				out = append(out, r)
			}
		}
		return string(out)
	})) {
		t.Errorf("summaries = %s %v", set.Status, got)
	}
	if texts, err := st.TranscriptTexts(ctx, s); err != nil || len(texts) != 0 {
		t.Errorf("texts after SaveSummaries = %v %v", texts, err)
	}
	f, _, _ := st.Finalization(ctx, s)
	if f.SummaryStatus != summaryReady || f.SummaryEventID != ev || f.SummaryPublished {
		t.Errorf("finalization after summaries = %+v", f)
	}
	if err := st.MarkPublished(ctx, s, ev); err != nil {
		t.Fatal(err)
	}
	if f, _, _ := st.Finalization(ctx, s); !f.SummaryPublished || f.Published {
		t.Errorf("MarkPublished of the summaries event marked %+v", f)
	}
	if ok, err := st.RestartSummaries(ctx, s, "c", nil, now, now.Add(lease)); err != nil || ok {
		t.Errorf("RestartSummaries of ready summaries = %v %v", ok, err)
	}

	// A failed phase is restarted by RestartSummaries.
	s2 := newID()
	if out, _, err := st.Claim(ctx, ClaimRequest{SessionID: s2, Owner: "a", Now: now, Lease: lease}); err != nil || out != Claimed {
		t.Fatal(out, err)
	}
	if err := st.Complete(ctx, "a", FinalResult{SessionID: s2, FinalizedAt: now, JSON: []byte(`{}`), EventID: newID(), Summaries: []GroupName{}, SummaryLeaseUntil: now.Add(lease)}); err != nil {
		t.Fatal(err)
	}
	if err := st.FailSummaries(ctx, s2, "a", reasonSummaryStore, now); err != nil {
		t.Fatal(err)
	}
	set, _ = st.Summaries(ctx, s2)
	if set.Status != summaryFailed || len(set.Rows) != 1 || set.Rows[0].Status != summaryFailed {
		t.Errorf("failed summaries = %+v", set)
	}
	if ok, err := st.RestartSummaries(ctx, s2, "b", []GroupName{{GroupID: g1, Name: "One"}}, now, now.Add(lease)); err != nil || !ok {
		t.Fatalf("RestartSummaries = %v %v", ok, err)
	}
	set, _ = st.Summaries(ctx, s2)
	if set.Status != summaryPending || len(set.Rows) != 2 {
		t.Errorf("restarted summaries = %+v", set)
	}
	if set, err := st.Summaries(ctx, newID()); err != nil || set.Status != "" || len(set.Rows) != 0 {
		t.Errorf("summaries of an unknown session = %+v %v", set, err)
	}
}

func testStats(t *testing.T, st *sqlStore, now time.Time) {
	ctx := context.Background()
	school := newID() // a school of its own, apart from the other subtests' sessions
	s1, s2, g := newID(), newID(), newID()
	for _, c := range []Change{
		{Kind: kindSessionStatus, SessionID: s1, SchoolID: school, Status: "active", TeacherID: teacher1},
		{Kind: kindSessionStatus, SessionID: s2, SchoolID: school, Status: "ended", TeacherID: teacher2},
		{Kind: kindMemberJoined, SessionID: s1, SchoolID: school, GroupID: g, StudentID: newID()},
		{Kind: kindMemberJoined, SessionID: s2, SchoolID: school, GroupID: newID(), StudentID: newID()},
		{Kind: kindTranscript, SessionID: s1, SchoolID: school, GroupID: g, Words: 5, Seconds: 90, TranscriptID: newID()},
		{Kind: kindInsight, SessionID: s1, SchoolID: school, GroupID: g, Tier: 1},
		{Kind: kindInsight, SessionID: s1, SchoolID: school, Tier: 2},
	} {
		c.At, c.Type = now, "t"
		apply(t, st, c)
	}
	if out, _, err := st.Claim(ctx, ClaimRequest{SessionID: s2, Owner: "a", Now: now, Lease: time.Minute}); err != nil || out != Claimed {
		t.Fatal(out, err)
	}
	if err := st.Complete(ctx, "a", FinalResult{SessionID: s2, SchoolID: school, TeacherID: teacher2, ParticipationRate: 80, EngagementScore: 60,
		FinalizedAt: now, JSON: []byte(`{}`), EventID: newID()}); err != nil {
		t.Fatal(err)
	}
	stats, err := st.SchoolStats(ctx, now.Add(-time.Hour), school)
	if err != nil {
		t.Fatal(err)
	}
	want := []SchoolStats{{SchoolID: school, Teachers: 2, Sessions: 2, ActiveSessions: 1, Students: 2, AverageEngagement: 60,
		AverageParticipation: 80, TranscribedSeconds: 90, Insights: 2, FinalizedSessionsCounted: 1}}
	if diff := cmp.Diff(want, stats); diff != "" {
		t.Errorf("SchoolStats mismatch (-want +got):\n%s", diff)
	}
	if stats, err := st.SchoolStats(ctx, now.Add(time.Hour), school); err != nil || len(stats) != 0 {
		t.Errorf("SchoolStats after the period = %+v %v", stats, err)
	}
	all, err := st.SchoolStats(ctx, now.Add(-time.Hour), "")
	if err != nil || !containsSchool(all, school) {
		t.Errorf("SchoolStats of every school = %+v %v", all, err)
	}
	f, err := st.Figures(ctx)
	if err != nil || f.ActiveSessions < 1 || f.Finalized < 1 {
		t.Errorf("Figures = %+v %v", f, err)
	}
	if err := st.Ping(ctx); err != nil {
		t.Error(err)
	}
}

func containsSchool(stats []SchoolStats, id string) bool {
	for _, s := range stats {
		if s.SchoolID == id {
			return true
		}
	}
	return false
}
