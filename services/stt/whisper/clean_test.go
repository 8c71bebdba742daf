package whisper

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestSegmentConfidence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		seg  Segment
		want float64
	}{
		{Segment{AvgLogprob: 0, NoSpeechProb: 0}, 1},
		{Segment{AvgLogprob: math.Log(0.8), NoSpeechProb: 0.1}, 0.72},
		{Segment{AvgLogprob: -1, NoSpeechProb: 0.5}, math.Exp(-1) * 0.5},
		{Segment{AvgLogprob: 0.3, NoSpeechProb: -0.2}, 1}, // out-of-range inputs are clamped
		{Segment{AvgLogprob: math.NaN()}, 0},
		{Segment{AvgLogprob: -2, NoSpeechProb: 1}, 0},
	}
	for _, tt := range tests {
		if got := SegmentConfidence(tt.seg); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("SegmentConfidence(%+v) = %v, want %v", tt.seg, got, tt.want)
		}
	}
}

func TestClean(t *testing.T) {
	t.Parallel()
	seg := func(start, end float64, text string, logprob, noSpeech float64) Segment {
		return Segment{Start: start, End: end, Text: text, AvgLogprob: logprob, NoSpeechProb: noSpeech, CompressionRatio: 1.3}
	}
	good1 := seg(0, 4, " Plants need sunlight.", math.Log(0.9), 0)
	good2 := seg(4, 6, " And water!", math.Log(0.6), 0)
	tests := []struct {
		name string
		in   Response
		want Transcript
	}{
		{
			name: "confident speech is kept and weighted by duration",
			in:   Response{Segments: []Segment{good1, good2}},
			want: Transcript{
				Text:       "Plants need sunlight. And water!",
				Confidence: (0.9*4 + 0.6*2) / 6,
				Segments:   []ScoredSegment{{good1, 0.9}, {good2, 0.6}},
			},
		},
		{
			name: "Whisper's silence rule",
			in:   Response{Segments: []Segment{good1, seg(4, 10, " Hmm.", -1.2, 0.8)}},
			want: Transcript{Text: "Plants need sunlight.", Confidence: 0.9, Segments: []ScoredSegment{{good1, 0.9}}, Dropped: 1},
		},
		{
			name: "high no-speech with a confident decode is kept",
			in:   Response{Segments: []Segment{seg(0, 2, " Yes.", math.Log(0.9), 0.7)}},
			want: Transcript{Text: "Yes.", Confidence: 0.9 * 0.3, Segments: []ScoredSegment{{seg(0, 2, " Yes.", math.Log(0.9), 0.7), 0.9 * 0.3}}},
		},
		{
			name: "repetition loop",
			in: Response{Segments: []Segment{good1, {Start: 4, End: 10, Text: " the the the the the the the the",
				AvgLogprob: -0.3, CompressionRatio: 3.1}}},
			want: Transcript{Text: "Plants need sunlight.", Confidence: 0.9, Segments: []ScoredSegment{{good1, 0.9}}, Dropped: 1},
		},
		{
			name: "stock phrase from silence",
			in:   Response{Segments: []Segment{seg(0, 15, " Thank you for watching!", -0.7, 0.4)}},
			want: Transcript{Dropped: 1},
		},
		{
			name: "a confident thank you is speech",
			in:   Response{Segments: []Segment{seg(0, 1, " Thank you.", math.Log(0.95), 0.05)}},
			want: Transcript{Text: "Thank you.", Confidence: 0.95 * 0.95, Segments: []ScoredSegment{{seg(0, 1, " Thank you.", math.Log(0.95), 0.05), 0.95 * 0.95}}},
		},
		{
			name: "punctuation only and a repeated segment",
			in:   Response{Segments: []Segment{good1, seg(4, 5, " ...", -0.1, 0), seg(5, 9, " plants need SUNLIGHT", -0.1, 0)}},
			want: Transcript{Text: "Plants need sunlight.", Confidence: 0.9, Segments: []ScoredSegment{{good1, 0.9}}, Dropped: 2},
		},
		{
			name: "no segments: text kept with unknown confidence",
			in:   Response{Text: " We should test it. "},
			want: Transcript{Text: "We should test it."},
		},
		{
			name: "no segments: a stock phrase is dropped",
			in:   Response{Text: "Thanks for watching."},
			want: Transcript{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Clean(tt.in)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
				t.Errorf("Clean mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPromptTail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"one two three four", 10, "four"},
		{"  padded  ", 10, "padded"},
		{"naïve café au lait", 9, "au lait"},
		{"abcdefghijklmnop", 5, "lmnop"},
	}
	for _, tt := range tests {
		if got := PromptTail(tt.text, tt.max); got != tt.want {
			t.Errorf("PromptTail(%q, %d) = %q, want %q", tt.text, tt.max, got, tt.want)
		}
	}
}
