package analyzer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
)

var goldenBase = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// goldenInsights runs Tier 1 on every golden discussion, as one span each.
func goldenInsights(t *testing.T) (map[string]Golden, map[string]*guidancev1.Tier1Insight) {
	t.Helper()
	gs, err := LoadGoldens(GoldenDir())
	if err != nil {
		t.Fatal(err)
	}
	goldens := map[string]Golden{}
	insights := map[string]*guidancev1.Tier1Insight{}
	for _, g := range gs {
		ins, err := NewBuiltin().Tier1(context.Background(), g.Tier1Input(goldenBase))
		if err != nil {
			t.Fatalf("%s: Tier1: %v", g.Name, err)
		}
		goldens[g.Name] = g
		insights[g.Name] = ins
	}
	for _, name := range []string{"on_topic_collaborative", "off_topic", "dominated", "silent", "confused", "low_focus", "unlabeled_on_topic"} {
		if _, ok := goldens[name]; !ok {
			t.Fatalf("golden %q missing from %s", name, GoldenDir())
		}
	}
	return goldens, insights
}

func TestGoldenAlerts(t *testing.T) {
	goldens, insights := goldenInsights(t)
	for name, g := range goldens {
		got := Tier1AlertCategories(insights[name].GetMetrics(), g.HasTurns())
		if diff := cmp.Diff(g.ExpectAlerts, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: alerts (-want +got):\n%s\nmetrics: %v", name, diff, insights[name].GetMetrics())
		}
	}
}

// TestGoldenDirections checks that each measure moves the documented way against the on-topic,
// collaborative baseline.
func TestGoldenDirections(t *testing.T) {
	_, ins := goldenInsights(t)
	m := func(name string) *guidancev1.Tier1Metrics { return ins[name].GetMetrics() }
	base := m("on_topic_collaborative")
	less := func(what string, x, y float64) {
		t.Helper()
		if !(x < y) {
			t.Errorf("%s: got %v, want less than %v", what, x, y)
		}
	}

	// The healthy discussion: on topic, shared, building on ideas, open questions, no alerts.
	less("baseline focus above LowFocusThreshold", LowFocusThreshold, base.GetTopicalFocus())
	less("baseline uptake", 0.5, base.GetUptake())
	less("baseline balance", 0.7, base.GetParticipationBalance())
	less("baseline off-task", base.GetOffTaskRatio(), 0.05)
	if base.GetFocusingQuestions() <= base.GetFunnelingQuestions() {
		t.Errorf("baseline: focusing %d, funneling %d: want more focusing", base.GetFocusingQuestions(), base.GetFunnelingQuestions())
	}

	// Off-topic: focus and conceptual density down, off-task up.
	off := m("off_topic")
	less("off_topic focus", off.GetTopicalFocus(), base.GetTopicalFocus())
	less("off_topic density", off.GetConceptualDensity(), base.GetConceptualDensity())
	less("off_topic off-task", base.GetOffTaskRatio(), off.GetOffTaskRatio())
	less("off_topic off-task above OffTaskAlertRatio", OffTaskAlertRatio, off.GetOffTaskRatio())

	// Drifting to another subject: focus down without off-task words.
	drift := m("low_focus")
	less("low_focus focus", drift.GetTopicalFocus(), LowFocusThreshold)
	less("low_focus off-task", drift.GetOffTaskRatio(), OffTaskAlertRatio)

	// Dominated: balance down (speakers known), uptake down, still on topic.
	dom := m("dominated")
	less("dominated balance", dom.GetParticipationBalance(), DominanceBalanceThreshold)
	less("dominated balance vs baseline", dom.GetParticipationBalance(), base.GetParticipationBalance())
	less("dominated uptake", dom.GetUptake(), base.GetUptake())
	less("dominated focus stays on topic", LowFocusThreshold, dom.GetTopicalFocus())

	// Silent: silence up, talk measures at zero.
	sil := m("silent")
	less("silent silence", SilenceAlertSeconds, sil.GetSilenceSeconds())
	less("silent silence vs baseline", base.GetSilenceSeconds(), sil.GetSilenceSeconds())
	if sil.GetTopicalFocus() != 0 || sil.GetTurnTakingRate() != 0 || sil.GetQuestionCount() != 0 {
		t.Errorf("silent: focus %v, turn rate %v, questions %d: want 0", sil.GetTopicalFocus(), sil.GetTurnTakingRate(), sil.GetQuestionCount())
	}

	// Confused: confusion markers and hedges up, still about the topic.
	conf := m("confused")
	if conf.GetConfusionMarkers() < ConfusionAlertMarkers || conf.GetConfusionMarkers() <= base.GetConfusionMarkers() {
		t.Errorf("confused: %d confusion markers, baseline %d: want at least %d and more", conf.GetConfusionMarkers(), base.GetConfusionMarkers(), ConfusionAlertMarkers)
	}
	less("confused hedge rate", base.GetHedgeRate(), conf.GetHedgeRate())
	less("confused focus stays on topic", LowFocusThreshold, conf.GetTopicalFocus())

	// Unlabelled speakers: balance falls back to [0.5, 1] and confidence drops.
	un := m("unlabeled_on_topic")
	if b := un.GetParticipationBalance(); b < 0.5 || b > 1 {
		t.Errorf("unlabeled balance %v, want in [0.5, 1]", b)
	}
	less("unlabeled confidence", ins["unlabeled_on_topic"].GetConfidence(), ins["on_topic_collaborative"].GetConfidence())
}

