package audio

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// signal builds 16 kHz PCM from parts: each is a duration of tone (amplitude in dBFS) or of
// noise at -60 dBFS (tone false).
type part struct {
	d    time.Duration
	tone bool
	dbfs float64
}

func signal(rate int, parts ...part) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var out []byte
	t := 0
	for _, p := range parts {
		n := int(p.d.Seconds() * float64(rate))
		amp := math.Pow(10, p.dbfs/20) * 32767 * math.Sqrt2 // a sine's RMS is amp/sqrt(2)
		for range n {
			var v float64
			if p.tone {
				v = amp * math.Sin(2*math.Pi*440*float64(t)/float64(rate))
			} else {
				v = (rng.Float64()*2 - 1) * 32767 * math.Pow(10, -60.0/20) * math.Sqrt(3)
			}
			out = binary.LittleEndian.AppendUint16(out, uint16(int16(v)))
			t++
		}
	}
	return out
}

func TestDetectSpeech(t *testing.T) {
	t.Parallel()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name  string
		rate  int
		parts []part
		want  Activity
	}{
		{
			name: "speech with word gaps, a long pause and a click",
			rate: 16000,
			parts: []part{
				{d: ms(1000)},
				{d: ms(800), tone: true, dbfs: -20}, {d: ms(100)}, {d: ms(1100), tone: true, dbfs: -25}, // a 100 ms gap is a pause between words
				{d: ms(1500)},
				{d: ms(10), tone: true, dbfs: -10}, // a click
				{d: ms(500)},
				{d: ms(500), tone: true, dbfs: -30},
				{d: ms(600)},
			},
			want: Activity{Total: ms(6110), Speech: ms(2500), Silence: ms(3610), LongestSilence: ms(2010)},
		},
		{
			name:  "digital silence",
			rate:  8000,
			parts: nil,
			want:  Activity{},
		},
		{
			name:  "room noise only",
			rate:  48000,
			parts: []part{{d: ms(3000)}},
			want:  Activity{Total: ms(3000), Silence: ms(3000), LongestSilence: ms(3000)},
		},
		{
			name:  "all speech",
			rate:  16000,
			parts: []part{{d: ms(2000), tone: true, dbfs: -20}},
			want:  Activity{Total: ms(2000), Speech: ms(2000)},
		},
		{
			name:  "shorter than a frame",
			rate:  16000,
			parts: []part{{d: ms(15), tone: true, dbfs: -20}},
			want:  Activity{Total: ms(15), Silence: ms(15), LongestSilence: ms(15)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DetectSpeech(signal(tt.rate, tt.parts...), tt.rate)
			// Frame boundaries move edges by at most a frame each side.
			near := func(a, b time.Duration) bool { return (a - b).Abs() <= 2*vadFrame }
			if !near(got.Total, tt.want.Total) || !near(got.Speech, tt.want.Speech) ||
				!near(got.Silence, tt.want.Silence) || !near(got.LongestSilence, tt.want.LongestSilence) {
				t.Errorf("DetectSpeech = %+v, want %+v (within %v)", got, tt.want, 2*vadFrame)
			}
			if got.Speech+got.Silence != got.Total {
				t.Errorf("Speech %v + Silence %v != Total %v", got.Speech, got.Silence, got.Total)
			}
		})
	}
}

// TestDetectSpeechOnRecordedSpeech runs the detector on real speech (espeak-ng, 0.5 s of silence
// before and 0.8 s after, 8 kHz).
func TestDetectSpeechOnRecordedSpeech(t *testing.T) {
	t.Parallel()
	a, _ := New(FormatWAV, Options{})
	if err := a.Append(fixture(t, "speech_8k_u8.wav")); err != nil {
		t.Fatal(err)
	}
	w := a.Cut()
	got := DetectSpeech(w.PCM, w.SampleRate)
	// ffmpeg's silencedetect (-40 dB, 0.1 s) finds speech from 0.55 s to 1.60 s: 1.05 s of
	// speech and 1.10 s of silence after it.
	if got.Speech < 950*time.Millisecond || got.Speech > 1200*time.Millisecond {
		t.Errorf("Speech = %v, want about 1.05s", got.Speech)
	}
	if got.LongestSilence < 950*time.Millisecond || got.LongestSilence > 1250*time.Millisecond {
		t.Errorf("LongestSilence = %v, want about 1.1s", got.LongestSilence)
	}
}

// TestActivityMeasuredAsChunksArrive checks that the activity a PCM window carries, measured chunk
// by chunk (whatever the chunk sizes), is DetectSpeech of the whole window.
func TestActivityMeasuredAsChunksArrive(t *testing.T) {
	t.Parallel()
	pcm := signal(16000, part{d: 700 * time.Millisecond}, part{d: 1300 * time.Millisecond, tone: true, dbfs: -20}, part{d: 500 * time.Millisecond})
	for _, cs := range []int{1, 3, 640, 641, 100000} {
		wins := stream(t, FormatPCM16, Options{SampleRate: 16000}, pcm, cs, time.Hour)
		if len(wins) != 1 || wins[0].Activity == nil {
			t.Fatalf("chunks of %d: %d windows", cs, len(wins))
		}
		if got, want := *wins[0].Activity, DetectSpeech(pcm, 16000); got != want {
			t.Errorf("chunks of %d: Activity = %+v, want %+v", cs, got, want)
		}
	}
}
