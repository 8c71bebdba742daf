// Package llmanalyzer is the LLM adapter of the guidance analysis port (package analyzer): Tier 1
// and Tier 2 analyses asked of any OpenAI-compatible chat endpoint through pkg/llm, with a JSON
// schema per request and strict validation of what comes back.
//
// What is sent: a system prompt that defines every measure (the meanings of the proto's
// comments) and a user message with the objectives and the span's transcript. Student names
// (Input.Names) and e-mail addresses are removed from every text sent (llm.Redact); speakers are
// relabelled A, B, ...; windows are labelled w1, w2, ... and groups g1, g2, ..., so no internal id
// or display name leaves the process. The transcript is capped (newest turns kept).
//
// What is accepted: the schema (strict mode) bounds every number and lists the allowed window
// labels, group labels, patterns, signals, categories and priorities; pkg/llm checks the answer
// against it, and Validate then checks what a schema cannot: every evidence excerpt must occur
// (case, punctuation and spacing aside) in the text of the window it names, counts must be
// plausible for the words sent (focusing plus funneling questions at most all questions), silence
// at most the span's length, texts non-empty, bounded and free of control characters, no
// duplicates. Any violation rejects the whole answer as llm.ErrMalformed: no insight is returned,
// nothing partial reaches a teacher. Rejections are counted once, in pkg/llm's
// llm_rejected_total{client,reason} (a rejected answer is retried once there); this package
// counts each analysis's outcome in guidance_llm_analyses_total{tier,outcome} (outcome "ok" or
// llm.Reason of the error), so rejections are visible per tier too.
//
// The evidence stored is the redacted transcript text the excerpt matched, with its real window
// id and the window's start time. Insight.Analyzer is the name given to New ("llm:<model>").
package llmanalyzer

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	"github.com/classwaves/classwaves/pkg/llm"
	"github.com/classwaves/classwaves/pkg/telemetry"
	"github.com/classwaves/classwaves/services/guidance/analyzer"
)

// Defaults of the transcript caps (characters of transcript text sent).
const (
	DefaultTier1TranscriptChars = 12000
	DefaultTier2TranscriptChars = 24000
	// contextChars caps the earlier turns sent with a Tier 1 span.
	contextChars = 1500
)

// Analyzer asks an LLM for Tier 1 and Tier 2 analyses. It is safe for concurrent use.
type Analyzer struct {
	client *llm.Client
	name   string
	opts   options
	runs   *prometheus.CounterVec
}

var (
	_ analyzer.Tier1Analyzer = (*Analyzer)(nil)
	_ analyzer.Tier2Analyzer = (*Analyzer)(nil)
)

type options struct {
	tier1System, tier2System string
	tier1Chars, tier2Chars   int
}

// Option changes an Analyzer.
type Option func(*options)

// WithPrompts replaces the system prompts (empty keeps the default). The replacement should still
// define the measures; the schema and the validation do not change with it.
func WithPrompts(tier1, tier2 string) Option {
	return func(o *options) {
		if tier1 != "" {
			o.tier1System = tier1
		}
		if tier2 != "" {
			o.tier2System = tier2
		}
	}
}

// WithTranscriptChars caps the transcript text sent per Tier 1 span and per Tier 2 session (0
// keeps the default). The newest turns are kept.
func WithTranscriptChars(tier1, tier2 int) Option {
	return func(o *options) {
		if tier1 > 0 {
			o.tier1Chars = tier1
		}
		if tier2 > 0 {
			o.tier2Chars = tier2
		}
	}
}

// New returns an analyzer asking client, named name (Insight.Analyzer, e.g. "llm:gpt-4o-mini"),
// counting its outcomes on reg (nil: not exported).
func New(client *llm.Client, name string, reg prometheus.Registerer, opts ...Option) (*Analyzer, error) {
	if client == nil {
		return nil, errors.New("llmanalyzer: client is nil")
	}
	if name == "" {
		return nil, errors.New("llmanalyzer: name is empty")
	}
	o := options{
		tier1System: tier1System, tier2System: tier2System,
		tier1Chars: DefaultTier1TranscriptChars, tier2Chars: DefaultTier2TranscriptChars,
	}
	for _, opt := range opts {
		opt(&o)
	}
	runs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "guidance_llm_analyses_total",
		Help: "LLM analyses by tier and outcome: ok, or why no insight came of it (malformed, refused, truncated, budget, timeout, unavailable, rejected, other).",
	}, []string{"tier", "outcome"})
	return &Analyzer{client: client, name: name, opts: o, runs: telemetry.Register(reg, runs)}, nil
}

// Name implements analyzer.Tier1Analyzer and analyzer.Tier2Analyzer.
func (a *Analyzer) Name() string { return a.name }

// Tier1 implements analyzer.Tier1Analyzer.
func (a *Analyzer) Tier1(ctx context.Context, in analyzer.Tier1Input) (*guidancev1.Tier1Insight, error) {
	if len(in.Turns) == 0 && len(in.Activity) == 0 {
		return nil, analyzer.ErrNoContent
	}
	p := newTier1Prompt(in, a.opts.tier1Chars)
	var ans tier1Answer
	var insight *guidancev1.Tier1Insight
	req := llm.Request{
		System:     a.opts.tier1System,
		User:       p.user,
		SchemaName: "tier1_analysis",
		Schema:     p.schema(),
		BudgetKey:  in.SchoolID,
		Validate: func() error {
			ins, err := p.insight(&ans)
			if err != nil {
				return err
			}
			ins.Analyzer = a.name
			insight = ins
			return nil
		},
	}
	if _, err := a.client.CompleteJSON(ctx, req, &ans); err != nil {
		a.runs.WithLabelValues("tier1", llm.Reason(err)).Inc()
		return nil, fmt.Errorf("llmanalyzer: tier 1 of group %s: %w", in.GroupID, err)
	}
	a.runs.WithLabelValues("tier1", "ok").Inc()
	return insight, nil
}

// Tier2 implements analyzer.Tier2Analyzer.
func (a *Analyzer) Tier2(ctx context.Context, in analyzer.Tier2Input) (*guidancev1.Tier2Insight, error) {
	p := newTier2Prompt(in, a.opts.tier2Chars)
	if p.empty {
		return nil, analyzer.ErrNoContent
	}
	var ans tier2Answer
	var insight *guidancev1.Tier2Insight
	req := llm.Request{
		System:     a.opts.tier2System,
		User:       p.user,
		SchemaName: "tier2_analysis",
		Schema:     p.schema(),
		BudgetKey:  in.SchoolID,
		Validate: func() error {
			ins, err := p.insight(&ans)
			if err != nil {
				return err
			}
			ins.Analyzer = a.name
			insight = ins
			return nil
		},
	}
	if _, err := a.client.CompleteJSON(ctx, req, &ans); err != nil {
		a.runs.WithLabelValues("tier2", llm.Reason(err)).Inc()
		return nil, fmt.Errorf("llmanalyzer: tier 2 of session %s: %w", in.SessionID, err)
	}
	a.runs.WithLabelValues("tier2", "ok").Inc()
	return insight, nil
}
