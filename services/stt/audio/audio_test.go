package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fixture reads a file of ../testdata (made with espeak-ng and ffmpeg; see its README).
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stream feeds b to a new assembler of format f in chunks of size cs, cutting a window whenever
// the open one holds at least every, and returns the windows (the last one cut at the end).
func stream(t testing.TB, f Format, opts Options, b []byte, cs int, every time.Duration) []*Window {
	t.Helper()
	a, err := New(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	var wins []*Window
	for i := 0; i < len(b); i += cs {
		if err := a.Append(b[i:min(i+cs, len(b))]); err != nil {
			t.Fatalf("Append(bytes %d..) with chunks of %d: %v", i, cs, err)
		}
		if w := a.TakeSealed(); w != nil {
			wins = append(wins, w)
		}
		if a.Duration() >= every {
			wins = append(wins, a.Cut())
		}
	}
	if w := a.Cut(); w != nil {
		wins = append(wins, w)
	}
	return wins
}

func TestWindowsAreValidFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file   string
		format Format
		// want is the audio the fixture holds.
		want time.Duration
	}{
		{"speech.webm", FormatWebMOpus, 5600 * time.Millisecond},
		{"speech_live.webm", FormatWebMOpus, 5600 * time.Millisecond},
		{"speech.ogg", FormatOggOpus, 5600 * time.Millisecond},
		{"speech_8k_u8.wav", FormatWAV, 2702500 * time.Microsecond},
	}
	for _, tt := range tests {
		b := fixture(t, tt.file)
		info, err := Inspect(b)
		if err != nil {
			t.Fatalf("Inspect(%s): %v", tt.file, err)
		}
		if diff := cmp.Diff(Info{Format: tt.format, Duration: tt.want}, info); diff != "" {
			t.Errorf("Inspect(%s) mismatch (-want +got):\n%s", tt.file, diff)
		}
		// WAV needs its header whole in the first chunk.
		sizes := []int{1, 7, 64, 1000, len(b)}
		if tt.format == FormatWAV {
			sizes = []int{100, 999, len(b)}
		}
		for _, cs := range sizes {
			wins := stream(t, tt.format, Options{}, b, cs, 2*time.Second)
			var sum time.Duration
			for i, w := range wins {
				info, err := Inspect(w.File)
				if err != nil {
					t.Fatalf("%s, chunks of %d: window %d is not a valid file: %v", tt.file, cs, i, err)
				}
				if info.Duration != w.Duration || info.Format != tt.format {
					t.Errorf("%s, chunks of %d: window %d: Inspect = %+v, want %v of %v", tt.file, cs, i, info, w.Duration, tt.format)
				}
				if w.Filename() != "window."+tt.format.Extension() {
					t.Errorf("Filename() = %q", w.Filename())
				}
				sum += w.Duration
			}
			// A packet continued across a window boundary is dropped; none more.
			if sum > tt.want || sum < tt.want-time.Duration(len(wins))*60*time.Millisecond {
				t.Errorf("%s, chunks of %d: windows hold %v of %v", tt.file, cs, sum, tt.want)
			}
			if cs < len(b) && len(wins) < 2 {
				t.Errorf("%s, chunks of %d: %d windows, want several", tt.file, cs, len(wins))
			}
		}
	}
}

