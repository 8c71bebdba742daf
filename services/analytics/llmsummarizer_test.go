package analytics

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/llm"
	"github.com/classwaves/classwaves/pkg/llm/llmtest"
	"github.com/classwaves/classwaves/pkg/testenv"
)

// newLLM is an LLM summarizer talking to the local OpenAI-compatible server.
func newLLM(t testing.TB, srv *llmtest.Server, retries int) *LLMSummarizer {
	t.Helper()
	c, err := llm.New(llm.Config{BaseURL: srv.URL(), APIKey: srv.APIKey, Model: "gpt-4o-mini", Timeout: 5 * time.Second,
		MaxRetries: retries, Concurrency: 2, MaxTokens: 2000, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLLMSummarizer(c)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type answerGroup struct {
	Group     string   `json:"group"`
	Text      string   `json:"text"`
	KeyPoints []string `json:"key_points"`
	Concerns  []string `json:"concerns"`
}

func answer(groups ...answerGroup) string {
	return llmtest.JSON(map[string]any{
		"session": map[string]any{"text": "The class explored how plants make food.", "highlights": []string{"Good questions about leaves."}, "next_steps": []string{"Revisit chlorophyll."}},
		"groups":  groups,
	})
}

func llmInput() SummaryInput {
	return SummaryInput{
		SessionID: "s", SchoolID: schoolA, Title: "Photosynthesis with Ada", Objectives: []string{"Explain how plants make food"},
		Analytics: &analyticsv1.SessionAnalytics{GroupCount: 2},
		Names:     []string{"Ada Lovelace", "Ben"},
		Groups: []GroupSummaryInput{
			{GroupID: "g-one", Name: "Group 1", Transcript: []string{"Ada said plants need light.", "Ben agreed, write to ben at school dot org."}, Metrics: &analyticsv1.GroupMetrics{MemberCount: 2}},
			{GroupID: "g-two", Name: "Group 2", Metrics: &analyticsv1.GroupMetrics{}},
		},
	}
}

func TestLLMSummarizer(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t)
	srv.APIKey = "sk-test"
	l := newLLM(t, srv, 1)
	// Answered out of order: mapped back by reference.
	srv.Script(llmtest.Reply{Content: answer(
		answerGroup{Group: "G2", Text: "Nothing was said.", KeyPoints: []string{}, Concerns: []string{"No speech was recorded."}},
		answerGroup{Group: "G1", Text: "The group discussed light.", KeyPoints: []string{"Plants need light."}, Concerns: []string{}},
	)})
	sum, groups, err := l.Summarize(context.Background(), llmInput())
	if err != nil {
		t.Fatal(err)
	}
	if sum.GetSummarizer() != "llm:gpt-4o-mini" || sum.GetText() != "The class explored how plants make food." || len(groups) != 2 {
		t.Fatalf("summary = %v, groups %v", sum, groups)
	}
	if groups[0].GetGroupId() != "g-one" || groups[0].GetText() != "The group discussed light." || groups[1].GetGroupId() != "g-two" ||
		!cmp.Equal(groups[1].GetConcerns(), []string{"No speech was recorded."}) || groups[1].GetSummarizer() != "llm:gpt-4o-mini" {
		t.Errorf("groups = %v", groups)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	var user string
	for _, m := range reqs[0].Messages {
		if m.Role == "user" {
			user = m.Content
		}
	}
	for _, leaked := range []string{"Ada", "Lovelace", "Ben", "ben at school"} {
		if strings.Contains(user, leaked) {
			t.Errorf("the prompt carries %q:\n%s", leaked, user)
		}
	}
	if !strings.Contains(user, "[student] said plants need light.") || !strings.Contains(user, "## G2 (Group 2)") || !strings.Contains(user, "Explain how plants make food") {
		t.Errorf("prompt:\n%s", user)
	}
	if rf := reqs[0].ResponseFormat; rf == nil || rf.Type != "json_schema" || !rf.Strict || rf.Name != "session_summaries" {
		t.Errorf("response format = %+v", rf)
	}
}

func TestLLMSummarizerRejectsBadAnswers(t *testing.T) {
	t.Parallel()
	good := answerGroup{Group: "G1", Text: "ok", KeyPoints: []string{}, Concerns: []string{}}
	tests := []struct {
		name    string
		content string
	}{
		{"a group missing", answer(good, good)},
		{"empty session text", strings.Replace(answer(good, answerGroup{Group: "G2", Text: "x", KeyPoints: []string{}, Concerns: []string{}}),
			"The class explored how plants make food.", "  ", 1)},
		{"empty group text", answer(good, answerGroup{Group: "G2", Text: " ", KeyPoints: []string{}, Concerns: []string{}})},
		{"empty key point", answer(good, answerGroup{Group: "G2", Text: "x", KeyPoints: []string{""}, Concerns: []string{}})},
		{"text too long", answer(good, answerGroup{Group: "G2", Text: strings.Repeat("x", maxSummaryText+1), KeyPoints: []string{}, Concerns: []string{}})},
		{"unknown group", answer(good, answerGroup{Group: "G3", Text: "x", KeyPoints: []string{}, Concerns: []string{}})},
		{"not json", "Here is your summary: great class!"},
	}
	for _, tt := range tests {
		srv := llmtest.NewServer(t)
		l := newLLM(t, srv, 1)
		srv.Handle(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Content: tt.content} })
		if _, _, err := l.Summarize(context.Background(), llmInput()); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
		if n := len(srv.Requests()); n != 2 {
			t.Errorf("%s: %d requests, want the malformed answer retried once", tt.name, n)
		}
	}
	if _, _, err := newLLM(t, llmtest.NewServer(t), 0).Summarize(context.Background(), SummaryInput{SessionID: "s"}); err == nil {
		t.Error("a session without groups was summarized")
	}
	if got := clip("héllo wörld, this is long", 12); len(got) > 12+len("\n[...]\n") || !strings.Contains(got, "[...]") {
		t.Errorf("clip = %q", got)
	}
}

// TestLLMSummariesThroughTheService: the service uses the LLM summarizer when it answers well,
// and the built-in one (recorded as such) when it fails.
func TestLLMSummariesThroughTheService(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		reply llmtest.Reply
		want  string
	}{
		{"llm", llmtest.Reply{Content: answer(
			answerGroup{Group: "G1", Text: "Group one talked about sunlight.", KeyPoints: []string{"Sunlight makes food."}, Concerns: []string{}},
			answerGroup{Group: "G2", Text: "Group two was quiet.", KeyPoints: []string{}, Concerns: []string{"Quiet."}},
		)}, "llm:gpt-4o-mini"},
		{"fallback", llmtest.Reply{Status: 500, ErrorMessage: "overloaded"}, BuiltinName},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := llmtest.NewServer(t)
			srv.Handle(func(llmtest.Request) llmtest.Reply { return tt.reply })
			h := newHarness(t, harnessOptions{mod: func(c *Config) { c.SummariesEnabled = true }})
			r := h.replica(harnessOptions{summarizer: newLLM(t, srv, 0)}, nil)
			sc := newScenario(h)
			sc.run(h)
			sc.end(h)
			testenv.Eventually(t, "summaries ready", func() bool { return len(published(t, h.bus, h.cfg.EventsTopic, EventSummariesReady)) == 1 })
			teacher := h.as(authn.RoleTeacher, teacher1, schoolA)
			sum, err := r.client.GetSessionSummaries(teacher, &analyticsv1.GetSessionSummariesRequest{SessionId: sc.sessionID})
			if err != nil {
				t.Fatal(err)
			}
			if got := sum.GetSummary().GetSummarizer(); got != tt.want {
				t.Errorf("summarizer = %q, want %q", got, tt.want)
			}
			gs, err := r.client.GetGroupSummary(teacher, &analyticsv1.GetGroupSummaryRequest{SessionId: sc.sessionID, GroupId: sc.g1})
			if err != nil {
				t.Fatal(err)
			}
			if gs.GetSummary().GetSummarizer() != tt.want || gs.GetSummary().GetText() == "" {
				t.Errorf("group summary = %v", gs.GetSummary())
			}
			if tt.want != BuiltinName && gs.GetSummary().GetText() != "Group one talked about sunlight." {
				t.Errorf("group 1 got %q", gs.GetSummary().GetText())
			}
			for _, req := range srv.Requests() {
				for _, m := range req.Messages {
					for _, name := range []string{"Ada", "Eve"} {
						if strings.Contains(m.Content, name) {
							t.Errorf("a student's name reached the model: %q", name)
						}
					}
				}
			}
		})
	}
}
