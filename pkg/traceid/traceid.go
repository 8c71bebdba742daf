// Package traceid carries the request correlation id (the seed's X-Trace-Id, logged as requestId)
// through a context, and reads or mints it at the edges (HTTP headers, gRPC metadata).
package traceid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// Header names. HTTP headers are matched case-insensitively; gRPC metadata keys are lower case.
const (
	// Header is the response header every HTTP response carries and the preferred request header.
	Header = "X-Trace-Id"
	// RequestIDHeader is accepted on requests when X-Trace-Id is absent (seed behaviour).
	RequestIDHeader = "X-Request-Id"
	// MetadataKey carries the id between services in gRPC metadata.
	MetadataKey = "x-trace-id"
)

// maxLen bounds an incoming id: a longer or oddly shaped one is replaced, never echoed.
const maxLen = 128

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the id carried by ctx, or "".
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// New mints a random 128-bit id in lower-case hex (the W3C trace-id shape).
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Valid reports whether an id received from outside may be echoed back: 1 to 128 characters of
// letters, digits, '-', '_', '.' or ':'. Anything else (header injection, log forging) is refused.
func Valid(id string) bool {
	if id == "" || len(id) > maxLen {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("-_.:", r):
		default:
			return false
		}
	}
	return true
}

// Pick returns the first valid candidate, or a new id when none is valid.
func Pick(candidates ...string) string {
	for _, c := range candidates {
		if c = strings.TrimSpace(c); Valid(c) {
			return c
		}
	}
	return New()
}
