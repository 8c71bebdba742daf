package traceid

import (
	"context"
	"strings"
	"testing"
)

func TestPick(t *testing.T) {
	tests := []struct {
		name       string
		candidates []string
		want       string // "" means a freshly minted id is expected
	}{
		{"first valid wins", []string{"abc-123", "other"}, "abc-123"},
		{"falls back to second", []string{"", "req.42"}, "req.42"},
		{"trims spaces", []string{"  t1  "}, "t1"},
		{"rejects injection", []string{"a\r\nSet-Cookie: x"}, ""},
		{"rejects too long", []string{strings.Repeat("a", 129)}, ""},
		{"none given", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Pick(tt.candidates...)
			if tt.want != "" {
				if got != tt.want {
					t.Errorf("Pick() = %q, want %q", got, tt.want)
				}
				return
			}
			if len(got) != 32 || !Valid(got) {
				t.Errorf("Pick() = %q, want a new 32-char hex id", got)
			}
		})
	}
}

func TestContextRoundTrip(t *testing.T) {
	ctx := NewContext(context.Background(), "id-1")
	if got, want := FromContext(ctx), "id-1"; got != want {
		t.Errorf("FromContext() = %q, want %q", got, want)
	}
	if got := FromContext(context.Background()); got != "" {
		t.Errorf("FromContext(empty) = %q, want empty", got)
	}
	if New() == New() {
		t.Error("New() returned the same id twice")
	}
}

func FuzzValid(f *testing.F) {
	f.Add("abc")
	f.Add("a\nb")
	f.Fuzz(func(t *testing.T, s string) {
		if Valid(s) && strings.ContainsAny(s, "\r\n \t\"") {
			t.Errorf("Valid(%q) accepted a control or quote character", s)
		}
	})
}
