package analyzer

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
)

// checkRanges fails t when an insight's measures leave their documented ranges.
func checkRanges(t *testing.T, ins *guidancev1.Tier1Insight) {
	t.Helper()
	m := ins.GetMetrics()
	unit := map[string]float64{
		"topical_focus": m.GetTopicalFocus(), "conceptual_density": m.GetConceptualDensity(),
		"participation_balance": m.GetParticipationBalance(), "uptake": m.GetUptake(),
		"off_task_ratio": m.GetOffTaskRatio(), "repetition": m.GetRepetition(), "confidence": ins.GetConfidence(),
	}
	for name, x := range unit {
		if math.IsNaN(x) || x < 0 || x > 1 {
			t.Errorf("%s = %v, want in [0, 1]", name, x)
		}
	}
	nonNeg := map[string]float64{
		"turn_taking_rate": m.GetTurnTakingRate(), "silence_seconds": m.GetSilenceSeconds(), "hedge_rate": m.GetHedgeRate(),
	}
	for name, x := range nonNeg {
		if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
			t.Errorf("%s = %v, want finite and >= 0", name, x)
		}
	}
	if m.GetQuestionCount() < 0 || m.GetConfusionMarkers() < 0 || m.GetFocusingQuestions() < 0 || m.GetFunnelingQuestions() < 0 ||
		m.GetFocusingQuestions()+m.GetFunnelingQuestions() > m.GetQuestionCount() {
		t.Errorf("questions %d (focusing %d, funneling %d), confusion %d", m.GetQuestionCount(), m.GetFocusingQuestions(), m.GetFunnelingQuestions(), m.GetConfusionMarkers())
	}
	if len(ins.GetEvidence()) > 3 {
		t.Errorf("%d evidence items", len(ins.GetEvidence()))
	}
	for _, e := range ins.GetEvidence() {
		if utf8.RuneCountInString(e.GetExcerpt()) > 200 {
			t.Errorf("excerpt of %d runes", utf8.RuneCountInString(e.GetExcerpt()))
		}
	}
	if ins.GetAnalyzer() != BuiltinName {
		t.Errorf("analyzer %q", ins.GetAnalyzer())
	}
}

func FuzzTier1(f *testing.F) {
	f.Add("Why do plants need light?\nBecause of photosynthesis, I think.", "AB", "sunlight and glucose", int64(30), 3.5)
	f.Add("Did you see the game last night? lol\nyeah bro", "", "", int64(-5), -1.0)
	f.Add("I don't get it. What does * mean??? ...", "A", "what does mean", int64(0), math.NaN())
	f.Add("\xff\xfe’’'' 3.5.5,,1 … ¿qué? ΑΒΓ", "\x00", "’", int64(1<<40), math.Inf(1))
	f.Fuzz(func(t *testing.T, text, speakers, objective string, offset int64, silence float64) {
		base := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
		lines := strings.Split(text, "\n")
		var turns []Turn
		for i, line := range lines {
			sp := ""
			if len(speakers) > 0 {
				sp = string(speakers[i%len(speakers)])
			}
			start := base.Add(time.Duration(int64(i)*offset) * time.Millisecond)
			turns = append(turns, Turn{WindowID: "w", Text: line, Speaker: sp, Start: start, End: start.Add(time.Duration(offset) * time.Second)})
		}
		in := Tier1Input{
			Objectives: []string{objective},
			Context:    turns[:len(turns)/2],
			Turns:      turns[len(turns)/2:],
			Activity:   []Activity{{Start: base, End: base.Add(time.Duration(offset) * time.Second), SilenceSeconds: silence, SpeechSeconds: -silence}},
			SpanStart:  base,
			SpanEnd:    base.Add(time.Duration(offset) * time.Millisecond),
		}
		ins, err := NewBuiltin().Tier1(context.Background(), in)
		if err != nil {
			if !errors.Is(err, ErrNoContent) {
				t.Fatalf("Tier1: %v", err)
			}
			return
		}
		checkRanges(t, ins)
		// Tier 2 over the same talk must not fail either.
		if _, err := NewBuiltin().Tier2(context.Background(), Tier2Input{Objectives: in.Objectives, Groups: []GroupInput{{GroupID: "g", Turns: turns, Activity: in.Activity}}}); err != nil && !errors.Is(err, ErrNoContent) {
			t.Fatalf("Tier2: %v", err)
		}
	})
}
