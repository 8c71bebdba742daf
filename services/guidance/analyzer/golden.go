package analyzer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Golden is a hand-written discussion for tests (testdata/golden/*.json): the guidance service's
// tests read them too, so the file format is a contract (README.md, "Golden discussions").
type Golden struct {
	Name       string           `json:"name"`
	Objectives []string         `json:"objectives"`
	Turns      []GoldenTurn     `json:"turns"`
	Activity   []GoldenActivity `json:"activity"`
	// ExpectAlerts are the alert categories the default policy (Tier1AlertCategories) raises for the
	// whole discussion analysed as one span; empty for a healthy discussion.
	ExpectAlerts []string `json:"expectAlerts"`
}

// GoldenTurn is one transcript window; offsets are seconds from the discussion's start.
type GoldenTurn struct {
	WindowID        string  `json:"windowId"`
	Speaker         string  `json:"speaker,omitempty"`
	Text            string  `json:"text"`
	OffsetSeconds   float64 `json:"offsetSeconds"`
	DurationSeconds float64 `json:"durationSeconds"`
}

// GoldenActivity is one audio window's speech activity.
type GoldenActivity struct {
	WindowID              string  `json:"windowId"`
	OffsetSeconds         float64 `json:"offsetSeconds"`
	DurationSeconds       float64 `json:"durationSeconds"`
	SpeechSeconds         float64 `json:"speechSeconds"`
	SilenceSeconds        float64 `json:"silenceSeconds"`
	LongestSilenceSeconds float64 `json:"longestSilenceSeconds"`
}

// GoldenDir answers the absolute path of this package's testdata/golden directory.
func GoldenDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("testdata", "golden")
	}
	return filepath.Join(filepath.Dir(file), "testdata", "golden")
}

// LoadGolden reads and checks one golden discussion. Unknown fields, a missing name, negative or
// non-finite times and unknown alert categories are errors.
func LoadGolden(path string) (Golden, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Golden{}, fmt.Errorf("golden: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var g Golden
	if err := dec.Decode(&g); err != nil {
		return Golden{}, fmt.Errorf("golden %s: %w", filepath.Base(path), err)
	}
	if err := g.validate(); err != nil {
		return Golden{}, fmt.Errorf("golden %s: %w", filepath.Base(path), err)
	}
	return g, nil
}

// LoadGoldens reads every *.json golden of dir, in file name order.
func LoadGoldens(dir string) ([]Golden, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("golden: %w", err)
	}
	slices.Sort(paths)
	out := make([]Golden, 0, len(paths))
	for _, p := range paths {
		g, err := LoadGolden(p)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

func (g Golden) validate() error {
	var errs []error
	if strings.TrimSpace(g.Name) == "" {
		errs = append(errs, errors.New("name is required"))
	}
	badTime := func(xs ...float64) bool {
		for _, x := range xs {
			if x < 0 || math.IsNaN(x) || math.IsInf(x, 0) {
				return true
			}
		}
		return false
	}
	for i, t := range g.Turns {
		if t.WindowID == "" {
			errs = append(errs, fmt.Errorf("turns[%d]: windowId is required", i))
		}
		if badTime(t.OffsetSeconds, t.DurationSeconds) {
			errs = append(errs, fmt.Errorf("turns[%d]: offsetSeconds and durationSeconds must be finite and >= 0", i))
		}
	}
	for i, w := range g.Activity {
		if w.WindowID == "" {
			errs = append(errs, fmt.Errorf("activity[%d]: windowId is required", i))
		}
		if badTime(w.OffsetSeconds, w.DurationSeconds, w.SpeechSeconds, w.SilenceSeconds, w.LongestSilenceSeconds) {
			errs = append(errs, fmt.Errorf("activity[%d]: seconds must be finite and >= 0", i))
		}
	}
	for _, c := range g.ExpectAlerts {
		if !slices.Contains(AlertCategories(), c) {
			errs = append(errs, fmt.Errorf("expectAlerts: unknown category %q", c))
		}
	}
	return errors.Join(errs...)
}

// HasTurns reports whether the discussion has any transcript.
func (g Golden) HasTurns() bool { return len(g.Turns) > 0 }

// Tier1Input turns the discussion into one Tier 1 span starting at base: offsets become times and
// the span covers every turn and activity window. Ids are left empty for the caller to set.
func (g Golden) Tier1Input(base time.Time) Tier1Input {
	at := func(sec float64) time.Time { return base.Add(time.Duration(sec * float64(time.Second))) }
	in := Tier1Input{
		Objectives: slices.Clone(g.Objectives),
		SpanStart:  base,
		SpanEnd:    base,
	}
	extend := func(t time.Time) {
		if t.After(in.SpanEnd) {
			in.SpanEnd = t
		}
	}
	for _, t := range g.Turns {
		tr := Turn{
			WindowID: t.WindowID,
			Text:     t.Text,
			Start:    at(t.OffsetSeconds),
			End:      at(t.OffsetSeconds + t.DurationSeconds),
			Speaker:  t.Speaker,
		}
		extend(tr.End)
		in.Turns = append(in.Turns, tr)
	}
	for _, w := range g.Activity {
		a := Activity{
			WindowID:              w.WindowID,
			Start:                 at(w.OffsetSeconds),
			End:                   at(w.OffsetSeconds + w.DurationSeconds),
			SpeechSeconds:         w.SpeechSeconds,
			SilenceSeconds:        w.SilenceSeconds,
			LongestSilenceSeconds: w.LongestSilenceSeconds,
		}
		extend(a.End)
		in.Activity = append(in.Activity, a)
	}
	return in
}