func TestGoldenInsightsShape(t *testing.T) {
	goldens, insights := goldenInsights(t)
	for name, ins := range insights {
		g := goldens[name]
		if ins.GetAnalyzer() != "builtin" {
			t.Errorf("%s: analyzer %q, want builtin", name, ins.GetAnalyzer())
		}
		if len(ins.GetObservations()) == 0 {
			t.Errorf("%s: no observations", name)
		}
		if c := ins.GetConfidence(); c <= 0 || c > 1 {
			t.Errorf("%s: confidence %v, want in (0,1]", name, c)
		}
		if g.HasTurns() && len(ins.GetEvidence()) == 0 {
			t.Errorf("%s: no evidence", name)
		}
		if len(ins.GetEvidence()) > 3 {
			t.Errorf("%s: %d evidence items, want at most 3", name, len(ins.GetEvidence()))
		}
		for _, e := range ins.GetEvidence() {
			var turn *GoldenTurn
			for i := range g.Turns {
				if g.Turns[i].WindowID == e.GetWindowId() {
					turn = &g.Turns[i]
				}
			}
			if turn == nil {
				t.Errorf("%s: evidence window %q is not a turn", name, e.GetWindowId())
				continue
			}
			if !strings.Contains(turn.Text, strings.TrimSuffix(e.GetExcerpt(), "…")) {
				t.Errorf("%s: excerpt %q is not from turn %s", name, e.GetExcerpt(), turn.WindowID)
			}
			wantAt := goldenBase.Add(time.Duration(turn.OffsetSeconds * float64(time.Second)))
			if !e.GetAt().AsTime().Equal(wantAt) {
				t.Errorf("%s: evidence at %v, want the turn start %v", name, e.GetAt().AsTime(), wantAt)
			}
		}
	}
	// The observations name what the alerts are about.
	wantObs := map[string]string{
		"off_topic":              "off-task",
		"dominated":              "most of the talking",
		"silent":                 "silent",
		"confused":               "confusion",
		"low_focus":              "drifted away",
		"on_topic_collaborative": "building on each other",
	}
	for name, want := range wantObs {
		if !strings.Contains(strings.Join(insights[name].GetObservations(), " "), want) {
			t.Errorf("%s: observations %q do not mention %q", name, insights[name].GetObservations(), want)
		}
	}
}

func TestLoadGoldenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, json, want string
	}{
		{"unknown field", `{"name":"x","objectives":[],"turns":[],"activity":[],"expectAlerts":[],"extra":1}`, "unknown field"},
		{"no name", `{"name":" ","turns":[]}`, "name is required"},
		{"negative offset", `{"name":"x","turns":[{"windowId":"w","text":"t","offsetSeconds":-1,"durationSeconds":1}]}`, "turns[0]"},
		{"missing window", `{"name":"x","activity":[{"offsetSeconds":0,"durationSeconds":1}]}`, "activity[0]: windowId"},
		{"bad alert", `{"name":"x","expectAlerts":["sleepy"]}`, "unknown category"},
		{"not json", `{`, "unexpected EOF"},
	}
	for _, tt := range tests {
		p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".json")
		if err := os.WriteFile(p, []byte(tt.json), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadGolden(p)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
	if _, err := LoadGolden(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err %v, want os.ErrNotExist", err)
	}
}

func TestGoldenTier1Input(t *testing.T) {
	g, err := LoadGolden(filepath.Join(GoldenDir(), "dominated.json"))
	if err != nil {
		t.Fatal(err)
	}
	in := g.Tier1Input(goldenBase)
	if !in.SpanStart.Equal(goldenBase) || !in.SpanEnd.Equal(goldenBase.Add(60*time.Second)) {
		t.Errorf("span %v..%v, want %v..+60s", in.SpanStart, in.SpanEnd, goldenBase)
	}
	if len(in.Turns) != len(g.Turns) || len(in.Activity) != len(g.Activity) || len(in.Objectives) != 3 {
		t.Fatalf("turns %d, activity %d, objectives %d", len(in.Turns), len(in.Activity), len(in.Objectives))
	}
	tr := in.Turns[1]
	if tr.WindowID != "w2" || tr.Speaker != "B" || !tr.Start.Equal(goldenBase.Add(14*time.Second)) || !tr.End.Equal(goldenBase.Add(16*time.Second)) {
		t.Errorf("turn 2 = %+v", tr)
	}
	if w := in.Activity[2]; w.SilenceSeconds != 2.1 || !w.Start.Equal(goldenBase.Add(30*time.Second)) {
		t.Errorf("activity 3 = %+v", w)
	}
}
