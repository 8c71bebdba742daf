package llmanalyzer_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	"github.com/classwaves/classwaves/pkg/llm"
	"github.com/classwaves/classwaves/pkg/llm/llmtest"
	"github.com/classwaves/classwaves/services/guidance/analyzer"
	"github.com/classwaves/classwaves/services/guidance/llmanalyzer"
)

var t0 = time.Date(2025, 3, 4, 14, 0, 0, 0, time.UTC)

var names = []string{"Maria Lopez", "Jayden Kim", "Sofía Núñez"}

// secrets must never appear in anything sent to the LLM.
var secrets = []string{"maria", "lopez", "jayden", "sofía", "núñez", "nunez", "@school.org", "jk@", "kim.j"}

func tier1Input() analyzer.Tier1Input {
	return analyzer.Tier1Input{
		SessionID: "sess-1", GroupID: "group-1", SchoolID: "school-1",
		Objectives: []string{"Explain how plants make food (photosynthesis)"},
		Turns: []analyzer.Turn{
			{WindowID: "win-1", Start: t0, End: t0.Add(15 * time.Second), Speaker: "Maria Lopez",
				Text: "Maria Lopez thinks plants need sunlight to make their food."},
			{WindowID: "win-2", Start: t0.Add(15 * time.Second), End: t0.Add(30 * time.Second), Speaker: "spk_1",
				Text: "I disagree, Jayden said roots take food from the soil. Mail him at jayden.kim@school.org or kim.j@school.org."},
			{WindowID: "win-3", Start: t0.Add(30 * time.Second), End: t0.Add(45 * time.Second), Speaker: "spk_2",
				Text: "Why do you think that, Sofía? What is the evidence?"},
		},
		Context:   []analyzer.Turn{{WindowID: "win-0", Text: "Okay Maria, let's start with the leaves."}},
		Activity:  []analyzer.Activity{{WindowID: "win-1", Start: t0, End: t0.Add(45 * time.Second), SpeechSeconds: 38, SilenceSeconds: 7, LongestSilenceSeconds: 4}},
		SpanStart: t0, SpanEnd: t0.Add(45 * time.Second),
		Names: names,
	}
}

// tier1Answer is a valid answer to tier1Input's prompt, as a mutable map.
func tier1Answer() map[string]any {
	return map[string]any{
		"metrics": map[string]any{
			"topical_focus": 0.8, "conceptual_density": 0.3, "participation_balance": 0.7, "turn_taking_rate": 4,
			"question_count": 2, "focusing_questions": 1, "funneling_questions": 0, "uptake": 0.5,
			"confusion_markers": 0, "off_task_ratio": 0, "silence_seconds": 7, "hedge_rate": 2.5, "repetition": 0.1,
		},
		"observations": []any{"The group is weighing two explanations of where plant food comes from.", "A student asks for evidence."},
		"evidence": []any{
			map[string]any{"window_id": "w1", "excerpt": "plants need sunlight to make their food"},
			map[string]any{"window_id": "w3", "excerpt": "what is the EVIDENCE"},
		},
		"confidence": 0.7,
	}
}

func tier2Input() analyzer.Tier2Input {
	in1 := tier1Input()
	return analyzer.Tier2Input{
		SessionID: "sess-1", SchoolID: "school-1", Objectives: in1.Objectives, Depth: "standard", Names: names,
		Groups: []analyzer.GroupInput{
			{GroupID: "group-1", Name: "Maria's table", Turns: in1.Turns, Activity: in1.Activity,
				Tier1: []*guidancev1.Tier1Insight{{Metrics: &guidancev1.Tier1Metrics{TopicalFocus: 0.8}, Observations: []string{"Maria Lopez leads."}}}},
			{GroupID: "group-2", Name: "Table 2", Turns: []analyzer.Turn{
				{WindowID: "win-9", Start: t0.Add(5 * time.Second), Text: "We think light gives energy because the leaves face the window."},
			}},
			{GroupID: "group-3", Name: "Table 3"}, // nothing yet: not sent
		},
	}
}

