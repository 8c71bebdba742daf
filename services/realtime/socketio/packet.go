package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/classwaves/classwaves/services/realtime/engineio"
)

// PacketType is the type of a Socket.IO packet.
type PacketType byte

// The Socket.IO packet types.
const (
	PacketConnect      PacketType = 0
	PacketDisconnect   PacketType = 1
	PacketEvent        PacketType = 2
	PacketAck          PacketType = 3
	PacketConnectError PacketType = 4
	PacketBinaryEvent  PacketType = 5
	PacketBinaryAck    PacketType = 6
)

var packetTypeNames = [...]string{"CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"}

func (t PacketType) String() string {
	if int(t) < len(packetTypeNames) {
		return packetTypeNames[t]
	}
	return fmt.Sprintf("PacketType(%d)", byte(t))
}

func (t PacketType) isBinary() bool { return t == PacketBinaryEvent || t == PacketBinaryAck }

// reservedEvents are the event names a peer may not send (as in the reference parser).
var reservedEvents = map[string]bool{
	"connect": true, "connect_error": true, "disconnect": true, "disconnecting": true,
	"newListener": true, "removeListener": true,
}

// ErrInvalidPacket reports input that is not a valid Socket.IO packet.
var ErrInvalidPacket = errors.New("socketio: invalid packet")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidPacket, fmt.Sprintf(format, args...))
}

// Packet is one Socket.IO packet in wire form: Data is the JSON payload as sent (binary attachments
// replaced by {"_placeholder":true,"num":N} objects) and Attachments holds the binary attachments of
// BINARY_EVENT and BINARY_ACK packets, in order. Packets are immutable once built: the server encodes one
// packet once and sends the result to every recipient.
type Packet struct {
	Type        PacketType
	Namespace   string // "/" for the main namespace
	ID          uint64 // acknowledgement id, when HasID
	HasID       bool
	Data        json.RawMessage // nil when the packet has no payload
	Attachments [][]byte

	attachments int               // the count announced in the header, while decoding
	elems       []json.RawMessage // EVENT and ACK: the payload array's elements (sub-slices of Data)
	name        []byte            // EVENT: the event name, decoded (see eventName)
	// lent: the last attachment is the Data of a borrowed message (engineio.Message.Borrowed), valid
	// only until the HandleMessage call that completed the packet returns (Decoder.Add).
	lent bool
}

// own replaces a lent attachment by a copy. Every use of a received packet that may outlive the
// HandleMessage call that completed it, or that reaches anything but a borrowing event handler, owns
// it first.
func (p *Packet) own() {
	if !p.lent {
		return
	}
	last := len(p.Attachments) - 1
	p.Attachments[last] = bytes.Clone(p.Attachments[last])
	p.lent = false
}

// DecodePacket decodes the text part of a packet, as the reference parser does:
//
//	<type>[<# of attachments>-][<namespace>,][<ack id>][JSON payload]
//
// For BINARY_EVENT and BINARY_ACK the attachments follow as separate binary messages; a Decoder collects
// them. The payload is validated for the packet type: CONNECT an object, DISCONNECT none, CONNECT_ERROR a
// string or an object, EVENT a non-empty array led by a non-reserved event name (string or number), ACK an
// array. EVENT and ACK must have a payload (the specification requires the receiver to close otherwise).
func DecodePacket(text []byte) (*Packet, error) {
	if len(text) == 0 {
		return nil, invalid("empty packet")
	}
	if text[0] < '0' || text[0] > '6' {
		return nil, invalid("unknown packet type %q", text[0])
	}
	// The packet and room for its payload's elements, in one allocation: most events are a name and one
	// argument (an audio chunk's object).
	r := new(struct {
		Packet
		elemBuf [2]json.RawMessage
	})
	p := &r.Packet
	p.Type, p.Namespace = PacketType(text[0]-'0'), "/"
	rest := text[1:]
	if p.Type.isBinary() {
		i := bytes.IndexByte(rest, '-')
		if i <= 0 {
			return nil, invalid("illegal attachments")
		}
		n, err := strconv.ParseUint(string(rest[:i]), 10, 31)
		if err != nil || n < 1 {
			return nil, invalid("illegal attachments")
		}
		p.attachments = int(n)
		rest = rest[i+1:]
	}
	if len(rest) > 0 && rest[0] == '/' {
		i := bytes.IndexByte(rest, ',')
		if i < 0 {
			p.Namespace, rest = string(rest), nil
		} else {
			p.Namespace, rest = string(rest[:i]), rest[i+1:]
		}
	}
	if i := digits(rest); i > 0 {
		id, err := strconv.ParseUint(string(rest[:i]), 10, 53)
		if err != nil {
			return nil, invalid("illegal ack id")
		}
		p.ID, p.HasID, rest = id, true, rest[i:]
	}
	if len(rest) > 0 {
		p.Data = rest
	}
	elems, name, err := validatePayload(p.Type, p.Data, r.elemBuf[:0])
	if err != nil {
		return nil, err
	}
	p.elems, p.name = elems, name
	return p, nil
}

func digits(b []byte) int {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// firstByte returns the first non-whitespace byte of a JSON text, or 0.
func firstByte(data []byte) byte {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\n', '\r':
		default:
			return c
		}
	}
	return 0
}

