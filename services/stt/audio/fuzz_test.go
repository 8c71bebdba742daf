package audio

import (
	"testing"
	"time"
)

// fuzzAppend feeds data to an assembler of format f as chunks whose sizes come from the first
// bytes, cutting windows as it goes. Whatever the bytes: no panic, a refused chunk changes
// nothing, and every window cut is a valid file.
func fuzzAppend(t *testing.T, f Format, data []byte) {
	a, err := New(f, Options{SampleRate: 16000, WindowHint: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	check := func(w *Window) {
		if w == nil {
			return
		}
		if _, err := Inspect(w.File); err != nil {
			t.Fatalf("a window is not a valid file: %v", err)
		}
		if w.PCM != nil {
			if w.Activity == nil || *w.Activity != DetectSpeech(w.PCM, w.SampleRate) {
				t.Fatalf("the activity measured chunk by chunk (%+v) differs from the window's (%+v)", w.Activity, DetectSpeech(w.PCM, w.SampleRate))
			}
		}
		w.Release()
	}
	sizes := []int{1, 3, 17, 100, 1000}
	if len(data) > 0 {
		sizes = append(sizes[:0], int(data[0])%64+1, int(data[0])*7%1500+1, len(data))
	}
	for i, n := 0, 0; i < len(data); n++ {
		cs := sizes[n%len(sizes)]
		chunk := data[i:min(i+cs, len(data))]
		i += len(chunk)
		lenBefore, durBefore := a.Len(), a.Duration()
		if err := a.Append(chunk); err != nil {
			if _, ok := err.(*ChunkError); !ok {
				t.Fatalf("Append returned %T, want *ChunkError", err)
			}
			if a.Len() != lenBefore || a.Duration() != durBefore {
				t.Fatalf("a refused chunk changed the window")
			}
			continue
		}
		check(a.TakeSealed())
		if a.Duration() >= 500*time.Millisecond {
			check(a.Cut())
		}
	}
	check(a.Cut())
}

func addSeeds(f *testing.F, files ...string) {
	for _, name := range files {
		f.Add(fixture(f, name))
	}
	f.Add([]byte{})
	f.Add([]byte("OggS\x00\x02"))
	f.Add([]byte{0x1A, 0x45, 0xDF, 0xA3, 0x80})
}

func FuzzWebM(f *testing.F) {
	addSeeds(f, "speech_live.webm", "speech.webm", "vorbis.webm")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzAppend(t, FormatWebMOpus, data) })
}

func FuzzOgg(f *testing.F) {
	addSeeds(f, "speech.ogg", "vorbis.ogg")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzAppend(t, FormatOggOpus, data) })
}

func FuzzWAV(f *testing.F) {
	addSeeds(f, "speech_8k_u8.wav")
	f.Add(wavFile(3, 2, 44100, 32, make([]byte, 64), 0))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzAppend(t, FormatWAV, data) })
}

func FuzzPCM16(f *testing.F) {
	f.Add([]byte{1, 2, 3})
	f.Add(fixture(f, "speech_8k_u8.wav"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzAppend(t, FormatPCM16, data) })
}

func FuzzDetectSpeech(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4}, 16000)
	f.Add(signal(8000, part{d: time.Second, tone: true, dbfs: -20}), 8000)
	f.Fuzz(func(t *testing.T, pcm []byte, rate int) {
		rate = rate%(MaxSampleRate-MinSampleRate+1) + MinSampleRate
		if rate < MinSampleRate {
			rate += MaxSampleRate - MinSampleRate
		}
		a := DetectSpeech(pcm, rate)
		if a.Speech+a.Silence != a.Total || a.Speech < 0 || a.LongestSilence > a.Total || a.LongestSilence < 0 {
			t.Fatalf("inconsistent activity %+v", a)
		}
	})
}
