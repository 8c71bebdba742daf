package analyzer

import (
	"context"
	"errors"
	"testing"
	"time"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
)

// failing is an analyzer that always fails with err.
type failing struct{ err error }

func (f failing) Name() string { return "llm:test" }
func (f failing) Tier1(context.Context, Tier1Input) (*guidancev1.Tier1Insight, error) {
	return nil, f.err
}
func (f failing) Tier2(context.Context, Tier2Input) (*guidancev1.Tier2Insight, error) {
	return nil, f.err
}

func TestFallbackAnswersWithTheSecondaryWhenThePrimaryFails(t *testing.T) {
	g, err := LoadGolden(GoldenDir() + "/on_topic_collaborative.json")
	if err != nil {
		t.Fatal(err)
	}
	in := g.Tier1Input(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	b := NewBuiltin()
	f := &Fallback{Primary1: failing{errors.New("malformed answer")}, Primary2: failing{errors.New("429")}, Secondary1: b, Secondary2: b}
	if f.Name() != "llm:test" {
		t.Errorf("Name = %q", f.Name())
	}
	ins, err := f.Tier1(t.Context(), in)
	if err != nil || ins.GetAnalyzer() != BuiltinName {
		t.Fatalf("Tier1 = %v, %v; want the built-in insight", ins.GetAnalyzer(), err)
	}
	t2, err := f.Tier2(t.Context(), Tier2Input{SessionID: "s", Groups: []GroupInput{{GroupID: "g", Turns: in.Turns}}})
	if err != nil || t2.GetAnalyzer() != BuiltinName {
		t.Fatalf("Tier2 = %v, %v; want the built-in insight", t2.GetAnalyzer(), err)
	}

	// Nothing to analyse and a cancelled caller are answers, not failures to hide.
	f.Primary1 = failing{ErrNoContent}
	if _, err := f.Tier1(t.Context(), in); !errors.Is(err, ErrNoContent) {
		t.Errorf("ErrNoContent became %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	f.Primary1 = failing{context.Canceled}
	if _, err := f.Tier1(ctx, in); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled call became %v", err)
	}
}
