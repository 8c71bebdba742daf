package store

import (
	"strings"
	"testing"
	"time"
)

func TestCursorRoundTrip(t *testing.T) {
	c := Cursor{At: time.Date(2026, 11, 25, 9, 0, 0, 123456000, time.UTC), ID: "6f1c7a52-8a0e-4c1e-9d7b-2f9a1d2c3b4a"}
	got, err := DecodeCursor(EncodeCursor(c))
	if err != nil || !got.At.Equal(c.At) || got.ID != c.ID {
		t.Fatalf("DecodeCursor(EncodeCursor(%v)) = %v, %v", c, got, err)
	}
	for _, bad := range []string{"", "!!", "djF8MXwy", EncodeCursor(Cursor{ID: "not-a-uuid"}), EncodeCursor(Cursor{ID: strings.ToUpper(c.ID)})} {
		if _, err := DecodeCursor(bad); err == nil {
			t.Errorf("DecodeCursor(%q) succeeded", bad)
		}
	}
}

func TestTimeScan(t *testing.T) {
	want := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	for _, v := range []any{want.In(time.FixedZone("x", 3600)), want.UnixMicro()} {
		var d Time
		if err := d.Scan(v); err != nil || !d.T.Equal(want) || d.T.Location() != time.UTC {
			t.Errorf("Scan(%v) = %v, %v; want %v UTC", v, d.T, err, want)
		}
	}
	var d Time
	if err := d.Scan("2026"); err == nil {
		t.Error("Scan(string) succeeded")
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor(Cursor{ID: "6f1c7a52-8a0e-4c1e-9d7b-2f9a1d2c3b4a"}))
	f.Add("!!")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := DecodeCursor(tok)
		if err != nil {
			return
		}
		again, err := DecodeCursor(EncodeCursor(c))
		if err != nil || again != c {
			t.Errorf("round trip of %q: %v, %v", tok, again, err)
		}
	})
}
