package audio

import (
	"bytes"
	"math/bits"
	"time"
)

// EBML and Matroska element IDs this package reads (marker bits kept, as written).
const (
	idEBML          = 0x1A45DFA3
	idDocType       = 0x4282
	idSegment       = 0x18538067
	idSeekHead      = 0x114D9B74
	idInfo          = 0x1549A966
	idDuration      = 0x4489
	idTracks        = 0x1654AE6B
	idTrackEntry    = 0xAE
	idTrackNumber   = 0xD7
	idTrackType     = 0x83
	idCodecID       = 0x86
	idCluster       = 0x1F43B675
	idCues          = 0x1C53BB6B
	idTags          = 0x1254C367
	idChapters      = 0x1043A770
	idAttachments   = 0x1941A469
	idVoid          = 0xEC
	idCRC32         = 0xBF
	idTimecode      = 0xE7
	idSimpleBlock   = 0xA3
	idBlockGroup    = 0xA0
	idBlock         = 0xA1
	idPosition      = 0xA7
	idPrevSize      = 0xAB
	idSilentTracks  = 0x5854
	trackTypeAudio  = 2
	codecOpus       = "A_OPUS"
	maxHeaderElem   = 1 << 20 // EBML header, Info, Tracks
	maxBlockElem    = 1 << 20 // a SimpleBlock or BlockGroup
	maxSkippedElem  = 64 << 20
	ebmlHeaderLimit = 4096
)

