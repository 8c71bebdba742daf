package socketio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The functions below are the payload handling as it was before the walker, with encoding/json. The
// walker's versions must agree with them on every input.

// validatePayloadJSON is validatePayload with encoding/json splitting the array and decoding the event
// name (which Socket.handleEvent decoded a second time).
func validatePayloadJSON(t PacketType, data []byte) ([]json.RawMessage, string, error) {
	if data == nil {
		switch t {
		case PacketEvent, PacketBinaryEvent, PacketAck, PacketBinaryAck:
			return nil, "", invalid("%v without payload", t)
		}
		return nil, "", nil
	}
	c := firstByte(data)
	switch t {
	case PacketConnect:
		if c != '{' || !json.Valid(data) {
			return nil, "", invalid("CONNECT payload must be an object")
		}
	case PacketDisconnect:
		return nil, "", invalid("DISCONNECT takes no payload")
	case PacketConnectError:
		if (c != '{' && c != '"') || !json.Valid(data) {
			return nil, "", invalid("CONNECT_ERROR payload must be an object or a string")
		}
	case PacketEvent, PacketBinaryEvent:
		var arr []json.RawMessage
		if c != '[' || json.Unmarshal(data, &arr) != nil || len(arr) == 0 {
			return nil, "", invalid("EVENT payload must be a non-empty array")
		}
		name, err := eventNameJSON(arr[0])
		if err != nil {
			return nil, "", err
		}
		return arr, name, nil
	case PacketAck, PacketBinaryAck:
		var arr []json.RawMessage
		if c != '[' || json.Unmarshal(data, &arr) != nil {
			return nil, "", invalid("ACK payload must be an array")
		}
		return arr, "", nil
	}
	return nil, "", nil
}

func eventNameJSON(raw json.RawMessage) (string, error) {
	switch firstByte(raw) {
	case '"':
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			return "", invalid("bad event name")
		}
		if reservedEvents[name] {
			return "", invalid("reserved event name %q", name)
		}
		return name, nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return string(bytes.TrimSpace(raw)), nil
	}
	return "", invalid("event name must be a string or a number")
}

// splitArrayJSON is what DecodePacket and newArgs asked of encoding/json to split a payload.
func splitArrayJSON(data []byte) ([]json.RawMessage, bool) {
	var arr []json.RawMessage
	if firstByte(data) != '[' || json.Unmarshal(data, &arr) != nil {
		return nil, false
	}
	return arr, true
}

// attachmentJSON is Args.Attachment with encoding/json decoding the placeholder.
func attachmentJSON(a Args, raw json.RawMessage) ([]byte, bool) {
	if !a.binary || !bytes.Contains(raw, []byte("_placeholder")) {
		return nil, false
	}
	var p placeholder
	if err := json.Unmarshal(raw, &p); err != nil || !p.Placeholder || p.Num < 0 || p.Num >= len(a.attachments) {
		return nil, false
	}
	return a.attachments[p.Num], true
}

