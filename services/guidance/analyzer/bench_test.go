package analyzer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchInput is a realistic Tier 1 span: 30 s, 8 turns of four speakers, about 400 words, three
// objectives, two activity windows and two context turns.
func benchInput() Tier1Input {
	base := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	texts := []string{
		"Okay so the question is why the plants in the dark box stopped growing. I think it's because they couldn't do photosynthesis without sunlight, and the leaves need that light energy to make glucose.",
		"Yeah, I agree with Maya. Photosynthesis needs light energy to turn carbon dioxide and water into glucose. No light means no glucose, so the plant has no food to grow, right?",
		"But how do we know it was the light and not the water? What if they just forgot to water the plants in the dark box? That would also stop them from growing.",
		"In the experiment both boxes got the same water, fifty milliliters every day. So the only difference was the sunlight. That's our evidence, and the data table shows it too.",
		"Building on what Jordan said, the leaves in the dark box turned yellow too. I think that means the chlorophyll broke down because it wasn't getting any light at all.",
		"Wait, I don't get the energy flow part. The plant is the producer, so if it can't make glucose, do the consumers that eat it get less energy? Maybe the rabbits would be hungry.",
		"Yes, and the decomposers get less too. Why do you think the whole food chain depends on the producers? Did you see the game last night by the way? It was crazy.",
		"Because all the energy in the ecosystem starts with sunlight captured by plants. The producers turn light energy into chemical energy in glucose, and that energy moves up to the consumers and decomposers.",
	}
	speakers := []string{"A", "B", "C", "D"}
	in := Tier1Input{
		SessionID: "s", GroupID: "g",
		Objectives: []string{
			"Explain how plants use sunlight, water and carbon dioxide to make glucose and oxygen through photosynthesis.",
			"Describe how energy flows through an ecosystem from producers to consumers and decomposers.",
			"Use evidence from the experiment to explain why the plants kept in the dark box stopped growing.",
		},
		Context: []Turn{
			{WindowID: "c1", Speaker: "C", Text: "Let's start with the dark box plants. They look really small and yellow.", Start: base.Add(-10 * time.Second), End: base.Add(-5 * time.Second)},
			{WindowID: "c2", Speaker: "A", Text: "The ones by the window are way taller and green.", Start: base.Add(-5 * time.Second), End: base},
		},
		Activity: []Activity{
			{WindowID: "a1", Start: base, End: base.Add(15 * time.Second), SpeechSeconds: 13, SilenceSeconds: 2, LongestSilenceSeconds: 1.2},
			{WindowID: "a2", Start: base.Add(15 * time.Second), End: base.Add(30 * time.Second), SpeechSeconds: 12.5, SilenceSeconds: 2.5, LongestSilenceSeconds: 1.5},
		},
		SpanStart: base, SpanEnd: base.Add(30 * time.Second),
	}
	for i, text := range texts {
		start := base.Add(time.Duration(i) * 3750 * time.Millisecond)
		in.Turns = append(in.Turns, Turn{WindowID: fmt.Sprint("w", i+1), Speaker: speakers[i%4], Text: text, Start: start, End: start.Add(3750 * time.Millisecond)})
	}
	return in
}

func TestBenchInputIsRealistic(t *testing.T) {
	in := benchInput()
	words := 0
	for _, tr := range in.Turns {
		words += len(strings.Fields(tr.Text))
	}
	if len(in.Turns) != 8 || words < 250 || words > 450 {
		t.Errorf("%d turns, %d words: want 8 turns and about 400 words", len(in.Turns), words)
	}
}

// BenchmarkTier1 measures Tier 1 analyses per second (run with GOMAXPROCS=1 for one core).
func BenchmarkTier1(b *testing.B) {
	in := benchInput()
	an := NewBuiltin()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := an.Tier1(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "analyses/s")
}

// BenchmarkTier2 measures a Tier 2 analysis of a session of six groups like the Tier 1 span.
func BenchmarkTier2(b *testing.B) {
	in1 := benchInput()
	in := Tier2Input{Objectives: in1.Objectives}
	for i := range 6 {
		in.Groups = append(in.Groups, GroupInput{GroupID: fmt.Sprint("g", i), Turns: in1.Turns, Activity: in1.Activity})
	}
	an := NewBuiltin()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := an.Tier2(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "analyses/s")
}
