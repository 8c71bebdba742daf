package analyzer

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
)

func goldenGroup(t *testing.T, file, id, name string) GroupInput {
	t.Helper()
	g, err := LoadGolden(filepath.Join(GoldenDir(), file))
	if err != nil {
		t.Fatal(err)
	}
	in := g.Tier1Input(goldenBase)
	return GroupInput{GroupID: id, Name: name, Turns: in.Turns, Activity: in.Activity}
}

func groupByID(ins *guidancev1.Tier2Insight, id string) *guidancev1.GroupAnalysis {
	for _, g := range ins.GetGroups() {
		if g.GetGroupId() == id {
			return g
		}
	}
	return nil
}

func recsFor(ins *guidancev1.Tier2Insight, id string) []*guidancev1.Recommendation {
	var out []*guidancev1.Recommendation
	for _, r := range ins.GetRecommendations() {
		if r.GetGroupId() == id {
			out = append(out, r)
		}
	}
	return out
}

func TestTier2ArgumentingVersusOffTopic(t *testing.T) {
	arguing := GroupInput{GroupID: "g-arg", Name: "Group 1", Turns: []Turn{
		{WindowID: "a1", Speaker: "A", Text: "I think the plants in the dark box stopped growing because they had no light for photosynthesis."},
		{WindowID: "a2", Speaker: "B", Text: "I agree, because the data shows the dark plants grew only 2 cm while the window plants grew 9 cm."},
		{WindowID: "a3", Speaker: "C", Text: "Right, the dark plants grew less, so that means without light there is no glucose for the plants, and therefore no energy for growing."},
		{WindowID: "a4", Speaker: "A", Text: "If the plant can't make glucose, then the consumers that eat it get less energy too."},
		{WindowID: "a5", Speaker: "B", Text: "Building on that, the rabbits in the food web depend on the producers for energy, for example, which means the whole ecosystem loses energy."},
		{WindowID: "a6", Speaker: "C", Text: "Why do you think the leaves turned yellow? I thought it was the water, but the evidence says light."},
	}}
	offTopic := goldenGroup(t, "off_topic.json", "g-off", "Group 2")
	in := Tier2Input{SessionID: "s", Objectives: objectives, Groups: []GroupInput{arguing, offTopic}}

	ins, err := NewBuiltin().Tier2(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if ins.GetAnalyzer() != "builtin" || ins.GetSummary() == "" || ins.GetConfidence() <= 0 || ins.GetConfidence() > 1 {
		t.Errorf("analyzer %q, summary %q, confidence %v", ins.GetAnalyzer(), ins.GetSummary(), ins.GetConfidence())
	}
	if got := len(ins.GetGroups()); got != 2 {
		t.Fatalf("%d groups, want 2", got)
	}
	arg, off := groupByID(ins, "g-arg"), groupByID(ins, "g-off")

	// Argumentation: the arguing group outscores the off-topic group on every component.
	a, o := arg.GetArgumentation(), off.GetArgumentation()
	for _, c := range []struct {
		name   string
		ax, ox float64
	}{{"claims", a.GetClaims(), o.GetClaims()}, {"evidence", a.GetEvidence(), o.GetEvidence()}, {"reasoning", a.GetReasoning(), o.GetReasoning()}} {
		if !(c.ax > c.ox) || c.ax < 0.5 {
			t.Errorf("%s: arguing %v, off-topic %v: want arguing >= 0.5 and higher", c.name, c.ax, c.ox)
		}
	}
	for _, s := range []string{SignalExplainsReasoning, SignalAsksQuestions, SignalMisconception} {
		if !slices.Contains(arg.GetLearningSignals(), s) {
			t.Errorf("arguing group signals %v: want %s", arg.GetLearningSignals(), s)
		}
	}
	if !slices.Contains(arg.GetCollaborationPatterns(), PatternBuildingOnIdeas) || !slices.Contains(arg.GetCollaborationPatterns(), PatternBalanced) {
		t.Errorf("arguing group patterns %v: want building_on_ideas and balanced", arg.GetCollaborationPatterns())
	}
	if !slices.Contains(off.GetLearningSignals(), SignalOffTask) || slices.Contains(off.GetLearningSignals(), SignalExplainsReasoning) {
		t.Errorf("off-topic group signals %v: want off_task, not explains_reasoning", off.GetLearningSignals())
	}
	if len(arg.GetEvidence()) == 0 || len(arg.GetEvidence()) > 3 || len(off.GetEvidence()) == 0 {
		t.Errorf("evidence: arguing %d, off-topic %d", len(arg.GetEvidence()), len(off.GetEvidence()))
	}

	// Recommendations: redirect the off-topic group first (high), deepen the arguing one.
	recs := ins.GetRecommendations()
	if len(recs) == 0 || recs[0].GetGroupId() != "g-off" || recs[0].GetCategory() != CategoryRedirect || recs[0].GetPriority() != PriorityHigh {
		t.Fatalf("first recommendation %v, want a high redirect for g-off", recs)
	}
	if !strings.Contains(recs[0].GetText(), "Group 2") || !strings.Contains(recs[0].GetText(), "photosynthesis") {
		t.Errorf("redirect text %q: want the group name and the objective", recs[0].GetText())
	}
	argRecs := recsFor(ins, "g-arg")
	if len(argRecs) == 0 || argRecs[0].GetCategory() != CategoryDeepen {
		t.Errorf("arguing group recommendations %v, want deepen", argRecs)
	}
	for i := 1; i < len(recs); i++ {
		if priorityRank(recs[i-1].GetPriority()) > priorityRank(recs[i].GetPriority()) {
			t.Errorf("recommendations not sorted by priority: %v", recs)
		}
	}
	if !strings.Contains(ins.GetSummary(), "1 on task") || !strings.Contains(ins.GetSummary(), "1 off-task") {
		t.Errorf("summary %q", ins.GetSummary())
	}

	// Deterministic.
	again, err := NewBuiltin().Tier2(context.Background(), in)
	if err != nil || !proto.Equal(ins, again) {
		t.Errorf("Tier2 not deterministic (err %v)", err)
	}
}

func TestTier2GroupStates(t *testing.T) {
	in := Tier2Input{
		Objectives: objectives,
		Depth:      "comprehensive",
		Groups: []GroupInput{
			goldenGroup(t, "on_topic_collaborative.json", "g1", ""),
			goldenGroup(t, "dominated.json", "g2", "Group B"),
			goldenGroup(t, "silent.json", "g3", "Group C"),
			goldenGroup(t, "confused.json", "g4", "Group D"),
			{GroupID: "g5", Name: "Group E"},
			{GroupID: "g6", Name: "Group F", Tier1: []*guidancev1.Tier1Insight{
				{Metrics: &guidancev1.Tier1Metrics{OffTaskRatio: 0.6, ParticipationBalance: 0.8, TopicalFocus: 0.1},
					Evidence: []*guidancev1.Evidence{{WindowId: "x", Excerpt: "did you see the game"}}, Confidence: 0.8},
			}},
		},
	}
	ins, err := NewBuiltin().Tier2(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id       string
		pattern  string
		signal   string
		category string
	}{
		{"g1", PatternBuildingOnIdeas, SignalAsksQuestions, CategoryDeepen},
		{"g2", PatternDominated, "", CategoryParticipation},
		{"g3", PatternSilent, "", CategoryCheckIn},
		{"g4", "", SignalConfusion, CategoryCheckIn},
		{"g5", "", "", CategoryCheckIn},
		{"g6", "", SignalOffTask, CategoryRedirect},
	}
	for _, tt := range tests {
		g := groupByID(ins, tt.id)
		if g == nil {
			t.Errorf("%s: missing", tt.id)
			continue
		}
		if tt.pattern != "" && !slices.Contains(g.GetCollaborationPatterns(), tt.pattern) {
			t.Errorf("%s: patterns %v, want %s", tt.id, g.GetCollaborationPatterns(), tt.pattern)
		}
		if tt.signal != "" && !slices.Contains(g.GetLearningSignals(), tt.signal) {
			t.Errorf("%s: signals %v, want %s", tt.id, g.GetLearningSignals(), tt.signal)
		}
		var cats []string
		for _, r := range recsFor(ins, tt.id) {
			cats = append(cats, r.GetCategory())
		}
		if !slices.Contains(cats, tt.category) || len(cats) > 2 {
			t.Errorf("%s: recommendation categories %v, want %s (at most 2)", tt.id, cats, tt.category)
		}
	}
	if n := len(groupByID(ins, "g1").GetEvidence()); n <= 3 || n > 5 {
		t.Errorf("comprehensive depth: %d evidence items, want 4..5", n)
	}
	if got := groupByID(ins, "g6").GetEvidence(); len(got) != 1 || got[0].GetWindowId() != "x" {
		t.Errorf("Tier 1 fallback evidence %v", got)
	}
	want := "6 groups analysed against 2 objectives: 2 on task, 1 confused, 1 off-task, 1 silent, 1 no data."
	if got := strings.SplitAfter(ins.GetSummary(), ".")[0]; got != want {
		t.Errorf("summary %q, want it to start with %q", ins.GetSummary(), want)
	}
	if slices.Contains(groupByID(ins, "g2").GetCollaborationPatterns(), PatternParallelTalk) {
		t.Errorf("dominated group patterns %v: a monologue is not parallel talk", groupByID(ins, "g2").GetCollaborationPatterns())
	}
}

func TestTier2SessionWideRedirect(t *testing.T) {
	in := Tier2Input{Objectives: objectives, Groups: []GroupInput{
		goldenGroup(t, "off_topic.json", "g1", "Group 1"),
		goldenGroup(t, "low_focus.json", "g2", "Group 2"),
		goldenGroup(t, "on_topic_collaborative.json", "g3", "Group 3"),
	}}
	ins, err := NewBuiltin().Tier2(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	r := ins.GetRecommendations()[0]
	if r.GetGroupId() != "" || r.GetCategory() != CategoryRedirect || !strings.Contains(r.GetText(), "2 of 3 groups") {
		t.Errorf("first recommendation %v, want the session-wide redirect", r)
	}
}

func TestTier2NoContent(t *testing.T) {
	for _, in := range []Tier2Input{{}, {Groups: []GroupInput{{GroupID: "g"}}}} {
		if _, err := NewBuiltin().Tier2(context.Background(), in); !errors.Is(err, ErrNoContent) {
			t.Errorf("err %v, want ErrNoContent", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewBuiltin().Tier2(ctx, Tier2Input{Groups: []GroupInput{{Turns: []Turn{{Text: "hi"}}}}}); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}
