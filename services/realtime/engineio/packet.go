package engineio

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
)

// PacketType is the type of an Engine.IO packet.
type PacketType byte

// The Engine.IO packet types. On the wire a packet type is its decimal digit.
const (
	PacketOpen    PacketType = 0 // handshake data, server to client
	PacketClose   PacketType = 1 // the transport can be closed
	PacketPing    PacketType = 2 // heartbeat request (server to client), or "probe" during an upgrade
	PacketPong    PacketType = 3 // heartbeat answer (client to server), or "probe" during an upgrade
	PacketMessage PacketType = 4 // application data
	PacketUpgrade PacketType = 5 // completes an upgrade, client to server
	PacketNoop    PacketType = 6 // flushes a pending poll during an upgrade
)

var packetTypeNames = [...]string{"open", "close", "ping", "pong", "message", "upgrade", "noop"}

func (t PacketType) String() string {
	if int(t) < len(packetTypeNames) {
		return packetTypeNames[t]
	}
	return fmt.Sprintf("PacketType(%d)", byte(t))
}

// recordSeparator separates the packets of an HTTP long-polling payload.
const recordSeparator = 0x1e

// ErrInvalidPacket reports input that is not a valid Engine.IO packet or payload.
var ErrInvalidPacket = errors.New("engineio: invalid packet")

// Packet is one Engine.IO packet. Binary is true only for a message carrying binary data.
type Packet struct {
	Type   PacketType
	Data   []byte
	Binary bool
}

// DecodePacket decodes one packet in its text form: the type digit followed by the data, or "b" followed by
// base64 for a binary message. The returned Data aliases text, except for binary messages.
func DecodePacket(text []byte) (Packet, error) {
	if len(text) == 0 {
		return Packet{}, fmt.Errorf("%w: empty packet", ErrInvalidPacket)
	}
	c := text[0]
	if c == 'b' {
		data := make([]byte, base64.StdEncoding.DecodedLen(len(text)-1))
		n, err := base64.StdEncoding.Decode(data, text[1:])
		if err != nil {
			return Packet{}, fmt.Errorf("%w: bad base64: %v", ErrInvalidPacket, err)
		}
		return Packet{Type: PacketMessage, Data: data[:n], Binary: true}, nil
	}
	if c < '0' || c > '6' {
		return Packet{}, fmt.Errorf("%w: unknown packet type %q", ErrInvalidPacket, c)
	}
	return Packet{Type: PacketType(c - '0'), Data: text[1:]}, nil
}

// AppendPacket appends the text form of p to dst: a binary message is written as "b" and base64.
func AppendPacket(dst []byte, p Packet) []byte {
	if p.Binary {
		dst = append(dst, 'b')
		return base64.StdEncoding.AppendEncode(dst, p.Data)
	}
	dst = append(dst, '0'+byte(p.Type))
	return append(dst, p.Data...)
}

// encodedLen is the length of p's text form.
func encodedLen(p Packet) int {
	if p.Binary {
		return 1 + base64.StdEncoding.EncodedLen(len(p.Data))
	}
	return 1 + len(p.Data)
}

// DecodePayload decodes an HTTP long-polling payload: packets in text form separated by 0x1e.
func DecodePayload(payload []byte) ([]Packet, error) {
	if len(payload) == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrInvalidPacket)
	}
	pkts := make([]Packet, 0, bytes.Count(payload, []byte{recordSeparator})+1)
	for part := range bytes.SplitSeq(payload, []byte{recordSeparator}) {
		p, err := DecodePacket(part)
		if err != nil {
			return nil, err
		}
		pkts = append(pkts, p)
	}
	return pkts, nil
}

// AppendPayload appends the HTTP long-polling payload of pkts to dst.
func AppendPayload(dst []byte, pkts []Packet) []byte {
	for i, p := range pkts {
		if i > 0 {
			dst = append(dst, recordSeparator)
		}
		dst = AppendPacket(dst, p)
	}
	return dst
}
