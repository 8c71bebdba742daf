package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/classwaves/classwaves/services/realtime/engineio"
)

var packetCmp = cmpopts.IgnoreUnexported(Packet{})

// The examples of the specification's "Packet encoding" section, both ways.
var specExamples = []struct {
	name    string
	encoded string
	packet  Packet
}{
	{"CONNECT main", "0", Packet{Type: PacketConnect, Namespace: "/"}},
	{"CONNECT custom", `0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}`,
		Packet{Type: PacketConnect, Namespace: "/admin", Data: json.RawMessage(`{"sid":"oSO0OpakMV_3jnilAAAA"}`)}},
	{"CONNECT_ERROR", `4{"message":"Not authorized"}`,
		Packet{Type: PacketConnectError, Namespace: "/", Data: json.RawMessage(`{"message":"Not authorized"}`)}},
	{"EVENT main", `2["foo"]`, Packet{Type: PacketEvent, Namespace: "/", Data: json.RawMessage(`["foo"]`)}},
	{"EVENT custom", `2/admin,["bar"]`, Packet{Type: PacketEvent, Namespace: "/admin", Data: json.RawMessage(`["bar"]`)}},
	{"BINARY_EVENT", `51-["baz",{"_placeholder":true,"num":0}]`,
		Packet{Type: PacketBinaryEvent, Namespace: "/", Data: json.RawMessage(`["baz",{"_placeholder":true,"num":0}]`),
			Attachments: [][]byte{{1, 2, 3, 4}}}},
	{"BINARY_EVENT two attachments", `52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
		Packet{Type: PacketBinaryEvent, Namespace: "/admin",
			Data:        json.RawMessage(`["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`),
			Attachments: [][]byte{{1, 2}, {3, 4}}}},
	{"EVENT with ack", `212["foo"]`, Packet{Type: PacketEvent, Namespace: "/", ID: 12, HasID: true, Data: json.RawMessage(`["foo"]`)}},
	{"ACK custom", `3/admin,13["bar"]`, Packet{Type: PacketAck, Namespace: "/admin", ID: 13, HasID: true, Data: json.RawMessage(`["bar"]`)}},
	{"BINARY_ACK", `61-15["bar",{"_placeholder":true,"num":0}]`,
		Packet{Type: PacketBinaryAck, Namespace: "/", ID: 15, HasID: true,
			Data: json.RawMessage(`["bar",{"_placeholder":true,"num":0}]`), Attachments: [][]byte{{1, 2, 3, 4}}}},
	{"DISCONNECT main", "1", Packet{Type: PacketDisconnect, Namespace: "/"}},
	{"DISCONNECT custom", "1/admin,", Packet{Type: PacketDisconnect, Namespace: "/admin"}},
}

