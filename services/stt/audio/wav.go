package audio

import (
	"encoding/binary"
	"math"
	"sync"
	"time"
)

// wavHeaderLen is the size of the canonical 44-byte header this package writes.
const wavHeaderLen = 44

// PutWAVHeader writes a canonical 44-byte RIFF/WAVE header for mono signed 16-bit PCM at rate
// with dataLen bytes of samples into dst[:44].
func PutWAVHeader(dst []byte, rate, dataLen int) {
	_ = dst[wavHeaderLen-1]
	copy(dst[0:4], "RIFF")
	binary.LittleEndian.PutUint32(dst[4:8], uint32(36+dataLen))
	copy(dst[8:12], "WAVE")
	copy(dst[12:16], "fmt ")
	binary.LittleEndian.PutUint32(dst[16:20], 16)
	binary.LittleEndian.PutUint16(dst[20:22], 1) // PCM
	binary.LittleEndian.PutUint16(dst[22:24], 1) // mono
	binary.LittleEndian.PutUint32(dst[24:28], uint32(rate))
	binary.LittleEndian.PutUint32(dst[28:32], uint32(rate*2))
	binary.LittleEndian.PutUint16(dst[32:34], 2)
	binary.LittleEndian.PutUint16(dst[34:36], 16)
	copy(dst[36:40], "data")
	binary.LittleEndian.PutUint32(dst[40:44], uint32(dataLen))
}

// EncodeWAV returns pcm (mono signed 16-bit little-endian) as a WAV file.
func EncodeWAV(pcm []byte, rate int) []byte {
	out := make([]byte, wavHeaderLen+len(pcm))
	PutWAVHeader(out, rate, len(pcm))
	copy(out[wavHeaderLen:], pcm)
	return out
}

// wavFormat is the sample layout of a WAV stream's data.
type wavFormat struct {
	rate       int
	channels   int
	bits       int
	float      bool
	blockAlign int
}

const (
	wavePCM        = 0x0001
	waveFloat      = 0x0003
	waveExtensible = 0xFFFE
)

// wavHeader is a parsed RIFF/WAVE header: the format and where the samples start.
type wavHeader struct {
	format wavFormat
	// dataOff is the offset of the samples in the chunk; dataLen how many of the chunk's bytes
	// belong to the data chunk.
	dataOff, dataLen int
	// open is true when the data chunk goes on past this chunk (its declared size is larger than
	// what the chunk holds, or 0 or 0xFFFFFFFF as streaming writers put): the next chunks
	// continue it.
	open bool
}

// parseWAVHeader parses the RIFF/WAVE header at the start of b. The header (every chunk up to
// the start of "data") must be whole in b.
func parseWAVHeader(b []byte) (wavHeader, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return wavHeader{}, corrupt("not a RIFF/WAVE header")
	}
	var (
		h      wavHeader
		gotFmt bool
	)
	pos := 12
	for {
		if len(b)-pos < 8 {
			return wavHeader{}, corrupt("truncated WAV header: no data chunk")
		}
		id := string(b[pos : pos+4])
		size := int64(binary.LittleEndian.Uint32(b[pos+4 : pos+8]))
		body := pos + 8
		if id == "data" {
			if !gotFmt {
				return wavHeader{}, corrupt("WAV data chunk before the fmt chunk")
			}
			avail := int64(len(b) - body)
			h.dataOff = body
			switch {
			case size == 0 || size == 0xFFFFFFFF || size > avail:
				h.dataLen, h.open = int(avail), true
			default:
				h.dataLen = int(size)
			}
			return h, nil
		}
		if size > int64(len(b)-body) {
			return wavHeader{}, corrupt("truncated WAV header: %q chunk of %d bytes", sanitizeID(id), size)
		}
		if id == "fmt " {
			f, err := parseWAVFmt(b[body : body+int(size)])
			if err != nil {
				return wavHeader{}, err
			}
			h.format, gotFmt = f, true
		}
		pos = body + int(size) + int(size&1) // chunks are padded to even sizes
	}
}

func sanitizeID(id string) string {
	out := []byte(id)
	for i, c := range out {
		if c < 0x20 || c > 0x7e {
			out[i] = '?'
		}
	}
	return string(out)
}