// TestAppendKeepsNoReference: an assembler copies what it keeps of a chunk, so a caller may reuse
// the chunk's buffer after Append (stt receives every chunk of a stream into one buffer). Each
// format's windows are the same whether the buffer passed to Append is overwritten after every
// call or not.
func TestAppendKeepsNoReference(t *testing.T) {
	t.Parallel()
	pcm := make([]byte, 3*16000*2)
	for i := range pcm {
		pcm[i] = byte(i*7 + i/300)
	}
	tests := []struct {
		name   string
		format Format
		opts   Options
		b      []byte
	}{
		{"pcm16", FormatPCM16, Options{SampleRate: 16000}, pcm},
		{"speech_8k_u8.wav", FormatWAV, Options{}, fixture(t, "speech_8k_u8.wav")},
		{"speech.webm", FormatWebMOpus, Options{}, fixture(t, "speech.webm")},
		{"speech_live.webm", FormatWebMOpus, Options{}, fixture(t, "speech_live.webm")},
		{"speech.ogg", FormatOggOpus, Options{}, fixture(t, "speech.ogg")},
	}
	for _, tt := range tests {
		for _, cs := range []int{333, 3200} {
			want := stream(t, tt.format, tt.opts, tt.b, cs, time.Second)
			a, err := New(tt.format, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []*Window
			reused := make([]byte, cs)
			for i := 0; i < len(tt.b); i += cs {
				chunk := reused[:copy(reused, tt.b[i:min(i+cs, len(tt.b))])]
				if err := a.Append(chunk); err != nil {
					t.Fatalf("%s: Append(bytes %d..): %v", tt.name, i, err)
				}
				for j := range reused {
					reused[j] = 0x5A
				}
				if w := a.TakeSealed(); w != nil {
					got = append(got, w)
				}
				if a.Duration() >= time.Second {
					got = append(got, a.Cut())
				}
			}
			if w := a.Cut(); w != nil {
				got = append(got, w)
			}
			if len(got) != len(want) {
				t.Fatalf("%s, chunks of %d: %d windows, want %d", tt.name, cs, len(got), len(want))
			}
			for k := range want {
				if !bytes.Equal(got[k].File, want[k].File) {
					t.Errorf("%s, chunks of %d: window %d differs when the chunk buffer is reused", tt.name, cs, k)
				}
			}
		}
	}
}

// TestWindowsDecodeWithFFmpeg checks the windows with a real decoder when ffmpeg is installed
// (the fixtures themselves were made with it). Inspect covers the same ground without it.
func TestWindowsDecodeWithFFmpeg(t *testing.T) {
	t.Parallel()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg not installed (scripts/test-services.sh --install, run by CI, installs it); the committed fixtures are still checked by audio.Inspect")
	}
	for _, file := range []string{"speech.webm", "speech_live.webm", "speech.ogg", "speech_8k_u8.wav"} {
		b := fixture(t, file)
		for i, w := range stream(t, Detect(b), Options{}, b, 333, 2*time.Second) {
			cmd := exec.Command(ffmpeg, "-v", "error", "-i", "pipe:0", "-ar", "16000", "-ac", "1", "-f", "s16le", "pipe:1")
			cmd.Stdin = bytes.NewReader(w.File)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			if err := cmd.Run(); err != nil || errOut.Len() > 0 {
				t.Fatalf("%s window %d: ffmpeg: %v: %s", file, i, err, errOut.String())
			}
			got := time.Duration(out.Len()/2) * time.Second / 16000
			// Opus decoders drop the pre-skip (a few ms) at the start of each file.
			if got > w.Duration+5*time.Millisecond || got < w.Duration-100*time.Millisecond {
				t.Errorf("%s window %d: ffmpeg decoded %v, window holds %v", file, i, got, w.Duration)
			}
		}
	}
}

func pcmOf(samples ...int16) []byte {
	b := make([]byte, 2*len(samples))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(s))
	}
	return b
}

