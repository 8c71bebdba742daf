package logging

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/classwaves/classwaves/pkg/traceid"
)

// BenchmarkHandler measures a log call through the redacting handler against slog's plain JSON
// handler, so the price of redaction and context fields is visible.
func BenchmarkHandler(b *testing.B) {
	ctx := WithFields(traceid.NewContext(context.Background(), traceid.New()),
		Fields{UserID: "u-123", SessionID: "s-456", GroupID: "g-789"})
	type payload struct {
		Name  string `json:"name"`
		Email string `json:"email"`
		Count int    `json:"count"`
	}
	cases := []struct {
		name string
		log  func(l *slog.Logger)
	}{
		{"plain", func(l *slog.Logger) {
			l.InfoContext(ctx, "transcript stored", "route", "/api/v1/sessions/{id}", "status", 200, "durationMs", 12)
		}},
		{"redacted strings", func(l *slog.Logger) {
			l.InfoContext(ctx, "login ana@school.org", "remote", "10.1.2.3", "authorization", "Bearer abc", "note", "from 2001:db8::1")
		}},
		{"struct and error", func(l *slog.Logger) {
			l.ErrorContext(ctx, "failed", "payload", payload{"Ana", "ana@school.org", 3}, "err", errors.New("dial 10.0.0.1:5432"))
		}},
		{"grouped logger", func(l *slog.Logger) {
			l.WithGroup("window").InfoContext(ctx, "flushed", "bytes", 4096)
		}},
	}
	handlers := []struct {
		name string
		h    slog.Handler
	}{
		{"redacting", NewHandler(io.Discard, slog.LevelInfo)},
		{"slog.JSONHandler", slog.NewJSONHandler(io.Discard, nil)},
	}
	for _, c := range cases {
		for _, h := range handlers {
			b.Run(c.name+"/"+h.name, func(b *testing.B) {
				l := slog.New(h.h).With("service", "session")
				b.ReportAllocs()
				for b.Loop() {
					c.log(l)
				}
			})
		}
	}
}

// BenchmarkRedact measures the string scanner alone on text with and without anything to hide.
func BenchmarkRedact(b *testing.B) {
	for _, s := range []string{
		"session created for group 4 with 5 members",
		"teacher ana@school.org joined from 192.168.1.20 with Bearer abc.def.ghi",
	} {
		b.Run(s[:16], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Redact(s)
			}
		})
	}
}
