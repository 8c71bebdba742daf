package guidance

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/store/storetest"
)

// TestStoreContract runs the Store contract against SQLite and PostgreSQL.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	storetest.ForEachProvider(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		st := newSQLStore(db)
		if err := st.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		// Migrating again changes nothing.
		if err := st.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Run("turns and activity", func(t *testing.T) { testStoreTurns(t, st) })
		t.Run("cursor", func(t *testing.T) { testStoreCursor(t, st) })
		t.Run("insights", func(t *testing.T) { testStoreInsights(t, st) })
		t.Run("prompts", func(t *testing.T) { testStorePrompts(t, st) })
		t.Run("raise prompt concurrently", func(t *testing.T) { testStoreRaiseConcurrent(t, st) })
		t.Run("sessions and tier 2", func(t *testing.T) { testStoreSessions(t, st) })
	})
}

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func testStoreTurns(t *testing.T, st *sqlStore) {
	ctx := t.Context()
	session, g1, g2 := newID(), newID(), newID()
	turn := func(id, group string, start int) Turn {
		return Turn{ID: id, SessionID: session, GroupID: group, SchoolID: schoolA, Text: "text of " + id, Speaker: "A",
			WordCount: 3, WindowStart: at(start), WindowEnd: at(start + 15)}
	}
	ids := []string{newID(), newID(), newID(), newID()}
	for i, id := range ids {
		ok, err := st.InsertTurn(ctx, turn(id, g1, 15*i))
		if err != nil || !ok {
			t.Fatalf("InsertTurn %d = %v, %v; want true, nil", i, ok, err)
		}
	}
	// Idempotent by id: a redelivered transcript changes nothing.
	dup := turn(ids[0], g1, 999)
	dup.Text = "changed"
	if ok, err := st.InsertTurn(ctx, dup); err != nil || ok {
		t.Fatalf("InsertTurn duplicate = %v, %v; want false, nil", ok, err)
	}
	if _, err := st.InsertTurn(ctx, turn(newID(), g2, 0)); err != nil {
		t.Fatal(err)
	}
	got, err := st.Turns(ctx, session, g1, time.Time{}, time.Time{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []Turn{turn(ids[0], g1, 0), turn(ids[1], g1, 15), turn(ids[2], g1, 30), turn(ids[3], g1, 45)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Turns mismatch (-want +got):\n%s", diff)
	}
	// (after, until] by window end; limit keeps the newest, oldest first.
	got, _ = st.Turns(ctx, session, g1, at(15), at(60), 10)
	if len(got) != 3 || got[0].ID != ids[1] || got[2].ID != ids[3] {
		t.Errorf("Turns(after 15, until 60) = %v", turnIDs(got))
	}
	got, _ = st.Turns(ctx, session, g1, time.Time{}, time.Time{}, 2)
	if len(got) != 2 || got[0].ID != ids[2] || got[1].ID != ids[3] {
		t.Errorf("Turns(limit 2) = %v, want the newest two oldest first", turnIDs(got))
	}
	got, _ = st.Turns(ctx, session, "", time.Time{}, time.Time{}, 10)
	if len(got) != 5 {
		t.Errorf("Turns(every group) = %d turns, want 5", len(got))
	}
	got, _ = st.TurnsBefore(ctx, session, g1, at(45), 2)
	if len(got) != 2 || got[0].ID != ids[1] || got[1].ID != ids[2] {
		t.Errorf("TurnsBefore(45, 2) = %v", turnIDs(got))
	}
	if _, err := st.Turns(ctx, session, g1, time.Time{}, time.Time{}, 0); err == nil {
		t.Error("Turns with limit 0 accepted")
	}

	act := Activity{WindowID: newID(), SessionID: session, GroupID: g1, SchoolID: schoolA, WindowStart: at(60), WindowEnd: at(75),
		SpeechSeconds: 2.5, SilenceSeconds: 12.5, LongestSilenceSeconds: 9}
	if ok, err := st.InsertActivity(ctx, act); err != nil || !ok {
		t.Fatalf("InsertActivity = %v, %v", ok, err)
	}
	if ok, err := st.InsertActivity(ctx, act); err != nil || ok {
		t.Fatalf("InsertActivity duplicate = %v, %v; want false, nil", ok, err)
	}
	acts, err := st.Activity(ctx, session, g1, at(60), time.Time{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Activity{act}, acts); diff != "" {
		t.Errorf("Activity mismatch (-want +got):\n%s", diff)
	}
	// The pending span covers turns and activity after the cursor.
	span, found, err := st.PendingSpan(ctx, session, g1, time.Time{})
	if err != nil || !found || !span.Start.Equal(at(0)) || !span.End.Equal(at(75)) {
		t.Errorf("PendingSpan(all) = %+v, %v, %v; want [0, 75]", span, found, err)
	}
	span, found, _ = st.PendingSpan(ctx, session, g1, at(45))
	if !found || !span.Start.Equal(at(45)) || !span.End.Equal(at(75)) {
		t.Errorf("PendingSpan(after 45) = %+v, %v; want [45, 75]", span, found)
	}
	if _, found, _ = st.PendingSpan(ctx, session, g1, at(75)); found {
		t.Error("PendingSpan after the last window found a span")
	}
	if _, found, _ = st.PendingSpan(ctx, newID(), g1, time.Time{}); found {
		t.Error("PendingSpan of an unknown session found a span")
	}
}

func turnIDs(ts []Turn) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func testStoreCursor(t *testing.T, st *sqlStore) {
	ctx := t.Context()
	session, group := newID(), newID()
	if c, err := st.Cursor(ctx, session, group); err != nil || !c.IsZero() {
		t.Fatalf("Cursor of a new group = %v, %v; want zero", c, err)
	}
	steps := []struct {
		from, to time.Time
		want     bool
	}{
		{time.Time{}, at(30), true},
		{time.Time{}, at(60), false}, // someone else set it first
		{at(0), at(60), false},       // not where the cursor is
		{at(30), at(60), true},
		{at(30), at(90), false}, // a redelivery after the move
	}
	for i, s := range steps {
		ok, err := st.AdvanceCursor(ctx, session, group, s.from, s.to)
		if err != nil || ok != s.want {
			t.Errorf("step %d: AdvanceCursor(%v -> %v) = %v, %v; want %v", i, s.from, s.to, ok, err, s.want)
		}
	}
	if c, _ := st.Cursor(ctx, session, group); !c.Equal(at(60)) {
		t.Errorf("Cursor = %v, want %v", c, at(60))
	}
}

func tier1(session, group string, created time.Time, focus float64) *guidancev1.Tier1Insight {
	return &guidancev1.Tier1Insight{
		Id: newID(), SessionId: session, GroupId: group,
		Metrics:      &guidancev1.Tier1Metrics{TopicalFocus: focus, OffTaskRatio: 0.4, QuestionCount: 2, SilenceSeconds: 3},
		Observations: []string{"observed"},
		Evidence:     []*guidancev1.Evidence{{WindowId: newID(), Excerpt: "we think", At: timestamppb.New(created)}},
		Confidence:   0.8, Analyzer: "builtin",
		WindowStart: timestamppb.New(created.Add(-30 * time.Second)), WindowEnd: timestamppb.New(created),
		CreatedAt: timestamppb.New(created),
	}
}

func testStoreInsights(t *testing.T, st *sqlStore) {
	ctx := t.Context()
	session, g1, g2 := newID(), newID(), newID()
	if err := st.UpsertSession(ctx, SessionState{SessionID: session, SchoolID: schoolA, TeacherID: "t1", Status: sessionActive}, at(180)); err != nil {
		t.Fatal(err)
	}
	a := tier1(session, g1, at(30), 0.7)
	ok, err := st.SaveTier1(ctx, a, schoolA, []string{"off_task", "silence"}, time.Time{}, at(30))
	if err != nil || !ok {
		t.Fatalf("SaveTier1 = %v, %v", ok, err)
	}
	// The cursor moved with it; the same span again (a redelivery) stores nothing.
	if c, _ := st.Cursor(ctx, session, g1); !c.Equal(at(30)) {
		t.Errorf("cursor after SaveTier1 = %v, want %v", c, at(30))
	}
	dup := tier1(session, g1, at(31), 0.7)
	if ok, err := st.SaveTier1(ctx, dup, schoolA, nil, time.Time{}, at(30)); err != nil || ok {
		t.Errorf("SaveTier1 of an analysed span = %v, %v; want false, nil", ok, err)
	}
	b := tier1(session, g1, at(60), 0.2)
	if ok, err := st.SaveTier1(ctx, b, schoolA, nil, at(30), at(60)); err != nil || !ok {
		t.Fatalf("SaveTier1 = %v, %v", ok, err)
	}
	c := tier1(session, g2, at(45), 0.5)
	// Without a cursor move (an on-demand analysis).
	if ok, err := st.SaveTier1(ctx, c, schoolA, nil, time.Time{}, time.Time{}); err != nil || !ok {
		t.Fatalf("SaveTier1 = %v, %v", ok, err)
	}
	got, err := st.ListTier1(ctx, InsightQuery{SessionID: session, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*guidancev1.Tier1Insight{b, c, a}, got, protocmp.Transform()); diff != "" {
		t.Errorf("ListTier1 mismatch (-want +got):\n%s", diff)
	}
	got, _ = st.ListTier1(ctx, InsightQuery{SessionID: session, GroupID: g1, Since: at(40), Limit: 10})
	if len(got) != 1 || got[0].GetId() != b.GetId() {
		t.Errorf("ListTier1(group, since) = %d insights", len(got))
	}
	got, _ = st.ListTier1(ctx, InsightQuery{SessionID: session, Limit: 1})
	if len(got) != 1 || got[0].GetId() != b.GetId() {
		t.Errorf("ListTier1(limit 1) answered %d", len(got))
	}
	// Previous alerts: the group's latest insight other than the one named.
	prev, found, err := st.PreviousAlerts(ctx, session, g1, b.GetId())
	if err != nil || !found || !cmp.Equal(prev, []string{"off_task", "silence"}) {
		t.Errorf("PreviousAlerts = %v, %v, %v", prev, found, err)
	}
	if prev, found, _ := st.PreviousAlerts(ctx, session, g2, c.GetId()); found || prev != nil {
		t.Errorf("PreviousAlerts of a first insight = %v, %v", prev, found)
	}
	ss, err := st.GetSession(ctx, session)
	if err != nil || !ss.LastTier1At.Equal(at(60)) {
		t.Errorf("session's last tier 1 = %v, %v; want %v", ss.LastTier1At, err, at(60))
	}

	t2 := &guidancev1.Tier2Insight{Id: newID(), SessionId: session, Summary: "summary", Confidence: 0.6, Analyzer: "builtin",
		Groups:          []*guidancev1.GroupAnalysis{{GroupId: g1, Argumentation: &guidancev1.Argumentation{Claims: 0.5}, CollaborationPatterns: []string{"building_on_ideas"}}},
		Recommendations: []*guidancev1.Recommendation{{GroupId: g1, Text: "Ask why", Priority: "high", Category: "deepen"}},
		CreatedAt:       timestamppb.New(at(90))}
	if err := st.SaveTier2(ctx, t2, schoolA); err != nil {
		t.Fatal(err)
	}
	got2, err := st.ListTier2(ctx, InsightQuery{SessionID: session, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*guidancev1.Tier2Insight{t2}, got2, protocmp.Transform()); diff != "" {
		t.Errorf("ListTier2 mismatch (-want +got):\n%s", diff)
	}
}

func newPrompt(session, group, category string, created time.Time) *Prompt {
	return &Prompt{ID: newID(), SessionID: session, GroupID: group, SchoolID: schoolA, TeacherID: "teacher-1", Kind: KindAlert,
		Category: category, Priority: PriorityHigh, Message: "m", Reason: "r", InsightID: newID(), Status: StatusPending, Tier: 1,
		DedupeKey: KindAlert + ":" + category, CreatedAt: created, ExpiresAt: created.Add(10 * time.Minute)}
}

func testStorePrompts(t *testing.T, st *sqlStore) {
	ctx := t.Context()
	session, group := newID(), newID()
	slot := PromptSlot{SessionID: session, GroupID: group, Kind: KindAlert, Category: CategoryOffTask}
	var seen []*Prompt
	first := newPrompt(session, group, CategoryOffTask, at(0))
	got, err := st.RaisePrompt(ctx, slot, func(last *Prompt) *Prompt { seen = append(seen, last); return first })
	if err != nil || got == nil || got.ID != first.ID {
		t.Fatalf("RaisePrompt = %v, %v", got, err)
	}
	// decide sees the slot's latest prompt; answering nil stores nothing.
	got, err = st.RaisePrompt(ctx, slot, func(last *Prompt) *Prompt { seen = append(seen, last); return nil })
	if err != nil || got != nil {
		t.Fatalf("RaisePrompt(nil) = %v, %v", got, err)
	}
	if len(seen) != 2 || seen[0] != nil || seen[1] == nil || seen[1].ID != first.ID {
		t.Fatalf("decide saw %v", seen)
	}
	if diff := cmp.Diff(*first, *seen[1]); diff != "" {
		t.Errorf("stored prompt mismatch (-want +got):\n%s", diff)
	}
	// A new prompt supersedes the pending one.
	second := newPrompt(session, group, CategoryOffTask, at(200))
	if _, err := st.RaisePrompt(ctx, slot, func(*Prompt) *Prompt { return second }); err != nil {
		t.Fatal(err)
	}
	if p, _ := st.GetPrompt(ctx, first.ID); p.Status != StatusExpired {
		t.Errorf("superseded prompt's status = %q, want expired", p.Status)
	}
	// Another category of the same group is another slot.
	other := newPrompt(session, group, CategorySilence, at(210))
	var otherLast *Prompt
	if _, err := st.RaisePrompt(ctx, PromptSlot{SessionID: session, GroupID: group, Kind: KindAlert, Category: CategorySilence},
		func(last *Prompt) *Prompt { otherLast = last; return other }); err != nil || otherLast != nil {
		t.Fatalf("RaisePrompt(other slot) saw %v, %v", otherLast, err)
	}

	list := func(statuses []string, now time.Time) []string {
		ps, err := st.ListPrompts(ctx, PromptQuery{SessionID: session, Statuses: statuses, Now: now, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, p := range ps {
			ids = append(ids, p.ID)
		}
		return ids
	}
	if diff := cmp.Diff([]string{other.ID, second.ID}, list([]string{StatusPending}, at(220))); diff != "" {
		t.Errorf("pending mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{other.ID, second.ID, first.ID}, list(nil, at(220))); diff != "" {
		t.Errorf("all mismatch (-want +got):\n%s", diff)
	}
	// Expiry applies on read: second expires at 200+600.
	if diff := cmp.Diff([]string{other.ID}, list([]string{StatusPending}, at(805))); diff != "" {
		t.Errorf("pending after expiry mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{second.ID, first.ID}, list([]string{StatusExpired}, at(805))); diff != "" {
		t.Errorf("expired mismatch (-want +got):\n%s", diff)
	}

	// Acting: once; not on an expired prompt; unknown ids are not found.
	p, err := st.ActOnPrompt(ctx, other.ID, StatusDismissed, "teacher-1", "not_relevant", at(230))
	if err != nil || p.Status != StatusDismissed || !p.ActedAt.Equal(at(230)) || p.ActedBy != "teacher-1" || p.DismissReason != "not_relevant" {
		t.Fatalf("ActOnPrompt = %+v, %v", p, err)
	}
	if _, err := st.ActOnPrompt(ctx, other.ID, StatusAcknowledged, "teacher-1", "", at(231)); !errors.Is(err, errAlreadyActed) {
		t.Errorf("acting twice: %v, want errAlreadyActed", err)
	}
	if _, err := st.ActOnPrompt(ctx, first.ID, StatusAcknowledged, "teacher-1", "", at(232)); !errors.Is(err, errExpired) {
		t.Errorf("acting on a superseded prompt: %v, want errExpired", err)
	}
	if _, err := st.ActOnPrompt(ctx, second.ID, StatusAcknowledged, "teacher-1", "", at(900)); !errors.Is(err, errExpired) {
		t.Errorf("acting on an expired prompt: %v, want errExpired", err)
	}
	if _, err := st.ActOnPrompt(ctx, newID(), StatusAcknowledged, "teacher-1", "", at(232)); !errors.Is(err, errNotFound) {
		t.Errorf("acting on an unknown prompt: %v, want errNotFound", err)
	}
	if _, err := st.GetPrompt(ctx, newID()); !errors.Is(err, errNotFound) {
		t.Errorf("GetPrompt(unknown) = %v", err)
	}
	// The sweep marks what expired; ending a session expires its pending prompts.
	n, err := st.ExpirePrompts(ctx, "", at(805))
	if err != nil || n != 1 {
		t.Errorf("ExpirePrompts(sweep) = %d, %v; want 1", n, err)
	}
	third := newPrompt(session, group, CategoryConfusion, at(900))
	if _, err := st.RaisePrompt(ctx, PromptSlot{SessionID: session, GroupID: group, Kind: KindAlert, Category: CategoryConfusion},
		func(*Prompt) *Prompt { return third }); err != nil {
		t.Fatal(err)
	}
	if n, err := st.ExpirePrompts(ctx, session, at(901)); err != nil || n != 1 {
		t.Errorf("ExpirePrompts(session) = %d, %v; want 1", n, err)
	}
}

// testStoreRaiseConcurrent raises the same slot from many goroutines: the slot lock lets exactly
// one decide on an empty slot.
func testStoreRaiseConcurrent(t *testing.T, st *sqlStore) {
	ctx := t.Context()
	session, group := newID(), newID()
	slot := PromptSlot{SessionID: session, GroupID: group, Kind: KindAlert, Category: CategorySilence}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		raised int
	)
	for range 8 {
		wg.Go(func() {
			p, err := st.RaisePrompt(ctx, slot, func(last *Prompt) *Prompt {
				if last != nil {
					return nil // cooldown: one prompt only
				}
				return newPrompt(session, group, CategorySilence, at(0))
			})
			if err != nil {
				t.Error(err)
				return
			}
			if p != nil {
				mu.Lock()
				raised++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if raised != 1 {
		t.Errorf("%d prompts raised concurrently, want 1", raised)
	}
}

func testStoreSessions(t *testing.T, st *sqlStore) {
	ctx := t.Context()
	s1, s2 := newID(), newID()
	if _, err := st.GetSession(ctx, s1); !errors.Is(err, errNotFound) {
		t.Fatalf("GetSession(unknown) = %v", err)
	}
	for _, id := range []string{s1, s2} {
		if err := st.UpsertSession(ctx, SessionState{SessionID: id, SchoolID: schoolA, TeacherID: "t1", Status: sessionActive}, at(180)); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing is due before a Tier 1 insight, nor before its time.
	due := func(now time.Time) []string {
		ids, err := st.DueTier2(ctx, now, 100)
		if err != nil {
			t.Fatal(err)
		}
		// Other subtests share the database: keep this one's sessions.
		return slices.DeleteFunc(ids, func(id string) bool { return id != s1 && id != s2 })
	}
	if ids := due(at(1000)); len(ids) != 0 {
		t.Errorf("due without tier 1 = %v", ids)
	}
	if ok, err := st.SaveTier1(ctx, tier1(s1, newID(), at(100), 0.5), schoolA, nil, time.Time{}, time.Time{}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ids := due(at(179)); len(ids) != 0 {
		t.Errorf("due before its time = %v", ids)
	}
	if diff := cmp.Diff([]string{s1}, due(at(180))); diff != "" {
		t.Errorf("due mismatch (-want +got):\n%s", diff)
	}
	// One claim wins.
	if ok, err := st.ClaimTier2(ctx, s1, at(180), at(360)); err != nil || !ok {
		t.Fatalf("ClaimTier2 = %v, %v", ok, err)
	}
	if ok, _ := st.ClaimTier2(ctx, s1, at(180), at(360)); ok {
		t.Error("a second claim won")
	}
	if err := st.MarkTier2(ctx, s1, at(180)); err != nil {
		t.Fatal(err)
	}
	// No new Tier 1 since: not due even when its time comes.
	if ids := due(at(400)); len(ids) != 0 {
		t.Errorf("due without new tier 1 = %v", ids)
	}
	if _, err := st.SaveTier1(ctx, tier1(s1, newID(), at(200), 0.5), schoolA, nil, time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{s1}, due(at(400))); diff != "" {
		t.Errorf("due after new tier 1 mismatch (-want +got):\n%s", diff)
	}
	// Ended sessions are not due, stay ended, and get one final Tier 2.
	if err := st.UpsertSession(ctx, SessionState{SessionID: s1, Status: sessionEnded}, at(999)); err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertSession(ctx, SessionState{SessionID: s1, Status: sessionActive}, at(999)); err != nil {
		t.Fatal(err)
	}
	ss, _ := st.GetSession(ctx, s1)
	if ss.Status != sessionEnded || ss.SchoolID != schoolA || ss.TeacherID != "t1" || !ss.NextTier2At.Equal(at(360)) || !ss.LastTier2At.Equal(at(180)) {
		t.Errorf("session after end and a late active = %+v", ss)
	}
	if ids := due(at(1000)); len(ids) != 0 {
		t.Errorf("ended session due: %v", ids)
	}
	if ok, err := st.ClaimFinalTier2(ctx, s1, at(1000)); err != nil || !ok {
		t.Fatalf("ClaimFinalTier2 = %v, %v", ok, err)
	}
	if ok, _ := st.ClaimFinalTier2(ctx, s1, at(1001)); ok {
		t.Error("the final tier 2 was claimed twice")
	}
	if err := st.Ping(ctx); err != nil {
		t.Error(err)
	}
}
