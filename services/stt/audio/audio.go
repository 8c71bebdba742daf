// Package audio turns a group's stream of audio chunks into windows: self-contained audio files
// held in memory (never on disk) that a Whisper-compatible server can transcribe one by one.
//
// # Formats
//
//   - PCM16: raw little-endian signed 16-bit mono samples at the rate the stream states; each
//     window is wrapped as a WAV file.
//   - WAV: RIFF/WAVE. A chunk that starts with a RIFF header is parsed (PCM 8/16/24/32-bit or IEEE
//     float 32/64-bit, 1 to 8 channels, 8 to 48 kHz); a chunk without one continues the data of
//     the last header, so both "every chunk is a WAV file" and "one header, then raw data" work.
//     Samples are mixed down to mono 16-bit and each window is a fresh WAV file.
//   - WebM/Opus and Ogg/Opus, as browsers' MediaRecorder produces them. The stream keeps the
//     container header from its first chunk (WebM: EBML header, Segment, Info and Tracks; Ogg: the
//     OpusHead and OpusTags pages) and every window is that header followed by the window's own
//     audio (WebM: Clusters re-opened with their timecode, SimpleBlocks copied unchanged; Ogg:
//     pages renumbered with fresh checksums, a packet continued from the previous window dropped).
//     Chunks may split elements or pages anywhere: the unfinished tail is carried to the next
//     chunk. A stream that starts again (MediaRecorder restarted, a new EBML header, a new Ogg
//     BOS page, a WAV header at another rate) seals the open window, which the caller collects
//     with TakeSealed, and carries on with the new header.
//
// # Refusals
//
// A chunk that is not what its stream's format says, or that is damaged (bad Ogg checksum, an
// invalid EBML size, a truncated header, an invalid Opus packet), is refused with a *ChunkError
// and changes nothing: Append is all-or-nothing. When a chunk fails only because of the unfinished
// tail a previous chunk left (a damaged chunk that happened to look like the start of a page or
// element), the tail is dropped and the chunk is parsed on its own, so one bad chunk cannot make
// every later one fail.
package audio

import (
	"fmt"
	"time"
)

// Format is the encoding of a stream.
type Format int

// Formats.
const (
	FormatUnknown Format = iota
	FormatPCM16
	FormatWAV
	FormatWebMOpus
	FormatOggOpus
)

func (f Format) String() string {
	switch f {
	case FormatPCM16:
		return "pcm16"
	case FormatWAV:
		return "wav"
	case FormatWebMOpus:
		return "webm"
	case FormatOggOpus:
		return "ogg"
	default:
		return "unknown"
	}
}

// Extension is the file extension of the format's windows (what the transcription server is told
// the file is): PCM16 windows are WAV files.
func (f Format) Extension() string {
	switch f {
	case FormatPCM16, FormatWAV:
		return "wav"
	case FormatWebMOpus:
		return "webm"
	case FormatOggOpus:
		return "ogg"
	default:
		return "bin"
	}
}

// ContentType is the MIME type of the format's windows.
func (f Format) ContentType() string {
	switch f {
	case FormatPCM16, FormatWAV:
		return "audio/wav"
	case FormatWebMOpus:
		return "audio/webm"
	case FormatOggOpus:
		return "audio/ogg"
	default:
		return "application/octet-stream"
	}
}

// Sample rates accepted for PCM16 and WAV.
const (
	MinSampleRate = 8000
	MaxSampleRate = 48000
)

// Refusal reasons (the stable reasons of ChunkRefused).
const (
	// ReasonUnsupported: the chunk is audio, but not in a form this service takes (Vorbis, AAC,
	// a WAV file sent on a PCM16 stream, laced WebM blocks, an out-of-range sample rate).
	ReasonUnsupported = "AUDIO_FORMAT_UNSUPPORTED"
	// ReasonCorrupt: the chunk is damaged or not audio of the stream's format at all.
	ReasonCorrupt = "AUDIO_CORRUPT"
)

// ChunkError is why a chunk was refused. Msg is safe to show a client: it describes the client's
// own bytes.
type ChunkError struct {
	Reason string
	Msg    string
}

func (e *ChunkError) Error() string { return e.Reason + ": " + e.Msg }

func corrupt(format string, args ...any) error {
	return &ChunkError{Reason: ReasonCorrupt, Msg: fmt.Sprintf(format, args...)}
}

func unsupported(format string, args ...any) error {
	return &ChunkError{Reason: ReasonUnsupported, Msg: fmt.Sprintf(format, args...)}
}

// Window is a closed window: one self-contained audio file.
type Window struct {
	Format Format
	// File is the whole file (WAV, WebM or Ogg).
	File []byte
	// Duration is the audio the window holds.
	Duration time.Duration
	// PCM is the window's samples, mono signed 16-bit little-endian, for PCM16 and WAV streams (a
	// view into File); nil for Opus, which this package does not decode.
	PCM []byte
	// SampleRate is PCM's rate.
	SampleRate int
	// Activity is the window's voice activity (see DetectSpeech), measured as the samples
	// arrived; nil for Opus.
	Activity *Activity
	// pooled is set when File's buffer is recycled on Release.
	pooled bool
}

