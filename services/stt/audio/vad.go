package audio

import (
	"encoding/binary"
	"math"
	"slices"
	"time"
)

// Voice activity detection parameters. See DetectSpeech.
const (
	vadFrame = 20 * time.Millisecond
	// vadFloorPercentile picks the window's noise floor among its frame energies.
	vadFloorPercentile = 0.10
	// vadMargin is how far above the noise floor a frame must be to count as speech.
	vadMargin = 10.0 // dB
	// vadMinThreshold and vadMaxThreshold bound the threshold: nothing quieter than -50 dBFS is
	// speech however quiet the room, and anything louder than -30 dBFS is speech however noisy.
	vadMinThreshold = -50.0 // dBFS
	vadMaxThreshold = -30.0 // dBFS
	// vadMinRun drops speech runs shorter than this many frames (clicks, bumps).
	vadMinRun = 2 // 40 ms
	// vadHangover fills silences shorter than this many frames between speech runs (the pauses
	// between words).
	vadHangover = 10 // 200 ms
)

// Activity is the voice activity of a window.
type Activity struct {
	// Total is the window's length.
	Total time.Duration
	// Speech is the time classed as speech; Silence is the rest of Total.
	Speech, Silence time.Duration
	// LongestSilence is the longest stretch without speech.
	LongestSilence time.Duration
}

// DetectSpeech classifies mono signed 16-bit little-endian PCM at rate into speech and silence
// with an energy detector:
//
//  1. The audio is cut into 20 ms frames; each frame's energy is its mean square in dB relative
//     to full scale (dBFS), -100 for digital silence.
//  2. The noise floor is the 10th percentile of the frame energies. The threshold is the floor
//     plus 10 dB, clamped to [-50, -30] dBFS.
//  3. A frame at or above the threshold is speech. Speech runs shorter than 40 ms are dropped
//     (clicks); gaps shorter than 200 ms between speech runs are filled (pauses between words).
//  4. Speech is the number of speech frames times 20 ms; Silence is Total minus Speech (a final
//     partial frame counts as silence); LongestSilence is the longest run of non-speech frames,
//     the final partial frame included.
//
// It is cheap (one pass plus a sort of one value per frame) and needs no model, so speech activity
// is known even when transcription is off. It cannot tell speech from other loud sound.
func DetectSpeech(pcm []byte, rate int) Activity {
	if rate <= 0 {
		return Activity{}
	}
	m := newSpeechMeter(rate)
	m.write(pcm)
	return m.activity()
}

// speechMeter measures frame energies as samples arrive, so that a window's activity costs
// almost nothing when the window closes: the per-sample work is spread over the chunks.
type speechMeter struct {
	rate     int
	frameLen int
	// sum and n are the current frame's sum of squares and sample count.
	sum      int64
	n        int
	samples  int
	energies []float64
}

func newSpeechMeter(rate int) *speechMeter {
	return &speechMeter{rate: rate, frameLen: max(1, int(int64(rate)*int64(vadFrame)/int64(time.Second)))}
}

// write adds mono signed 16-bit little-endian samples (a trailing odd byte is ignored). It runs
// on every chunk of every stream, so the inner loop is kept tight: a frame's samples at a time.
func (m *speechMeter) write(pcm []byte) {
	m.samples += len(pcm) / 2
	for len(pcm) >= 2 {
		take := min(m.frameLen-m.n, len(pcm)/2)
		frame := pcm[:2*take]
		sum := m.sum
		for i := 0; i+1 < len(frame); i += 2 {
			s := int64(int16(binary.LittleEndian.Uint16(frame[i:])))
			sum += s * s
		}
		m.sum, m.n = sum, m.n+take
		pcm = pcm[2*take:]
		if m.n == m.frameLen {
			ms := float64(m.sum) / float64(m.frameLen) / (32768 * 32768)
			e := -100.0
			if ms > 1e-10 {
				e = 10 * math.Log10(ms)
			}
			m.energies = append(m.energies, e)
			m.sum, m.n = 0, 0
		}
	}
}

func (m *speechMeter) reset() {
	m.sum, m.n, m.samples = 0, 0, 0
	m.energies = m.energies[:0]
}

// activity classifies the frames written so far (see DetectSpeech).
func (m *speechMeter) activity() Activity {
	total := time.Duration(m.samples) * time.Second / time.Duration(m.rate)
	frames := len(m.energies)
	if frames == 0 {
		return Activity{Total: total, Silence: total, LongestSilence: total}
	}
	sorted := slices.Clone(m.energies)
	slices.Sort(sorted)
	floor := sorted[int(float64(frames-1)*vadFloorPercentile)]
	threshold := min(max(floor+vadMargin, vadMinThreshold), vadMaxThreshold)

	speech := make([]bool, frames)
	for i, e := range m.energies {
		speech[i] = e >= threshold
	}
	// Drop short speech runs, then fill short gaps between the remaining runs.
	forRuns(speech, true, func(start, end int) {
		if end-start < vadMinRun {
			clear(speech[start:end])
		}
	})
	forRuns(speech, false, func(start, end int) {
		if start > 0 && end < frames && end-start < vadHangover {
			for i := start; i < end; i++ {
				speech[i] = true
			}
		}
	})
	var speechFrames, longest int
	forRuns(speech, false, func(start, end int) {
		if end < frames { // the trailing run is measured below, with the partial frame
			longest = max(longest, end-start)
		}
	})
	for _, s := range speech {
		if s {
			speechFrames++
		}
	}
	frameDur := time.Duration(m.frameLen) * time.Second / time.Duration(m.rate)
	sp := time.Duration(speechFrames) * frameDur
	tail := 0
	for i := frames - 1; i >= 0 && !speech[i]; i-- {
		tail++
	}
	tailDur := time.Duration(tail)*frameDur + total - time.Duration(frames)*frameDur
	longestSilence := max(time.Duration(longest)*frameDur, tailDur)
	return Activity{Total: total, Speech: sp, Silence: total - sp, LongestSilence: longestSilence}
}

// forRuns calls fn(start, end) for each maximal run of v in s.
func forRuns(s []bool, v bool, fn func(start, end int)) {
	for i := 0; i < len(s); {
		if s[i] != v {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] == v {
			j++
		}
		fn(i, j)
		i = j
	}
}
