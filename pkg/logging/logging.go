// Package logging builds the service's slog JSON loggers with the seed's field names (timestamp,
// level, msg, requestId, userId, sessionId, groupId) and redacts secrets and personal data inside
// the handler, so no call site can leak them by forgetting to.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/classwaves/classwaves/pkg/config"
	"github.com/classwaves/classwaves/pkg/traceid"
)

// Field names written by every record, as the seed's logger writes them.
const (
	TimestampKey = "timestamp"
	LevelKey     = "level"
	MessageKey   = "msg"
	RequestIDKey = "requestId"
	UserIDKey    = "userId"
	SessionIDKey = "sessionId"
	GroupIDKey   = "groupId"
)

// Levels accepted by LOG_LEVEL, in the order listed in messages.
var levelNames = []string{"debug", "info", "warn", "error", "silent"}

// Config is the logging component's configuration.
type Config struct {
	// Level is LOG_LEVEL: debug, info, warn, error or silent.
	Level string
}

// RegisterFlags registers -log.level (env LOG_LEVEL, default info).
func (c *Config) RegisterFlags(f *config.FlagSet) {
	f.String(&c.Level, "log.level", "LOG_LEVEL", "info", "log verbosity: debug, info, warn, error or silent")
}

// Validate reports an unknown level:
// `LOG_LEVEL must be one of debug, info, warn, error, silent; got "verbose"`.
func (c Config) Validate() error {
	_, _, err := parseLevel(c.Level)
	return err
}

// parseLevel maps a LOG_LEVEL value (case-insensitive) to a slog level; silent reports true.
func parseLevel(s string) (level slog.Level, silent bool, err error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, false, nil
	case "info":
		return slog.LevelInfo, false, nil
	case "warn", "warning":
		return slog.LevelWarn, false, nil
	case "error":
		return slog.LevelError, false, nil
	case "silent":
		return 0, true, nil
	}
	return 0, false, config.OneOf("LOG_LEVEL", s, levelNames...)
}

// New returns a JSON logger writing to w at the given LOG_LEVEL. "silent" discards everything; an
// unknown level is an error (the same message as Config.Validate).
func New(w io.Writer, level string) (*slog.Logger, error) {
	lvl, silent, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	if silent {
		return Discard(), nil
	}
	return slog.New(NewHandler(w, lvl)), nil
}

// Discard returns a logger that drops every record, for tests and LOG_LEVEL=silent.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// NewHandler returns the redacting JSON handler behind New, for callers that need a dynamic level
// (a *slog.LevelVar) or want to wrap it.
func NewHandler(w io.Writer, level slog.Leveler) slog.Handler {
	base := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr})
	return &handler{base: base, inner: base}
}

// handler adds the context's correlation fields to each record and delegates to a JSON handler
// whose ReplaceAttr renames the built-in fields and redacts every attribute.
type handler struct {
	base  slog.Handler // without the logger's attributes and groups
	inner slog.Handler // base with ops applied
	// ops records WithAttrs/WithGroup calls. Context fields belong at the top level, which a handler
	// with an open group cannot reach, so records from grouped loggers replay ops on a base handler
	// that first received the context fields. Ungrouped loggers (the common case) take the fast path.
	ops     []op
	grouped bool
}

type op struct {
	group string
	attrs []slog.Attr
}

var _ slog.Handler = (*handler)(nil)

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return &handler{
		base:    h.base,
		inner:   h.inner.WithAttrs(attrs),
		ops:     append(h.ops[:len(h.ops):len(h.ops)], op{attrs: attrs}),
		grouped: h.grouped,
	}
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &handler{
		base:    h.base,
		inner:   h.inner.WithGroup(name),
		ops:     append(h.ops[:len(h.ops):len(h.ops)], op{group: name}),
		grouped: true,
	}
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	var buf [4]slog.Attr
	attrs := contextAttrs(ctx, buf[:0])
	if len(attrs) == 0 {
		return h.inner.Handle(ctx, r)
	}
	if !h.grouped {
		r = r.Clone() // r may be shared with other handlers; never append to its storage
		r.AddAttrs(attrs...)
		return h.inner.Handle(ctx, r)
	}
	hh := h.base.WithAttrs(attrs)
	for _, o := range h.ops {
		if o.group != "" {
			hh = hh.WithGroup(o.group)
		} else {
			hh = hh.WithAttrs(o.attrs)
		}
	}
	return hh.Handle(ctx, r)
}