func TestEncodeSpecExamples(t *testing.T) {
	for _, tt := range specExamples {
		t.Run(tt.name, func(t *testing.T) {
			msgs := tt.packet.Messages()
			if got := string(msgs[0].Data); got != tt.encoded {
				t.Errorf("text = %s, want %s", got, tt.encoded)
			}
			var atts [][]byte
			for _, m := range msgs[1:] {
				if !m.Binary {
					t.Errorf("attachment sent as text")
				}
				atts = append(atts, m.Data)
			}
			if diff := cmp.Diff(tt.packet.Attachments, atts); diff != "" {
				t.Errorf("attachments (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeSpecExamples(t *testing.T) {
	for _, tt := range specExamples {
		t.Run(tt.name, func(t *testing.T) {
			var d Decoder
			got, err := d.Add(engineio.Message{Data: []byte(tt.encoded)})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range tt.packet.Attachments {
				if got != nil {
					t.Fatal("packet complete before its attachments")
				}
				if got, err = d.Add(engineio.Message{Data: a, Binary: true}); err != nil {
					t.Fatal(err)
				}
			}
			if got == nil {
				t.Fatal("packet not complete")
			}
			if diff := cmp.Diff(&tt.packet, got, packetCmp); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecoderBorrowedAttachments feeds a two-attachment packet to a Decoder in borrowed messages that
// share one buffer, as the engine lends them: the first attachment, which outlives its message, is a
// copy; the last is the message's Data, marked lent until own replaces it by a copy.
func TestDecoderBorrowedAttachments(t *testing.T) {
	var d Decoder
	buf := make([]byte, 8)
	lend := func(b ...byte) engineio.Message {
		clear(buf)
		return engineio.Message{Data: append(buf[:0], b...), Binary: true, Borrowed: true}
	}
	if p, err := d.Add(engineio.Message{Data: []byte(`52-["e",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)}); p != nil || err != nil {
		t.Fatalf("text part: %v, %v", p, err)
	}
	if p, err := d.Add(lend(1, 2)); p != nil || err != nil {
		t.Fatalf("first attachment: %v, %v", p, err)
	}
	p, err := d.Add(lend(3, 4, 5))
	if p == nil || err != nil {
		t.Fatalf("last attachment: %v, %v", p, err)
	}
	if want := [][]byte{{1, 2}, {3, 4, 5}}; !cmp.Equal(p.Attachments, want) {
		t.Fatalf("attachments = %v, want %v", p.Attachments, want)
	}
	if !p.lent || &p.Attachments[1][0] != &buf[0] {
		t.Errorf("the last attachment is not the borrowed message's Data (lent %v)", p.lent)
	}
	p.own()
	clear(buf)
	if want := [][]byte{{1, 2}, {3, 4, 5}}; p.lent || !cmp.Equal(p.Attachments, want) {
		t.Errorf("after own and a reuse of the buffer: attachments = %v (lent %v), want %v", p.Attachments, p.lent, want)
	}

	// Owned messages are kept as they are.
	owned := []byte{6}
	if _, err := d.Add(engineio.Message{Data: []byte(`51-["e",{"_placeholder":true,"num":0}]`)}); err != nil {
		t.Fatal(err)
	}
	if p, err = d.Add(engineio.Message{Data: owned, Binary: true}); err != nil || p == nil {
		t.Fatalf("owned attachment: %v, %v", p, err)
	}
	if p.lent || &p.Attachments[0][0] != &owned[0] {
		t.Errorf("an owned attachment was copied or marked lent (lent %v)", p.lent)
	}
}

func TestDecodePacketErrors(t *testing.T) {
	tests := []string{
		"", "7", "a", `0"x"`, `0[]`, `0{`, `1{}`, `1/a,{}`, `2`, `2{}`, `2[]`, `2[1`, `2["a"]x`, `2[null]`, `2[{}]`, `2["connect"]`,
		`2["disconnect"]`, `3`, `3{}`, `4[]`, `4 1`, `5["a"]`, `5-["a"]`, `50-["a"]`, `5x-["a"]`, `5999999999999-["a"]`,
		`299999999999999999999["a"]`, `2abc["a"]`,
	}
	for _, in := range tests {
		if p, err := DecodePacket([]byte(in)); !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("DecodePacket(%q) = %+v, %v; want ErrInvalidPacket", in, p, err)
		}
	}
	for _, in := range []string{`0`, `0{}`, `0/a`, `0/a,{"t":1}`, `1/a`, `2[1]`, `2[-1.5,"x"]`, `3[]`, `4"msg"`, `2/a,["é"]`} {
		if _, err := DecodePacket([]byte(in)); err != nil {
			t.Errorf("DecodePacket(%q): %v", in, err)
		}
	}
}

func TestDecoderErrors(t *testing.T) {
	tests := []struct {
		name string
		msgs []engineio.Message
	}{
		{"binary without a packet", []engineio.Message{{Data: []byte{1}, Binary: true}}},
		{"text while reassembling", []engineio.Message{{Data: []byte(`51-["a",{"_placeholder":true,"num":0}]`)}, {Data: []byte(`2["a"]`)}}},
		{"placeholder out of range", []engineio.Message{{Data: []byte(`51-["a",{"_placeholder":true,"num":1}]`)}, {Data: []byte{1}, Binary: true}}},
		{"placeholder without number", []engineio.Message{{Data: []byte(`51-["a",{"_placeholder":true}]`)}, {Data: []byte{1}, Binary: true}}},
		{"negative placeholder", []engineio.Message{{Data: []byte(`51-["a",{"_placeholder":true,"num":-1}]`)}, {Data: []byte{1}, Binary: true}}},
		{"too many attachments", []engineio.Message{{Data: []byte(`511-["a"]`)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decoder
			var err error
			for _, m := range tt.msgs {
				if _, err = d.Add(m); err != nil {
					break
				}
			}
			if !errors.Is(err, ErrInvalidPacket) {
				t.Errorf("error = %v, want ErrInvalidPacket", err)
			}
		})
	}
}

func TestEncodePayload(t *testing.T) {
	type audio struct {
		GroupID string `json:"groupId"`
		Chunk   []byte `json:"chunk"`
	}
	tests := []struct {
		name            string
		values          []any
		wantJSON        string
		wantAttachments [][]byte
	}{
		{"plain", []any{"ev", 1, "two", map[string]any{"3": []any{true}}}, `["ev",1,"two",{"3":[true]}]`, nil},
		{"no HTML escaping", []any{"<a&b>"}, `["<a&b>"]`, nil},
		{"raw JSON kept", []any{json.RawMessage(`{"z":1,"a":2}`)}, `[{"z":1,"a":2}]`, nil},
		{"top-level binary", []any{"ev", []byte{1, 2}}, `["ev",{"_placeholder":true,"num":0}]`, [][]byte{{1, 2}}},
		{"nested binary in sorted key order", []any{map[string]any{"b": []byte{2}, "a": []any{[]byte{1}}}},
			`[{"a":[{"_placeholder":true,"num":0}],"b":{"_placeholder":true,"num":1}}]`, [][]byte{{1}, {2}}},
		{"struct []byte field is base64", []any{audio{GroupID: "g", Chunk: []byte{1, 2, 3}}}, `[{"groupId":"g","chunk":"AQID"}]`, nil},
		{"nil", []any{nil}, `[null]`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, atts, err := encodePayload(tt.values)
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != tt.wantJSON {
				t.Errorf("JSON = %s, want %s", data, tt.wantJSON)
			}
			if diff := cmp.Diff(tt.wantAttachments, atts); diff != "" {
				t.Errorf("attachments (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("input not modified", func(t *testing.T) {
		m := map[string]any{"b": []byte{2}}
		if _, _, err := encodePayload([]any{m}); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["b"].([]byte); !ok {
			t.Errorf("map modified: %v", m)
		}
	})
	t.Run("unsupported value", func(t *testing.T) {
		if _, _, err := encodePayload([]any{make(chan int)}); err == nil {
			t.Error("encoding a channel succeeded")
		}
	})
}

func TestArgs(t *testing.T) {
	var d Decoder
	if _, err := d.Add(engineio.Message{Data: []byte(`52-["chunk",{"groupId":"g1","audio":{"_placeholder":true,"num":0}},{"_placeholder":true,"num":1},7,"x"]`)}); err != nil {
		t.Fatal(err)
	}
	_, _ = d.Add(engineio.Message{Data: []byte{1, 2}, Binary: true})
	p, err := d.Add(engineio.Message{Data: []byte{3}, Binary: true})
	if err != nil || p == nil {
		t.Fatalf("decoding: %v %v", p, err)
	}
	args, err := newArgs(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	if args.Len() != 4 {
		t.Fatalf("Len() = %d, want 4", args.Len())
	}
	var chunk struct {
		GroupID string `json:"groupId"`
		Audio   []byte `json:"audio"`
	}
	if err := args.Decode(0, &chunk); err != nil {
		t.Fatal(err)
	}
	if chunk.GroupID != "g1" || !cmp.Equal(chunk.Audio, []byte{1, 2}) {
		t.Errorf("Decode(0) = %+v", chunk)
	}
	var raw []byte
	if err := args.Decode(1, &raw); err != nil || !cmp.Equal(raw, []byte{3}) {
		t.Errorf("Decode(1) = %v, %v; want [3]", raw, err)
	}
	if b, ok := args.Bytes(1); !ok || !cmp.Equal(b, []byte{3}) {
		t.Errorf("Bytes(1) = %v, %v", b, ok)
	}
	if _, ok := args.Bytes(2); ok {
		t.Error("Bytes(2) reported a number as binary")
	}
	// Attachment takes a Buffer out of an object field without decoding the rest.
	var fields struct {
		Audio json.RawMessage `json:"audio"`
	}
	if err := json.Unmarshal(args.Raw(0), &fields); err != nil {
		t.Fatal(err)
	}
	if b, ok := args.Attachment(fields.Audio); !ok || !cmp.Equal(b, []byte{1, 2}) {
		t.Errorf("Attachment(audio) = %v, %v; want [1 2]", b, ok)
	}
	for _, raw := range []string{`7`, `"x"`, `{"_placeholder":true,"num":2}`, `{"_placeholder":true,"num":-1}`,
		`{"_placeholder":false,"num":0}`, `{"_placeholder":true,"num":"0"}`, `{"_placeholder":true`} {
		if b, ok := args.Attachment(json.RawMessage(raw)); ok {
			t.Errorf("Attachment(%s) = %v, want no attachment", raw, b)
		}
	}
	var n int
	if err := args.Decode(2, &n); err != nil || n != 7 {
		t.Errorf("Decode(2) = %d, %v", n, err)
	}
	var v any
	if err := args.Decode(0, &v); err != nil {
		t.Fatal(err)
	}
	want := []any{
		map[string]any{"groupId": "g1", "audio": []byte{1, 2}}, []byte{3}, json.Number("7"), "x",
	}
	if diff := cmp.Diff(want, args.Values()); diff != "" {
		t.Errorf("Values() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[0], v); diff != "" {
		t.Errorf("Decode into any (-want +got):\n%s", diff)
	}
	if err := args.Decode(9, &v); err == nil {
		t.Error("Decode(9) succeeded")
	}
}

func TestWithOffset(t *testing.T) {
	tests := []struct{ in, want string }{
		{`["ev"]`, `["ev","o1"]`},
		{`["ev",1,{"a":[2]}]`, `["ev",1,{"a":[2]},"o1"]`},
		{`[]`, `["o1"]`},
	}
	for _, tt := range tests {
		p := &Packet{Type: PacketEvent, Data: json.RawMessage(tt.in)}
		if got := string(p.WithOffset("o1").Data); got != tt.want {
			t.Errorf("WithOffset(%s) = %s, want %s", tt.in, got, tt.want)
		}
		if string(p.Data) != tt.in {
			t.Errorf("WithOffset modified its input: %s", p.Data)
		}
	}
}

// FuzzDecodePacket checks that any text packet decodes without panicking, and that decoded packets
// encode back to the same packet.
func FuzzDecodePacket(f *testing.F) {
	for _, ex := range specExamples {
		f.Add([]byte(ex.encoded))
	}
	for _, s := range []string{"", "4abc", "42{}", `42abc["x"]`, `40/custom`, `451-["m",{"_placeholder":true,"num":0}]`, `2["disconnect"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := DecodePacket(in)
		if err != nil {
			return
		}
		if p.Type.isBinary() {
			p.Attachments = make([][]byte, p.attachments)
		}
		again, err := DecodePacket(p.AppendText(nil))
		if err != nil {
			t.Fatalf("re-decoding %q (encoded %q): %v", in, p.AppendText(nil), err)
		}
		if again.Type != p.Type || again.Namespace != p.Namespace || again.HasID != p.HasID || again.ID != p.ID ||
			string(again.Data) != string(p.Data) || again.attachments != len(p.Attachments) {
			t.Fatalf("round trip of %q: %+v then %+v", in, p, again)
		}
		if args, err := newArgs(p, 0); err == nil {
			args.Values() // must not panic
		}
	})
}

// FuzzDecoder feeds a text packet and binary attachments to a Decoder, then exercises the arguments.
// With n >= 128 the attachments are borrowed messages in one buffer, overwritten after every Add as the
// engine reuses it: once the packet owns its attachments, they must all still be bin.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte(`51-["m",{"_placeholder":true,"num":0}]`), []byte{1, 2}, uint8(1))
	f.Add([]byte(`62-3[{"_placeholder":true,"num":1},{"x":{"_placeholder":true,"num":0}}]`), []byte{9}, uint8(2))
	f.Add([]byte(`2["m",1]`), []byte{}, uint8(0))
	f.Add([]byte(`53-["m",{"_placeholder":true,"num":2},{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), []byte{1, 2}, uint8(128+3))
	f.Fuzz(func(t *testing.T, text, bin []byte, n uint8) {
		d := Decoder{}
		borrowed := n >= 128
		buf := make([]byte, len(bin))
		p, err := d.Add(engineio.Message{Data: text})
		for i := 0; err == nil && p == nil && i < int(n%12); i++ {
			m := engineio.Message{Data: bin, Binary: true}
			if borrowed {
				copy(buf, bin)
				m.Data, m.Borrowed = buf, true
			}
			p, err = d.Add(m)
			if p != nil {
				p.own()
			}
			for j := range buf {
				buf[j] = ^bin[j]
			}
		}
		if err != nil || p == nil {
			return
		}
		for i, a := range p.Attachments {
			if !bytes.Equal(a, bin) {
				t.Fatalf("attachment %d = %x, want %x (borrowed %v)", i, a, bin, borrowed)
			}
		}
		args, err := newArgs(p, 0)
		if err != nil {
			return
		}
		for i := range args.Len() {
			var v any
			_ = args.Decode(i, &v)
			args.Bytes(i)
		}
		args.Values()
	})
}
