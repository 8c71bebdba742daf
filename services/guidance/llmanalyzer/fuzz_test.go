package llmanalyzer

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/classwaves/classwaves/pkg/llm"
	"github.com/classwaves/classwaves/services/guidance/analyzer"
)

func fuzzInput() analyzer.Tier1Input {
	t0 := time.Date(2025, 3, 4, 14, 0, 0, 0, time.UTC)
	return analyzer.Tier1Input{
		Turns: []analyzer.Turn{
			{WindowID: "win-1", Start: t0, Text: "Maria thinks plants need sunlight, to make food!"},
			{WindowID: "win-2", Start: t0.Add(15 * time.Second), Text: "Roots   take food from the SOIL, says jk@school.org."},
			{WindowID: "win-2", Start: t0.Add(20 * time.Second), Text: "Why? Ça dépend."},
		},
		SpanStart: t0, SpanEnd: t0.Add(30 * time.Second),
		Names: []string{"Maria"},
	}
}

// FuzzTier1Validate feeds arbitrary answers to Tier 1's checks: whatever they accept must hold
// the promises made to teachers.
func FuzzTier1Validate(f *testing.F) {
	f.Add(`{"metrics":{"topical_focus":0.5,"question_count":1,"focusing_questions":1,"silence_seconds":3},"observations":["ok"],"evidence":[{"window_id":"w1","excerpt":"plants need sunlight"}],"confidence":0.5}`)
	f.Add(`{"metrics":{},"observations":[],"evidence":[{"window_id":"w2","excerpt":"take food from the soil says"}],"confidence":1}`)
	f.Add(`{"metrics":{},"evidence":[{"window_id":"w2","excerpt":"ça DÉPEND"}],"confidence":0}`)
	f.Add(`{"metrics":{"uptake":-0.1},"evidence":[{"window_id":"w3","excerpt":"why"}],"confidence":2}`)
	in := fuzzInput()
	f.Fuzz(func(t *testing.T, content string) {
		p := newTier1Prompt(in, DefaultTier1TranscriptChars)
		var ans tier1Answer
		if json.Unmarshal([]byte(content), &ans) != nil {
			return
		}
		ins, err := p.insight(&ans)
		if err != nil {
			return
		}
		m := ins.GetMetrics()
		for _, v := range []float64{m.GetTopicalFocus(), m.GetConceptualDensity(), m.GetParticipationBalance(), m.GetUptake(),
			m.GetOffTaskRatio(), m.GetRepetition(), ins.GetConfidence()} {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("accepted a ratio of %v: %v", v, ins)
			}
		}
		if m.GetFocusingQuestions()+m.GetFunnelingQuestions() > m.GetQuestionCount() || m.GetQuestionCount() < 0 ||
			m.GetSilenceSeconds() > 31 || m.GetTurnTakingRate() >= maxTurnTakingRate || m.GetTurnTakingRate() < 0 {
			t.Fatalf("accepted implausible metrics: %v", m)
		}
		if len(ins.GetObservations()) > maxObservations || len(ins.GetEvidence()) > maxTier1Evidence {
			t.Fatalf("accepted too many items: %v", ins)
		}
		for _, e := range ins.GetEvidence() {
			found := false
			for _, turn := range in.Turns {
				if turn.WindowID == e.GetWindowId() && strings.Contains(llm.Redact(oneLine(turn.Text), in.Names), e.GetExcerpt()) {
					found = true
				}
			}
			if !found || strings.TrimSpace(e.GetExcerpt()) == "" {
				t.Fatalf("accepted evidence %v that is not in window %s", e, e.GetWindowId())
			}
			if strings.Contains(strings.ToLower(e.GetExcerpt()), "maria") || strings.Contains(e.GetExcerpt(), "@") {
				t.Fatalf("evidence %q holds a name or an address", e.GetExcerpt())
			}
		}
	})
}

// FuzzFind checks that what find matches normalizes back to the excerpt, at word boundaries.
func FuzzFind(f *testing.F) {
	f.Add("Plants need SUNLIGHT, to make food!", "need sunlight to")
	f.Add("Ça dépend. İstanbul", "i̇stanbul")
	f.Add("a\xffb  c", "b c")
	f.Fuzz(func(t *testing.T, src, excerpt string) {
		n := normalize(src)
		ex := normalize(excerpt).s
		m, ok := n.find(src, ex)
		if !ok {
			return
		}
		if got := normalize(m).s; got != ex {
			t.Fatalf("find(%q, %q) = %q, which normalizes to %q", src, ex, m, got)
		}
		words := strings.Fields(n.s)
		exWords := strings.Fields(ex)
		if !slices.ContainsFunc(indexes(len(words)), func(i int) bool {
			return i+len(exWords) <= len(words) && slices.Equal(words[i:i+len(exWords)], exWords)
		}) {
			t.Fatalf("find(%q, %q) matched %q inside words", src, ex, m)
		}
	})
}

func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestSpeakerLabels(t *testing.T) {
	t.Parallel()
	for i, want := range map[int]string{0: "A", 25: "Z", 26: "AA", 27: "AB", 52: "BA"} {
		if got := speakerLabel(i); got != want {
			t.Errorf("speakerLabel(%d) = %q, want %q", i, got, want)
		}
	}
}