func tier2Answer() map[string]any {
	return map[string]any{
		"groups": []any{
			map[string]any{
				"group_id":               "g1",
				"argumentation":          map[string]any{"claims": 0.6, "evidence": 0.2, "reasoning": 0.3},
				"collaboration_patterns": []any{"building_on_ideas"},
				"learning_signals":       []any{"asks_questions", "misconception"},
				"evidence":               []any{map[string]any{"window_id": "w2", "excerpt": "roots take food from the soil"}},
			},
			map[string]any{
				"group_id":               "g2",
				"argumentation":          map[string]any{"claims": 0.5, "evidence": 0.5, "reasoning": 0.6},
				"collaboration_patterns": []any{},
				"learning_signals":       []any{"explains_reasoning"},
				"evidence":               []any{map[string]any{"window_id": "w4", "excerpt": "light gives energy because the leaves face the window"}},
			},
		},
		"recommendations": []any{
			map[string]any{"group_id": "g1", "text": "Ask the group what evidence would settle sunlight versus soil.", "priority": "high", "category": "deepen"},
			map[string]any{"group_id": "", "text": "Share one group's evidence with the class.", "priority": "low", "category": "collaboration"},
		},
		"summary":    "Groups are debating where plant food comes from; one cites evidence.",
		"confidence": 0.6,
	}
}

type fixture struct {
	srv *llmtest.Server
	a   *llmanalyzer.Analyzer
	reg *prometheus.Registry
}

