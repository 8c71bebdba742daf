package redisadapter

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestCompareIDs(t *testing.T) {
	tests := []struct {
		x, y string
		want int
	}{
		{"1-0", "1-0", 0},
		{"1-0", "1-1", -1},
		{"2-0", "1-9", 1},
		{"10-0", "9-0", 1},
		{"0-0", "1700000000000-0", -1},
		{"bad", "0-1", -1},
	}
	for _, tt := range tests {
		if got := compareIDs(tt.x, tt.y); got != tt.want {
			t.Errorf("compareIDs(%q, %q) = %d, want %d", tt.x, tt.y, got, tt.want)
		}
	}
	for _, id := range []string{"", "-", "1-", "-1", "1-2-3", "a-1", "+1-1", "99999999999999999999999-0"} {
		if validID(id) {
			t.Errorf("validID(%q) = true", id)
		}
	}
}

func TestDecodeEntryRefusesMalformed(t *testing.T) {
	ok := map[string]any{"t": "2", "d": `["news",1]`}
	if _, err := decodeEntry("/x", redis.XMessage{ID: "1-0", Values: ok}); err != nil {
		t.Fatalf("valid entry: %v", err)
	}
	bad := []map[string]any{
		{},
		{"t": "3", "d": `[1]`},
		{"t": "2"},
		{"t": "2", "d": `{"a":1}`},
		{"t": "2", "d": `["x"`},
		{"t": "2", "d": `["x"]`, "r": "nope"},
		{"t": "2", "d": `["x"]`, "x": "[1]"},
		{"t": "5", "d": `["x",{"_placeholder":true,"num":0}]`},
		{"t": "5", "d": `["x"]`, "n": "2", "a0": "b"},
		{"t": "2", "d": `["x"]`, "n": "1", "a0": "b"},
		{"t": "5", "d": `["x"]`, "n": "100000"},
		{"t": "2", "d": `["x"]`, "n": "-1"},
	}
	for _, v := range bad {
		if _, err := decodeEntry("/x", redis.XMessage{ID: "1-0", Values: v}); err == nil {
			t.Errorf("decodeEntry(%v) = nil error", v)
		}
	}
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"1-0", "1700000000000-12", "", "x-y", "1--1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, seq, ok := parseID(s)
		if ok && compareIDs(s, s) != 0 {
			t.Fatalf("%q not equal to itself", s)
		}
		_ = ms + seq
	})
}
