package ratelimit

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// parseTrusted parses TRUSTED_PROXIES entries: IPs or CIDRs.
func parseTrusted(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for _, e := range entries {
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			return nil, fmt.Errorf("TRUSTED_PROXIES has %q, which is neither an IP address nor a CIDR such as 10.0.0.0/8", e)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// ClientIP finds the client of a request: the TCP peer, or, when the peer is a trusted proxy, the
// nearest address in X-Forwarded-For that is not a trusted proxy (read right to left, since each
// proxy appends the peer it saw and only the proxies' own entries can be believed).
type ClientIP struct {
	trusted []netip.Prefix
}

// NewClientIP returns the resolver for the given trusted proxies (IPs or CIDRs).
func NewClientIP(trustedProxies []string) (*ClientIP, error) {
	t, err := parseTrusted(trustedProxies)
	if err != nil {
		return nil, err
	}
	return &ClientIP{trusted: t}, nil
}

func (c *ClientIP) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Addr returns the client address of r, or false when not even the peer address parses.
func (c *ClientIP) Addr(r *http.Request) (netip.Addr, bool) {
	peer, ok := parseHostPort(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, false
	}
	if len(c.trusted) == 0 || !c.isTrusted(peer) {
		return peer, true
	}
	client := peer
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHostPort(strings.TrimSpace(hops[i]))
		if !ok {
			// A trusted proxy wrote something unreadable: believe nothing further left.
			return client, true
		}
		if !c.isTrusted(a) {
			return a, true
		}
		client = a
	}
	return client, true
}

// Key returns the rate limit key of r's client: the IPv4 address, or the /64 of an IPv6 address
// (one subscriber usually holds a whole /64 and could otherwise rotate through it). A request
// whose peer address does not parse (not a TCP connection) shares the key "unknown".
func (c *ClientIP) Key(r *http.Request) string {
	a, ok := c.Addr(r)
	if !ok {
		return "unknown"
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// parseHostPort parses "ip", "ip:port" or "[ipv6]:port", dropping any IPv6 zone and unmapping
// IPv4-mapped IPv6 addresses.
func parseHostPort(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone("").Unmap(), true
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}