// jsonCases are payloads for the walker: valid and invalid JSON of every kind, as encoding/json sees it.
var jsonCases = []string{
	`[]`, ` [ ] `, "\t[\n1 ,\r2 ]\n", `[1,]`, `[,1]`, `[1 2]`, `[`, `]`, `[1`, `[1]]`, `[1]x`, `[1] [2]`, `{}`, `null`, `1`,
	`["a"]`, `["a\"b"]`, `["a\\"]`, `["a\/\b\f\n\r\t"]`, `["\u00e9\uD83D\uDE00"]`, `["\u00G0"]`, `["\u00e"]`, `["\x"]`,
	`["\`, `["a`, "[\"a\x01b\"]", "[\"a\x7fb\"]", "[\"\xff\xfe\"]", "[\"caf\xc3\xa9\"]", `["\'"]`,
	`[0]`, `[-0]`, `[01]`, `[-]`, `[1.]`, `[.5]`, `[1.5]`, `[1e5]`, `[1E+5]`, `[1e-5]`, `[1e]`, `[1e+]`, `[+1]`, `[-1.5e3]`,
	`[0x1]`, `[1.5.5]`, `[Infinity]`, `[NaN]`, `[true]`, `[false]`, `[null]`, `[tru]`, `[truex]`, `[True]`, `[nul]`,
	`[nullnull]`, `[true,false,null]`, `[{"a":1}]`, `[{"a":1,}]`, `[{"a"}]`, `[{"a":}]`, `[{a:1}]`, `[{"a":1 "b":2}]`,
	`[{"a":1}{"b":2}]`, `[{"a":[{"b":{}}]}]`, `[[[[]]]]`, `[[[[]]]`, `[{"a\u0062":"\"}"}]`, `[{"":""}]`, `[{}, []]`,
}

// deepCases are payloads at encoding/json's nesting limit and past it. They are not fuzzing seeds: the
// fuzzer would spend its time mutating them.
var deepCases = []string{
	strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth),
	strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
	"[" + strings.Repeat(`{"a":`, maxJSONDepth-1) + "1" + strings.Repeat("}", maxJSONDepth-1) + "]",
	"[" + strings.Repeat(`{"a":`, maxJSONDepth) + "1" + strings.Repeat("}", maxJSONDepth) + "]",
}

// eventCases are event payloads, for the event name.
var eventCases = []string{
	`["m"]`, `["audio:chunk",{"groupId":"g","audioData":{"_placeholder":true,"num":0}}]`, `[""]`, ` [ "m" , 1 ] `,
	`["caf\u00e9"]`, `["café"]`, "[\"\xffx\"]", "[\"\xed\xa0\x80\"]", `["a\"b"]`, `["\u0000"]`, `[42]`, `[-1.5e3, 1]`,
	`[-0]`, `["connect"]`, `["conn\u0065ct"]`, `["disconnecting"]`, `["newListener"]`, `["removelistener"]`,
	`[true]`, `[null]`, `[{}]`, `[[]]`, `[]`,
}

// placeholderObjects are values for Args.Attachment.
var placeholderObjects = []string{
	`{"_placeholder":true,"num":0}`, ` {"_placeholder" : true , "num" : 1} `, `{"_placeholder":true,"num":2}`,
	`{"_placeholder":true}`, `{"_placeholder":true,"num":-1}`, `{"_placeholder":true,"num":-0}`,
	`{"_placeholder":true,"num":1.0}`, `{"_placeholder":true,"num":1e0}`, `{"_placeholder":true,"num":"0"}`,
	`{"_placeholder":true,"num":99999999999999999999}`, `{"_placeholder":true,"num":9223372036854775807}`,
	`{"_placeholder":true,"num":null}`, `{"_placeholder":true,"num":1,"num":null}`, `{"_placeholder":true,"num":[0]}`,
	`{"_placeholder":true,"num":{}}`, `{"_placeholder":true,"num":true}`, `{"_placeholder":false,"num":0}`,
	`{"_placeholder":"true","num":0}`, `{"_placeholder":1,"num":0}`, `{"_placeholder":null,"num":0}`,
	`{"_placeholder":true,"_placeholder":null,"num":0}`, `{"_placeholder":true,"_placeholder":false,"num":0}`,
	`{"_placeholder":false,"_placeholder":true,"num":0}`, `{"num":1.5,"num":0,"_placeholder":true}`,
	`{"_placeholder":{},"_placeholder":true,"num":0}`, `{"_PLACEHOLDER":true,"NUM":1,"x":"_placeholder"}`,
	`{"_PlaceHolder":true,"Num":1}`, `{"\u005fplaceholder":true,"n\u0075m":1}`, `{"_placeholder":true,"\u004eUM":1}`,
	`{"_placeholder":true,"nu\u212a":1}`, `{"_placeholder":true,"num":1,"other":{"_placeholder":false}}`,
	`{"_placeholder":true,"num":0,"x":[1,}`, `{"_placeholder":true,"num":0} x`, `{"_placeholder":true,"num":0}}`,
	`{"_placeholder":true,"num":0`, `{"_placeholder":true,"num":01}`, `{"_placeholder":true,"num":0,}`,
	`["_placeholder"]`, `"_placeholder"`, `null`, `null _placeholder`, `_placeholder`, ``, `{"_placeholder"}`,
	"{\"_placeholder\":true,\"num\":0,\"s\":\"\x01\"}", "{\"_placeholder\xff\":true,\"num\":0}",
}

func TestSplitArray(t *testing.T) {
	for _, c := range slices.Concat(jsonCases, deepCases) {
		checkSplitArray(t, []byte(c))
	}
	// The elements are data itself, capped at their end.
	data := []byte(`[ "m" , {"a":1} ]`)
	elems, ok := splitArray(data, nil)
	if !ok || len(elems) != 2 {
		t.Fatalf("splitArray(%s) = %q, %v", data, elems, ok)
	}
	if &elems[0][0] != &data[2] || &elems[1][0] != &data[8] || cap(elems[0]) != 3 || cap(elems[1]) != 7 {
		t.Errorf("splitArray(%s) = %q: not capped sub-slices of the payload", data, elems)
	}
	if elems, ok := splitArray([]byte(`[]`), nil); !ok || elems == nil {
		t.Errorf("splitArray([]) = %#v, %v; want an empty array", elems, ok)
	}
}

func checkSplitArray(t *testing.T, data []byte) {
	t.Helper()
	got, ok := splitArray(data, nil)
	want, wantOK := splitArrayJSON(data)
	if ok != wantOK || !equalElems(got, want) {
		t.Fatalf("splitArray(%q) = %q, %v; encoding/json %q, %v", data, got, ok, want, wantOK)
	}
	for i, e := range got {
		if cap(e) != len(e) {
			t.Fatalf("splitArray(%q): element %d has room for %d more bytes", data, i, cap(e)-len(e))
		}
	}
}

func equalElems(a, b []json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// FuzzSplitArray compares splitArray with encoding/json on any payload, and on any payload made an
// array's element (the fuzzer's input is more often not JSON at all).
func FuzzSplitArray(f *testing.F) {
	for _, c := range slices.Concat(jsonCases, eventCases, placeholderObjects) {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSplitArray(t, data)
		checkSplitArray(t, append(append([]byte("[1,"), data...), ']'))
	})
}

func TestValidatePayload(t *testing.T) {
	for _, c := range slices.Concat(jsonCases, deepCases, eventCases) {
		for typ := range PacketBinaryAck + 1 {
			checkValidatePayload(t, typ, []byte(c))
		}
	}
	for _, c := range []struct{ payload, name string }{
		{`["m"]`, "m"}, {`["caf\u00e9"]`, "café"}, {"[\"\xffx\"]", "\uFFFDx"}, {`["a\"b"]`, `a"b`}, {`[-1.5e3, 1]`, "-1.5e3"},
		{`[""]`, ""},
	} {
		elems, name, err := validatePayload(PacketEvent, []byte(c.payload), nil)
		if err != nil || string(name) != c.name || len(elems) == 0 {
			t.Errorf("validatePayload(EVENT, %s) = %q, %q, %v; want the name %q", c.payload, elems, name, err, c.name)
		}
	}
}

func checkValidatePayload(t *testing.T, typ PacketType, data []byte) {
	t.Helper()
	var buf [2]json.RawMessage // as DecodePacket passes it
	elems, name, err := validatePayload(typ, data, buf[:0])
	wantElems, wantName, wantErr := validatePayloadJSON(typ, data)
	if fmt.Sprint(err) != fmt.Sprint(wantErr) || !equalElems(elems, wantElems) || string(name) != wantName {
		t.Fatalf("validatePayload(%v, %q) = %q, %q, %v; encoding/json %q, %q, %v",
			typ, data, elems, name, err, wantElems, wantName, wantErr)
	}
	if err == nil && (typ == PacketAck || typ == PacketBinaryAck || typ == PacketEvent || typ == PacketBinaryEvent) && elems == nil {
		t.Fatalf("validatePayload(%v, %q): no elements", typ, data)
	}
}

// FuzzValidatePayload compares validatePayload, event name included, with its encoding/json version on
// any payload of any packet type.
func FuzzValidatePayload(f *testing.F) {
	for _, c := range slices.Concat(jsonCases, eventCases) {
		f.Add(uint8(PacketEvent), []byte(c))
	}
	f.Add(uint8(PacketAck), []byte(`[]`))
	f.Add(uint8(PacketConnect), []byte(`{"token":"x"}`))
	f.Add(uint8(PacketConnectError), []byte(`"x"`))
	f.Fuzz(func(t *testing.T, typ uint8, data []byte) {
		checkValidatePayload(t, PacketType(typ%7), data)
	})
}

func TestAttachment(t *testing.T) {
	a := Args{binary: true, attachments: [][]byte{{0}, {1}}}
	for _, c := range placeholderObjects {
		checkAttachment(t, a, []byte(c))
	}
	for _, depth := range []int{maxJSONDepth, maxJSONDepth + 1} { // the object's own level included
		inner := strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1)
		checkAttachment(t, a, []byte(`{"_placeholder":true,"num":1,"x":`+inner+`}`))
	}
	for _, c := range []struct {
		raw  string
		want int // -1: not an attachment
	}{
		{`{"_placeholder":true,"num":1}`, 1},
		{`{"_placeholder":true}`, 0},
		{`{"_placeholder":true,"num":-0}`, 0},
		{`{"_PLACEHOLDER":true,"NUM":1,"x":"_placeholder"}`, 1},
		{`{"_placeholder":true,"num":1,"num":null}`, 1},
		{`{"_placeholder":true,"_placeholder":null,"num":0}`, 0},
		{`{"num":1.5,"num":0,"_placeholder":true}`, -1},
		{`{"_placeholder":true,"num":2}`, -1},
		{`{"_PLACEHOLDER":true,"num":1}`, -1}, // without "_placeholder" as it is, not even looked at
	} {
		got, ok := a.Attachment(json.RawMessage(c.raw))
		if c.want < 0 && ok || c.want >= 0 && (!ok || got[0] != byte(c.want)) {
			t.Errorf("Attachment(%s) = %v, %v; want attachment %d", c.raw, got, ok, c.want)
		}
	}
}

