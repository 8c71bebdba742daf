package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
	"github.com/classwaves/classwaves/pkg/llm"
)

// Bounds of the LLM summarizer: what it sends, and what it accepts back.
const (
	// DefaultSummaryTranscriptChars is the transcript sent per group at most; DefaultSummaryTotalChars
	// the transcript sent for the whole session (shared by the groups).
	DefaultSummaryTranscriptChars = 6000
	DefaultSummaryTotalChars      = 24000
	summaryMaxTokens              = 1500
	maxSummaryText                = 1500
	maxSummaryItem                = 300
	maxSummaryItems               = 5
)

// llmSystemPrompt frames the model's task.
const llmSystemPrompt = `You summarize a finished classroom session of small-group discussions for the teacher.
Use only the transcripts and figures given; never invent quotes, names or events. Students' names were
replaced by [student]; keep it that way. Write plain, specific English a busy teacher can act on.
For the session: a short summary (2-4 sentences), up to 5 highlights and up to 5 next steps.
For every group, by its reference (G1, G2, ...): a short summary, up to 5 key points drawn from what the
group said, and up to 5 concerns (silence, drifting off topic, few voices, no questions...), or none.`

// LLMSummarizer writes summaries with a chat model through pkg/llm. Student names (and e-mail
// addresses) are removed from everything sent (llm.Redact); each group's transcript is cut to a
// budget (its start and its end kept). The answer must follow a strict JSON schema and is checked
// again here: every group answered exactly once, texts non-empty and bounded. Any failure is an
// error, and the service then falls back to the built-in summarizer.
type LLMSummarizer struct {
	client     *llm.Client
	groupChars int
	totalChars int
}

var _ Summarizer = (*LLMSummarizer)(nil)

// NewLLMSummarizer returns a summarizer using client (built by the process from
// AI_SUMMARIZER_ENDPOINT and AI_SUMMARIZER_MODEL).
func NewLLMSummarizer(client *llm.Client) (*LLMSummarizer, error) {
	if client == nil {
		return nil, errors.New("analytics: NewLLMSummarizer needs a client")
	}
	return &LLMSummarizer{client: client, groupChars: DefaultSummaryTranscriptChars, totalChars: DefaultSummaryTotalChars}, nil
}

// Name implements Summarizer: "llm:<model>".
func (l *LLMSummarizer) Name() string { return "llm:" + l.client.Model() }

// llmAnswer is the answer's shape (the schema below).
type llmAnswer struct {
	Session struct {
		Text       string   `json:"text"`
		Highlights []string `json:"highlights"`
		NextSteps  []string `json:"next_steps"`
	} `json:"session"`
	Groups []struct {
		Group     string   `json:"group"`
		Text      string   `json:"text"`
		KeyPoints []string `json:"key_points"`
		Concerns  []string `json:"concerns"`
	} `json:"groups"`
}

// Summarize implements Summarizer.
func (l *LLMSummarizer) Summarize(ctx context.Context, in SummaryInput) (*analyticsv1.SessionSummary, []*analyticsv1.GroupSummary, error) {
	if len(in.Groups) == 0 {
		return nil, nil, errors.New("llm summarizer: no groups to summarize")
	}
	refs := make([]string, len(in.Groups))
	for i := range in.Groups {
		refs[i] = fmt.Sprintf("G%d", i+1)
	}
	schema, err := llmSchema(refs)
	if err != nil {
		return nil, nil, err
	}
	var (
		ans    llmAnswer
		sum    *analyticsv1.SessionSummary
		groups []*analyticsv1.GroupSummary
	)
	req := llm.Request{
		System:     llmSystemPrompt,
		User:       l.prompt(in, refs),
		SchemaName: "session_summaries",
		Schema:     schema,
		BudgetKey:  in.SchoolID,
		MaxTokens:  summaryMaxTokens,
		Validate: func() error {
			var err error
			sum, groups, err = l.convert(in, refs, &ans)
			return err
		},
	}
	if _, err := l.client.CompleteJSON(ctx, req, &ans); err != nil {
		return nil, nil, fmt.Errorf("llm summarizer: session %s: %w", in.SessionID, err)
	}
	return sum, groups, nil
}

// prompt is the user message: the session, its figures, and each group's figures and transcript,
// with the students' names removed.
func (l *LLMSummarizer) prompt(in SummaryInput, refs []string) string {
	redact := func(s string) string { return llm.Redact(s, in.Names) }
	var b strings.Builder
	a := in.Analytics
	if a == nil {
		a = &analyticsv1.SessionAnalytics{}
	}
	fmt.Fprintf(&b, "Session: %s\n", redact(strings.TrimSpace(in.Title)))
	if len(in.Objectives) > 0 {
		b.WriteString("Learning objectives:\n")
		for _, o := range in.Objectives {
			fmt.Fprintf(&b, "- %s\n", redact(strings.TrimSpace(o)))
		}
	}
	fmt.Fprintf(&b, "Figures: %d groups; %d of %d students joined (%.0f%%); active %s; engagement %.0f/100; %d insights; %d teacher prompts (%d acknowledged).\n",
		a.GetGroupCount(), a.GetJoinedStudentCount(), a.GetStudentCount(), a.GetParticipationRate(), duration(float64(a.GetDurationSeconds())),
		a.GetEngagementScore(), a.GetInsightCount(), a.GetPromptCount(), a.GetPromptsAcknowledged())
	budget := min(l.groupChars, l.totalChars/len(in.Groups))
	for i, g := range in.Groups {
		m := g.Metrics
		if m == nil {
			m = &analyticsv1.GroupMetrics{}
		}
		fmt.Fprintf(&b, "\n## %s (%s)\n", refs[i], redact(groupLabel(g.Name, refs[i])))
		fmt.Fprintf(&b, "Figures: %d students; spoke %s, silent %s (longest silence %s); %d words in %d turns; on topic %s of analyses; %d questions.\n",
			m.GetMemberCount(), duration(m.GetSpeakingSeconds()), duration(m.GetSilenceSeconds()), duration(m.GetLongestSilenceSeconds()),
			m.GetWordCount(), m.GetTurnCount(), pct(m.GetOnTopicRatio()), m.GetQuestionCount())
		text := redact(strings.Join(g.Transcript, "\n"))
		if strings.TrimSpace(text) == "" {
			b.WriteString("Transcript: (nothing was transcribed)\n")
			continue
		}
		fmt.Fprintf(&b, "Transcript:\n%s\n", clip(text, budget))
	}
	return b.String()
}

