package analyzer

import (
	"context"
	"math"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// BuiltinName is the analyzer name of the built-in analyzer (Insight.Analyzer).
const BuiltinName = "builtin"

// Builtin is the built-in lexical analyzer: deterministic, offline, the default. It measures a
// discussion with TF-IDF cosine similarity, keyword coverage and lexicons (README.md documents every
// formula, threshold and word list). It holds no state: one value serves any number of goroutines.
type Builtin struct{}

var (
	_ Tier1Analyzer = (*Builtin)(nil)
	_ Tier2Analyzer = (*Builtin)(nil)
)

// NewBuiltin returns the built-in analyzer.
func NewBuiltin() *Builtin { return &Builtin{} }

// Name answers "builtin".
func (*Builtin) Name() string { return BuiltinName }

// Tier1 measures one group's span. It answers ErrNoContent when the span has neither transcript nor
// speech activity; a span with activity but no transcript is a silent group and is measured as such.
func (b *Builtin) Tier1(ctx context.Context, in Tier1Input) (*guidancev1.Tier1Insight, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a := analyze(in.Objectives, in.Context, in.Turns, in.Activity, in.SpanStart, in.SpanEnd)
	if !a.hasTalk() && len(in.Activity) == 0 {
		return nil, ErrNoContent
	}
	return &guidancev1.Tier1Insight{
		Metrics:      a.metrics(),
		Observations: a.observations(),
		Evidence:     a.evidence(3),
		Confidence:   round4(a.confidence()),
		Analyzer:     BuiltinName,
	}, nil
}

// metrics answers the Tier 1 metrics (rounded to 4 decimals: more is noise and it keeps stored
// insights readable).
func (a *analysis) metrics() *guidancev1.Tier1Metrics {
	return &guidancev1.Tier1Metrics{
		TopicalFocus:         round4(a.focus),
		ConceptualDensity:    round4(a.density),
		ParticipationBalance: round4(a.balance),
		TurnTakingRate:       round4(a.turnRate),
		QuestionCount:        int32(a.questions),
		FocusingQuestions:    int32(a.focusing),
		FunnelingQuestions:   int32(a.funneling),
		Uptake:               round4(a.uptake),
		ConfusionMarkers:     int32(a.confusion),
		OffTaskRatio:         round4(a.offTask),
		SilenceSeconds:       round4(a.silence),
		HedgeRate:            round4(a.hedgeRate),
		Repetition:           round4(a.repetition),
	}
}

// confidence is how much the measures can be trusted (README.md, "Confidence"):
//
//	with talk:    (0.2 + 0.8·min(1, words/ConfidentWords)) · speakers · (0.8 + 0.2·coverage) · objectives
//	              speakers = 1 when labelled, 0.85 when not; objectives = 1 when set, 0.9 when not
//	without talk: 0.5 + 0.4·coverage, or 0.3 when speech was detected but nothing was transcribed
func (a *analysis) confidence() float64 {
	if !a.hasTalk() {
		if a.speechSeconds >= SpeechWithoutTranscriptSeconds {
			return 0.3
		}
		return clamp01(0.5 + 0.4*a.coverage)
	}
	c := 0.2 + 0.8*math.Min(1, float64(a.words)/ConfidentWords)
	if !a.speakersKnown {
		c *= 0.85
	}
	c *= 0.8 + 0.2*a.coverage
	if !a.objectives {
		c *= 0.9
	}
	return clamp01(c)
}

// SpeechWithoutTranscriptSeconds is the speech (from activity) above which a span without
// transcript is reported as "speech not transcribed" rather than silence.
const SpeechWithoutTranscriptSeconds = 5.0

func round4(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return math.Round(x*1e4) / 1e4
}

func timestamp(d *doc) *timestamppb.Timestamp {
	if d.turn.Start.IsZero() {
		return nil
	}
	return timestamppb.New(d.turn.Start)
}
