package analyzer

import (
	"context"
	"errors"
	"log/slog"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
)

// Fallback answers with Primary and, when Primary fails (anything but ErrNoContent or the caller's
// cancellation), with Secondary: an LLM analyzer backed by the built-in one, so a teacher still gets
// an insight, marked with the analyzer that really produced it, when the endpoint is down, over
// budget or answers something that fails validation. Primary's failure is logged; the rejected
// answer itself is never used.
type Fallback struct {
	Primary1   Tier1Analyzer
	Primary2   Tier2Analyzer
	Secondary1 Tier1Analyzer
	Secondary2 Tier2Analyzer
	Logger     *slog.Logger
}

// Name names the primary analyzer.
func (f *Fallback) Name() string {
	if f.Primary1 != nil {
		return f.Primary1.Name()
	}
	return f.Primary2.Name()
}

// Tier1 implements Tier1Analyzer.
func (f *Fallback) Tier1(ctx context.Context, in Tier1Input) (*guidancev1.Tier1Insight, error) {
	ins, err := f.Primary1.Tier1(ctx, in)
	if err == nil || !f.fallBack(ctx, err, "tier1", f.Primary1.Name()) {
		return ins, err
	}
	return f.Secondary1.Tier1(ctx, in)
}

// Tier2 implements Tier2Analyzer.
func (f *Fallback) Tier2(ctx context.Context, in Tier2Input) (*guidancev1.Tier2Insight, error) {
	ins, err := f.Primary2.Tier2(ctx, in)
	if err == nil || !f.fallBack(ctx, err, "tier2", f.Primary2.Name()) {
		return ins, err
	}
	return f.Secondary2.Tier2(ctx, in)
}

func (f *Fallback) fallBack(ctx context.Context, err error, tier, name string) bool {
	if errors.Is(err, ErrNoContent) || ctx.Err() != nil {
		return false
	}
	if f.Logger != nil {
		f.Logger.Warn("guidance: analyzer failed, answering with the fallback", "tier", tier, "analyzer", name, "err", err)
	}
	return true
}
