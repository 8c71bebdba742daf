package engineio

import (
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
)

// Request is what a session keeps of the HTTP request that opened it: its headers, query, host, remote
// address and whether it came over TLS. It is compact: the headers are one string rather than an
// http.Header map, the query stays raw, and all of it is one string in one allocation. A server that
// holds ten thousand idle sessions kept about 1.5 KB per session in the handshake request's header map,
// parsed query and context; a Request keeps the bytes of the header block, query, host and address, and
// 32 bytes. Header and Query parse on each call, and HeaderValue reads one header without allocating.
//
// The headers that only negotiate a WebSocket connection (Upgrade, Connection, Sec-WebSocket-Key,
// -Version and -Extensions) are not kept: they mean nothing once the connection is established, and a
// session that starts on polling and upgrades never has them either.
type Request struct {
	// all holds the query, host, remote address and header block, in this order; host, addr and header
	// are where the last three start. The header block holds each header field as "Name\x00value\x00",
	// names canonical (as in http.Header); the values of one name are in their order in the request.
	// HTTP/1.1 allows no NUL in names or values, and net/http refuses requests with one.
	all                string
	host, addr, header uint32
	secure             bool
}

// negotiationHeaders are the headers of a WebSocket handshake that a Request does not keep.
var negotiationHeaders = []string{
	"Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions",
}

// requestOf returns the part of r a session keeps.
func requestOf(r *http.Request) Request {
	kept := func(name string) bool { return !slices.Contains(negotiationHeaders, name) }
	n := len(r.URL.RawQuery) + len(r.Host) + len(r.RemoteAddr)
	for name, values := range r.Header {
		if kept(name) {
			for _, v := range values {
				n += len(name) + len(v) + 2
			}
		}
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(r.URL.RawQuery)
	b.WriteString(r.Host)
	b.WriteString(r.RemoteAddr)
	for name, values := range r.Header {
		if !kept(name) {
			continue
		}
		for _, v := range values {
			b.WriteString(name)
			b.WriteByte(0)
			b.WriteString(v)
			b.WriteByte(0)
		}
	}
	host := uint32(len(r.URL.RawQuery))
	addr := host + uint32(len(r.Host))
	return Request{
		all: b.String(), host: host, addr: addr, header: addr + uint32(len(r.RemoteAddr)), secure: r.TLS != nil,
	}
}

// RawQuery returns the handshake URL's query, without '?'.
func (r *Request) RawQuery() string { return r.all[:r.host] }

// Host returns the Host header (or the request line's authority).
func (r *Request) Host() string { return r.all[r.host:r.addr] }

// RemoteAddr returns the client's "ip:port", as net/http gives it.
func (r *Request) RemoteAddr() string { return r.all[r.addr:r.header] }

// Secure reports whether the request came over TLS.
func (r *Request) Secure() bool { return r.secure }

// fields calls f with each header field until f returns false.
func (r *Request) fields(f func(name, value string) bool) {
	rest := r.all[r.header:]
	for rest != "" {
		name, after, _ := strings.Cut(rest, "\x00")
		value, after2, _ := strings.Cut(after, "\x00")
		rest = after2
		if !f(name, value) {
			return
		}
	}
}

// Header returns the request's headers, as a new map the caller may keep or change.
func (r *Request) Header() http.Header {
	h := http.Header{}
	r.fields(func(name, value string) bool {
		h[name] = append(h[name], value)
		return true
	})
	return h
}

// HeaderValue returns the first value of header name (case-insensitive, as http.Header.Get), or "".
func (r *Request) HeaderValue(name string) string {
	name = textproto.CanonicalMIMEHeaderKey(name)
	var found string
	r.fields(func(n, v string) bool {
		if n == name {
			found = v
			return false
		}
		return true
	})
	return found
}

// Query returns the handshake URL's query parameters, as a new map. Malformed pairs are skipped, as
// url.URL.Query does.
func (r *Request) Query() url.Values {
	q, _ := url.ParseQuery(r.RawQuery())
	return q
}

// queryValue returns the first value of key in the raw query, as url.ParseQuery(raw).Get(key) does,
// without allocating unless a key or value must be unescaped. Every request to the server is routed by
// three of its query parameters (transport, sid, EIO); parsing the whole query into url.Values made
// garbage of every handshake.
func queryValue(raw, key string) string {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue // ParseQuery skips a pair with a semicolon (an error) and an empty one
		}
		k, v, _ := strings.Cut(pair, "=")
		k, ok := unescapeQuery(k)
		if !ok || k != key {
			continue
		}
		if v, ok = unescapeQuery(v); ok {
			return v
		}
	}
	return ""
}

// unescapeQuery unescapes one query component as url.QueryUnescape does, allocating only when there is
// something to unescape; ok is false when the component is malformed.
func unescapeQuery(s string) (string, bool) {
	if !strings.ContainsAny(s, "%+") {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	return u, err == nil
}
