package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// keep maps s onto alphabet (dropping nothing, so the fuzzer's bytes still steer the shape) and
// falls back to def when s is empty.
func keep(s, alphabet, def string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(alphabet[int(s[i])%len(alphabet)])
	}
	if b.Len() == 0 {
		return def
	}
	return b.String()
}

// FuzzRedact checks that redaction never panics, that no email address survives it, and that an
// email planted in arbitrary text is always removed.
func FuzzRedact(f *testing.F) {
	f.Add("hello", "ana", "school", "org")
	f.Add("Bearer eyJa.eyJb.c to 10.0.0.1 and ::1 x@y.z", "a.b+c", "k12", "us")
	f.Add("postgres://u:p@h.x/db", "_", "-", "9")
	f.Add("\xff@\xfe.\x00", "'", "a", "b")
	f.Fuzz(func(t *testing.T, text, local, host, tld string) {
		if got := Redact(text); emailRe.MatchString(got) {
			t.Fatalf("Redact(%q) = %q still contains an email", text, got)
		}
		email := keep(local, "abcxyz019._+-'", "a") + "@" + keep(host, "abcxyz019-", "b") + "." + keep(tld, "abcxyz019", "c")
		for _, in := range []string{email, text + " " + email + " " + text, text + email + text} {
			got := Redact(in)
			if strings.Contains(got, email) || emailRe.MatchString(got) {
				t.Fatalf("Redact(%q) = %q still contains an email (planted %q)", in, got, email)
			}
		}
	})
}

// FuzzHandler checks that any message, key and value make one valid JSON line without an email.
func FuzzHandler(f *testing.F) {
	f.Add("msg a@b.co", "key", "value", "ana", "school", "org")
	f.Add("\x00\"\\", "password", "\xff", "x", "y", "z")
	f.Fuzz(func(t *testing.T, msg, key, val, local, host, tld string) {
		email := keep(local, "abcxyz019._+-'", "a") + "@" + keep(host, "abcxyz019-", "b") + "." + keep(tld, "abcxyz019", "c")
		var buf bytes.Buffer
		l := slog.New(NewHandler(&buf, slog.LevelDebug))
		ctx := WithUser(context.Background(), val)
		l.InfoContext(ctx, msg+email, key, val+email,
			slog.Group("g", key, map[string]any{key: []string{val, email}}),
			"err", errors.New(val+" "+email))
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatalf("invalid JSON: %v\n%s", err, buf.String())
		}
		if strings.Contains(buf.String(), email) {
			t.Fatalf("email %q survived: %s", email, buf.String())
		}
	})
}