// validatePayload checks data for packet type t; for EVENT and ACK it returns the array's elements
// (appended to buf), and for EVENT the event name too.
func validatePayload(t PacketType, data []byte, buf []json.RawMessage) (elems []json.RawMessage, name []byte, err error) {
	if data == nil {
		switch t {
		case PacketEvent, PacketBinaryEvent, PacketAck, PacketBinaryAck:
			return nil, nil, invalid("%v without payload", t)
		}
		return nil, nil, nil
	}
	c := firstByte(data)
	switch t {
	case PacketConnect:
		if c != '{' || !json.Valid(data) {
			return nil, nil, invalid("CONNECT payload must be an object")
		}
	case PacketDisconnect:
		return nil, nil, invalid("DISCONNECT takes no payload")
	case PacketConnectError:
		if (c != '{' && c != '"') || !json.Valid(data) {
			return nil, nil, invalid("CONNECT_ERROR payload must be an object or a string")
		}
	case PacketEvent, PacketBinaryEvent:
		elems, ok := splitArray(data, buf)
		if !ok || len(elems) == 0 {
			return nil, nil, invalid("EVENT payload must be a non-empty array")
		}
		name, err := eventName(elems[0])
		if err != nil {
			return nil, nil, err
		}
		return elems, name, nil
	case PacketAck, PacketBinaryAck:
		elems, ok := splitArray(data, buf)
		if !ok {
			return nil, nil, invalid("ACK payload must be an array")
		}
		return elems, nil, nil
	}
	return nil, nil, nil
}

// eventName decodes the first element of an event payload: a string that is not reserved, or a number
// (which the reference parser allows; it is used as its JSON text). A string without escapes and in
// valid UTF-8, which is every name a client sends in practice, decodes to its own bytes: the name
// returned is then a sub-slice of raw, and finding its handler allocates nothing (Socket.handleEvent).
func eventName(raw json.RawMessage) ([]byte, error) {
	switch firstByte(raw) {
	case '"':
		if n := len(raw); n >= 2 && raw[n-1] == '"' {
			if name := raw[1 : n-1]; bytes.IndexByte(name, '\\') < 0 && utf8.Valid(name) {
				return checkReserved(name)
			}
		}
		// Escapes or invalid UTF-8 (replaced by U+FFFD): let encoding/json decode it.
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			return nil, invalid("bad event name")
		}
		return checkReserved([]byte(name))
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return bytes.TrimSpace(raw), nil
	}
	return nil, invalid("event name must be a string or a number")
}

func checkReserved(name []byte) ([]byte, error) {
	if reservedEvents[string(name)] {
		return nil, invalid("reserved event name %q", name)
	}
	return name, nil
}

// AppendText appends the text part of p (header and JSON payload) to dst.
func (p *Packet) AppendText(dst []byte) []byte {
	t := p.Type
	if len(p.Attachments) > 0 {
		switch t {
		case PacketEvent:
			t = PacketBinaryEvent
		case PacketAck:
			t = PacketBinaryAck
		}
	}
	dst = append(dst, '0'+byte(t))
	if t.isBinary() {
		dst = strconv.AppendInt(dst, int64(len(p.Attachments)), 10)
		dst = append(dst, '-')
	}
	if p.Namespace != "" && p.Namespace != "/" {
		dst = append(dst, p.Namespace...)
		dst = append(dst, ',')
	}
	if p.HasID {
		dst = strconv.AppendUint(dst, p.ID, 10)
	}
	return append(dst, p.Data...)
}

// Messages returns the Engine.IO messages that carry p: its text part, then one binary message per
// attachment.
func (p *Packet) Messages() []engineio.Message {
	msgs := make([]engineio.Message, 0, 1+len(p.Attachments))
	msgs = append(msgs, engineio.Message{Data: p.AppendText(make([]byte, 0, 16+len(p.Namespace)+len(p.Data)))})
	for _, a := range p.Attachments {
		msgs = append(msgs, engineio.Message{Data: a, Binary: true})
	}
	return msgs
}

// Decoder reassembles packets from Engine.IO messages: a binary packet's text part followed by its
// attachments. It is not safe for concurrent use (one Decoder per connection).
type Decoder struct {
	// MaxAttachments caps the attachments announced by one packet (default 10, as the reference parser).
	MaxAttachments int

	pending *Packet
}

// Add feeds one message to the decoder. It returns the completed packet, or nil when attachments are
// still expected.
//
// A borrowed message (engineio.Message.Borrowed) is copied when it is an attachment that does not
// complete its packet, since the packet outlives it. The attachment that completes a packet is kept as
// it is: when it was borrowed, the packet's last attachment is valid only as long as the message's Data.
func (d *Decoder) Add(m engineio.Message) (*Packet, error) {
	if !m.Binary {
		if d.pending != nil {
			return nil, invalid("got plaintext data when reconstructing a packet")
		}
		p, err := DecodePacket(m.Data)
		if err != nil {
			return nil, err
		}
		if !p.Type.isBinary() {
			return p, nil
		}
		limit := d.MaxAttachments
		if limit <= 0 {
			limit = 10
		}
		if p.attachments > limit {
			return nil, invalid("too many attachments")
		}
		p.Attachments = make([][]byte, 0, p.attachments)
		d.pending = p
		return nil, nil
	}
	p := d.pending
	if p == nil {
		return nil, invalid("got binary data when not reconstructing a packet")
	}
	if len(p.Attachments)+1 < p.attachments {
		data := m.Data
		if m.Borrowed {
			data = bytes.Clone(data)
		}
		p.Attachments = append(p.Attachments, data)
		return nil, nil
	}
	p.Attachments = append(p.Attachments, m.Data)
	p.lent = m.Borrowed
	d.pending = nil
	if err := checkPlaceholders(p.Data, len(p.Attachments)); err != nil {
		return nil, err
	}
	return p, nil
}

// Reset drops a partly reassembled packet.
func (d *Decoder) Reset() { d.pending = nil }
