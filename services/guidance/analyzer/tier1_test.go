package analyzer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
)

var zeroTime time.Time

var objectives = []string{
	"Explain how plants use sunlight, water and carbon dioxide to make glucose and oxygen through photosynthesis.",
	"Describe how energy flows through an ecosystem from producers to consumers and decomposers.",
}

func tier1(t *testing.T, in Tier1Input) *guidancev1.Tier1Insight {
	t.Helper()
	ins, err := NewBuiltin().Tier1(context.Background(), in)
	if err != nil {
		t.Fatalf("Tier1: %v", err)
	}
	return ins
}

func TestTier1NoContent(t *testing.T) {
	for _, in := range []Tier1Input{
		{},
		{Objectives: objectives},
		{Turns: []Turn{{WindowID: "w1", Text: "  ...?! "}}},
	} {
		if _, err := NewBuiltin().Tier1(context.Background(), in); !errors.Is(err, ErrNoContent) {
			t.Errorf("Tier1(%+v): err %v, want ErrNoContent", in, err)
		}
	}
}

func TestTier1ContextCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := NewBuiltin().Tier1(ctx, Tier1Input{Turns: []Turn{{Text: "plants need light"}}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}

func TestTier1SpeechNotTranscribed(t *testing.T) {
	base := goldenBase
	ins := tier1(t, Tier1Input{
		Objectives: objectives,
		SpanStart:  base, SpanEnd: base.Add(30 * time.Second),
		Activity: []Activity{{WindowID: "a1", Start: base, End: base.Add(30 * time.Second), SpeechSeconds: 22, SilenceSeconds: 8}},
	})
	if got := ins.GetMetrics().GetSilenceSeconds(); got != 8 {
		t.Errorf("silence %v, want 8", got)
	}
	if !strings.Contains(ins.GetObservations()[0], "transcribed") || ins.GetConfidence() > 0.3 {
		t.Errorf("observations %q confidence %v: want a low-confidence 'not transcribed' note", ins.GetObservations(), ins.GetConfidence())
	}
}

func TestTier1Silence(t *testing.T) {
	base := goldenBase
	at := func(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }
	tests := []struct {
		name     string
		turns    []Turn
		activity []Activity
		want     float64
	}{
		{
			name: "sum of window silence",
			activity: []Activity{
				{Start: at(0), End: at(15), SilenceSeconds: 4},
				{Start: at(15), End: at(30), SilenceSeconds: 6},
			},
			want: 10,
		},
		{
			name:     "uncovered span counts as silence",
			activity: []Activity{{Start: at(0), End: at(15), SilenceSeconds: 3}},
			want:     3 + 15,
		},
		{
			name:     "window straddling the span is prorated",
			activity: []Activity{{Start: at(20), End: at(40), SilenceSeconds: 10}},
			want:     10*0.5 + 20,
		},
		{
			name:  "without activity, gaps between transcript windows",
			turns: []Turn{{Text: "plants need light", Start: at(0), End: at(10)}, {Text: "and water", Start: at(20), End: at(25)}},
			want:  10 + 5,
		},
		{
			name:     "bad numbers are ignored and silence is capped by the window",
			activity: []Activity{{Start: at(0), End: at(15), SilenceSeconds: math.NaN()}, {Start: at(15), End: at(30), SilenceSeconds: 99, SpeechSeconds: math.Inf(1)}},
			want:     15,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ins := tier1(t, Tier1Input{Objectives: objectives, Turns: tt.turns, Activity: tt.activity, SpanStart: base, SpanEnd: at(30)})
			if got := ins.GetMetrics().GetSilenceSeconds(); math.Abs(got-tt.want) > 1e-3 {
				t.Errorf("silence %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTier1WithoutTimes(t *testing.T) {
	// AnalyzeDiscussion may pass transcript lines without times: the span length is estimated from
	// the words (WordsPerMinute) and nothing is counted as silence.
	turns := []Turn{
		{WindowID: "t1", Text: strings.Repeat("plants need sunlight to make glucose ", 6)},
		{WindowID: "t2", Text: strings.Repeat("the producers give energy to consumers ", 6)},
	}
	m := tier1(t, Tier1Input{Objectives: objectives, Turns: turns}).GetMetrics()
	words := 2 * 6 * 6
	wantRate := 2 / (float64(words) / WordsPerMinute)
	if math.Abs(m.GetTurnTakingRate()-wantRate) > 1e-3 || m.GetSilenceSeconds() != 0 {
		t.Errorf("turn rate %v (want %v), silence %v (want 0)", m.GetTurnTakingRate(), wantRate, m.GetSilenceSeconds())
	}
	if m.GetRepetition() < 0.5 {
		t.Errorf("repetition %v of a repeated sentence, want high", m.GetRepetition())
	}
}

func TestTier1NoObjectives(t *testing.T) {
	onTopic := []Turn{
		{WindowID: "w1", Speaker: "A", Text: "Plants need sunlight to make glucose in their leaves."},
		{WindowID: "w2", Speaker: "B", Text: "The glucose in the leaves is the plant's food, made with sunlight."},
		{WindowID: "w3", Speaker: "C", Text: "And the chlorophyll in the leaves catches the sunlight."},
	}
	scattered := []Turn{
		{WindowID: "w1", Speaker: "A", Text: "Plants need sunlight to make glucose in their leaves."},
		{WindowID: "w2", Speaker: "B", Text: "My cousin bought a new bike with red wheels."},
		{WindowID: "w3", Speaker: "C", Text: "Volcanoes erupt when magma pressure builds underground."},
	}
	a, b := tier1(t, Tier1Input{Turns: onTopic}), tier1(t, Tier1Input{Turns: scattered})
	if !(a.GetMetrics().GetTopicalFocus() > b.GetMetrics().GetTopicalFocus()) {
		t.Errorf("cohesive focus %v, scattered %v: want cohesive higher", a.GetMetrics().GetTopicalFocus(), b.GetMetrics().GetTopicalFocus())
	}
	if !strings.Contains(strings.Join(a.GetObservations(), " "), "No learning objectives") {
		t.Errorf("observations %q: want the no-objectives note", a.GetObservations())
	}
	withObj := tier1(t, Tier1Input{Objectives: objectives, Turns: onTopic})
	if !(a.GetConfidence() < withObj.GetConfidence()) {
		t.Errorf("confidence without objectives %v, with %v: want lower", a.GetConfidence(), withObj.GetConfidence())
	}
}

func TestTier1ParticipationBalance(t *testing.T) {
	words := func(n int) string { return strings.TrimSpace(strings.Repeat("plants need light ", n/3)) }
	tests := []struct {
		name     string
		speakers []string
		lengths  []int
		min, max float64
	}{
		{"even three", []string{"A", "B", "C"}, []int{30, 30, 30}, 1, 1},
		{"one voice", []string{"A", "A", "A"}, []int{30, 30, 30}, 0, 0},
		{"dominated", []string{"A", "B", "C"}, []int{90, 3, 3}, 0, 0.1},
		{"too little talk is neutral", []string{"A", "B"}, []int{15, 3}, 0.5, 0.5},
		{"unknown speakers even windows", []string{"", "", ""}, []int{30, 30, 30}, 1, 1},
		{"unknown speakers never below 0.5", []string{"", "", ""}, []int{90, 3, 3}, 0.5, 0.7},
		{"partly labelled is unknown", []string{"A", "", "B"}, []int{90, 3, 3}, 0.5, 0.7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var turns []Turn
			for i, s := range tt.speakers {
				turns = append(turns, Turn{WindowID: fmt.Sprint("w", i), Speaker: s, Text: words(tt.lengths[i])})
			}
			got := tier1(t, Tier1Input{Objectives: objectives, Turns: turns}).GetMetrics().GetParticipationBalance()
			if got < tt.min-1e-9 || got > tt.max+1e-9 {
				t.Errorf("balance %v, want in [%v, %v]", got, tt.min, tt.max)
			}
		})
	}
}

func TestTier1TurnTakingCountsSpeakerRuns(t *testing.T) {
	base := goldenBase
	turns := []Turn{
		{Speaker: "A", Text: "plants need light", Start: base, End: base.Add(10 * time.Second)},
		{Speaker: "A", Text: "and water too", Start: base.Add(10 * time.Second), End: base.Add(20 * time.Second)},
		{Speaker: "B", Text: "and carbon dioxide", Start: base.Add(20 * time.Second), End: base.Add(30 * time.Second)},
	}
	m := tier1(t, Tier1Input{Objectives: objectives, Turns: turns, SpanStart: base, SpanEnd: base.Add(30 * time.Second)}).GetMetrics()
	if got := m.GetTurnTakingRate(); got != 4 { // 2 speaker turns in half a minute
		t.Errorf("turn-taking rate %v, want 4", got)
	}
}

func TestTier1OffTaskContinuation(t *testing.T) {
	turns := []Turn{
		{WindowID: "w1", Speaker: "A", Text: "Plants use sunlight to make glucose."},
		{WindowID: "w2", Speaker: "B", Text: "Did you see the game last night? It was crazy. Totally insane ending."},
		{WindowID: "w3", Speaker: "A", Text: "Okay, back to photosynthesis and the glucose."},
	}
	a := analyze(objectives, nil, turns, nil, zeroTime, zeroTime)
	var off []bool
	for _, f := range a.docs[1].sents {
		off = append(off, f.offTask)
	}
	if len(off) != 3 || !off[0] || !off[1] || !off[2] {
		t.Errorf("off-task sentences of the chatter turn %v, want all three", off)
	}
	if a.docs[0].sents[0].offTask || a.docs[2].sents[0].offTask {
		t.Error("on-topic sentences marked off-task")
	}
	want := float64(a.docs[1].words) / float64(a.words)
	if math.Abs(a.offTask-want) > 1e-9 {
		t.Errorf("off-task ratio %v, want the chatter's word share %v", a.offTask, want)
	}
}

func TestTier1UptakeAcrossContext(t *testing.T) {
	context := []Turn{{WindowID: "c1", Speaker: "A", Text: "The chlorophyll in the leaves absorbs sunlight."}}
	turns := []Turn{{WindowID: "w1", Speaker: "B", Text: "Right, and chlorophyll is why leaves look green in sunlight."}}
	ins := tier1(t, Tier1Input{Objectives: objectives, Context: context, Turns: turns})
	if got := ins.GetMetrics().GetUptake(); got != 1 {
		t.Errorf("uptake %v, want 1 (the turn takes up the context turn)", got)
	}
	for _, e := range ins.GetEvidence() {
		if e.GetWindowId() == "c1" {
			t.Error("a context turn was quoted as evidence")
		}
	}
	// Without the context the same turn has no predecessor.
	if got := tier1(t, Tier1Input{Objectives: objectives, Turns: turns}).GetMetrics().GetUptake(); got != 0 {
		t.Errorf("uptake without context %v, want 0", got)
	}
}

func TestTier1ExcerptsAreBounded(t *testing.T) {
	long := strings.Repeat("Photosynthesis turns sunlight, water and carbon dioxide into glucose ", 20)
	ins := tier1(t, Tier1Input{Objectives: objectives, Turns: []Turn{{WindowID: "w1", Text: long}}})
	if len(ins.GetEvidence()) == 0 {
		t.Fatal("no evidence")
	}
	for _, e := range ins.GetEvidence() {
		if n := utf8.RuneCountInString(e.GetExcerpt()); n > 200 || !strings.HasSuffix(e.GetExcerpt(), "…") {
			t.Errorf("excerpt of %d runes %q: want at most 200, cut with …", n, e.GetExcerpt())
		}
	}
}

func TestTier1Deterministic(t *testing.T) {
	gs, err := LoadGoldens(GoldenDir())
	if err != nil {
		t.Fatal(err)
	}
	b := NewBuiltin()
	for _, g := range gs {
		in := g.Tier1Input(goldenBase)
		first, err := b.Tier1(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			again, err := b.Tier1(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(first, again) {
				t.Fatalf("%s: results differ:\n%v\n%v", g.Name, first, again)
			}
		}
	}
}

func TestTier1Concurrent(t *testing.T) {
	gs, err := LoadGoldens(GoldenDir())
	if err != nil {
		t.Fatal(err)
	}
	b := NewBuiltin()
	want := make([]*guidancev1.Tier1Insight, len(gs))
	for i, g := range gs {
		want[i], _ = b.Tier1(context.Background(), g.Tier1Input(goldenBase))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(gs))
	for range 8 {
		for i, g := range gs {
			wg.Go(func() {
				got, err := b.Tier1(context.Background(), g.Tier1Input(goldenBase))
				if err != nil || !proto.Equal(got, want[i]) {
					errs <- fmt.Errorf("%s: concurrent result differs (err %v)", g.Name, err)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestTier1LargeInput(t *testing.T) {
	// The AnalyzeDiscussion RPC allows 500 lines of up to 10,000 characters: the analysis stays
	// linear in the number of turns (a quadratic step would show here as seconds, not milliseconds).
	line := strings.Repeat("the plant uses light energy to build glucose while we talk about the game ", 140)
	turns := make([]Turn, 500)
	for i := range turns {
		turns[i] = Turn{WindowID: fmt.Sprint("t", i), Text: line[:2000]}
	}
	turns[0].Text = line[:10000]
	for _, obj := range [][]string{objectives, nil} {
		ins := tier1(t, Tier1Input{Objectives: obj, Turns: turns})
		checkRanges(t, ins)
	}
}

func TestTier1AlertCategories(t *testing.T) {
	tests := []struct {
		name     string
		m        *guidancev1.Tier1Metrics
		hasTurns bool
		want     []string
	}{
		{"nil", nil, true, []string{}},
		{"healthy", &guidancev1.Tier1Metrics{TopicalFocus: 0.8, ParticipationBalance: 0.9}, true, []string{}},
		{"off-task holds back low focus", &guidancev1.Tier1Metrics{OffTaskRatio: 0.3, TopicalFocus: 0.1, ParticipationBalance: 0.9}, true, []string{AlertOffTask}},
		{"low focus", &guidancev1.Tier1Metrics{OffTaskRatio: 0.29, TopicalFocus: 0.29, ParticipationBalance: 0.9}, true, []string{AlertLowFocus}},
		{"silence without turns judges nothing else", &guidancev1.Tier1Metrics{SilenceSeconds: 20}, false, []string{AlertSilence}},
		{"all at once, in order", &guidancev1.Tier1Metrics{OffTaskRatio: 0.5, SilenceSeconds: 25, ConfusionMarkers: 3, ParticipationBalance: 0.39}, true,
			[]string{AlertOffTask, AlertSilence, AlertConfusion, AlertDominance}},
		{"just below every threshold", &guidancev1.Tier1Metrics{OffTaskRatio: 0.2999, TopicalFocus: 0.3, SilenceSeconds: 19.9, ConfusionMarkers: 2, ParticipationBalance: 0.4}, true, []string{}},
	}
	for _, tt := range tests {
		got := Tier1AlertCategories(tt.m, tt.hasTurns)
		if got == nil || strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s: %#v, want %v", tt.name, got, tt.want)
		}
	}
	if got := AlertCategories(); len(got) != 5 {
		t.Errorf("AlertCategories() = %v", got)
	}
}