// clip keeps at most n bytes of s: its start and its end, marked where cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "\n[...]\n"
	half := max(0, (n-len(mark))/2)
	head, tail := s[:half], s[len(s)-half:]
	for len(head) > 0 && !utf8.ValidString(head) {
		head = head[:len(head)-1]
	}
	for len(tail) > 0 && !utf8.ValidString(tail) {
		tail = tail[1:]
	}
	return head + mark + tail
}

// llmSchema is the answer's JSON schema (OpenAI strict mode: every object closed, every property
// required); lengths are checked in convert since strict mode has no minLength or maxLength.
func llmSchema(refs []string) (json.RawMessage, error) {
	list := map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "maxItems": maxSummaryItems}
	schema := map[string]any{
		"type": "object", "additionalProperties": false, "required": []string{"session", "groups"},
		"properties": map[string]any{
			"session": map[string]any{
				"type": "object", "additionalProperties": false, "required": []string{"text", "highlights", "next_steps"},
				"properties": map[string]any{"text": map[string]any{"type": "string"}, "highlights": list, "next_steps": list},
			},
			"groups": map[string]any{
				"type": "array", "minItems": len(refs), "maxItems": len(refs),
				"items": map[string]any{
					"type": "object", "additionalProperties": false, "required": []string{"group", "text", "key_points", "concerns"},
					"properties": map[string]any{
						"group": map[string]any{"type": "string", "enum": refs}, "text": map[string]any{"type": "string"},
						"key_points": list, "concerns": list,
					},
				},
			},
		},
	}
	b, err := json.Marshal(schema)
	return b, err
}

// convert checks the answer strictly and turns it into summaries in the input's group order.
func (l *LLMSummarizer) convert(in SummaryInput, refs []string, ans *llmAnswer) (*analyticsv1.SessionSummary, []*analyticsv1.GroupSummary, error) {
	name := l.Name()
	text, err := checkText("session text", ans.Session.Text, maxSummaryText)
	if err != nil {
		return nil, nil, err
	}
	highlights, err := checkItems("highlights", ans.Session.Highlights)
	if err != nil {
		return nil, nil, err
	}
	steps, err := checkItems("next steps", ans.Session.NextSteps)
	if err != nil {
		return nil, nil, err
	}
	sum := &analyticsv1.SessionSummary{SessionId: in.SessionID, Text: text, Highlights: highlights, NextSteps: steps, Summarizer: name}
	byRef := map[string]int{}
	for i, r := range refs {
		byRef[r] = i
	}
	groups := make([]*analyticsv1.GroupSummary, len(refs))
	for _, g := range ans.Groups {
		i, ok := byRef[g.Group]
		if !ok {
			return nil, nil, fmt.Errorf("unknown group %q", truncate(g.Group, 20))
		}
		if groups[i] != nil {
			return nil, nil, fmt.Errorf("group %s answered twice", g.Group)
		}
		text, err := checkText("group "+g.Group+" text", g.Text, maxSummaryText)
		if err != nil {
			return nil, nil, err
		}
		points, err := checkItems("group "+g.Group+" key points", g.KeyPoints)
		if err != nil {
			return nil, nil, err
		}
		concerns, err := checkItems("group "+g.Group+" concerns", g.Concerns)
		if err != nil {
			return nil, nil, err
		}
		groups[i] = &analyticsv1.GroupSummary{SessionId: in.SessionID, GroupId: in.Groups[i].GroupID, Text: text, KeyPoints: points, Concerns: concerns, Summarizer: name}
	}
	for i, g := range groups {
		if g == nil {
			return nil, nil, fmt.Errorf("group %s not answered", refs[i])
		}
	}
	return sum, groups, nil
}

func checkText(what, s string, limit int) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", fmt.Errorf("%s is empty", what)
	case utf8.RuneCountInString(s) > limit:
		return "", fmt.Errorf("%s is longer than %d characters", what, limit)
	}
	return s, nil
}

func checkItems(what string, items []string) ([]string, error) {
	if len(items) > maxSummaryItems {
		return nil, fmt.Errorf("%s: %d items, at most %d", what, len(items), maxSummaryItems)
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		s, err := checkText(fmt.Sprintf("%s[%d]", what, i), it, maxSummaryItem)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