// replaceAttr renames and formats the built-in fields the seed's way and redacts everything else.
func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 {
		switch a.Key {
		case slog.TimeKey:
			if a.Value.Kind() == slog.KindTime {
				return slog.String(TimestampKey, a.Value.Time().UTC().Format(time.RFC3339Nano))
			}
		case slog.LevelKey:
			if l, ok := a.Value.Any().(slog.Level); ok {
				return slog.String(LevelKey, levelName(l))
			}
		case slog.MessageKey:
			return slog.String(MessageKey, Redact(a.Value.String()))
		}
	}
	if SensitiveKey(a.Key) {
		return slog.String(a.Key, redacted)
	}
	for _, g := range groups {
		if SensitiveKey(g) {
			return slog.String(a.Key, redacted)
		}
	}
	switch a.Value.Kind() {
	case slog.KindString:
		s := a.Value.String()
		if r := Redact(s); r != s {
			a.Value = slog.StringValue(r)
		}
	case slog.KindAny:
		a.Value = slog.AnyValue(redactAny(a.Value.Any()))
	}
	return a
}

// levelName lower-cases slog's level names; levels between the named ones round down.
func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	default:
		return "error"
	}
}

// Fields are the correlation ids a request carries into every log line.
type Fields struct {
	UserID    string
	SessionID string
	GroupID   string
}

type fieldsKey struct{}

// WithFields returns ctx carrying f merged over the fields ctx already has: empty members of f
// leave the existing values in place.
func WithFields(ctx context.Context, f Fields) context.Context {
	cur := FieldsFromContext(ctx)
	if f.UserID != "" {
		cur.UserID = f.UserID
	}
	if f.SessionID != "" {
		cur.SessionID = f.SessionID
	}
	if f.GroupID != "" {
		cur.GroupID = f.GroupID
	}
	return context.WithValue(ctx, fieldsKey{}, cur)
}

// WithUser returns ctx whose log lines carry userId.
func WithUser(ctx context.Context, id string) context.Context {
	return WithFields(ctx, Fields{UserID: id})
}

// WithSession returns ctx whose log lines carry sessionId.
func WithSession(ctx context.Context, id string) context.Context {
	return WithFields(ctx, Fields{SessionID: id})
}

// WithGroup returns ctx whose log lines carry groupId (a student group, not a slog group).
func WithGroup(ctx context.Context, id string) context.Context {
	return WithFields(ctx, Fields{GroupID: id})
}

// FieldsFromContext returns the fields carried by ctx (zero when none).
func FieldsFromContext(ctx context.Context) Fields {
	f, _ := ctx.Value(fieldsKey{}).(Fields)
	return f
}

// contextAttrs appends ctx's requestId, userId, sessionId and groupId (those that are set) to dst.
func contextAttrs(ctx context.Context, dst []slog.Attr) []slog.Attr {
	if ctx == nil {
		return dst
	}
	if id := traceid.FromContext(ctx); id != "" {
		dst = append(dst, slog.String(RequestIDKey, id))
	}
	f := FieldsFromContext(ctx)
	if f.UserID != "" {
		dst = append(dst, slog.String(UserIDKey, f.UserID))
	}
	if f.SessionID != "" {
		dst = append(dst, slog.String(SessionIDKey, f.SessionID))
	}
	if f.GroupID != "" {
		dst = append(dst, slog.String(GroupIDKey, f.GroupID))
	}
	return dst
}
