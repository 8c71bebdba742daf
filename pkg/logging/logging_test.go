package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/pkg/config"
	"github.com/classwaves/classwaves/pkg/traceid"
)

// logLine logs one record through a fresh debug logger and returns it decoded.
func logLine(t *testing.T, ctx context.Context, log func(ctx context.Context, l *slog.Logger)) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	l, err := New(&buf, "debug")
	if err != nil {
		t.Fatal(err)
	}
	log(ctx, l)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, buf.String())
	}
	return m
}

func TestFields(t *testing.T) {
	ctx := traceid.NewContext(context.Background(), "trace-1")
	ctx = WithUser(ctx, "u-1")
	ctx = WithFields(ctx, Fields{SessionID: "s-1", GroupID: "g-1"})
	before := time.Now()
	m := logLine(t, ctx, func(ctx context.Context, l *slog.Logger) {
		l.WarnContext(ctx, "group joined", "count", 3)
	})

	ts, ok := m["timestamp"].(string)
	if !ok {
		t.Fatalf("timestamp missing: %v", m)
	}
	parsed, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || !strings.HasSuffix(ts, "Z") || parsed.Before(before.Add(-time.Second)) {
		t.Errorf("timestamp = %q, want RFC3339Nano UTC of now (err %v)", ts, err)
	}
	delete(m, "timestamp")
	want := map[string]any{
		"level": "warn", "msg": "group joined", "count": float64(3),
		"requestId": "trace-1", "userId": "u-1", "sessionId": "s-1", "groupId": "g-1",
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("record mismatch (-want +got):\n%s", diff)
	}
}

func TestContextFieldsStayTopLevelInGroups(t *testing.T) {
	ctx := WithSession(traceid.NewContext(context.Background(), "t-2"), "s-2")
	m := logLine(t, ctx, func(ctx context.Context, l *slog.Logger) {
		l.With("component", "stt").WithGroup("window").With("seq", 4).InfoContext(ctx, "flushed", "bytes", 10)
	})
	delete(m, "timestamp")
	want := map[string]any{
		"level": "info", "msg": "flushed", "component": "stt", "requestId": "t-2", "sessionId": "s-2",
		"window": map[string]any{"seq": float64(4), "bytes": float64(10)},
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("record mismatch (-want +got):\n%s", diff)
	}
}

func TestWithFieldsMerges(t *testing.T) {
	ctx := WithFields(context.Background(), Fields{UserID: "u", SessionID: "s"})
	ctx = WithGroup(ctx, "g")
	ctx = WithFields(ctx, Fields{SessionID: "s2"})
	if got, want := FieldsFromContext(ctx), (Fields{UserID: "u", SessionID: "s2", GroupID: "g"}); got != want {
		t.Errorf("FieldsFromContext() = %+v, want %+v", got, want)
	}
}

