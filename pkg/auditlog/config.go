package auditlog

import (
	"time"

	"github.com/classwaves/classwaves/pkg/config"
)

// Config configures the client every service uses to enqueue audit events. The env names and
// defaults are the seed's ("Audit Log Worker (Async, Batched)").
type Config struct {
	// StreamKey is the bus topic audit events are published to (AUDIT_LOG_STREAM_KEY, default
	// audit:log). The audit service's worker reads the same topic.
	StreamKey string
	// MaxBacklog is how many unconsumed events the stream may hold before the client drops new
	// ones instead of growing it (AUDIT_LOG_MAX_BACKLOG, default 50000; 0 means no limit).
	MaxBacklog int
	// EnqueueTimeout bounds how long Log may hold the caller (AUDIT_LOG_ENQUEUE_TIMEOUT_MS, default
	// 50 ms). An event that cannot be enqueued within it is dropped and counted.
	EnqueueTimeout time.Duration
	// HashUserAgent stores the hex SHA-256 of the user agent instead of the user agent itself
	// (AUDIT_HASH_USER_AGENT, default 1).
	HashUserAgent bool
}

// Defaults, from the seed.
const (
	DefaultStreamKey      = "audit:log"
	DefaultMaxBacklog     = 50000
	DefaultEnqueueTimeout = 50 * time.Millisecond
)

// DefaultConfig returns the seed's defaults, for tests and for callers that do not parse flags.
func DefaultConfig() Config {
	return Config{
		StreamKey:      DefaultStreamKey,
		MaxBacklog:     DefaultMaxBacklog,
		EnqueueTimeout: DefaultEnqueueTimeout,
		HashUserAgent:  true,
	}
}

// RegisterFlags registers -audit.stream-key (AUDIT_LOG_STREAM_KEY), -audit.max-backlog
// (AUDIT_LOG_MAX_BACKLOG), -audit.enqueue-timeout (AUDIT_LOG_ENQUEUE_TIMEOUT_MS) and
// -audit.hash-user-agent (AUDIT_HASH_USER_AGENT).
func (c *Config) RegisterFlags(f *config.FlagSet) {
	f.String(&c.StreamKey, "audit.stream-key", "AUDIT_LOG_STREAM_KEY", DefaultStreamKey,
		"bus stream audit events are enqueued to and the audit worker reads")
	f.Int(&c.MaxBacklog, "audit.max-backlog", "AUDIT_LOG_MAX_BACKLOG", DefaultMaxBacklog,
		"most unconsumed audit events the stream may hold before new ones are dropped (0: no limit)")
	f.DurationMS(&c.EnqueueTimeout, "audit.enqueue-timeout", "AUDIT_LOG_ENQUEUE_TIMEOUT_MS", DefaultEnqueueTimeout,
		"longest a request waits to enqueue an audit event before dropping it")
	f.Bool(&c.HashUserAgent, "audit.hash-user-agent", "AUDIT_HASH_USER_AGENT", true,
		"store the SHA-256 of the user agent instead of the user agent")
}

// Validate says exactly what is wrong, one problem per line, e.g.
// `AUDIT_LOG_ENQUEUE_TIMEOUT_MS must be positive, got 0s`.
func (c Config) Validate() error {
	return config.Join(
		config.Required("AUDIT_LOG_STREAM_KEY", c.StreamKey),
		config.NonNegative("AUDIT_LOG_MAX_BACKLOG", c.MaxBacklog),
		config.Positive("AUDIT_LOG_ENQUEUE_TIMEOUT_MS", c.EnqueueTimeout),
	)
}
