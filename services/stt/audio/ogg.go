package audio

import (
	"bytes"
	"encoding/binary"
	"time"
)

// Ogg page layout (RFC 3533): a 27-byte header, the lacing table, the body.
const (
	oggHeaderLen = 27
	oggContinued = 0x01
	oggBOS       = 0x02
	oggEOS       = 0x04
)

// oggCRCTable is the Ogg checksum: CRC-32 with polynomial 0x04c11db7, not reflected, initial
// value 0, no final xor.
var oggCRCTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

func oggCRC(page []byte) uint32 {
	var crc uint32
	for i, b := range page {
		if i >= 22 && i < 26 { // the checksum field counts as zero
			b = 0
		}
		crc = crc<<8 ^ oggCRCTable[byte(crc>>24)^b]
	}
	return crc
}

// oggPage is a parsed page; its slices point into the chunk.
type oggPage struct {
	flags  byte
	serial uint32
	lacing []byte
	body   []byte
}

// firstPacket returns the bytes of the page's first packet that lie in this page.
func (p oggPage) firstPacket() []byte {
	n := 0
	for _, l := range p.lacing {
		n += int(l)
		if l < 255 {
			break
		}
	}
	return p.body[:n]
}

// Ogg stream states.
const (
	oggWantHead = iota // before the OpusHead page
	oggWantTags        // inside the OpusTags packet
	oggAudio           // audio pages
)

// oggAssembler builds Ogg/Opus windows: the stream's header pages followed by the window's audio
// pages, renumbered from the header on, each with a fresh checksum.
type oggAssembler struct {
	carry       []byte
	state       int
	serial      uint32
	tagsStarted bool
	eos         bool
	// head is the OpusHead and OpusTags pages, renumbered from 0.
	head      []byte
	headPages uint32
	// partial is true when the last audio page kept ended inside a packet.
	partial bool
	// win is the open window's file: head, then audio pages. Empty until the first audio page.
	win      []byte
	winPages uint32
	dur      time.Duration
	sealed   *Window
	// lost is set when the last chunk was refused: the next may start inside a page.
	lost bool
}

// maxResyncTries bounds the places in a chunk where a stream is tried again after a loss.
const maxResyncTries = 64

func newOggAssembler() *oggAssembler { return &oggAssembler{} }

func (a *oggAssembler) Format() Format          { return FormatOggOpus }
func (a *oggAssembler) Duration() time.Duration { return a.dur }
func (a *oggAssembler) trailing() int           { return len(a.carry) }

func (a *oggAssembler) Len() int {
	return len(a.win)
}

func (a *oggAssembler) Append(chunk []byte) error {
	snap := *a
	err := a.parse(chunk, a.carry)
	if err == nil {
		a.lost = false
		return nil
	}
	*a = snap
	if len(snap.carry) > 0 {
		// The chunk may be fine and the carried tail the damaged part: drop the tail.
		if a.parse(chunk, nil) == nil {
			a.lost = false
			return nil
		}
		*a = snap
	}
	if snap.lost && snap.state == oggAudio {
		// The previous chunk was refused, so this one may start inside a page: resume at the
		// first page in it whose checksum holds.
		for off, tries := 1, 0; off < len(chunk) && tries < maxResyncTries; off++ {
			i := bytes.Index(chunk[off:], []byte("OggS"))
			if i < 0 {
				break
			}
			off += i
			tries++
			if a.parse(chunk[off:], nil) == nil {
				a.lost = false
				return nil
			}
			*a = snap
		}
	}
	a.lost = true
	return err
}

func (a *oggAssembler) parse(chunk, carry []byte) error {
	data := chunk
	if len(carry) > 0 {
		data = make([]byte, 0, len(carry)+len(chunk))
		data = append(append(data, carry...), chunk...)
	}
	for len(data) > 0 {
		if len(data) < oggHeaderLen {
			if string(data[:min(4, len(data))]) != "OggS"[:min(4, len(data))] {
				return corrupt("not an Ogg page (no OggS capture pattern)")
			}
			break
		}
		if string(data[:4]) != "OggS" {
			return corrupt("not an Ogg page (no OggS capture pattern)")
		}
		if data[4] != 0 {
			return corrupt("Ogg page version %d", data[4])
		}
		nseg := int(data[26])
		if len(data) < oggHeaderLen+nseg {
			break
		}
		lacing := data[oggHeaderLen : oggHeaderLen+nseg]
		bodyLen := 0
		for _, l := range lacing {
			bodyLen += int(l)
		}
		size := oggHeaderLen + nseg + bodyLen
		if len(data) < size {
			break
		}
		page := data[:size]
		if binary.LittleEndian.Uint32(page[22:26]) != oggCRC(page) {
			return corrupt("Ogg page checksum mismatch")
		}
		p := oggPage{
			flags:  page[5],
			serial: binary.LittleEndian.Uint32(page[14:18]),
			lacing: lacing,
			body:   page[oggHeaderLen+nseg:],
		}
		if err := a.page(p, binary.LittleEndian.Uint64(page[6:14])); err != nil {
			return err
		}
		data = data[size:]
	}
	a.carry = append([]byte(nil), data...)
	return nil
}

