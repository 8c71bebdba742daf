package whisper

import (
	"math"
	"strings"
	"unicode"
)

// Thresholds of Clean. The first three are the ones Whisper itself uses to decide that a
// segment is silence or a failed decode (openai/whisper transcribe.py: no_speech_threshold 0.6,
// logprob_threshold -1.0, compression_ratio_threshold 2.4).
const (
	NoSpeechThreshold         = 0.6
	LogprobThreshold          = -1.0
	CompressionRatioThreshold = 2.4
	// PhraseNoSpeechThreshold and PhraseLogprobThreshold: a stock phrase (see hallucinations) is
	// dropped when the model was this unsure of it.
	PhraseNoSpeechThreshold = 0.2
	PhraseLogprobThreshold  = -0.5
)

// hallucinations are phrases Whisper is known to produce from silence, noise or music (caption
// credits and video sign-offs from its training data), normalized as normalize does.
var hallucinations = map[string]bool{
	"thank you":                           true,
	"thank you very much":                 true,
	"thanks for watching":                 true,
	"thank you for watching":              true,
	"thank you so much for watching":      true,
	"please subscribe":                    true,
	"like and subscribe":                  true,
	"subtitles by the amaraorg community": true,
	"subtitles by":                        true,
	"transcription by castingwords":       true,
	"you":                                 true,
	"bye":                                 true,
	"so":                                  true,
	"music":                               true,
	"applause":                            true,
	"silence":                             true,
	"see you next time":                   true,
	"see you in the next video":           true,
	"ill see you in the next video":       true,
	"thanks for watching and see you next time": true,
}

// normalize lower-cases s and keeps only letters, digits and single spaces.
func normalize(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToLower(s) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(r)
		case unicode.IsSpace(r):
			space = true
		}
	}
	return b.String()
}

// ScoredSegment is a kept segment with its confidence.
type ScoredSegment struct {
	Segment
	Confidence float64
}

// Transcript is a cleaned answer.
type Transcript struct {
	// Text is the kept segments' text joined by single spaces.
	Text string
	// Confidence is the kept segments' confidences weighted by their durations.
	Confidence float64
	Segments   []ScoredSegment
	// Dropped counts the segments filtered out.
	Dropped int
}

// SegmentConfidence is exp(avg_logprob) * (1 - no_speech_prob), clamped to [0, 1]:
// exp(avg_logprob) is the geometric mean of the probabilities the model gave the segment's tokens,
// and (1 - no_speech_prob) the probability that the segment holds speech at all.
func SegmentConfidence(s Segment) float64 {
	c := math.Exp(s.AvgLogprob) * (1 - s.NoSpeechProb)
	if math.IsNaN(c) {
		return 0
	}
	return min(max(c, 0), 1)
}

// Clean filters an answer's segments and scores what is left. A segment is dropped when
//
//   - its text has no letter or digit;
//   - no_speech_prob > 0.6 and avg_logprob < -1 (Whisper's own silence rule);
//   - compression_ratio > 2.4 (a repetition loop, Whisper's own rule);
//   - it is a stock phrase Whisper produces from silence ("Thank you for watching.", "you",
//     caption credits) and the model was unsure of it: no_speech_prob >= 0.2 or
//     avg_logprob < -0.5;
//   - it repeats the previous kept segment word for word.
//
// The transcript's confidence is the duration-weighted mean of the kept segments'
// SegmentConfidence. An answer without segments (a server that ignores verbose_json) keeps its
// text, unless it is empty or a stock phrase, with confidence 0: nothing is known about it.
func Clean(r Response) Transcript {
	if len(r.Segments) == 0 {
		n := normalize(r.Text)
		if n == "" || hallucinations[n] {
			return Transcript{}
		}
		return Transcript{Text: strings.TrimSpace(r.Text)}
	}
	var (
		out       Transcript
		texts     []string
		weighted  float64
		totalDur  float64
		lastNorm  string
		keptCount int
	)
	for _, s := range r.Segments {
		n := normalize(s.Text)
		switch {
		case n == "",
			s.NoSpeechProb > NoSpeechThreshold && s.AvgLogprob < LogprobThreshold,
			s.CompressionRatio > CompressionRatioThreshold,
			hallucinations[n] && (s.NoSpeechProb >= PhraseNoSpeechThreshold || s.AvgLogprob < PhraseLogprobThreshold),
			keptCount > 0 && n == lastNorm:
			out.Dropped++
			continue
		}
		c := SegmentConfidence(s)
		out.Segments = append(out.Segments, ScoredSegment{Segment: s, Confidence: c})
		texts = append(texts, strings.TrimSpace(s.Text))
		w := max(s.End-s.Start, 0.01)
		weighted += c * w
		totalDur += w
		lastNorm = n
		keptCount++
	}
	if keptCount == 0 {
		return out
	}
	out.Text = strings.Join(texts, " ")
	out.Confidence = weighted / totalDur
	return out
}

// PromptTail returns the end of text to pass as the next window's prompt: at most max bytes,
// starting at a word boundary.
func PromptTail(text string, max int) string {
	text = strings.TrimSpace(text)
	if len(text) <= max {
		return text
	}
	tail := text[len(text)-max:]
	if i := strings.IndexAny(tail, " \t\n"); i >= 0 && i < len(tail)-1 {
		tail = tail[i+1:]
	}
	// Do not start inside a UTF-8 sequence.
	for len(tail) > 0 && tail[0]&0xC0 == 0x80 {
		tail = tail[1:]
	}
	return tail
}