// Filename is the name the window is uploaded under, e.g. "window.webm".
func (w *Window) Filename() string { return "window." + w.Format.Extension() }

// Release zeroes the window's audio and drops it, so no audio outlives the window in memory. The
// zeroed buffer of a PCM16 or WAV window serves a later window: nothing may use File or PCM after
// Release.
func (w *Window) Release() {
	if w == nil {
		return
	}
	recycle(w.File, w.pooled)
	w.File, w.PCM, w.pooled = nil, nil, false
}

// Assembler aggregates one stream's chunks into windows. It is not safe for concurrent use.
type Assembler interface {
	// Format is the stream's format.
	Format() Format
	// Append adds a chunk's audio to the open window. It is all-or-nothing: on error (always a
	// *ChunkError) nothing changed. It copies what it keeps: the caller may reuse chunk's buffer
	// once it returns.
	Append(chunk []byte) error
	// Duration is the audio held by the open window.
	Duration() time.Duration
	// Len is the size in bytes the open window's file would have if cut now; 0 when it holds
	// no audio.
	Len() int
	// Cut closes the open window and returns it, or nil when it holds no audio. The stream's state
	// (container header, unfinished tail) is kept for the next window.
	Cut() *Window
	// TakeSealed returns the window a stream restart closed during the last Append, if any.
	TakeSealed() *Window
	// Release zeroes and drops everything held, the open window included.
	Release()
}

// Options tune an assembler.
type Options struct {
	// SampleRate is a PCM16 stream's rate (MinSampleRate..MaxSampleRate); ignored otherwise.
	SampleRate int
	// WindowHint is the expected window length, used to size buffers up front.
	WindowHint time.Duration
}

// New returns an assembler for a stream of format f.
func New(f Format, opts Options) (Assembler, error) {
	switch f {
	case FormatPCM16:
		if opts.SampleRate < MinSampleRate || opts.SampleRate > MaxSampleRate {
			return nil, unsupported("PCM16 needs a sample rate between %d and %d Hz, got %d", MinSampleRate, MaxSampleRate, opts.SampleRate)
		}
		return newPCMAssembler(f, opts.SampleRate, opts.WindowHint), nil
	case FormatWAV:
		return newPCMAssembler(f, 0, opts.WindowHint), nil
	case FormatWebMOpus:
		return newWebMAssembler(), nil
	case FormatOggOpus:
		return newOggAssembler(), nil
	default:
		return nil, unsupported("unknown audio format")
	}
}

// Detect names the container a file starts with: WAV, WebM or Ogg; FormatUnknown otherwise (raw
// PCM has no signature).
func Detect(b []byte) Format {
	switch {
	case len(b) >= 12 && string(b[0:4]) == "RIFF" && string(b[8:12]) == "WAVE":
		return FormatWAV
	case len(b) >= 4 && b[0] == 0x1A && b[1] == 0x45 && b[2] == 0xDF && b[3] == 0xA3:
		return FormatWebMOpus
	case len(b) >= 4 && string(b[0:4]) == "OggS":
		return FormatOggOpus
	default:
		return FormatUnknown
	}
}

// Info describes a complete audio file.
type Info struct {
	Format   Format
	Duration time.Duration
}

// Inspect checks that file is one complete, well-formed file of a format this package writes
// (WAV, WebM/Opus or Ogg/Opus) and reports its duration. It is how tests and the fake
// transcription server verify that every window is a valid file on its own.
func Inspect(file []byte) (Info, error) {
	f := Detect(file)
	if f == FormatUnknown {
		return Info{}, corrupt("not a WAV, WebM or Ogg file")
	}
	if f == FormatWAV {
		h, err := parseWAVHeader(file)
		if err != nil {
			return Info{}, err
		}
		if h.open {
			return Info{}, corrupt("the WAV data is shorter than its header says (or of unknown size)")
		}
		// The header says it all: PCM samples cannot be malformed, and reading them (as an
		// assembler would) only costs a copy of the file.
		frames := h.dataLen / h.format.blockAlign
		if frames == 0 {
			return Info{}, corrupt("the file holds no audio")
		}
		return Info{Format: f, Duration: time.Duration(frames) * time.Second / time.Duration(h.format.rate)}, nil
	}
	a, err := New(f, Options{})
	if err != nil {
		return Info{}, err
	}
	defer a.Release()
	if err := a.Append(file); err != nil {
		return Info{}, err
	}
	if w := a.TakeSealed(); w != nil {
		return Info{}, corrupt("the file holds more than one stream")
	}
	if t, ok := a.(interface{ trailing() int }); ok && t.trailing() > 0 {
		return Info{}, corrupt("the file ends in the middle of a page or element (%d bytes left over)", t.trailing())
	}
	if a.Duration() <= 0 {
		return Info{}, corrupt("the file holds no audio")
	}
	return Info{Format: f, Duration: a.Duration()}, nil
}
