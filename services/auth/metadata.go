package auth

import (
	"context"
	"net/http"

	"google.golang.org/grpc/metadata"
)

// Limits on what is read from request metadata.
const (
	maxCookieHeaders = 8
	maxCookieLen     = 4096
	maxUserAgentLen  = 512
)

// requestCookies returns the cookies of the request's "cookie" metadata (the gateway forwards the
// Cookie header under it). Malformed or oversized headers are skipped.
func requestCookies(ctx context.Context) []*http.Cookie {
	md, _ := metadata.FromIncomingContext(ctx)
	var out []*http.Cookie
	for i, line := range md.Get("cookie") {
		if i >= maxCookieHeaders {
			break
		}
		if len(line) > maxCookieLen {
			continue
		}
		cs, err := http.ParseCookie(line)
		if err != nil {
			continue
		}
		out = append(out, cs...)
	}
	return out
}

// userAgent returns the request's user agent, for the audit log (which keeps only its hash).
func userAgent(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("user-agent"); len(v) > 0 && len(v[0]) <= maxUserAgentLen {
		return v[0]
	}
	return ""
}