// unknownSize is the 8-byte EBML "unknown size" a live stream writes for Segment and Cluster.
var unknownSize = []byte{0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

// readID reads an element ID at the start of b. n is 0 when b is too short to tell.
func readID(b []byte) (id uint32, n int, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	l := bits.LeadingZeros8(b[0]) + 1
	if l > 4 {
		return 0, 0, corrupt("invalid EBML element ID")
	}
	if len(b) < l {
		return 0, 0, nil
	}
	for _, c := range b[:l] {
		id = id<<8 | uint32(c)
	}
	return id, l, nil
}

// readVint reads an EBML variable-size integer (marker removed). unknown reports the all-ones
// value, which for a size means "unknown". n is 0 when b is too short to tell.
func readVint(b []byte) (v uint64, unknown bool, n int, err error) {
	if len(b) == 0 {
		return 0, false, 0, nil
	}
	if b[0] == 0 {
		return 0, false, 0, corrupt("invalid EBML variable-size integer")
	}
	l := bits.LeadingZeros8(b[0]) + 1
	if len(b) < l {
		return 0, false, 0, nil
	}
	mask := byte(0xFF >> l)
	v = uint64(b[0] & mask)
	unknown = b[0]&mask == mask
	for _, c := range b[1:l] {
		v = v<<8 | uint64(c)
		unknown = unknown && c == 0xFF
	}
	return v, unknown, l, nil
}

// appendVint appends v as an EBML size of the shortest length.
func appendVint(dst []byte, v uint64) []byte {
	l := 1
	for l < 8 && v >= 1<<(7*l)-1 {
		l++
	}
	v |= 1 << (7 * l)
	for i := l - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst
}

func appendID(dst []byte, id uint32) []byte {
	switch {
	case id > 0xFFFFFF:
		return append(dst, byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	case id > 0xFFFF:
		return append(dst, byte(id>>16), byte(id>>8), byte(id))
	case id > 0xFF:
		return append(dst, byte(id>>8), byte(id))
	default:
		return append(dst, byte(id))
	}
}

func readUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// children calls fn for each child element of a master element's body, which must hold whole
// children of known size.
func children(body []byte, fn func(id uint32, child []byte) error) error {
	for len(body) > 0 {
		id, n, err := readID(body)
		if err != nil {
			return err
		}
		if n == 0 {
			return corrupt("truncated EBML element")
		}
		size, unknown, m, err := readVint(body[n:])
		if err != nil {
			return err
		}
		if m == 0 || unknown || size > uint64(len(body)-n-m) {
			return corrupt("EBML element 0x%X overruns its parent", id)
		}
		end := n + m + int(size)
		if err := fn(id, body[n+m:end]); err != nil {
			return err
		}
		body = body[end:]
	}
	return nil
}

// WebM stream phases.
const (
	webmEBML    = iota // before the EBML header
	webmSegment        // before the Segment element
	webmTop            // at the top level of the Segment
	webmCluster        // inside a Cluster
)

// webmAssembler builds WebM/Opus windows: the stream's header (EBML header, Segment of unknown
// size, Info, Tracks) then the window's blocks, in Clusters of unknown size re-opened with the
// timecode of the Cluster each block came from.
type webmAssembler struct {
	phase int
	carry []byte
	// skip is how many bytes of an element being skipped (Cues, Tags, Void...) are still to come.
	skip          uint64
	skipInCluster bool
	head          []byte
	// headDone is set at the first Cluster: the header is complete.
	headDone     bool
	tracks       []uint64
	opusTrack    uint64
	haveTracks   bool
	clusterKnown bool
	clusterLeft  uint64
	clusterTC    uint64
	// win is the open window's file: head, then clusters and blocks. Empty until the first block.
	win        []byte
	winCluster bool
	winTC      uint64
	blocks     int
	dur        time.Duration
	sealed     *Window
	// lost is set when the last chunk was refused: the next may start inside an element.
	lost bool
	// parsed counts the whole elements the last parse consumed.
	parsed int
}

func newWebMAssembler() *webmAssembler { return &webmAssembler{} }

func (a *webmAssembler) Format() Format          { return FormatWebMOpus }
func (a *webmAssembler) Duration() time.Duration { return a.dur }

// trailing counts bytes left over: a carried tail, or an element still being skipped. An
// unknown-size Segment or Cluster left open is how live WebM ends, so it does not count.
func (a *webmAssembler) trailing() int { return len(a.carry) + int(min(a.skip, 1<<30)) }

func (a *webmAssembler) Len() int {
	return len(a.win)
}

func (a *webmAssembler) Append(chunk []byte) error {
	snap := *a
	err := a.parse(chunk, a.carry)
	if err == nil {
		a.lost = false
		return nil
	}
	*a = snap
	if len(snap.carry) > 0 || snap.skip > 0 {
		// The chunk may be fine and the carried tail the damaged part: drop the tail.
		a.skip = 0
		if a.parse(chunk, nil) == nil {
			a.lost = false
			return nil
		}
		*a = snap
	}
	if snap.lost && snap.headDone {
		// The previous chunk was refused, so this one may start inside an element: resume at
		// the first block or Cluster from which the rest of the chunk parses.
		tries := 0
		for off := 1; off < len(chunk) && tries < maxResyncTries; off++ {
			c := chunk[off]
			if c != idSimpleBlock && c != idBlockGroup && !bytes.HasPrefix(chunk[off:], []byte{0x1F, 0x43, 0xB6, 0x75}) {
				continue
			}
			tries++
			a.skip, a.phase, a.clusterKnown = 0, webmCluster, false
			// Only a place from which whole elements follow counts: two, or one ending the
			// chunk. A stray byte that looks like an element's start rarely passes.
			if a.parse(chunk[off:], nil) == nil && (a.parsed >= 2 || a.parsed == 1 && len(a.carry) == 0) {
				a.lost = false
				return nil
			}
			*a = snap
		}
	}
	a.lost = true
	return err
}

func (a *webmAssembler) parse(chunk, carry []byte) error {
	data := chunk
	if len(carry) > 0 {
		data = make([]byte, 0, len(carry)+len(chunk))
		data = append(append(data, carry...), chunk...)
	}
	a.parsed = 0
	for {
		if a.skip > 0 {
			n := min(a.skip, uint64(len(data)))
			data = data[n:]
			a.skip -= n
			if a.skipInCluster && a.clusterKnown {
				a.clusterLeft -= n
			}
			if a.skip > 0 {
				break
			}
			continue
		}
		if a.phase == webmCluster && a.clusterKnown && a.clusterLeft == 0 {
			a.phase = webmTop
		}
		if len(data) == 0 {
			break
		}
		if a.phase == webmEBML {
			magic := []byte{0x1A, 0x45, 0xDF, 0xA3}
			if !bytes.HasPrefix(data, magic[:min(4, len(data))]) {
				return corrupt("a WebM stream must start with its EBML header")
			}
		}
		id, n, err := readID(data)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		size, unknown, m, err := readVint(data[n:])
		if err != nil {
			return err
		}
		if m == 0 {
			break
		}
		hlen := n + m
		consumed, more, err := a.element(id, size, unknown, hlen, data)
		if err != nil {
			return err
		}
		if more {
			break
		}
		if consumed > 0 {
			a.parsed++
		}
		data = data[consumed:]
	}
	a.carry = append([]byte(nil), data...)
	return nil
}

// element handles the element whose header (hlen bytes) starts data. It returns how many bytes
// it consumed, or more=true when the element is not whole in data yet.
func (a *webmAssembler) element(id uint32, size uint64, unknown bool, hlen int, data []byte) (consumed int, more bool, err error) {
	whole := func(limit uint64) (int, bool, error) {
		if unknown || size > limit {
			return 0, false, corrupt("EBML element 0x%X has an invalid size", id)
		}
		if uint64(len(data)-hlen) < size {
			return 0, true, nil
		}
		return hlen + int(size), false, nil
	}
	startSkip := func(inCluster bool) (int, bool, error) {
		if unknown || size > maxSkippedElem {
			return 0, false, corrupt("EBML element 0x%X has an invalid size", id)
		}
		a.skip, a.skipInCluster = size, inCluster
		return hlen, false, nil
	}
	switch a.phase {
	case webmEBML:
		if id != idEBML {
			return 0, false, corrupt("a WebM stream must start with its EBML header")
		}
		end, more, err := whole(ebmlHeaderLimit)
		if err != nil || more {
			return 0, more, err
		}
		doc := ""
		if err := children(data[hlen:end], func(cid uint32, b []byte) error {
			if cid == idDocType {
				doc = string(b)
			}
			return nil
		}); err != nil {
			return 0, false, err
		}
		if doc != "webm" && doc != "matroska" {
			return 0, false, unsupported("EBML document type %q is not WebM", sanitizeID(doc))
		}
		a.head = append([]byte(nil), data[:end]...)
		a.tracks, a.haveTracks, a.headDone, a.phase = nil, false, false, webmSegment
		return end, false, nil
	case webmSegment:
		switch id {
		case idSegment:
			a.head = appendID(a.head, idSegment)
			a.head = append(a.head, unknownSize...)
			a.phase = webmTop
			return hlen, false, nil
		case idVoid, idCRC32:
			return startSkip(false)
		}
		return 0, false, corrupt("expected the WebM Segment, found element 0x%X", id)
	case webmTop:
		switch id {
		case idCluster:
			if !a.haveTracks {
				return 0, false, corrupt("WebM Cluster before Tracks")
			}
			a.phase, a.clusterKnown, a.clusterLeft, a.clusterTC = webmCluster, !unknown, size, 0
			a.headDone = true
			return hlen, false, nil
		case idInfo, idTracks:
			end, more, err := whole(maxHeaderElem)
			if err != nil || more {
				return 0, more, err
			}
			if a.headDone {
				return end, false, nil // a repeated header element after the audio began
			}
			if id == idTracks {
				if err := a.parseTracks(data[hlen:end]); err != nil {
					return 0, false, err
				}
				a.head = append(a.head, data[:end]...)
				return end, false, nil
			}
			// Info is kept without its Duration: it would describe the whole recording, not
			// the window.
			var info []byte
			if err := children(data[hlen:end], func(cid uint32, b []byte) error {
				if cid != idDuration {
					info = appendID(info, cid)
					info = appendVint(info, uint64(len(b)))
					info = append(info, b...)
				}
				return nil
			}); err != nil {
				return 0, false, err
			}
			a.head = appendID(a.head, idInfo)
			a.head = appendVint(a.head, uint64(len(info)))
			a.head = append(a.head, info...)
			return end, false, nil
		case idSeekHead, idCues, idTags, idChapters, idAttachments, idVoid, idCRC32:
			return startSkip(false)
		case idEBML:
			return 0, false, a.restart()
		}
		return 0, false, corrupt("unexpected element 0x%X in the WebM Segment", id)
	}
	// webmCluster
	if !unknown && a.clusterKnown && uint64(hlen)+size > a.clusterLeft && id != idCluster {
		return 0, false, corrupt("element 0x%X overruns its WebM Cluster", id)
	}
	account := func(n int) (int, bool, error) {
		if a.clusterKnown {
			a.clusterLeft -= uint64(n)
		}
		return n, false, nil
	}
	switch id {
	case idTimecode:
		end, more, err := whole(8)
		if err != nil || more {
			return 0, more, err
		}
		a.clusterTC = readUint(data[hlen:end])
		return account(end)
	case idSimpleBlock, idBlockGroup:
		end, more, err := whole(maxBlockElem)
		if err != nil || more {
			return 0, more, err
		}
		body := data[hlen:end]
		if id == idSimpleBlock {
			err = a.block(body, false)
		} else {
			var blk []byte
			err = children(body, func(cid uint32, b []byte) error {
				if cid == idBlock && blk == nil {
					blk = b
				}
				return nil
			})
			if err == nil && blk == nil {
				err = corrupt("WebM BlockGroup without a Block")
			}
			if err == nil {
				err = a.block(blk, true)
			}
		}
		if err != nil {
			return 0, false, err
		}
		return account(end)
	case idVoid, idCRC32, idPosition, idPrevSize, idSilentTracks:
		n, _, err := startSkip(true)
		if err != nil {
			return 0, false, err
		}
		return account(n)
	case idCluster:
		a.clusterKnown, a.clusterLeft, a.clusterTC = !unknown, size, 0
		return hlen, false, nil
	case idCues, idTags, idSeekHead, idInfo, idTracks, idChapters, idAttachments:
		if a.clusterKnown {
			return 0, false, corrupt("element 0x%X inside a WebM Cluster", id)
		}
		a.phase = webmTop // an unknown-size Cluster ends at the next top-level element
		return 0, false, nil
	case idEBML:
		return 0, false, a.restart()
	}
	return 0, false, corrupt("unexpected element 0x%X in a WebM Cluster", id)
}

// restart handles a new EBML header mid-stream (the recorder restarted): the open window is
// sealed and the stream starts over with the new header. It consumes nothing, so the header is
// parsed next.
func (a *webmAssembler) restart() error {
	if a.sealed != nil && a.blocks > 0 {
		return corrupt("the stream restarted twice in one chunk")
	}
	if w := a.Cut(); w != nil {
		a.sealed = w
	}
	a.phase, a.head, a.winCluster = webmEBML, nil, false
	return nil
}

func (a *webmAssembler) parseTracks(body []byte) error {
	var (
		tracks   []uint64
		opus     uint64
		haveOpus bool
		other    string
	)
	err := children(body, func(id uint32, entry []byte) error {
		if id != idTrackEntry {
			return nil
		}
		var (
			num   uint64
			typ   uint64
			codec string
		)
		if err := children(entry, func(cid uint32, b []byte) error {
			switch cid {
			case idTrackNumber:
				num = readUint(b)
			case idTrackType:
				typ = readUint(b)
			case idCodecID:
				codec = string(b)
			}
			return nil
		}); err != nil {
			return err
		}
		if num == 0 {
			return corrupt("WebM track without a number")
		}
		tracks = append(tracks, num)
		if typ == trackTypeAudio || codec == codecOpus {
			if codec == codecOpus && !haveOpus {
				opus, haveOpus = num, true
			} else if codec != codecOpus && other == "" {
				other = codec
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !haveOpus {
		if other != "" {
			return unsupported("WebM audio codec %q is not supported; send Opus", sanitizeID(other))
		}
		return unsupported("the WebM stream has no Opus audio track")
	}
	a.tracks, a.opusTrack, a.haveTracks = tracks, opus, true
	return nil
}

// block adds a block's frame to the window when it belongs to the Opus track. blk is a
// SimpleBlock's or a Block's body: track number, relative timecode, flags, frame.
func (a *webmAssembler) block(blk []byte, fromGroup bool) error {
	track, unknown, n, err := readVint(blk)
	if err != nil {
		return err
	}
	if n == 0 || unknown || len(blk) < n+3 {
		return corrupt("truncated WebM block")
	}
	known := false
	for _, t := range a.tracks {
		known = known || t == track
	}
	if !known {
		return corrupt("WebM block for track %d, which Tracks does not declare", track)
	}
	if track != a.opusTrack {
		return nil // video or another track: not transcribed
	}
	flags := blk[n+2]
	if flags&0x06 != 0 {
		return unsupported("laced WebM blocks are not supported")
	}
	d, err := opusPacketDuration(blk[n+3:])
	if err != nil {
		return err
	}
	if len(a.win) == 0 {
		a.win = make([]byte, 0, len(a.head)+16<<10)
		a.win = append(a.win, a.head...)
		a.winCluster = false
	}
	if !a.winCluster || a.winTC != a.clusterTC {
		a.win = appendID(a.win, idCluster)
		a.win = append(a.win, unknownSize...)
		var tc [8]byte
		for i := range tc {
			tc[i] = byte(a.clusterTC >> (56 - 8*i))
		}
		i := 0
		for i < 7 && tc[i] == 0 {
			i++
		}
		a.win = appendID(a.win, idTimecode)
		a.win = appendVint(a.win, uint64(8-i))
		a.win = append(a.win, tc[i:]...)
		a.winCluster, a.winTC = true, a.clusterTC
	}
	a.win = appendID(a.win, idSimpleBlock)
	a.win = appendVint(a.win, uint64(len(blk)))
	start := len(a.win)
	a.win = append(a.win, blk...)
	if fromGroup {
		a.win[start+n+2] |= 0x80 // every Opus frame is a keyframe
	}
	a.blocks++
	a.dur += d
	return nil
}

func (a *webmAssembler) Cut() *Window {
	if a.blocks == 0 {
		return nil
	}
	w := &Window{Format: FormatWebMOpus, File: a.win, Duration: a.dur}
	a.win, a.winCluster, a.blocks, a.dur = nil, false, 0, 0
	return w
}

func (a *webmAssembler) TakeSealed() *Window {
	w := a.sealed
	a.sealed = nil
	return w
}

func (a *webmAssembler) Release() {
	clear(a.win)
	clear(a.carry)
	clear(a.head)
	a.sealed.Release()
	*a = webmAssembler{}
}