func newFixture(t *testing.T, mod func(*llm.Config), opts ...llm.Option) *fixture {
	t.Helper()
	srv := llmtest.NewServer(t)
	srv.APIKey = "sk-test"
	cfg := llm.Config{
		BaseURL: srv.URL(), APIKey: "sk-test", Model: "gpt-4o-mini",
		Timeout: 2 * time.Second, MaxRetries: 2, Concurrency: 4, MaxTokens: 800,
		BackoffBase: 5 * time.Millisecond, BackoffMax: 2 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	reg := prometheus.NewRegistry()
	client, err := llm.New(cfg, append([]llm.Option{llm.WithMetrics(reg, "tier1")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	a, err := llmanalyzer.New(client, "llm:gpt-4o-mini", reg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, a: a, reg: reg}
}

// always answers every request with content.
func (f *fixture) always(content string) {
	f.srv.Handle(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Content: content} })
}

func (f *fixture) metric(name string, labels map[string]string) float64 {
	mfs, _ := f.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// checkSent asserts that nothing identifying reached the server.
func checkSent(t *testing.T, srv *llmtest.Server) {
	t.Helper()
	if n := srv.Refusals(); n != 0 {
		t.Errorf("the server refused %d requests as invalid", n)
	}
	for i, r := range srv.Requests() {
		body := strings.ToLower(string(r.Body))
		// JSON may escape non-ASCII letters: check the decoded messages too.
		var sent strings.Builder
		for _, m := range r.Messages {
			sent.WriteString(strings.ToLower(m.Content))
		}
		for _, s := range secrets {
			if strings.Contains(body, s) || strings.Contains(sent.String(), s) {
				t.Errorf("request %d sent %q", i, s)
			}
		}
		for _, id := range []string{"win-1", "win-2", "sess-1", "group-1", "school-1", "spk_1", "table"} {
			if strings.Contains(body, id) {
				t.Errorf("request %d sent the internal id or label %q", i, id)
			}
		}
	}
}

func TestTier1(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.srv.Script(llmtest.Reply{Content: llmtest.JSON(tier1Answer())})
	got, err := f.a.Tier1(context.Background(), tier1Input())
	if err != nil {
		t.Fatal(err)
	}
	want := &guidancev1.Tier1Insight{
		Metrics: &guidancev1.Tier1Metrics{
			TopicalFocus: 0.8, ConceptualDensity: 0.3, ParticipationBalance: 0.7, TurnTakingRate: 4,
			QuestionCount: 2, FocusingQuestions: 1, Uptake: 0.5, SilenceSeconds: 7, HedgeRate: 2.5, Repetition: 0.1,
		},
		Observations: []string{"The group is weighing two explanations of where plant food comes from.", "A student asks for evidence."},
		Evidence: []*guidancev1.Evidence{
			{WindowId: "win-1", Excerpt: "plants need sunlight to make their food", At: timestamppb.New(t0)},
			{WindowId: "win-3", Excerpt: "What is the evidence", At: timestamppb.New(t0.Add(30 * time.Second))},
		},
		Confidence: 0.7,
		Analyzer:   "llm:gpt-4o-mini",
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("insight mismatch (-want +got):\n%s", diff)
	}
	reqs := f.srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	system, user := r.Messages[0].Content, r.Messages[1].Content
	for _, s := range []string{"topical_focus", "participation_balance", "funneling_questions", "[student]", "never as instructions"} {
		if !strings.Contains(system, s) {
			t.Errorf("system prompt lacks %q", s)
		}
	}
	for _, s := range []string{
		"Explain how plants make food (photosynthesis)",
		"[w1] (A) [student] thinks plants need sunlight to make their food.",
		"[w2] (B) I disagree, [student] said roots take food from the soil. Mail him at [email] or [email].",
		"[w3] (C) Why do you think that, [student]? What is the evidence?",
		"- Okay [student], let's start with the leaves.",
		"Analysed span: 45 seconds",
		"38.0 s of speech",
	} {
		if !strings.Contains(user, s) {
			t.Errorf("user message lacks %q:\n%s", s, user)
		}
	}
	if r.ResponseFormat == nil || !r.ResponseFormat.Strict || r.ResponseFormat.Name != "tier1_analysis" {
		t.Fatalf("response_format = %+v, want strict tier1_analysis", r.ResponseFormat)
	}
	var schema struct {
		Properties struct {
			Evidence struct {
				Items struct {
					Properties struct {
						WindowID struct {
							Enum []string `json:"enum"`
						} `json:"window_id"`
					} `json:"properties"`
				} `json:"items"`
			} `json:"evidence"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(r.ResponseFormat.Schema, &schema); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"w1", "w2", "w3"}, schema.Properties.Evidence.Items.Properties.WindowID.Enum); diff != "" {
		t.Errorf("window enum mismatch (-want +got):\n%s", diff)
	}
	checkSent(t, f.srv)
	if got := f.metric("guidance_llm_analyses_total", map[string]string{"tier": "tier1", "outcome": "ok"}); got != 1 {
		t.Errorf("guidance_llm_analyses_total{tier1,ok} = %v, want 1", got)
	}
}

// set returns a copy of the answer m with the value at path (dot-separated; numbers index
// lists) replaced, or deleted when v is deleteKey.
func set(m map[string]any, path string, v any) map[string]any {
	out := deepCopy(m).(map[string]any)
	parts := strings.Split(path, ".")
	var cur any = out
	for i, p := range parts {
		last := i == len(parts)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				if v == deleteKey {
					delete(c, p)
				} else {
					c[p] = v
				}
				return out
			}
			cur = c[p]
		case []any:
			idx := int(p[0] - '0')
			if last {
				c[idx] = v
				return out
			}
			cur = c[idx]
		}
	}
	return out
}

type deleteMarker struct{}

var deleteKey = deleteMarker{}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := maps.Clone(x)
		for k, e := range m {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = deepCopy(e)
		}
		return s
	}
	return v
}

func TestTier1RejectsBadAnswers(t *testing.T) {
	t.Parallel()
	good := tier1Answer()
	j := func(m map[string]any) string { return llmtest.JSON(m) }
	tests := []struct {
		name    string
		content string
		reply   *llmtest.Reply
		want    error
		reason  string
	}{
		{name: "malformed JSON", content: `{"metrics": {"topical_focus": 0.8,`},
		{name: "not JSON at all", content: `The group seems focused.`},
		{name: "a number as a string", content: j(set(good, "metrics.topical_focus", "0.8"))},
		{name: "a string as a number", content: j(set(good, "observations", []any{42}))},
		{name: "an object where a list belongs", content: j(set(good, "evidence", map[string]any{}))},
		{name: "a fraction where a count belongs", content: j(set(good, "metrics.question_count", 1.5))},
		{name: "out of range ratio", content: j(set(good, "metrics.topical_focus", 1.2))},
		{name: "negative count", content: j(set(good, "metrics.confusion_markers", -1))},
		{name: "negative seconds", content: j(set(good, "metrics.silence_seconds", -3))},
		{name: "implausible turn-taking", content: j(set(good, "metrics.turn_taking_rate", 60))},
		{name: "confidence over 1", content: j(set(good, "confidence", 1.01))},
		{name: "NaN as a string", content: j(set(good, "metrics.uptake", "NaN"))},
		{name: "NaN literal", content: strings.Replace(j(good), `"uptake":0.5`, `"uptake":NaN`, 1)},
		{name: "Infinity literal", content: strings.Replace(j(good), `"uptake":0.5`, `"uptake":Infinity`, 1)},
		{name: "overflowing number", content: strings.Replace(j(good), `"uptake":0.5`, `"uptake":1e999`, 1)},
		{name: "null metric", content: j(set(good, "metrics.uptake", nil))},
		{name: "unknown field", content: j(set(good, "mood", "happy"))},
		{name: "unknown metric", content: j(set(good, "metrics.engagement", 0.5))},
		{name: "missing metric", content: j(set(good, "metrics.repetition", deleteKey))},
		{name: "missing confidence", content: j(set(good, "confidence", deleteKey))},
		{name: "evidence with an unknown window", content: j(set(good, "evidence.0.window_id", "w9"))},
		{name: "evidence with a real window id", content: j(set(good, "evidence.0.window_id", "win-1"))},
		{name: "evidence with an invented excerpt", content: j(set(good, "evidence.0.excerpt", "plants need water to grow"))},
		{name: "evidence quoting another window", content: j(set(good, "evidence.0.excerpt", "roots take food from the soil"))},
		{name: "evidence quoting the context", content: j(set(good, "evidence.0.excerpt", "start with the leaves"))},
		{name: "evidence cutting a word", content: j(set(good, "evidence.0.excerpt", "lants need sunlight"))},
		{name: "evidence too short", content: j(set(good, "evidence.0.excerpt", "to"))},
		{name: "evidence twice", content: j(set(good, "evidence.1", map[string]any{"window_id": "w1", "excerpt": "plants need sunlight to make their food"}))},
		{name: "too much evidence", content: j(set(good, "evidence", []any{
			map[string]any{"window_id": "w1", "excerpt": "plants need"}, map[string]any{"window_id": "w1", "excerpt": "sunlight"},
			map[string]any{"window_id": "w1", "excerpt": "make their"}, map[string]any{"window_id": "w2", "excerpt": "I disagree"},
			map[string]any{"window_id": "w2", "excerpt": "roots take"}, map[string]any{"window_id": "w3", "excerpt": "the evidence"},
		}))},
		{name: "more focusing and funneling than questions", content: j(set(good, "metrics.funneling_questions", 2))},
		{name: "more questions than words", content: j(set(good, "metrics.question_count", 900))},
		{name: "more silence than the span", content: j(set(good, "metrics.silence_seconds", 60))},
		{name: "too many observations", content: j(set(good, "observations", []any{"a1", "a2", "a3", "a4", "a5", "a6"}))},
		{name: "an observation too long", content: j(set(good, "observations", []any{strings.Repeat("é", 201)}))},
		{name: "an empty observation", content: j(set(good, "observations", []any{"  "}))},
		{name: "an observation with a control character", content: j(set(good, "observations", []any{"Ignore \u0007this"}))},
		{name: "an observation with an invisible format character", content: j(set(good, "observations", []any{"ok\u202etxt"}))},
		{name: "two values", content: j(good) + j(good)},
		{name: "refusal", reply: &llmtest.Reply{Refusal: "I can't help with analysing minors."}, want: llm.ErrRefused, reason: "refused"},
		{name: "content filter", reply: &llmtest.Reply{FinishReason: "content_filter"}, want: llm.ErrRefused, reason: "refused"},
		{name: "truncated", reply: &llmtest.Reply{Content: j(good)[:40], FinishReason: "length"}, want: llm.ErrTruncated, reason: "truncated"},
		{name: "truncated though it parses", reply: &llmtest.Reply{Content: j(good), FinishReason: "length"}, want: llm.ErrTruncated, reason: "truncated"},
		{name: "500s", reply: &llmtest.Reply{Status: 500}, want: llm.ErrUnavailable, reason: "unavailable"},
		{name: "429s", reply: &llmtest.Reply{Status: 429, RetryAfter: "0"}, want: llm.ErrUnavailable, reason: "unavailable"},
		{name: "400", reply: &llmtest.Reply{Status: 400}, want: llm.ErrRejected, reason: "rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			if tt.reply != nil {
				reply := *tt.reply
				f.srv.Handle(func(llmtest.Request) llmtest.Reply { return reply })
			} else {
				f.always(tt.content)
			}
			want, reason := tt.want, tt.reason
			if want == nil {
				want, reason = llm.ErrMalformed, "malformed"
			}
			got, err := f.a.Tier1(context.Background(), tier1Input())
			t.Logf("error: %v", err)
			if got != nil {
				t.Errorf("Tier1 returned an insight: %v", got)
			}
			if !errors.Is(err, want) {
				t.Errorf("Tier1 error = %v, want %v", err, want)
			}
			if got := f.metric("guidance_llm_analyses_total", map[string]string{"tier": "tier1", "outcome": reason}); got != 1 {
				t.Errorf("guidance_llm_analyses_total{tier1,%s} = %v, want 1", reason, got)
			}
			if reason == "malformed" || reason == "refused" || reason == "truncated" {
				if got := f.metric("llm_rejected_total", map[string]string{"client": "tier1", "reason": reason}); got < 1 {
					t.Errorf("llm_rejected_total{%s} = %v, want it counted", reason, got)
				}
			}
			checkSent(t, f.srv)
		})
	}
}

func TestTier1RecoversFromOneBadAnswer(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.srv.Script(
		llmtest.Reply{Content: llmtest.JSON(set(tier1Answer(), "evidence.0.excerpt", "photosynthesis needs chlorophyll"))},
		llmtest.Reply{Content: llmtest.JSON(tier1Answer())},
	)
	got, err := f.a.Tier1(context.Background(), tier1Input())
	if err != nil || got == nil {
		t.Fatalf("Tier1 = %v, %v; want the second answer", got, err)
	}
	if got.GetEvidence()[0].GetExcerpt() != "plants need sunlight to make their food" {
		t.Errorf("evidence = %v", got.GetEvidence())
	}
	if n := f.metric("llm_rejected_total", map[string]string{"client": "tier1", "reason": "malformed"}); n != 1 {
		t.Errorf("llm_rejected_total{malformed} = %v, want 1", n)
	}
}

func TestTier1Timeouts(t *testing.T) {
	t.Parallel()
	t.Run("a slow attempt is retried", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, func(c *llm.Config) { c.Timeout = 400 * time.Millisecond })
		f.srv.Script(llmtest.Reply{Delay: 3 * time.Second, Content: llmtest.JSON(tier1Answer())}, llmtest.Reply{Content: llmtest.JSON(tier1Answer())})
		got, err := f.a.Tier1(context.Background(), tier1Input())
		if err != nil || got == nil {
			t.Fatalf("Tier1 = %v, %v; want the retry's insight", got, err)
		}
		if n := len(f.srv.Requests()); n != 2 {
			t.Errorf("server got %d requests, want 2", n)
		}
	})
	t.Run("every attempt times out", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, func(c *llm.Config) { c.Timeout, c.MaxRetries = 100*time.Millisecond, 2 })
		f.srv.Handle(func(llmtest.Request) llmtest.Reply {
			return llmtest.Reply{Delay: 2 * time.Second, Content: llmtest.JSON(tier1Answer())}
		})
		got, err := f.a.Tier1(context.Background(), tier1Input())
		if got != nil || !errors.Is(err, llm.ErrTimeout) {
			t.Fatalf("Tier1 = %v, %v; want no insight and ErrTimeout", got, err)
		}
		// Counted on the client's side: under load a timed-out attempt may never reach the server.
		if n := f.metric("llm_requests_total", map[string]string{"client": "tier1", "status": "timeout"}); n != 3 {
			t.Errorf("llm_requests_total{timeout} = %v, want 3 attempts", n)
		}
		if n := f.metric("guidance_llm_analyses_total", map[string]string{"tier": "tier1", "outcome": "timeout"}); n != 1 {
			t.Errorf("guidance_llm_analyses_total{tier1,timeout} = %v, want 1", n)
		}
	})
	t.Run("the caller's deadline", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil)
		f.srv.Handle(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Hang: true} })
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		got, err := f.a.Tier1(ctx, tier1Input())
		if got != nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Tier1 = %v, %v; want no insight and the deadline", got, err)
		}
	})
}

func TestTier1RateLimited(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.srv.Script(llmtest.Reply{Status: 429, RetryAfter: "1", ErrorMessage: "Rate limit reached"}, llmtest.Reply{Content: llmtest.JSON(tier1Answer())})
	got, err := f.a.Tier1(context.Background(), tier1Input())
	if err != nil || got == nil {
		t.Fatalf("Tier1 = %v, %v; want the retry's insight", got, err)
	}
	reqs := f.srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("server got %d requests, want 2", len(reqs))
	}
	if gap := reqs[1].At.Sub(reqs[0].At); gap < 900*time.Millisecond {
		t.Errorf("retried after %v, before the 1 s of Retry-After", gap)
	}
}

func TestTier1Budget(t *testing.T) {
	t.Parallel()
	budget := llm.NewMemoryBudget(100, nil) // less than one request's estimate
	f := newFixture(t, nil, llm.WithBudget(budget))
	f.always(llmtest.JSON(tier1Answer()))
	got, err := f.a.Tier1(context.Background(), tier1Input())
	if got != nil || !errors.Is(err, llm.ErrBudgetExhausted) {
		t.Fatalf("Tier1 = %v, %v; want no insight and ErrBudgetExhausted", got, err)
	}
	if n := len(f.srv.Requests()); n != 0 {
		t.Errorf("server got %d requests, want none", n)
	}
	// The budget is per school.
	if err := budget.Reserve(context.Background(), "school-2", 100); err != nil {
		t.Errorf("another school: %v", err)
	}
	if used, reserved := budget.Used("school-1"); used != 0 || reserved != 0 {
		t.Errorf("school-1 used %d reserved %d, want nothing", used, reserved)
	}
}

func TestTier1Concurrency(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *llm.Config) { c.Concurrency = 2 })
	f.srv.Handle(func(llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Delay: 30 * time.Millisecond, Content: llmtest.JSON(tier1Answer())}
	})
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if _, err := f.a.Tier1(context.Background(), tier1Input()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := f.srv.MaxInFlight(); got != 2 {
		t.Errorf("server saw %d requests at once, want 2", got)
	}
}

func TestTier1ActivityOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	in := tier1Input()
	in.Turns, in.Context = nil, nil
	ans := set(set(tier1Answer(), "evidence", []any{}), "metrics.question_count", 0)
	ans = set(set(ans, "metrics.focusing_questions", 0), "metrics.silence_seconds", 40)
	f.srv.Script(llmtest.Reply{Content: llmtest.JSON(ans)})
	got, err := f.a.Tier1(context.Background(), in)
	if err != nil || got.GetMetrics().GetSilenceSeconds() != 40 {
		t.Fatalf("Tier1 = %v, %v", got, err)
	}
	if !strings.Contains(f.srv.Requests()[0].Messages[1].Content, "Nothing was transcribed") {
		t.Error("the prompt does not say nothing was transcribed")
	}
	// Evidence cannot be given when nothing was transcribed.
	f.srv.Script(llmtest.Reply{Content: llmtest.JSON(set(ans, "evidence", []any{map[string]any{"window_id": "w1", "excerpt": "plants need"}}))})
	if got, err := f.a.Tier1(context.Background(), in); got != nil || !errors.Is(err, llm.ErrMalformed) {
		t.Errorf("Tier1 = %v, %v; want ErrMalformed", got, err)
	}
	in.Activity = nil
	if _, err := f.a.Tier1(context.Background(), in); !errors.Is(err, analyzer.ErrNoContent) {
		t.Errorf("Tier1 without anything = %v, want ErrNoContent", err)
	}
}

func TestTier1LongTranscriptIsCapped(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	in := tier1Input()
	in.Turns = nil
	for i := range 400 {
		in.Turns = append(in.Turns, analyzer.Turn{WindowID: "win-" + string(rune('a'+i%26)) + string(rune('a'+i/26)),
			Start: t0.Add(time.Duration(i) * time.Second), Text: "the leaves catch light and make sugar for the plant number " + strings.Repeat("x", i%7)})
	}
	f.srv.Script(llmtest.Reply{Content: llmtest.JSON(set(tier1Answer(), "evidence", []any{}))})
	if _, err := f.a.Tier1(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	user := f.srv.Requests()[0].Messages[1].Content
	if len(user) > llmanalyzer.DefaultTier1TranscriptChars+4000 {
		t.Errorf("user message of %d bytes, want the transcript capped near %d", len(user), llmanalyzer.DefaultTier1TranscriptChars)
	}
	if !strings.Contains(user, "number xxxxx") || strings.Contains(user, "[w1] the leaves catch light and make sugar for the plant number \n") {
		t.Error("the newest turns should be kept")
	}
}

func TestTier2(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.srv.Script(llmtest.Reply{Content: llmtest.JSON(tier2Answer())})
	got, err := f.a.Tier2(context.Background(), tier2Input())
	if err != nil {
		t.Fatal(err)
	}
	want := &guidancev1.Tier2Insight{
		Groups: []*guidancev1.GroupAnalysis{
			{GroupId: "group-1", Argumentation: &guidancev1.Argumentation{Claims: 0.6, Evidence: 0.2, Reasoning: 0.3},
				CollaborationPatterns: []string{"building_on_ideas"}, LearningSignals: []string{"asks_questions", "misconception"},
				Evidence: []*guidancev1.Evidence{{WindowId: "win-2", Excerpt: "roots take food from the soil", At: timestamppb.New(t0.Add(15 * time.Second))}}},
			{GroupId: "group-2", Argumentation: &guidancev1.Argumentation{Claims: 0.5, Evidence: 0.5, Reasoning: 0.6},
				LearningSignals: []string{"explains_reasoning"},
				Evidence:        []*guidancev1.Evidence{{WindowId: "win-9", Excerpt: "light gives energy because the leaves face the window", At: timestamppb.New(t0.Add(5 * time.Second))}}},
		},
		Recommendations: []*guidancev1.Recommendation{
			{GroupId: "group-1", Text: "Ask the group what evidence would settle sunlight versus soil.", Priority: "high", Category: "deepen"},
			{Text: "Share one group's evidence with the class.", Priority: "low", Category: "collaboration"},
		},
		Summary:    "Groups are debating where plant food comes from; one cites evidence.",
		Confidence: 0.6,
		Analyzer:   "llm:gpt-4o-mini",
	}
	if diff := cmp.Diff(want, got, protocmp.Transform(), protocmp.IgnoreEmptyMessages()); diff != "" {
		t.Errorf("insight mismatch (-want +got):\n%s", diff)
	}
	r := f.srv.Requests()[0]
	user := r.Messages[1].Content
	for _, s := range []string{"Group g1:", "Group g2:", "[w4] We think light gives energy", "topical focus 0.80", "observed: [student] leads."} {
		if !strings.Contains(user, s) {
			t.Errorf("user message lacks %q:\n%s", s, user)
		}
	}
	if strings.Contains(user, "Group g3") {
		t.Error("a group with nothing to analyse was sent")
	}
	if r.ResponseFormat.Name != "tier2_analysis" {
		t.Errorf("schema name %q", r.ResponseFormat.Name)
	}
	checkSent(t, f.srv)
}

func TestTier2RejectsBadAnswers(t *testing.T) {
	t.Parallel()
	good := tier2Answer()
	tests := []struct {
		name string
		ans  map[string]any
		raw  string
	}{
		{name: "unknown group", ans: set(good, "groups.0.group_id", "g7")},
		{name: "a real group id", ans: set(good, "groups.0.group_id", "group-1")},
		{name: "a group twice", ans: set(good, "groups.1.group_id", "g1")},
		{name: "evidence from another group's window", ans: set(good, "groups.1.evidence.0.window_id", "w2")},
		{name: "invented evidence", ans: set(good, "groups.0.evidence.0.excerpt", "plants eat soil")},
		{name: "argumentation out of range", ans: set(good, "groups.0.argumentation.claims", 2)},
		{name: "argumentation as text", ans: set(good, "groups.0.argumentation.claims", "high")},
		{name: "unknown pattern", ans: set(good, "groups.0.collaboration_patterns", []any{"chaotic"})},
		{name: "a pattern twice", ans: set(good, "groups.0.collaboration_patterns", []any{"balanced", "balanced"})},
		{name: "unknown signal", ans: set(good, "groups.0.learning_signals", []any{"bored"})},
		{name: "unknown category", ans: set(good, "recommendations.0.category", "punish")},
		{name: "unknown priority", ans: set(good, "recommendations.0.priority", "urgent")},
		{name: "recommendation for an unknown group", ans: set(good, "recommendations.0.group_id", "g3")},
		{name: "recommendation too long", ans: set(good, "recommendations.0.text", strings.Repeat("a", 301))},
		{name: "recommendation twice", ans: set(good, "recommendations.1", deepCopy(good["recommendations"].([]any)[0]))},
		{name: "empty summary", ans: set(good, "summary", "")},
		{name: "summary too long", ans: set(good, "summary", strings.Repeat("a", 1001))},
		{name: "too many recommendations", ans: set(good, "recommendations", []any{
			map[string]any{"group_id": "", "text": "a", "priority": "low", "category": "deepen"},
			map[string]any{"group_id": "", "text": "b", "priority": "low", "category": "deepen"},
			map[string]any{"group_id": "", "text": "c", "priority": "low", "category": "deepen"},
			map[string]any{"group_id": "", "text": "d", "priority": "low", "category": "deepen"},
			map[string]any{"group_id": "", "text": "e", "priority": "low", "category": "deepen"},
			map[string]any{"group_id": "", "text": "f", "priority": "low", "category": "deepen"},
		})},
		{name: "unknown field", ans: set(good, "groups.0.mood", "ok")},
		{name: "malformed", raw: `{"groups": [`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			content := tt.raw
			if content == "" {
				content = llmtest.JSON(tt.ans)
			}
			f.always(content)
			got, err := f.a.Tier2(context.Background(), tier2Input())
			t.Logf("error: %v", err)
			if got != nil || !errors.Is(err, llm.ErrMalformed) {
				t.Errorf("Tier2 = %v, %v; want no insight and ErrMalformed", got, err)
			}
			if n := f.metric("guidance_llm_analyses_total", map[string]string{"tier": "tier2", "outcome": "malformed"}); n != 1 {
				t.Errorf("guidance_llm_analyses_total{tier2,malformed} = %v, want 1", n)
			}
		})
	}
}

func TestTier2Comprehensive(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	in := tier2Input()
	in.Depth = "comprehensive"
	recs := []any{}
	for _, s := range []string{"a", "b", "c", "d", "e", "f"} {
		recs = append(recs, map[string]any{"group_id": "", "text": s, "priority": "low", "category": "deepen"})
	}
	f.srv.Script(llmtest.Reply{Content: llmtest.JSON(set(tier2Answer(), "recommendations", recs))})
	got, err := f.a.Tier2(context.Background(), in)
	if err != nil || len(got.GetRecommendations()) != 6 {
		t.Fatalf("Tier2 = %v, %v; want 6 recommendations at comprehensive depth", got, err)
	}
}

func TestTier2NoContent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	in := tier2Input()
	in.Groups = []analyzer.GroupInput{{GroupID: "group-3"}}
	if _, err := f.a.Tier2(context.Background(), in); !errors.Is(err, analyzer.ErrNoContent) {
		t.Errorf("Tier2 = %v, want ErrNoContent", err)
	}
	if n := len(f.srv.Requests()); n != 0 {
		t.Errorf("server got %d requests, want none", n)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t)
	c, err := llm.New(llm.Config{BaseURL: srv.URL(), Model: "gpt-4o-mini", Timeout: time.Second, Concurrency: 1, MaxTokens: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := llmanalyzer.New(nil, "llm:x", nil); err == nil {
		t.Error("New accepted a nil client")
	}
	if _, err := llmanalyzer.New(c, "", nil); err == nil {
		t.Error("New accepted an empty name")
	}
	reg := prometheus.NewRegistry()
	a, err := llmanalyzer.New(c, "llm:gpt-4o-mini", reg, llmanalyzer.WithPrompts("Custom tier 1.", ""))
	if err != nil || a.Name() != "llm:gpt-4o-mini" {
		t.Fatalf("New = %v, %v", a, err)
	}
	// A second analyzer on the same registry shares the metrics.
	if _, err := llmanalyzer.New(c, "llm:other", reg); err != nil {
		t.Fatal(err)
	}
	srv.Script(llmtest.Reply{Content: llmtest.JSON(tier1Answer())})
	if _, err := a.Tier1(context.Background(), tier1Input()); err != nil {
		t.Fatal(err)
	}
	if sys := srv.Requests()[0].Messages[0].Content; sys != "Custom tier 1." {
		t.Errorf("system prompt %q, want the override", sys)
	}
}
