package guidance

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/testenv"
	"github.com/classwaves/classwaves/services/guidance/analyzer"
)

// TestGoldenDiscussions is the acceptance test: each golden discussion, fed through the bus as
// stt events and analysed by the built-in analyzer, raises exactly its expected alerts; the same
// condition again inside the cooldown raises nothing; after the cooldown it raises again; a
// dismissal holds the category back for GUIDANCE_DISMISS_COOLDOWN_FACTOR times the cooldown; an
// acknowledgement holds it back for the cooldown and then brings it back one priority lower; a
// prompt expires after GUIDANCE_PROMPT_TTL_MS; and another teacher can neither acknowledge nor
// dismiss one. Every round is read by a freshly started service instance (so state survives
// restarts) as one batch.
func TestGoldenDiscussions(t *testing.T) {
	t.Parallel()
	paths, err := filepath.Glob(filepath.Join(analyzer.GoldenDir(), "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden discussions in %s: %v", analyzer.GoldenDir(), err)
	}
	for _, path := range paths {
		g, err := analyzer.LoadGolden(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(g.Name, func(t *testing.T) {
			t.Parallel()
			testGolden(t, g)
		})
	}
}

func testGolden(t *testing.T, g analyzer.Golden) {
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	in := g.Tier1Input(base)
	span := in.SpanEnd.Sub(in.SpanStart).Truncate(time.Millisecond)
	const cooldown = 2 * time.Minute
	h := newHarness(t, func(c *Config) {
		// One Tier 1 span per round: the whole discussion, as expectAlerts is defined.
		c.Tier1Interval = span
		c.PromptCooldown = cooldown
		c.PromptTTL = 10 * time.Minute
		c.DismissCooldownFactor = 3
	}, deferStart())
	sess := newSession(teacher1, schoolA, 1, g.Objectives...)
	h.sessions.put(sess)
	group := sess.Groups[0].Id
	want := slices.Clone(g.ExpectAlerts)
	slices.Sort(want)

	round := 0
	// feed runs one round: the discussion again, after the previous one, read by a new instance.
	// It answers the categories and priorities of the prompts the round raised.
	feed := func() map[string]string {
		t.Helper()
		before := len(h.events.prompts(sess.Id))
		h.restart(func() { h.feedGolden(sess, group, g, base.Add(time.Duration(round)*span)) })
		round++
		testenv.Eventually(t, "the round's insight", func() bool { return len(h.events.insights(sess.Id, 1)) == round })
		h.drained(h.cfg.STTTopic)
		raised := map[string]string{}
		for _, ev := range h.events.prompts(sess.Id)[before:] {
			pr := ev.GetPromptRaised()
			if pr.GetKind() != KindAlert || ev.GetGroupId() != group || pr.GetTeacherId() != teacher1 || pr.GetTier() != 1 {
				t.Errorf("prompt event %v", ev)
			}
			raised[pr.GetCategory()] = pr.GetPriority()
		}
		return raised
	}
	categories := func(m map[string]string) []string {
		var out []string
		for c := range m {
			out = append(out, c)
		}
		slices.Sort(out)
		return out
	}

	// Round 1: the expected alerts, each once.
	got := feed()
	if diff := cmp.Diff(want, categories(got), cmpEmpty); diff != "" {
		t.Fatalf("round 1 alerts mismatch (-want +got):\n%s", diff)
	}
	// The insight itself is what was published, and is stored.
	ins := insightOf(t, h.events.insights(sess.Id, 1)[0])
	if !ins.GetWindowStart().AsTime().Equal(in.SpanStart) || !ins.GetWindowEnd().AsTime().Equal(in.SpanEnd) {
		t.Errorf("insight span [%v, %v], want [%v, %v]", ins.GetWindowStart().AsTime(), ins.GetWindowEnd().AsTime(), in.SpanStart, in.SpanEnd)
	}
	if got, want := analyzer.Tier1AlertCategories(ins.GetMetrics(), g.HasTurns()), g.ExpectAlerts; !cmp.Equal(got, want, cmpEmpty) {
		t.Errorf("the published insight's alert categories = %v, want %v", got, want)
	}
	if len(want) == 0 {
		// A healthy discussion: once more, still nothing.
		if got := feed(); len(got) != 0 {
			t.Errorf("round 2 of a healthy discussion raised %v", got)
		}
		return
	}
	first := h.pending(sess.Id)

	// Round 2, inside the cooldown: the same condition raises nothing new.
	h.clock.Add(cooldown / 2)
	if got := feed(); len(got) != 0 {
		t.Errorf("inside the cooldown, raised %v", got)
	}
	if n := h.counter("guidance_prompts_suppressed_total", map[string]string{"reason": suppressCooldown}); n != float64(len(want)) {
		t.Errorf("suppressed by cooldown = %v, want %d", n, len(want))
	}

	// Round 3, after the cooldown: raised again (superseding the pending ones).
	h.clock.Add(cooldown)
	got = feed()
	if diff := cmp.Diff(want, categories(got)); diff != "" {
		t.Fatalf("after the cooldown, alerts mismatch (-want +got):\n%s", diff)
	}
	for _, p := range first {
		if st := h.promptStatus(sess.Id, p.GetId()); st != StatusExpired {
			t.Errorf("superseded prompt %s is %q, want expired", p.GetCategory(), st)
		}
	}
	pending := h.pending(sess.Id)
	if len(pending) != len(want) {
		t.Fatalf("%d pending prompts, want %d", len(pending), len(want))
	}
	target := pending[0]
	cat := target.GetCategory()

	// Another teacher cannot act on it (and learns nothing: not found); a student never.
	for _, ctx := range []struct {
		name string
		ctx  func() error
	}{
		{"another teacher acknowledges", func() error {
			_, err := h.client.AcknowledgePrompt(as(authn.RoleTeacher, teacher2, schoolA), &guidancev1.AcknowledgePromptRequest{PromptId: target.GetId()})
			return err
		}},
		{"another teacher dismisses", func() error {
			_, err := h.client.DismissPrompt(as(authn.RoleTeacher, teacher2, schoolA), &guidancev1.DismissPromptRequest{PromptId: target.GetId()})
			return err
		}},
		{"another school's admin dismisses", func() error {
			_, err := h.client.DismissPrompt(as(authn.RoleAdmin, newID(), schoolB), &guidancev1.DismissPromptRequest{PromptId: target.GetId()})
			return err
		}},
		{"a student dismisses", func() error {
			_, err := h.client.DismissPrompt(as(authn.RoleStudent, newID(), schoolA), &guidancev1.DismissPromptRequest{PromptId: target.GetId()})
			return err
		}},
	} {
		err := ctx.ctx()
		if status.Code(err) != codes.NotFound || apperr.ReasonOf(status.Convert(err)) != "PROMPT_NOT_FOUND" {
			t.Errorf("%s: %v, want NotFound PROMPT_NOT_FOUND", ctx.name, err)
		}
	}
	if st := h.promptStatus(sess.Id, target.GetId()); st != StatusPending {
		t.Fatalf("after refused actions the prompt is %q", st)
	}

	// The owning teacher dismisses it: held back for 3x the cooldown.
	dismissed, err := h.client.DismissPrompt(as(authn.RoleTeacher, teacher1, schoolA), &guidancev1.DismissPromptRequest{PromptId: target.GetId(), Reason: "not_relevant"})
	if err != nil || dismissed.GetPrompt().GetStatus() != StatusDismissed || dismissed.GetPrompt().GetActedAt() == nil {
		t.Fatalf("DismissPrompt = %v, %v", dismissed, err)
	}
	h.clock.Add(cooldown + cooldown/2) // past the cooldown, inside 3x
	got = feed()
	if _, ok := got[cat]; ok {
		t.Errorf("%s raised again %v after a dismissal, inside 3x the cooldown", cat, h.clock.Now())
	}
	for _, c := range want {
		if _, ok := got[c]; !ok && c != cat {
			t.Errorf("%s (not dismissed) was not raised again after the cooldown", c)
		}
	}
	h.clock.Add(2 * cooldown) // 4.5 cooldowns after the dismissal
	got = feed()
	prio, ok := got[cat]
	if !ok {
		t.Fatalf("%s not raised again after 3x the cooldown; raised %v", cat, got)
	}
	if def := alertWordings[cat].priority; prio != def {
		t.Errorf("after a dismissal %s came back at %q, want its normal %q", cat, prio, def)
	}

	// The teacher acknowledges it: nothing inside the cooldown, then one priority lower while the
	// condition persists.
	var again *guidancev1.Prompt
	for _, p := range h.pending(sess.Id) {
		if p.GetCategory() == cat {
			again = p
		}
	}
	ack, err := h.client.AcknowledgePrompt(as(authn.RoleTeacher, teacher1, schoolA), &guidancev1.AcknowledgePromptRequest{PromptId: again.GetId()})
	if err != nil || ack.GetPrompt().GetStatus() != StatusAcknowledged {
		t.Fatalf("AcknowledgePrompt = %v, %v", ack, err)
	}
	if _, err := h.client.AcknowledgePrompt(as(authn.RoleTeacher, teacher1, schoolA), &guidancev1.AcknowledgePromptRequest{PromptId: again.GetId()}); apperr.ReasonOf(status.Convert(err)) != "PROMPT_ALREADY_ACTED" {
		t.Errorf("acknowledging twice: %v, want PROMPT_ALREADY_ACTED", err)
	}
	h.clock.Add(cooldown / 2)
	if got := feed(); got[cat] != "" {
		t.Errorf("%s raised inside the cooldown after an acknowledgement", cat)
	}
	h.clock.Add(cooldown)
	got = feed()
	if want := lowerPriority(alertWordings[cat].priority); got[cat] != want {
		t.Errorf("after an acknowledgement, the persisting %s came back at %q, want %q", cat, got[cat], want)
	}

	// Expiry: past the TTL nothing is pending, and acting answers PROMPT_EXPIRED.
	last := h.pending(sess.Id)
	h.clock.Add(11 * time.Minute)
	if p := h.pending(sess.Id); len(p) != 0 {
		t.Errorf("%d prompts pending after the TTL", len(p))
	}
	_, err = h.client.AcknowledgePrompt(as(authn.RoleTeacher, teacher1, schoolA), &guidancev1.AcknowledgePromptRequest{PromptId: last[0].GetId()})
	if apperr.ReasonOf(status.Convert(err)) != "PROMPT_EXPIRED" {
		t.Errorf("acknowledging an expired prompt: %v, want PROMPT_EXPIRED", err)
	}
	// Two actions were audited (one dismissal, one acknowledgement).
	testenv.Eventually(t, "audit records", func() bool { return len(h.auditEvents()) >= 2 })
}

// cmpEmpty treats nil and empty slices as equal.
var cmpEmpty = cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) })

func insightOf(t testing.TB, ev *eventsv1.Event) *guidancev1.Tier1Insight {
	t.Helper()
	ins := &guidancev1.Tier1Insight{}
	if err := insightDecode.Unmarshal([]byte(ev.GetInsightProduced().GetInsightJson()), ins); err != nil {
		t.Fatal(err)
	}
	return ins
}

// pending lists the session's pending prompts as the owning teacher sees them.
func (h *harness) pending(session string) []*guidancev1.Prompt {
	h.t.Helper()
	resp, err := h.client.ListPrompts(as(authn.RoleTeacher, teacher1, schoolA), &guidancev1.ListPromptsRequest{SessionId: session})
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.GetPrompts()
}

// promptStatus is a prompt's status as listed (expiry applied).
func (h *harness) promptStatus(session, id string) string {
	h.t.Helper()
	resp, err := h.client.ListPrompts(as(authn.RoleSuperAdmin, newID(), ""), &guidancev1.ListPromptsRequest{SessionId: session, Status: "all"})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, p := range resp.GetPrompts() {
		if p.GetId() == id {
			return p.GetStatus()
		}
	}
	return "missing"
}
