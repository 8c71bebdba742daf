package ratelimit

import (
	"net/http/httptest"
	"testing"
)

func TestClientIP(t *testing.T) {
	tests := []struct {
		name    string
		trusted []string
		remote  string
		xff     []string
		want    string
	}{
		{"peer", nil, "203.0.113.7:5000", nil, "203.0.113.7"},
		{"XFF ignored without trusted proxies", nil, "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"XFF ignored from an untrusted peer", []string{"10.0.0.0/8"}, "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"nearest untrusted hop", []string{"10.0.0.0/8"}, "10.0.0.5:5000", []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{"trusted hops skipped", []string{"10.0.0.0/8"}, "10.0.0.5:5000", []string{"203.0.113.9, 10.0.0.2"}, "203.0.113.9"},
		{"spoofed left entries ignored", []string{"10.0.0.0/8"}, "10.0.0.5:5000", []string{"1.1.1.1, 203.0.113.9"}, "203.0.113.9"},
		{"several XFF headers", []string{"10.0.0.0/8"}, "10.0.0.5:5000", []string{"198.51.100.1", "203.0.113.9, 10.0.0.3"}, "203.0.113.9"},
		{"all trusted: the leftmost", []string{"10.0.0.0/8"}, "10.0.0.5:5000", []string{"10.1.1.1, 10.0.0.2"}, "10.1.1.1"},
		{"no XFF from a trusted peer", []string{"10.0.0.5"}, "10.0.0.5:5000", nil, "10.0.0.5"},
		{"garbage stops the walk", []string{"10.0.0.0/8"}, "10.0.0.5:5000", []string{"203.0.113.9, garbage"}, "10.0.0.5"},
		{"XFF entry with a port", []string{"10.0.0.0/8"}, "10.0.0.5:5000", []string{"203.0.113.9:4711"}, "203.0.113.9"},
		{"IPv6 peer keyed by /64", nil, "[2001:db8:1:2:3:4:5:6]:443", nil, "2001:db8:1:2::/64"},
		{"IPv4-mapped IPv6", nil, "[::ffff:203.0.113.7]:443", nil, "203.0.113.7"},
		{"IPv6 zone dropped", nil, "[fe80::1%eth0]:443", nil, "fe80::/64"},
		{"trusted IPv6 proxy", []string{"2001:db8::/32"}, "[2001:db8::1]:443", []string{"203.0.113.9"}, "203.0.113.9"},
		{"not a TCP peer", nil, "@", nil, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClientIP(tt.trusted)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := c.Key(r); got != tt.want {
				t.Errorf("Key() = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzClientIP: no peer address or X-Forwarded-For header panics the resolver.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.5:1", "203.0.113.9, 10.0.0.2")
	f.Add("[::1]:1", "[2001:db8::1]:80,,, ,garbage")
	f.Add("", "")
	c, err := NewClientIP([]string{"10.0.0.0/8", "::1"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		if c.Key(r) == "" {
			t.Fatal("Key() = \"\"")
		}
	})
}