func parseWAVFmt(b []byte) (wavFormat, error) {
	if len(b) < 16 {
		return wavFormat{}, corrupt("WAV fmt chunk too short")
	}
	tag := binary.LittleEndian.Uint16(b[0:2])
	f := wavFormat{
		channels:   int(binary.LittleEndian.Uint16(b[2:4])),
		rate:       int(binary.LittleEndian.Uint32(b[4:8])),
		blockAlign: int(binary.LittleEndian.Uint16(b[12:14])),
		bits:       int(binary.LittleEndian.Uint16(b[14:16])),
	}
	if tag == waveExtensible {
		if len(b) < 40 {
			return wavFormat{}, corrupt("WAV extensible fmt chunk too short")
		}
		tag = binary.LittleEndian.Uint16(b[24:26]) // the sub-format GUID starts with the tag
	}
	switch tag {
	case wavePCM:
		if f.bits != 8 && f.bits != 16 && f.bits != 24 && f.bits != 32 {
			return wavFormat{}, unsupported("WAV PCM with %d bits per sample is not supported (8, 16, 24 or 32)", f.bits)
		}
	case waveFloat:
		if f.bits != 32 && f.bits != 64 {
			return wavFormat{}, unsupported("WAV float with %d bits per sample is not supported (32 or 64)", f.bits)
		}
		f.float = true
	default:
		return wavFormat{}, unsupported("WAV encoding 0x%04x is not supported (PCM or IEEE float only)", tag)
	}
	if f.channels < 1 || f.channels > 8 {
		return wavFormat{}, unsupported("WAV with %d channels is not supported (1 to 8)", f.channels)
	}
	if f.rate < MinSampleRate || f.rate > MaxSampleRate {
		return wavFormat{}, unsupported("WAV sample rate %d Hz is not supported (%d to %d)", f.rate, MinSampleRate, MaxSampleRate)
	}
	if f.blockAlign != f.channels*f.bits/8 {
		return wavFormat{}, corrupt("WAV block align %d does not match %d channels of %d bits", f.blockAlign, f.channels, f.bits)
	}
	return f, nil
}

// windowBuffers recycles the buffers of PCM windows: a window's buffer is zeroed when the window
// is released and serves a later window, so steady streaming neither allocates (nor zeroes, nor
// page-faults in) a fresh window-sized buffer per window. It is a free list rather than a
// sync.Pool because windows close in waves (every STT_WINDOW_SECONDS) and a pool is emptied by
// the garbage collections in between. It keeps at most one free buffer per open PCM stream, so
// what it holds is bounded by the streams, and shrinks as they end. Only zeroed buffers are kept.
var windowBuffers = &bufferList{free: map[int][][]byte{}}

type bufferList struct {
	mu sync.Mutex
	// free holds zeroed buffers by capacity; count is how many, streams the open PCM streams.
	free    map[int][][]byte
	count   int
	streams int
}

// minPooledBuffer is the smallest buffer worth recycling (a second of 16 kHz audio).
const minPooledBuffer = 32 << 10

// getBuffer returns an empty window buffer (the header reserved) of capacity n, and whether it
// comes from (and goes back to) windowBuffers.
func getBuffer(n int) (buf []byte, pooled bool) {
	if n < minPooledBuffer {
		return make([]byte, wavHeaderLen, n), false
	}
	l := windowBuffers
	l.mu.Lock()
	if bufs := l.free[n]; len(bufs) > 0 {
		buf = bufs[len(bufs)-1]
		bufs[len(bufs)-1] = nil
		l.free[n] = bufs[:len(bufs)-1]
		l.count--
	}
	l.mu.Unlock()
	if buf == nil {
		buf = make([]byte, 0, n)
	}
	return buf[:wavHeaderLen], true
}

// putBuffer zeroes buf (all of it, past its length too) and keeps it unless the list already
// holds one per open stream.
func putBuffer(buf []byte) {
	buf = buf[:cap(buf)]
	clear(buf)
	l := windowBuffers
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count >= l.streams {
		return // left to the garbage collector
	}
	l.free[cap(buf)] = append(l.free[cap(buf)], buf[:0])
	l.count++
}