func TestPCM16(t *testing.T) {
	t.Parallel()
	a, err := New(FormatPCM16, Options{SampleRate: 16000, WindowHint: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// An odd-sized chunk leaves half a sample for the next one.
	data := pcmOf(1, -2, 300, -32768, 32767)
	if err := a.Append(data[:3]); err != nil {
		t.Fatal(err)
	}
	if err := a.Append(data[3:]); err != nil {
		t.Fatal(err)
	}
	if got, want := a.Duration(), 5*time.Second/16000; got != want {
		t.Errorf("Duration() = %v, want %v", got, want)
	}
	w := a.Cut()
	if diff := cmp.Diff(data, w.PCM); diff != "" {
		t.Errorf("PCM mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(EncodeWAV(data, 16000), w.File); diff != "" {
		t.Errorf("File is not the WAV of the samples (-want +got):\n%s", diff)
	}
	if a.Cut() != nil {
		t.Error("Cut of an empty window returned a window")
	}
	w.Release()
	if w.File != nil || w.PCM != nil {
		t.Error("Release kept the audio")
	}

	for _, rate := range []int{0, 7999, 48001} {
		if _, err := New(FormatPCM16, Options{SampleRate: rate}); !isReason(err, ReasonUnsupported) {
			t.Errorf("New(PCM16, rate %d) = %v, want %s", rate, err, ReasonUnsupported)
		}
	}
}

func isReason(err error, reason string) bool {
	ce, ok := errors.AsType[*ChunkError](err)
	return ok && ce.Reason == reason
}

// wavFile builds a WAV file with the given fmt fields and data.
func wavFile(tag, channels, rate, bits int, data []byte, dataSize int) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+len(data)))
	b.WriteString("WAVEfmt ")
	binary.Write(&b, binary.LittleEndian, uint32(16))
	binary.Write(&b, binary.LittleEndian, uint16(tag))
	binary.Write(&b, binary.LittleEndian, uint16(channels))
	binary.Write(&b, binary.LittleEndian, uint32(rate))
	binary.Write(&b, binary.LittleEndian, uint32(rate*channels*bits/8))
	binary.Write(&b, binary.LittleEndian, uint16(channels*bits/8))
	binary.Write(&b, binary.LittleEndian, uint16(bits))
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(dataSize))
	b.Write(data)
	return b.Bytes()
}