func checkAttachment(t *testing.T, a Args, raw []byte) {
	t.Helper()
	got, ok := a.Attachment(raw)
	want, wantOK := attachmentJSON(a, raw)
	if ok != wantOK || !bytes.Equal(got, want) {
		t.Fatalf("Attachment(%q) with %d attachments = %v, %v; encoding/json %v, %v", raw, len(a.attachments), got, ok, want, wantOK)
	}
}

// FuzzAttachment compares Args.Attachment with its encoding/json version on any value and number of
// attachments.
func FuzzAttachment(f *testing.F) {
	for _, c := range placeholderObjects {
		f.Add([]byte(c), uint8(2))
	}
	f.Fuzz(func(t *testing.T, raw []byte, n uint8) {
		a := Args{binary: n < 128}
		for i := range int(n % 8) {
			a.attachments = append(a.attachments, []byte{byte(i)})
		}
		checkAttachment(t, a, raw)
	})
}

// BenchmarkDecodeEvent is the Socket.IO text packet of an audio:chunk, decoded and its name and attachment found
// as the socket and the edge's handler do.
func BenchmarkDecodeEvent(b *testing.B) {
	text := []byte(`51-/sessions,["audio:chunk",{"groupId":"6f0d8a1e-2c3b-4d5e-8f90-a1b2c3d4e5f6","audioData":{"_placeholder":true,"num":0}}]`)
	audio := [][]byte{make([]byte, 3200)}
	b.ReportAllocs()
	for b.Loop() {
		p, err := DecodePacket(text)
		if err != nil {
			b.Fatal(err)
		}
		p.Attachments = audio
		args, err := newArgs(p, 1)
		if err != nil || string(p.name) != "audio:chunk" {
			b.Fatal(err)
		}
		// The edge takes audioData out of the object with encoding/json; here its value is where the
		// payload ends.
		raw := args.Raw(0)
		i := bytes.Index(raw, []byte(`{"_placeholder"`))
		if _, ok := args.Attachment(raw[i : len(raw)-1]); !ok {
			b.Fatal("no attachment")
		}
	}
}