// recycle zeroes buf and, when it came from getBuffer (pooled), hands it back to windowBuffers.
func recycle(buf []byte, pooled bool) {
	if pooled && buf != nil {
		putBuffer(buf)
	} else {
		clear(buf)
	}
}

// streamOpened and streamClosed count the open PCM streams; a closing stream's share of free
// buffers is dropped.
func (l *bufferList) streamOpened() {
	l.mu.Lock()
	l.streams++
	l.mu.Unlock()
}

func (l *bufferList) streamClosed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.streams--
	for l.count > l.streams {
		for c, bufs := range l.free {
			if len(bufs) > 0 {
				bufs[len(bufs)-1] = nil
				l.free[c] = bufs[:len(bufs)-1]
				l.count--
				break
			}
		}
	}
}

// pcmAssembler builds WAV windows of mono signed 16-bit samples, from raw PCM16 or from WAV.
type pcmAssembler struct {
	format Format
	// rate is the stream's sample rate; 0 until a WAV stream's first header.
	rate int
	// src is the layout of a WAV stream's data since its last header.
	src    wavFormat
	hasSrc bool
	// carry holds the bytes of a partial frame left by the last chunk.
	carry []byte
	// buf is the open window: wavHeaderLen bytes reserved for the header, then samples. pooled
	// is set when it is recycled through windowBuffers.
	buf    []byte
	pooled bool
	hint   time.Duration
	sealed *Window
	// released is set once Release ran (the stream no longer counts for windowBuffers).
	released bool
	// meter measures the open window's voice activity as samples arrive.
	meter *speechMeter
}

func newPCMAssembler(f Format, rate int, hint time.Duration) *pcmAssembler {
	a := &pcmAssembler{format: f, rate: rate, hint: hint}
	windowBuffers.streamOpened()
	if f == FormatPCM16 {
		a.src = wavFormat{rate: rate, channels: 1, bits: 16, blockAlign: 2}
		a.hasSrc = true
		a.meter = newSpeechMeter(rate)
	}
	a.newBuf()
	return a
}

// newBuf gives the assembler an empty window buffer sized for a whole window at the stream's
// rate, and a little more (a chunk may take the window past its length).
func (a *pcmAssembler) newBuf() {
	n := 0
	if a.rate > 0 && a.hint > 0 {
		n = int(a.hint.Seconds()*float64(a.rate)*2) + 8192
	}
	a.buf, a.pooled = getBuffer(wavHeaderLen + n)
}

// dropBuf zeroes the window buffer and recycles it when it came from the pool.
func (a *pcmAssembler) dropBuf() {
	recycle(a.buf, a.pooled)
	a.buf, a.pooled = nil, false
}

// reserve makes room for n more bytes in the window buffer. A buffer that must grow is copied
// and the old one zeroed: no copy of the audio is left behind in memory.
func (a *pcmAssembler) reserve(n int) {
	if len(a.buf)+n <= cap(a.buf) {
		return
	}
	grown := make([]byte, len(a.buf), max(2*cap(a.buf), len(a.buf)+n))
	copy(grown, a.buf)
	a.dropBuf()
	a.buf = grown
}

func (a *pcmAssembler) Format() Format { return a.format }

func (a *pcmAssembler) samples() int { return (len(a.buf) - wavHeaderLen) / 2 }

func (a *pcmAssembler) Duration() time.Duration {
	if a.rate == 0 {
		return 0
	}
	return time.Duration(a.samples()) * time.Second / time.Duration(a.rate)
}

func (a *pcmAssembler) Len() int {
	if a.samples() == 0 {
		return 0
	}
	return len(a.buf)
}

func (a *pcmAssembler) trailing() int { return 0 }

