package audio

import (
	"encoding/binary"
	"time"
)

// opusFrameSizes is the frame duration of each Opus TOC configuration, in units of 2.5 ms
// (RFC 6716 section 3.1): SILK 10/20/40/60 ms, Hybrid 10/20 ms, CELT 2.5/5/10/20 ms.
var opusFrameSizes = [32]int{
	4, 8, 16, 24, 4, 8, 16, 24, 4, 8, 16, 24, // SILK NB, MB, WB
	4, 8, 4, 8, // Hybrid SWB, FB
	1, 2, 4, 8, 1, 2, 4, 8, 1, 2, 4, 8, 1, 2, 4, 8, // CELT NB, WB, SWB, FB
}

// opusPacketDuration returns the audio an Opus packet holds, from its TOC byte (and frame count
// byte for code 3). An empty packet is a lost one and holds nothing.
func opusPacketDuration(p []byte) (time.Duration, error) {
	if len(p) == 0 {
		return 0, nil
	}
	toc := p[0]
	unit := opusFrameSizes[toc>>3]
	var frames int
	switch toc & 3 {
	case 0:
		frames = 1
	case 1, 2:
		frames = 2
	case 3:
		if len(p) < 2 {
			return 0, corrupt("Opus packet with frame count code 3 has no frame count byte")
		}
		frames = int(p[1] & 0x3F)
		if frames == 0 {
			return 0, corrupt("Opus packet with zero frames")
		}
	}
	d := time.Duration(unit*frames) * 2500 * time.Microsecond
	if d > 120*time.Millisecond {
		return 0, corrupt("Opus packet longer than 120 ms")
	}
	return d, nil
}

// opusHead is the part of an OpusHead packet (RFC 7845 section 5.1) this package checks.
type opusHead struct {
	channels int
	preSkip  int
	rate     int
}

func parseOpusHead(p []byte) (opusHead, error) {
	if len(p) < 19 || string(p[:8]) != "OpusHead" {
		return opusHead{}, corrupt("missing OpusHead")
	}
	if p[8]>>4 != 0 { // major version 0; minor versions are compatible
		return opusHead{}, unsupported("Opus header version %d is not supported", p[8])
	}
	h := opusHead{
		channels: int(p[9]),
		preSkip:  int(binary.LittleEndian.Uint16(p[10:12])),
		rate:     int(binary.LittleEndian.Uint32(p[12:16])),
	}
	if h.channels == 0 {
		return opusHead{}, corrupt("OpusHead with zero channels")
	}
	return h, nil
}

// codecName names the codec of a stream's first packet, for a refusal message.
func codecName(p []byte) string {
	switch {
	case len(p) >= 7 && p[0] == 1 && string(p[1:7]) == "vorbis":
		return "Vorbis"
	case len(p) >= 8 && string(p[:8]) == "Speex   ":
		return "Speex"
	case len(p) >= 5 && string(p[1:5]) == "FLAC", len(p) >= 4 && string(p[:4]) == "fLaC":
		return "FLAC"
	case len(p) >= 7 && string(p[1:7]) == "theora":
		return "Theora"
	default:
		return ""
	}
}
