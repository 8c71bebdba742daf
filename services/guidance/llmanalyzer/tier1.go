package llmanalyzer

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	"github.com/classwaves/classwaves/services/guidance/analyzer"
)

// tier1Answer is the answer the Tier 1 schema describes.
type tier1Answer struct {
	Metrics      tier1Metrics     `json:"metrics"`
	Observations []string         `json:"observations"`
	Evidence     []evidenceAnswer `json:"evidence"`
	Confidence   float64          `json:"confidence"`
}

type tier1Metrics struct {
	TopicalFocus         float64 `json:"topical_focus"`
	ConceptualDensity    float64 `json:"conceptual_density"`
	ParticipationBalance float64 `json:"participation_balance"`
	TurnTakingRate       float64 `json:"turn_taking_rate"`
	QuestionCount        int32   `json:"question_count"`
	FocusingQuestions    int32   `json:"focusing_questions"`
	FunnelingQuestions   int32   `json:"funneling_questions"`
	Uptake               float64 `json:"uptake"`
	ConfusionMarkers     int32   `json:"confusion_markers"`
	OffTaskRatio         float64 `json:"off_task_ratio"`
	SilenceSeconds       float64 `json:"silence_seconds"`
	HedgeRate            float64 `json:"hedge_rate"`
	Repetition           float64 `json:"repetition"`
}

type evidenceAnswer struct {
	WindowID string `json:"window_id"`
	Excerpt  string `json:"excerpt"`
}

// tier1Prompt is one Tier 1 request: what is sent and what the answer is checked against.
type tier1Prompt struct {
	user        string
	lb          *labeller
	words       int
	spanSeconds float64
}

func newTier1Prompt(in analyzer.Tier1Input, maxChars int) *tier1Prompt {
	p := &tier1Prompt{lb: newLabeller()}
	var b strings.Builder
	objectivesBlock(&b, in.Objectives, in.FocusAreas, in.Names)
	p.spanSeconds = spanSeconds(in)
	var tr strings.Builder
	p.words = p.lb.transcript(&tr, in.Turns, in.Names, "", maxChars, maxTier1Lines)
	if p.spanSeconds > 0 {
		fmt.Fprintf(&b, "Analysed span: %.0f seconds, %d transcript lines, %d words.\n", p.spanSeconds, strings.Count(tr.String(), "\n"), p.words)
	}
	if a := activitySummary(in.Activity); a != "" {
		fmt.Fprintf(&b, "Voice activity: %s.\n", a)
	}
	if len(in.Context) > 0 {
		b.WriteString("Earlier discussion (context only: never quote it as evidence):\n")
		contextLines(&b, in.Context, in.Names, contextChars)
	}
	if tr.Len() > 0 {
		b.WriteString("Transcript of the span (label, speaker when known, text):\n")
		b.WriteString(tr.String())
	} else {
		b.WriteString("Nothing was transcribed in the span: give no evidence.\n")
	}
	p.user = b.String()
	return p
}

// spanSeconds is the span's length: SpanStart..SpanEnd, else what the turns and activity cover.
func spanSeconds(in analyzer.Tier1Input) float64 {
	if !in.SpanStart.IsZero() && in.SpanEnd.After(in.SpanStart) {
		return in.SpanEnd.Sub(in.SpanStart).Seconds()
	}
	first, last := in.SpanStart, in.SpanEnd
	for _, t := range in.Turns {
		if !t.Start.IsZero() && (first.IsZero() || t.Start.Before(first)) {
			first = t.Start
		}
		if t.End.After(last) {
			last = t.End
		}
	}
	for _, a := range in.Activity {
		if !a.Start.IsZero() && (first.IsZero() || a.Start.Before(first)) {
			first = a.Start
		}
		if a.End.After(last) {
			last = a.End
		}
	}
	if !first.IsZero() && last.After(first) {
		return last.Sub(first).Seconds()
	}
	return 0
}

