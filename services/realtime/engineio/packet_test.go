package engineio

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodePacket(t *testing.T) {
	tests := []struct {
		in      string
		want    Packet
		wantErr bool
	}{
		{in: "0{\"sid\":\"x\"}", want: Packet{Type: PacketOpen, Data: []byte(`{"sid":"x"}`)}},
		{in: "1", want: Packet{Type: PacketClose, Data: []byte{}}},
		{in: "2probe", want: Packet{Type: PacketPing, Data: []byte("probe")}},
		{in: "3", want: Packet{Type: PacketPong, Data: []byte{}}},
		{in: "4hello", want: Packet{Type: PacketMessage, Data: []byte("hello")}},
		{in: "4€", want: Packet{Type: PacketMessage, Data: []byte("€")}},
		{in: "5", want: Packet{Type: PacketUpgrade, Data: []byte{}}},
		{in: "6", want: Packet{Type: PacketNoop, Data: []byte{}}},
		{in: "bAQIDBA==", want: Packet{Type: PacketMessage, Data: []byte{1, 2, 3, 4}, Binary: true}},
		{in: "b", want: Packet{Type: PacketMessage, Data: []byte{}, Binary: true}},
		{in: "", wantErr: true},
		{in: "7", wantErr: true},
		{in: "x", wantErr: true},
		{in: "b!!!", wantErr: true},
		{in: "bAQI=", want: Packet{Type: PacketMessage, Data: []byte{1, 2}, Binary: true}},
		{in: "bAQ", wantErr: true}, // unpadded
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := DecodePacket([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidPacket) {
					t.Fatalf("DecodePacket(%q) error = %v, want ErrInvalidPacket", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodePacket(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecodePacket(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		pkts    []Packet
	}{
		{"single", "4hello", []Packet{{Type: PacketMessage, Data: []byte("hello")}}},
		{"specification example", "4hello\x1e2\x1e4world", []Packet{
			{Type: PacketMessage, Data: []byte("hello")},
			{Type: PacketPing, Data: []byte{}},
			{Type: PacketMessage, Data: []byte("world")},
		}},
		{"binary", "4hello\x1ebAQIDBA==", []Packet{
			{Type: PacketMessage, Data: []byte("hello")},
			{Type: PacketMessage, Data: []byte{1, 2, 3, 4}, Binary: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodePayload([]byte(tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.pkts, got); diff != "" {
				t.Errorf("DecodePayload (-want +got):\n%s", diff)
			}
			if enc := string(AppendPayload(nil, tt.pkts)); enc != tt.payload {
				t.Errorf("AppendPayload = %q, want %q", enc, tt.payload)
			}
		})
	}
}

func TestDecodePayloadErrors(t *testing.T) {
	for _, in := range []string{"", "\x1e", "4a\x1e", "\x1e4a", "4a\x1e\x1e4b", "4a\x1e9"} {
		if _, err := DecodePayload([]byte(in)); !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("DecodePayload(%q) error = %v, want ErrInvalidPacket", in, err)
		}
	}
}

// FuzzDecodePacket checks that any input decodes without panicking and that decoded packets encode back
// to an equivalent packet.
func FuzzDecodePacket(f *testing.F) {
	for _, s := range []string{"0{}", "1", "2probe", "3", "4hello", "4€世界", "5", "6", "bAQIDBA==", "b", "", "7", "b!"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := DecodePacket(in)
		if err != nil {
			return
		}
		again, err := DecodePacket(AppendPacket(nil, p))
		if err != nil {
			t.Fatalf("re-decoding %q: %v", in, err)
		}
		if again.Type != p.Type || again.Binary != p.Binary || string(again.Data) != string(p.Data) {
			t.Fatalf("round trip of %q: %+v then %+v", in, p, again)
		}
	})
}

// FuzzDecodePayload checks that any polling payload decodes without panicking, and that decoded payloads
// round-trip.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{"4hello\x1e2\x1e4world", "4hello\x1ebAQIDBA==", "1", "\x1e", "4a\x1e", "bAQ\x1e4"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		pkts, err := DecodePayload(in)
		if err != nil {
			return
		}
		again, err := DecodePayload(AppendPayload(nil, pkts))
		if err != nil {
			t.Fatalf("re-decoding %q: %v", in, err)
		}
		if len(again) != len(pkts) {
			t.Fatalf("round trip of %q: %d packets then %d", in, len(pkts), len(again))
		}
		for i := range pkts {
			if again[i].Type != pkts[i].Type || again[i].Binary != pkts[i].Binary || string(again[i].Data) != string(pkts[i].Data) {
				t.Fatalf("round trip of %q: packet %d %+v then %+v", in, i, pkts[i], again[i])
			}
		}
	})
}