func TestLevels(t *testing.T) {
	tests := []struct {
		level   string
		wantErr string
		logged  []string // levels that reach the output, of debug/info/warn/error
	}{
		{level: "debug", logged: []string{"debug", "info", "warn", "error"}},
		{level: "info", logged: []string{"info", "warn", "error"}},
		{level: "WARN", logged: []string{"warn", "error"}},
		{level: "error", logged: []string{"error"}},
		{level: "silent"},
		{level: "verbose", wantErr: `LOG_LEVEL must be one of debug, info, warn, error, silent; got "verbose"`},
		{level: "", wantErr: `LOG_LEVEL must be one of debug, info, warn, error, silent; got ""`},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := New(&buf, tt.level)
			if vErr := (Config{Level: tt.level}).Validate(); fmt.Sprint(vErr) != fmt.Sprint(err) {
				t.Errorf("Validate() = %v, New() error = %v; want the same", vErr, err)
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("New() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New() error = %v", err)
			}
			l.Debug("m")
			l.Info("m")
			l.Warn("m")
			l.Error("m")
			l.Log(context.Background(), slog.LevelError+4, "m")
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if line == "" {
					continue
				}
				var m struct{ Level string }
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatal(err)
				}
				got = append(got, m.Level)
			}
			want := tt.logged
			if len(want) > 0 {
				want = append(want, "error") // ERROR+4 is written as error
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("levels written (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigFlag(t *testing.T) {
	var c Config
	f := config.NewFlagSet("t", config.MapEnv(map[string]string{"LOG_LEVEL": "debug"}))
	c.RegisterFlags(f)
	if err := f.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if c.Level != "debug" {
		t.Errorf("Level = %q, want debug from LOG_LEVEL", c.Level)
	}
}

type profile struct {
	Name        string            `json:"name"`
	Email       string            `json:"email"`
	Note        string            `json:"note"`
	AccessToken string            `json:"accessToken"`
	Headers     map[string]string `json:"headers"`
	Tags        []string          `json:"tags"`
	Age         int               `json:"age"`
}

type stringer struct{ s string }

func (s stringer) MarshalText() ([]byte, error) { return []byte(s.s), nil }

type panicky struct{}

func (panicky) MarshalJSON() ([]byte, error) { panic("boom") }

type myErr struct{ msg string }

func (e *myErr) Error() string { return e.msg }

const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0MSJ9.c2lnbmF0dXJl"

func TestRedaction(t *testing.T) {
	var nilErr *myErr
	tests := []struct {
		name string
		log  func(ctx context.Context, l *slog.Logger)
		want map[string]any // compared without timestamp/level
	}{
		{
			"sensitive keys in any spelling",
			func(ctx context.Context, l *slog.Logger) {
				l.Info("m", "authorization", "Basic dXNlcjpw", "Cookie", "sid=1", "set-cookie", "a=b",
					"token", 1, "accessToken", "a", "refresh_token", "r", "x-api-key", "k", "apiKey", "k",
					"password", "p", "clientSecret", "s", "email", "x", "parentEmail", "y", "ip", "z",
					"clientIp", "z", "remoteAddr", "z", "X-Forwarded-For", "z",
					"promptTokens", 42, "emailVerified", true, "membership", "gold", "sessionId", "s-9")
			},
			map[string]any{
				"msg": "m", "authorization": "[REDACTED]", "Cookie": "[REDACTED]", "set-cookie": "[REDACTED]",
				"token": "[REDACTED]", "accessToken": "[REDACTED]", "refresh_token": "[REDACTED]",
				"x-api-key": "[REDACTED]", "apiKey": "[REDACTED]", "password": "[REDACTED]",
				"clientSecret": "[REDACTED]", "email": "[REDACTED]", "parentEmail": "[REDACTED]",
				"ip": "[REDACTED]", "clientIp": "[REDACTED]", "remoteAddr": "[REDACTED]",
				"X-Forwarded-For": "[REDACTED]", "promptTokens": float64(42),
				"emailVerified": true, "membership": "gold", "sessionId": "s-9",
			},
		},
		{
			"patterns inside strings and the message",
			func(ctx context.Context, l *slog.Logger) {
				l.Info("login by ana@school.org from 10.0.0.7",
					"detail", "header Bearer abc.DEF-123 and "+jwt+" from 2001:db8::1 at 12:30:45",
					"dsn", "postgres://cw:hunter2@db.internal:5432/cw")
			},
			map[string]any{
				"msg":    "login by [REDACTED_EMAIL] from [REDACTED_IP]",
				"detail": "header [REDACTED_TOKEN] and [REDACTED_TOKEN] from [REDACTED_IP] at 12:30:45",
				"dsn":    "postgres://[REDACTED]@db.internal:5432/cw",
			},
		},
		{
			"nested groups",
			func(ctx context.Context, l *slog.Logger) {
				l.Info("m", slog.Group("req", "path", "/x", slog.Group("headers", "Authorization", "Bearer t", "Accept", "a@b.io")),
					slog.Group("cookie", "sid", "1"))
			},
			map[string]any{
				"msg": "m",
				"req": map[string]any{"path": "/x", "headers": map[string]any{"Authorization": "[REDACTED]", "Accept": "[REDACTED_EMAIL]"}},
				// A sensitive group hides every member.
				"cookie": map[string]any{"sid": "[REDACTED]"},
			},
		},
		{
			"logger attributes",
			func(ctx context.Context, l *slog.Logger) {
				l.With("teacher", "t@x.edu", "password", "p").WithGroup("g").With("ip", "1.2.3.4").Info("m")
			},
			map[string]any{"msg": "m", "teacher": "[REDACTED_EMAIL]", "password": "[REDACTED]", "g": map[string]any{"ip": "[REDACTED]"}},
		},
		{
			"values of any type",
			func(ctx context.Context, l *slog.Logger) {
				l.Info("m",
					"profile", profile{
						Name: "Ana", Email: "ana@school.org", Note: "call 192.168.1.20", AccessToken: "tok",
						Headers: map[string]string{"Cookie": "c", "Via": "jo@x.io"}, Tags: []string{"b@c.de", "ok"}, Age: 12,
					},
					"header", http.Header{"Authorization": {"Bearer x"}, "Accept": {"json"}},
					"addr", netip.MustParseAddr("203.0.113.9"),
					"text", stringer{"mail me: z@z.com"},
					"list", []any{1, "2001:db8::2", nil},
				)
			},
			map[string]any{
				"msg": "m",
				"profile": map[string]any{
					"name": "Ana", "email": "[REDACTED]", "note": "call [REDACTED_IP]", "accessToken": "[REDACTED]",
					"headers": map[string]any{"Cookie": "[REDACTED]", "Via": "[REDACTED_EMAIL]"},
					"tags":    []any{"[REDACTED_EMAIL]", "ok"}, "age": float64(12),
				},
				"header": map[string]any{"Authorization": "[REDACTED]", "Accept": []any{"json"}},
				"addr":   "[REDACTED_IP]",
				"text":   "mail me: [REDACTED_EMAIL]",
				"list":   []any{float64(1), "[REDACTED_IP]", nil},
			},
		},
		{
			"errors by message",
			func(ctx context.Context, l *slog.Logger) {
				l.Error("m", "err", fmt.Errorf("dial 10.1.2.3:5432: %w", errors.New("user bo@x.org denied")),
					"nilErr", nilErr, "panics", panicky{})
			},
			map[string]any{
				"msg": "m", "err": "dial [REDACTED_IP]:5432: user [REDACTED_EMAIL] denied",
				"nilErr": "<nil>", "panics": "!PANIC: boom",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := logLine(t, context.Background(), tt.log)
			delete(m, "timestamp")
			delete(m, "level")
			if diff := cmp.Diff(tt.want, m); diff != "" {
				t.Errorf("record mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"plain text, nothing to hide.", "plain text, nothing to hide."},
		{"contact ana.maria+tag@school.k12.ca.us now", "contact [REDACTED_EMAIL] now"},
		{"josé@escuela.es", "[REDACTED_EMAIL]"},
		{"user@localhost", "user@localhost"},
		{"authorization: bearer abc/def+ghi==", "authorization: [REDACTED_TOKEN]"},
		{"the bearer of news", "the [REDACTED_TOKEN] news"},
		{"token=" + jwt + ";", "token=[REDACTED_TOKEN];"},
		{"version 1.2.3 and www.example.com", "version 1.2.3 and www.example.com"},
		{"from 192.168.0.1:8080.", "from [REDACTED_IP]:8080."},
		{"::1", "[REDACTED_IP]"},
		{"peer [fe80::1%eth0]:443", "peer [[REDACTED_IP]]:443"},
		{"mapped ::ffff:10.0.0.1 here", "mapped [REDACTED_IP] here"},
		{"from ::1.", "from [REDACTED_IP]."},
		{"at 12:30:45.123 on aa:bb:cc:dd:ee:ff", "at 12:30:45.123 on aa:bb:cc:dd:ee:ff"},
		{"std::vector", "std::vector"},
		{"redis://:pw@cache:6379", "redis://:pw@cache:6379"},
		{"https://u:p@a.b/c", "https://[REDACTED]@a.b/c"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSensitiveKey(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"Authorization", true}, {"proxy-authorization", true}, {"COOKIE", true}, {"set_cookie", true},
		{"token", true}, {"id_token", true}, {"csrfToken", true}, {"x-api-key", true}, {"api_key", true},
		{"newPassword", true}, {"jwt_secret", true}, {"email", true}, {"student.email", true},
		{"ip", true}, {"client_ip", true}, {"remote-addr", true}, {"x-real-ip", true},
		{strings.Repeat("x", 100) + "password", true},
		{"promptTokens", false}, {"emailVerified", false}, {"zip", false}, {"relationship", false},
		{"sessionId", false}, {"userId", false}, {"route", false}, {"", false},
	}
	for _, tt := range tests {
		if got := SensitiveKey(tt.key); got != tt.want {
			t.Errorf("SensitiveKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

func TestDiscard(t *testing.T) {
	l := Discard()
	if l.Enabled(context.Background(), slog.LevelError) {
		t.Error("Discard() logger is enabled for errors")
	}
	l.Error("dropped") // must not panic
}

func TestRecordSharedWithOtherHandlers(t *testing.T) {
	// A record handed to several handlers must be unchanged by ours.
	var a, b bytes.Buffer
	ha, hb := NewHandler(&a, slog.LevelInfo), slog.NewJSONHandler(&b, nil)
	ctx := WithUser(context.Background(), "u")
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "m", 0)
	for i := range 8 {
		r.AddAttrs(slog.Int(fmt.Sprint("k", i), i))
	}
	if err := ha.Handle(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := hb.Handle(ctx, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "userId") {
		t.Errorf("context field leaked into the record seen by another handler: %s", b.String())
	}
}