func unitNumber(desc string) map[string]any {
	return map[string]any{"type": "number", "minimum": 0, "maximum": 1, "description": desc}
}

func boundedNumber(max float64, desc string) map[string]any {
	return map[string]any{"type": "number", "minimum": 0, "maximum": max, "description": desc}
}

func count(desc string) map[string]any {
	return map[string]any{"type": "integer", "minimum": 0, "maximum": maxCount, "description": desc}
}

func object(props map[string]any) map[string]any {
	req := make([]string, 0, len(props))
	for k := range props {
		req = append(req, k)
	}
	slices.Sort(req)
	return map[string]any{"type": "object", "additionalProperties": false, "required": req, "properties": props}
}

func stringArray(maxItems int, items map[string]any) map[string]any {
	return map[string]any{"type": "array", "maxItems": maxItems, "items": items}
}

// evidenceSchema lists the window labels an excerpt may name.
func evidenceSchema(labels []string, maxItems int) map[string]any {
	win := map[string]any{"type": "string", "description": "label of the transcript line quoted"}
	if len(labels) == 0 {
		maxItems = 0
	} else {
		win["enum"] = labels
	}
	return map[string]any{"type": "array", "maxItems": maxItems, "items": object(map[string]any{
		"window_id": win,
		"excerpt":   map[string]any{"type": "string", "description": "words copied exactly from that line"},
	})}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of strings and numbers always encode
	}
	return b
}

func (p *tier1Prompt) schema() json.RawMessage {
	return mustJSON(object(map[string]any{
		"metrics": object(map[string]any{
			"topical_focus":         unitNumber("similarity of the discussion to the learning objectives"),
			"conceptual_density":    unitNumber("share of content words that are domain concepts"),
			"participation_balance": unitNumber("balance of talk across speakers, 1 = even"),
			"turn_taking_rate":      boundedNumber(maxTurnTakingRate, "speaker turns per minute"),
			"question_count":        count("questions asked"),
			"focusing_questions":    count("questions that ask peers to explain or justify"),
			"funneling_questions":   count("questions leading toward one expected answer"),
			"uptake":                unitNumber("share of turns building on the previous turn's ideas"),
			"confusion_markers":     count("expressions of confusion"),
			"off_task_ratio":        unitNumber("share of talk unrelated to the task"),
			"silence_seconds":       boundedNumber(maxSilenceSeconds, "seconds without speech in the span"),
			"hedge_rate":            boundedNumber(maxHedgeRate, "hedges per 100 words"),
			"repetition":            unitNumber("share of repeated content"),
		}),
		"observations": stringArray(maxObservations, map[string]any{"type": "string", "description": "at most 200 characters"}),
		"evidence":     evidenceSchema(p.lb.labels(), maxTier1Evidence),
		"confidence":   unitNumber("confidence in this analysis"),
	}))
}