func TestWAVConversion(t *testing.T) {
	t.Parallel()
	f32 := func(vs ...float32) []byte {
		b := make([]byte, 4*len(vs))
		for i, v := range vs {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return b
	}
	tests := []struct {
		name string
		file []byte
		want []byte
	}{
		{"16-bit mono", wavFile(1, 1, 16000, 16, pcmOf(5, -5), 4), pcmOf(5, -5)},
		{"16-bit stereo is mixed down", wavFile(1, 2, 16000, 16, pcmOf(100, 300, -10, -30), 8), pcmOf(200, -20)},
		{"8-bit unsigned", wavFile(1, 1, 8000, 8, []byte{128, 255, 0}, 3), pcmOf(0, 127<<8, -32768)},
		{"24-bit keeps the top 16 bits", wavFile(1, 1, 16000, 24, []byte{0xAA, 0x34, 0x12}, 3), pcmOf(0x1234)},
		{"32-bit float is clamped", wavFile(3, 1, 16000, 32, f32(0.5, -2, 2, float32(math.NaN())), 16), pcmOf(16383, -32768, 32767, 0)},
		{"data size 0 streams on", wavFile(1, 1, 16000, 16, pcmOf(7, 8), 0), pcmOf(7, 8)},
		{"trailing chunk after data is ignored", append(wavFile(1, 1, 16000, 16, pcmOf(7, 8), 4), "LIST\x04\x00\x00\x00abcd"...), pcmOf(7, 8)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := New(FormatWAV, Options{})
			if err := a.Append(tt.file); err != nil {
				t.Fatal(err)
			}
			w := a.Cut()
			if w == nil {
				t.Fatal("no window")
			}
			if diff := cmp.Diff(tt.want, w.PCM); diff != "" {
				t.Errorf("PCM mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWAVStreams(t *testing.T) {
	t.Parallel()
	t.Run("header then raw data", func(t *testing.T) {
		a, _ := New(FormatWAV, Options{})
		steps := [][]byte{wavFile(1, 2, 16000, 16, pcmOf(2, 4), 0xFFFFFFFF), pcmOf(6)[:1], append(pcmOf(6)[1:], pcmOf(10, 20)...)}
		for _, s := range steps {
			if err := a.Append(s); err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff(pcmOf(3, 8), a.Cut().PCM); diff != "" {
			t.Errorf("PCM mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("every chunk a WAV file", func(t *testing.T) {
		a, _ := New(FormatWAV, Options{})
		for _, v := range []int16{1, 2, 3} {
			if err := a.Append(wavFile(1, 1, 16000, 16, pcmOf(v), 2)); err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff(pcmOf(1, 2, 3), a.Cut().PCM); diff != "" {
			t.Errorf("PCM mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("a new rate seals the window", func(t *testing.T) {
		a, _ := New(FormatWAV, Options{})
		if err := a.Append(wavFile(1, 1, 16000, 16, pcmOf(1, 2), 4)); err != nil {
			t.Fatal(err)
		}
		if err := a.Append(wavFile(1, 1, 8000, 16, pcmOf(3), 2)); err != nil {
			t.Fatal(err)
		}
		sealed, open := a.TakeSealed(), a.Cut()
		got := []any{sealed.SampleRate, sealed.PCM, open.SampleRate, open.PCM}
		want := []any{16000, pcmOf(1, 2), 8000, pcmOf(3)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("windows mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	webm, ogg, wav := fixture(t, "speech.webm"), fixture(t, "speech.ogg"), fixture(t, "speech_8k_u8.wav")
	flip := func(b []byte, at int) []byte {
		c := bytes.Clone(b)
		c[at] ^= 0x5A
		return c
	}
	tests := []struct {
		name   string
		format Format
		rate   int
		// before is accepted first; chunk must be refused with reason.
		before [][]byte
		chunk  []byte
		reason string
	}{
		{"WAV file on a PCM16 stream", FormatPCM16, 16000, nil, wav, ReasonUnsupported},
		{"WebM on a PCM16 stream", FormatPCM16, 16000, nil, webm[:100], ReasonUnsupported},
		{"raw data before any WAV header", FormatWAV, 0, nil, pcmOf(1, 2, 3), ReasonCorrupt},
		{"Ogg on a WAV stream", FormatWAV, 0, [][]byte{wav}, ogg, ReasonUnsupported},
		{"WAV ADPCM", FormatWAV, 0, nil, wavFile(2, 1, 16000, 4, []byte{1, 2}, 2), ReasonUnsupported},
		{"WAV at 96 kHz", FormatWAV, 0, nil, wavFile(1, 1, 96000, 16, pcmOf(1), 2), ReasonUnsupported},
		{"WAV with a truncated header", FormatWAV, 0, nil, wav[:30], ReasonCorrupt},
		{"Ogg Vorbis", FormatOggOpus, 0, nil, fixture(t, "vorbis.ogg"), ReasonUnsupported},
		{"WebM Vorbis", FormatWebMOpus, 0, nil, fixture(t, "vorbis.webm"), ReasonUnsupported},
		{"Ogg joined mid-stream", FormatOggOpus, 0, nil, ogg[len(ogg)-1000:], ReasonCorrupt},
		{"WebM joined mid-stream", FormatWebMOpus, 0, nil, webm[len(webm)-1000:], ReasonCorrupt},
		{"Ogg page with a bad checksum", FormatOggOpus, 0, [][]byte{ogg[:2000]}, flip(ogg, 2500)[2000:3000], ReasonCorrupt},
		{"WebM garbage inside a Cluster", FormatWebMOpus, 0, [][]byte{webm[:3000]}, bytes.Repeat([]byte{0x00}, 50), ReasonCorrupt},
		{"WebM as Ogg", FormatOggOpus, 0, nil, webm, ReasonCorrupt},
		{"Ogg as WebM", FormatWebMOpus, 0, nil, ogg, ReasonCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.format, Options{SampleRate: tt.rate})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range tt.before {
				if err := a.Append(b); err != nil {
					t.Fatalf("accepting the chunks before: %v", err)
				}
			}
			lenBefore, durBefore := a.Len(), a.Duration()
			err = a.Append(tt.chunk)
			if !isReason(err, tt.reason) {
				t.Fatalf("Append = %v, want reason %s", err, tt.reason)
			}
			if a.Len() != lenBefore || a.Duration() != durBefore {
				t.Errorf("a refused chunk changed the window: %d bytes %v -> %d bytes %v", lenBefore, durBefore, a.Len(), a.Duration())
			}
		})
	}
}

// TestBadChunkDoesNotPoisonStream sends every chunk of a file, with one damaged chunk in the
// middle: the damaged one is refused and every other is accepted, and the windows stay valid.
func TestBadChunkDoesNotPoisonStream(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"speech.webm", "speech_live.webm", "speech.ogg"} {
		b := fixture(t, file)
		a, _ := New(Detect(b), Options{})
		const cs = 500
		bad := 8 // the damaged chunk's index
		var refused []int
		var wins []*Window
		for i, n := 0, 0; i < len(b); i, n = i+cs, n+1 {
			chunk := b[i:min(i+cs, len(b))]
			if n == bad {
				chunk = bytes.Clone(chunk)
				for j := range chunk {
					chunk[j] ^= 0xA5
				}
			}
			if err := a.Append(chunk); err != nil {
				refused = append(refused, n)
			}
			if a.Duration() >= 2*time.Second {
				wins = append(wins, a.Cut())
			}
		}
		wins = append(wins, a.Cut())
		if diff := cmp.Diff([]int{bad}, refused); diff != "" {
			t.Errorf("%s: refused chunks mismatch (-want +got):\n%s", file, diff)
		}
		for i, w := range wins {
			if _, err := Inspect(w.File); err != nil {
				t.Errorf("%s: window %d: %v", file, i, err)
			}
		}
	}
}

func TestStreamRestartSealsWindow(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"speech.webm", "speech_live.webm", "speech.ogg"} {
		b := fixture(t, file)
		a, _ := New(Detect(b), Options{})
		if err := a.Append(b); err != nil {
			t.Fatal(err)
		}
		if a.TakeSealed() != nil {
			t.Fatalf("%s: sealed a window without a restart", file)
		}
		if err := a.Append(b); err != nil { // the recorder started again: a whole new stream
			t.Fatalf("%s: %v", file, err)
		}
		sealed, open := a.TakeSealed(), a.Cut()
		if sealed == nil || open == nil {
			t.Fatalf("%s: sealed %v, open %v", file, sealed != nil, open != nil)
		}
		for _, w := range []*Window{sealed, open} {
			info, err := Inspect(w.File)
			if err != nil || info.Duration != 5600*time.Millisecond {
				t.Errorf("%s: window %+v, %v; want 5.6s", file, info, err)
			}
		}
	}
}

func TestOpusPacketDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		packet []byte
		want   time.Duration
		err    bool
	}{
		{nil, 0, false},
		{[]byte{0 << 3}, 10 * time.Millisecond, false},                       // SILK NB 10 ms, one frame
		{[]byte{1<<3 | 1}, 40 * time.Millisecond, false},                     // SILK NB 20 ms, two frames
		{[]byte{3 << 3}, 60 * time.Millisecond, false},                       // SILK NB 60 ms
		{[]byte{13 << 3}, 20 * time.Millisecond, false},                      // Hybrid FB 20 ms
		{[]byte{16 << 3}, 2500 * time.Microsecond, false},                    // CELT NB 2.5 ms
		{[]byte{31<<3 | 3, 6}, 120 * time.Millisecond, false},                // CELT FB 20 ms x 6
		{[]byte{31<<3 | 3, 7}, 0, true},                                      // 140 ms: too long
		{[]byte{31<<3 | 3, 0}, 0, true},                                      // no frames
		{[]byte{31<<3 | 3}, 0, true},                                         // missing count byte
		{[]byte{16<<3 | 3, 0x80 | 0x40 | 48}, 120 * time.Millisecond, false}, // 2.5 ms x 48, VBR and padding flags
	}
	for _, tt := range tests {
		got, err := opusPacketDuration(tt.packet)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("opusPacketDuration(% x) = %v, %v; want %v, error %v", tt.packet, got, err, tt.want, tt.err)
		}
	}
}

func TestDetect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want Format
	}{
		{"speech.webm", FormatWebMOpus},
		{"speech.ogg", FormatOggOpus},
		{"speech_8k_u8.wav", FormatWAV},
	}
	for _, tt := range tests {
		if got := Detect(fixture(t, tt.file)); got != tt.want {
			t.Errorf("Detect(%s) = %v, want %v", tt.file, got, tt.want)
		}
	}
	if got := Detect(pcmOf(1, 2, 3, 4, 5, 6)); got != FormatUnknown {
		t.Errorf("Detect(PCM) = %v, want unknown", got)
	}
	if _, err := Inspect(fixture(t, "speech.ogg")[:3000]); err == nil {
		t.Error("Inspect accepted a truncated Ogg file")
	}
}

// TestWindowBuffersAreZeroedAndRecycled: a released window's buffer is zeroed to its capacity
// before it serves another window; a buffer that had to grow leaves no copy of the audio
// behind; windows recycled through the pool hold exactly their own audio.
func TestWindowBuffersAreZeroedAndRecycled(t *testing.T) {
	const rate = 16000
	second := make([]byte, 2*rate)
	for i := range second {
		second[i] = byte(i%251 + 1) // never zero
	}
	allZero := func(b []byte) bool { return !slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) }

	a, err := New(FormatPCM16, Options{SampleRate: rate, WindowHint: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	for range 2 {
		if err := a.Append(second); err != nil {
			t.Fatal(err)
		}
	}
	w := a.Cut()
	backing := w.File[:cap(w.File)]
	if !w.pooled {
		t.Fatal("a 2 s window at 16 kHz is not recycled")
	}
	w.Release()
	if !allZero(backing) {
		t.Error("a released window's buffer still holds audio")
	}

	// Past the window's capacity the buffer grows; the old one is zeroed.
	pa := a.(*pcmAssembler)
	if err := a.Append(second); err != nil {
		t.Fatal(err)
	}
	old := pa.buf[:cap(pa.buf)]
	big := bytes.Repeat(second, 3)
	if err := a.Append(big); err != nil {
		t.Fatal(err)
	}
	if !allZero(old) {
		t.Error("growing the window buffer left a copy of the audio in the old one")
	}
	w = a.Cut()
	if want := append(slices.Clone(second), big...); !bytes.Equal(w.PCM, want) {
		t.Errorf("the grown window holds %d bytes, want the %d appended", len(w.PCM), len(want))
	}
	w.Release()

	// Recycled buffers carry nothing from their previous windows.
	for i := range 20 {
		if err := a.Append(second[:2*(i+1)]); err != nil {
			t.Fatal(err)
		}
		w := a.Cut()
		if !bytes.Equal(w.PCM, second[:2*(i+1)]) || !bytes.Equal(w.File, EncodeWAV(second[:2*(i+1)], rate)) {
			t.Fatalf("window %d does not hold exactly its own audio", i)
		}
		if rest := w.File[len(w.File):cap(w.File)]; !allZero(rest) {
			t.Fatalf("window %d's buffer holds stale bytes past its audio", i)
		}
		w.Release()
	}

	// The free list keeps no more buffers than there are open streams.
	var windows []*Window
	for range 5 {
		b, err := New(FormatPCM16, Options{SampleRate: rate, WindowHint: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Append(second); err != nil {
			t.Fatal(err)
		}
		windows = append(windows, b.Cut())
		b.Release()
	}
	for _, w := range windows {
		w.Release()
	}
	windowBuffers.mu.Lock()
	defer windowBuffers.mu.Unlock()
	if windowBuffers.count > windowBuffers.streams {
		t.Errorf("the free list holds %d buffers for %d open streams", windowBuffers.count, windowBuffers.streams)
	}
}

func TestInspectWAV(t *testing.T) {
	pcm := make([]byte, 2*16000/2) // 0.5 s
	info, err := Inspect(EncodeWAV(pcm, 16000))
	if err != nil || info.Format != FormatWAV || info.Duration != 500*time.Millisecond {
		t.Errorf("Inspect(0.5 s WAV) = %+v, %v; want WAV of 500ms", info, err)
	}
	if _, err := Inspect(EncodeWAV(nil, 16000)); !isReason(err, ReasonCorrupt) {
		t.Errorf("Inspect(WAV without samples) = %v, want %s", err, ReasonCorrupt)
	}
	truncated := EncodeWAV(pcm, 16000)[:100]
	if _, err := Inspect(truncated); !isReason(err, ReasonCorrupt) {
		t.Errorf("Inspect(truncated WAV) = %v, want %s", err, ReasonCorrupt)
	}
}