// page handles one valid page.
func (a *oggAssembler) page(p oggPage, granule uint64) error {
	switch a.state {
	case oggWantHead:
		first := p.firstPacket()
		if name := codecName(first); name != "" {
			return unsupported("Ogg %s is not supported; send Opus", name)
		}
		if p.flags&oggBOS == 0 {
			return corrupt("an Ogg stream must start with its first page (OpusHead)")
		}
		if _, err := parseOpusHead(first); err != nil {
			return err
		}
		a.serial, a.eos, a.tagsStarted = p.serial, false, false
		a.head = a.writePage(nil, p, 0, granule)
		a.headPages = 1
		a.state = oggWantTags
		return nil
	case oggWantTags:
		if p.serial != a.serial {
			return nil // another logical stream multiplexed in: not ours
		}
		if !a.tagsStarted {
			if p.flags&oggContinued != 0 || len(p.body) < 8 || string(p.body[:8]) != "OpusTags" {
				return corrupt("OpusTags must follow OpusHead")
			}
			a.tagsStarted = true
		}
		a.head = a.writePage(a.head, p, a.headPages, granule)
		a.headPages++
		if len(p.lacing) > 0 && p.lacing[len(p.lacing)-1] < 255 {
			a.state = oggAudio
		}
		return nil
	}
	if p.flags&oggBOS != 0 {
		if codecName(p.firstPacket()) != "" || len(p.body) < 8 || string(p.body[:8]) != "OpusHead" {
			return nil // a multiplexed stream of another codec
		}
		// A new Opus stream (chained, or the recorder restarted): seal the open window and start
		// over with the new header.
		if a.sealed != nil && a.winPages > 0 {
			return corrupt("the stream restarted twice in one chunk")
		}
		if w := a.Cut(); w != nil {
			a.sealed = w
		}
		a.state, a.head, a.headPages, a.partial = oggWantHead, nil, 0, false
		return a.page(p, granule)
	}
	if p.serial != a.serial || a.eos {
		return nil
	}
	if p.flags&oggEOS != 0 {
		a.eos = true
	}
	return a.audioPage(p, granule)
}

// audioPage adds an audio page of the stream to the window.
func (a *oggAssembler) audioPage(p oggPage, granule uint64) error {
	n := len(p.lacing)
	// lead is how many lacing values at the start belong to a packet begun on an earlier page.
	lead := 0
	if p.flags&oggContinued != 0 {
		for lead < n {
			lead++
			if p.lacing[lead-1] < 255 {
				break
			}
		}
	}
	// A window cannot start inside a packet: a continued packet whose start is in the previous
	// window (or was lost) is dropped.
	drop := lead > 0 && (a.winPages == 0 || !a.partial)
	if drop && lead == n {
		a.partial = n > 0 && p.lacing[n-1] == 255
		return nil
	}
	off := 0
	for _, l := range p.lacing[:lead] {
		off += int(l)
	}
	// Durations of the packets that start on this page.
	var d time.Duration
	pos := off
	for i := lead; i < n; {
		start := pos
		segLen := 0
		for i < n {
			l := int(p.lacing[i])
			segLen += l
			i++
			if l < 255 {
				break
			}
		}
		pos = start + segLen
		pd, err := opusPacketDuration(p.body[start:min(start+2, pos)])
		if err != nil {
			return err
		}
		d += pd
	}
	if len(a.win) == 0 {
		a.win = make([]byte, 0, len(a.head)+16<<10)
		a.win = append(a.win, a.head...)
	}
	if drop {
		p.flags &^= oggContinued
		p.lacing = p.lacing[lead:]
		p.body = p.body[off:]
	}
	a.win = a.writePage(a.win, p, a.headPages+a.winPages, granule)
	a.winPages++
	a.partial = n > 0 && p.lacing[len(p.lacing)-1] == 255
	a.dur += d
	return nil
}

// writePage appends p to dst with sequence number seq and a fresh checksum.
func (a *oggAssembler) writePage(dst []byte, p oggPage, seq uint32, granule uint64) []byte {
	start := len(dst)
	var h [oggHeaderLen]byte
	copy(h[0:4], "OggS")
	h[5] = p.flags
	binary.LittleEndian.PutUint64(h[6:14], granule)
	binary.LittleEndian.PutUint32(h[14:18], p.serial)
	binary.LittleEndian.PutUint32(h[18:22], seq)
	h[26] = byte(len(p.lacing))
	dst = append(dst, h[:]...)
	dst = append(dst, p.lacing...)
	dst = append(dst, p.body...)
	binary.LittleEndian.PutUint32(dst[start+22:start+26], oggCRC(dst[start:]))
	return dst
}

func (a *oggAssembler) Cut() *Window {
	if a.winPages == 0 {
		return nil
	}
	w := &Window{Format: FormatOggOpus, File: a.win, Duration: a.dur}
	a.win, a.winPages, a.dur = nil, 0, 0
	return w
}

func (a *oggAssembler) TakeSealed() *Window {
	w := a.sealed
	a.sealed = nil
	return w
}

func (a *oggAssembler) Release() {
	clear(a.win)
	clear(a.carry)
	clear(a.head)
	a.sealed.Release()
	*a = oggAssembler{}
}