// insight checks ans beyond the schema and converts it.
func (p *tier1Prompt) insight(ans *tier1Answer) (*guidancev1.Tier1Insight, error) {
	m := ans.Metrics
	for _, c := range []struct {
		name  string
		v, hi float64
	}{
		{"topical_focus", m.TopicalFocus, 1},
		{"conceptual_density", m.ConceptualDensity, 1},
		{"participation_balance", m.ParticipationBalance, 1},
		{"turn_taking_rate", m.TurnTakingRate, maxTurnTakingRate},
		{"uptake", m.Uptake, 1},
		{"off_task_ratio", m.OffTaskRatio, 1},
		{"silence_seconds", m.SilenceSeconds, maxSilenceSeconds},
		{"hedge_rate", m.HedgeRate, maxHedgeRate},
		{"repetition", m.Repetition, 1},
		{"confidence", ans.Confidence, 1},
		{"question_count", float64(m.QuestionCount), maxCount},
		{"focusing_questions", float64(m.FocusingQuestions), maxCount},
		{"funneling_questions", float64(m.FunnelingQuestions), maxCount},
		{"confusion_markers", float64(m.ConfusionMarkers), maxCount},
	} {
		if err := unit(c.name, c.v, 0, c.hi); err != nil {
			return nil, err
		}
	}
	if m.TurnTakingRate >= maxTurnTakingRate {
		return nil, fmt.Errorf("turn_taking_rate = %v turns a minute is not plausible", m.TurnTakingRate)
	}
	if int(m.FocusingQuestions)+int(m.FunnelingQuestions) > int(m.QuestionCount) {
		return nil, fmt.Errorf("focusing (%d) and funneling (%d) questions are more than the %d questions", m.FocusingQuestions, m.FunnelingQuestions, m.QuestionCount)
	}
	if int(m.QuestionCount) > p.words || int(m.ConfusionMarkers) > p.words {
		return nil, fmt.Errorf("%d questions and %d confusion markers in %d words are not plausible", m.QuestionCount, m.ConfusionMarkers, p.words)
	}
	if p.spanSeconds > 0 && m.SilenceSeconds > p.spanSeconds+1 {
		return nil, fmt.Errorf("silence_seconds = %v is longer than the %.0f s span", m.SilenceSeconds, p.spanSeconds)
	}
	if len(ans.Observations) > maxObservations {
		return nil, fmt.Errorf("%d observations, more than %d", len(ans.Observations), maxObservations)
	}
	seen := map[string]bool{}
	obs := make([]string, 0, len(ans.Observations))
	for i, o := range ans.Observations {
		if err := checkText(o, maxObservationRunes); err != nil {
			return nil, fmt.Errorf("observations[%d]: %w", i, err)
		}
		o = strings.TrimSpace(o)
		if seen[strings.ToLower(o)] {
			return nil, fmt.Errorf("observations[%d] repeats another", i)
		}
		seen[strings.ToLower(o)] = true
		obs = append(obs, o)
	}
	ev, err := p.lb.evidenceList(ans.Evidence, maxTier1Evidence, "")
	if err != nil {
		return nil, err
	}
	return &guidancev1.Tier1Insight{
		Metrics: &guidancev1.Tier1Metrics{
			TopicalFocus: m.TopicalFocus, ConceptualDensity: m.ConceptualDensity, ParticipationBalance: m.ParticipationBalance,
			TurnTakingRate: m.TurnTakingRate, QuestionCount: m.QuestionCount, FocusingQuestions: m.FocusingQuestions,
			FunnelingQuestions: m.FunnelingQuestions, Uptake: m.Uptake, ConfusionMarkers: m.ConfusionMarkers,
			OffTaskRatio: m.OffTaskRatio, SilenceSeconds: m.SilenceSeconds, HedgeRate: m.HedgeRate, Repetition: m.Repetition,
		},
		Observations: obs,
		Evidence:     ev,
		Confidence:   ans.Confidence,
	}, nil
}

// evidenceList checks and converts evidence answers (group: the real group id they must belong
// to, "" for any).
func (lb *labeller) evidenceList(in []evidenceAnswer, maxItems int, group string) ([]*guidancev1.Evidence, error) {
	if len(in) > maxItems {
		return nil, fmt.Errorf("%d evidence items, more than %d", len(in), maxItems)
	}
	out := make([]*guidancev1.Evidence, 0, len(in))
	seen := map[string]bool{}
	for i, e := range in {
		w, text, err := lb.evidence(e.WindowID, e.Excerpt, group)
		if err != nil {
			return nil, fmt.Errorf("evidence[%d]: %w", i, err)
		}
		key := w.id + "\x00" + text
		if seen[key] {
			return nil, fmt.Errorf("evidence[%d] repeats another", i)
		}
		seen[key] = true
		ev := &guidancev1.Evidence{WindowId: w.id, Excerpt: text}
		if !w.start.IsZero() {
			ev.At = timestamppb.New(w.start)
		}
		out = append(out, ev)
	}
	return out, nil
}