func (a *pcmAssembler) Append(chunk []byte) error {
	if a.format == FormatPCM16 {
		if f := Detect(chunk); f != FormatUnknown {
			return unsupported("the chunk is a %s file but the stream was started as raw PCM16", f)
		}
		a.appendFrames(chunk)
		return nil
	}
	if Detect(chunk) == FormatWAV {
		h, err := parseWAVHeader(chunk)
		if err != nil {
			return err
		}
		if a.rate != 0 && h.format.rate != a.rate && a.samples() > 0 {
			// The stream restarted at another rate: the open window is sealed as it is.
			a.sealed = a.cutWindow()
		}
		if a.rate != h.format.rate {
			a.rate = h.format.rate
			a.dropBuf() // empty: the window was sealed above, or held nothing
			a.newBuf()
			a.meter = newSpeechMeter(a.rate)
		}
		a.src, a.hasSrc = h.format, true
		a.carry = a.carry[:0]
		data := chunk[h.dataOff : h.dataOff+h.dataLen]
		if h.open {
			a.appendFrames(data)
		} else {
			n := len(data) - len(data)%h.format.blockAlign
			a.convert(data[:n])
		}
		return nil
	}
	if Detect(chunk) != FormatUnknown {
		return unsupported("the chunk is a %s file but the stream was started as WAV", Detect(chunk))
	}
	if !a.hasSrc {
		return corrupt("a WAV stream must start with a RIFF/WAVE header")
	}
	a.appendFrames(chunk)
	return nil
}

// appendFrames converts whole frames of carry+data and keeps the rest as the new carry.
func (a *pcmAssembler) appendFrames(data []byte) {
	ba := a.src.blockAlign
	if len(a.carry) > 0 {
		need := ba - len(a.carry)
		if len(data) < need {
			a.carry = append(a.carry, data...)
			return
		}
		a.carry = append(a.carry, data[:need]...)
		a.convert(a.carry)
		a.carry = a.carry[:0]
		data = data[need:]
	}
	n := len(data) - len(data)%ba
	a.convert(data[:n])
	a.carry = append(a.carry, data[n:]...)
}

// convert appends whole frames of src layout as mono signed 16-bit samples.
func (a *pcmAssembler) convert(data []byte) {
	start := len(a.buf)
	defer func() { a.meter.write(a.buf[start:]) }()
	f := a.src
	if f.channels == 1 && f.bits == 16 && !f.float {
		a.reserve(len(data))
		a.buf = append(a.buf, data...)
		return
	}
	bps := f.bits / 8
	frames := len(data) / f.blockAlign
	a.reserve(frames * 2)
	a.buf = a.buf[:start+frames*2]
	out := a.buf[start:]
	for i := range frames {
		frame := data[i*f.blockAlign : (i+1)*f.blockAlign]
		var sum int64
		for c := range f.channels {
			sum += int64(sampleAt(frame[c*bps:(c+1)*bps], f))
		}
		binary.LittleEndian.PutUint16(out[i*2:], uint16(int16(sum/int64(f.channels))))
	}
}

// sampleAt decodes one sample as a signed 16-bit value.
func sampleAt(b []byte, f wavFormat) int16 {
	if f.float {
		var v float64
		if f.bits == 32 {
			v = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		} else {
			v = math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
		switch {
		case v != v: // NaN
			return 0
		case v >= 1:
			return math.MaxInt16
		case v <= -1:
			return math.MinInt16
		}
		return int16(v * math.MaxInt16)
	}
	switch f.bits {
	case 8:
		return int16(int(b[0])-128) << 8
	case 16:
		return int16(binary.LittleEndian.Uint16(b))
	case 24:
		return int16(uint16(b[1]) | uint16(b[2])<<8)
	default: // 32
		return int16(uint16(b[2]) | uint16(b[3])<<8)
	}
}

func (a *pcmAssembler) cutWindow() *Window {
	if a.samples() == 0 {
		return nil
	}
	file := a.buf
	PutWAVHeader(file, a.rate, len(file)-wavHeaderLen)
	act := a.meter.activity()
	w := &Window{
		Format:     a.format,
		File:       file,
		Duration:   a.Duration(),
		PCM:        file[wavHeaderLen:],
		SampleRate: a.rate,
		Activity:   &act,
		pooled:     a.pooled,
	}
	a.newBuf()
	a.meter.reset()
	return w
}

func (a *pcmAssembler) Cut() *Window { return a.cutWindow() }

func (a *pcmAssembler) TakeSealed() *Window {
	w := a.sealed
	a.sealed = nil
	return w
}

func (a *pcmAssembler) Release() {
	a.dropBuf()
	clear(a.carry)
	a.sealed.Release()
	a.buf, a.carry, a.sealed = make([]byte, wavHeaderLen), nil, nil
	if !a.released {
		a.released = true
		windowBuffers.streamClosed()
	}
}
