// Package analyzer is the guidance service's analysis port: what a Tier 1 (per group) and a Tier 2
// (per session) analysis gets and answers. Adapters: the built-in lexical analyzer (Builtin, the
// default: deterministic and offline) and the LLM analyzer (package llmanalyzer, any
// OpenAI-compatible chat endpoint). The guidance service owns scheduling, storage and prompts; an
// analyzer only measures.
package analyzer

import (
	"context"
	"errors"
	"time"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
)

// Turn is one transcribed window of a group's discussion (one stt transcript).
type Turn struct {
	// WindowID is the transcript id the text came from: the evidence reference.
	WindowID string
	Text     string
	Start    time.Time
	End      time.Time
	// Speaker identifies the speaker when the transcript tells them apart; empty when unknown.
	Speaker string
}

// Activity is the voice activity of one closed audio window (stt speech activity).
type Activity struct {
	WindowID              string
	Start                 time.Time
	End                   time.Time
	SpeechSeconds         float64
	SilenceSeconds        float64
	LongestSilenceSeconds float64
}

// Tier1Input is what a Tier 1 analysis of one group gets.
type Tier1Input struct {
	SessionID string
	GroupID   string
	// SchoolID keys the LLM token budget.
	SchoolID string
	// Objectives are the session's learning objectives (may be empty).
	Objectives []string
	// Turns are the transcripts of the analysed span, oldest first.
	Turns []Turn
	// Context are earlier turns of the same group (oldest first), for uptake and repetition across
	// the span boundary; never quoted as evidence.
	Context []Turn
	// Activity is the speech activity of the span's windows.
	Activity []Activity
	// FocusAreas are optional areas the caller asked about (e.g. "topical_cohesion").
	FocusAreas []string
	// SpanStart and SpanEnd bound the analysed span.
	SpanStart time.Time
	SpanEnd   time.Time
	// Names are student display names of the session: an LLM adapter removes them from what it sends.
	Names []string
}

// GroupInput is one group inside a Tier 2 analysis.
type GroupInput struct {
	GroupID string
	Name    string
	Turns   []Turn
	// Tier1 are the group's Tier 1 insights so far, oldest first.
	Tier1    []*guidancev1.Tier1Insight
	Activity []Activity
}

// Tier2Input is what a Tier 2 analysis of a session gets.
type Tier2Input struct {
	SessionID  string
	SchoolID   string
	Objectives []string
	Groups     []GroupInput
	// Depth is "standard" or "comprehensive".
	Depth string
	Names []string
}

// Tier1Analyzer measures one group's recent discussion. It fills Metrics, Observations, Evidence
// (only excerpts of Input.Turns, with their WindowID), Confidence (0..1) and Analyzer; the caller
// sets ids, session, group, span and creation time.
type Tier1Analyzer interface {
	Name() string
	Tier1(ctx context.Context, in Tier1Input) (*guidancev1.Tier1Insight, error)
}

// Tier2Analyzer analyses a whole session. It fills Groups, Recommendations, Summary, Confidence and
// Analyzer; the caller sets ids, session and creation time.
type Tier2Analyzer interface {
	Name() string
	Tier2(ctx context.Context, in Tier2Input) (*guidancev1.Tier2Insight, error)
}

// ErrNoContent is answered when there is nothing to analyse (no turns and no activity).
var ErrNoContent = errors.New("analyzer: nothing to analyse")
