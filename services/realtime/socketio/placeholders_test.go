package socketio

import (
	"testing"
)

// checkPlaceholdersTree is the check as it was before the walker: decode the whole payload, then look
// for placeholders in the tree. The walker must agree with it on every payload.
func checkPlaceholdersTree(data []byte, count int) error {
	if data == nil {
		return nil
	}
	v, err := decodeJSON(data)
	if err != nil {
		return invalid("payload is not JSON")
	}
	_, err = replacePlaceholders(v, count, func(int) any { return nil })
	return err
}

var placeholderCases = []struct {
	payload string
	count   int
	ok      bool
}{
	{`["m",{"groupId":"g","audioData":{"_placeholder":true,"num":0}}]`, 1, true},
	{`["m",{"_placeholder":true,"num":1}]`, 1, false},
	{`["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, 2, true},
	{`["m",{"_placeholder":true,"num":-1}]`, 1, false},
	{`["m",{"_placeholder":true,"num":1.0}]`, 2, false},
	{`["m",{"_placeholder":true,"num":"0"}]`, 1, false},
	{`["m",{"_placeholder":true}]`, 1, false},
	{`["m",{"_placeholder":false,"num":5}]`, 1, true},
	{`["m",{"_placeholder":"true","num":5}]`, 1, true},
	{`["m",{"_placeholder":true,"num":0,"_placeholder":false}]`, 1, true},
	{`["m",{"num":7,"_placeholder":true,"num":0}]`, 1, true},
	{`["m",{"\u005fplaceholder":true,"n\u0075m":3}]`, 1, false},
	{`["m",{"\u005fplaceholder":true,"n\u0075m":0}]`, 1, true},
	{`["m",{"a":{"_placeholder":true,"num":9},"a":1}]`, 1, true},
	{`["m",{"a":1,"a":{"_placeholder":true,"num":9}}]`, 1, false},
	{`["m",{"_placeholder":true,"num":0,"x":{"_placeholder":true,"num":9}}]`, 1, true},
	{` [ "m" , [ [ { "_placeholder" : true , "num" : 1073741824 } ] ] ] `, 1<<30 + 1, true},
	{`["m",{"_placeholder":true,"num":1073741825}]`, 1 << 31, false},
	{`["m",{"_placeholder":true,"num":99999999999999999999}]`, 1, false},
	{`["m",{},[],"s\"{",null,true,false,-1.5e3]`, 0, true},
}

func TestCheckPlaceholders(t *testing.T) {
	for _, c := range placeholderCases {
		err := checkPlaceholders([]byte(c.payload), c.count)
		if (err == nil) != c.ok {
			t.Errorf("checkPlaceholders(%s, %d) = %v, want ok %v", c.payload, c.count, err, c.ok)
		}
		if tree := checkPlaceholdersTree([]byte(c.payload), c.count); (tree == nil) != (err == nil) {
			t.Errorf("checkPlaceholders(%s, %d) = %v, but the tree check says %v", c.payload, c.count, err, tree)
		}
	}
}

// FuzzCheckPlaceholders compares the walker with the tree check on any JSON payload (the packet
// decoder validates payloads as JSON before the check runs).
func FuzzCheckPlaceholders(f *testing.F) {
	for _, c := range placeholderCases {
		f.Add([]byte(c.payload), uint8(c.count))
	}
	f.Fuzz(func(t *testing.T, data []byte, count uint8) {
		if _, _, err := validatePayload(PacketBinaryEvent, data, nil); err != nil {
			return
		}
		walk, tree := checkPlaceholders(data, int(count)), checkPlaceholdersTree(data, int(count))
		if (walk == nil) != (tree == nil) || (walk != nil && walk.Error() != tree.Error()) {
			t.Fatalf("checkPlaceholders(%q, %d) = %v, the tree check %v", data, count, walk, tree)
		}
	})
}

// BenchmarkCheckPlaceholders is an audio:chunk's payload.
func BenchmarkCheckPlaceholders(b *testing.B) {
	data := []byte(`["audio:chunk",{"groupId":"0b8f7d52-3c57-4c1e-9d0a-6f1e2a3b4c5d","audioData":{"_placeholder":true,"num":0}}]`)
	b.ReportAllocs()
	for b.Loop() {
		if err := checkPlaceholders(data, 1); err != nil {
			b.Fatal(err)
		}
	}
}
