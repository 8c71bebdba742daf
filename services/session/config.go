package session

import (
	"time"

	"github.com/classwaves/classwaves/pkg/config"
)

// Defaults, from the seed where it names them.
const (
	// DefaultRetentionDays is RETENTION_DEFAULT_DAYS' default (~7 years).
	DefaultRetentionDays = 2555
	// DefaultDrainTimeout is AUDIO_DRAIN_TIMEOUT_MS' default.
	DefaultDrainTimeout = 750 * time.Millisecond
	// DefaultListLimit is the sessions list's page size when the request names none.
	DefaultListLimit = 20
	// DefaultAccessCodeLength is the length of generated access codes.
	DefaultAccessCodeLength = 6
	// DefaultEventsTopic is the bus topic of the service's events.
	DefaultEventsTopic = TopicEvents
)

// Config configures the session service. Env names are the seed's; those it does not name are
// marked new.
type Config struct {
	// RetentionDays is RETENTION_DEFAULT_DAYS: how long an ended session is kept before
	// PurgeExpiredSessions deletes it (default 2555).
	RetentionDays int
	// DrainTimeout is AUDIO_DRAIN_TIMEOUT_MS: how long EndSession waits for stt to drain the
	// session's open audio windows (default 750).
	DrainTimeout time.Duration
	// ListLimit is SESSION_LIST_DEFAULT_LIMIT (new): the sessions list's default page size (20).
	ListLimit int
	// AccessCodeLength is SESSION_ACCESS_CODE_LENGTH (new): characters in an access code, 4 to 12
	// (default 6).
	AccessCodeLength int
	// EventsTopic is SESSION_EVENTS_TOPIC (new): the bus topic session and group events are
	// published on (default session:events).
	EventsTopic string
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		RetentionDays:    DefaultRetentionDays,
		DrainTimeout:     DefaultDrainTimeout,
		ListLimit:        DefaultListLimit,
		AccessCodeLength: DefaultAccessCodeLength,
		EventsTopic:      DefaultEventsTopic,
	}
}

// RegisterFlags registers every setting as -session.* flags reading the env names above.
func (c *Config) RegisterFlags(f *config.FlagSet) {
	d := DefaultConfig()
	f.Int(&c.RetentionDays, "session.retention-days", "RETENTION_DEFAULT_DAYS", d.RetentionDays, "days an ended session is kept before it is purged")
	f.DurationMS(&c.DrainTimeout, "session.audio-drain-timeout", "AUDIO_DRAIN_TIMEOUT_MS", d.DrainTimeout, "how long ending a session waits for open audio windows to drain")
	f.Int(&c.ListLimit, "session.list-default-limit", "SESSION_LIST_DEFAULT_LIMIT", d.ListLimit, "default page size of the sessions list")
	f.Int(&c.AccessCodeLength, "session.access-code-length", "SESSION_ACCESS_CODE_LENGTH", d.AccessCodeLength, "characters in a session access code (4-12)")
	f.String(&c.EventsTopic, "session.events-topic", "SESSION_EVENTS_TOPIC", d.EventsTopic, "bus topic of session and group events")
}

// Validate reports every mistake, one per line.
func (c Config) Validate() error {
	return config.Join(
		config.Range("RETENTION_DEFAULT_DAYS", c.RetentionDays, 1, 36500),
		config.Range("AUDIO_DRAIN_TIMEOUT_MS", c.DrainTimeout.Milliseconds(), 1, 60000),
		config.Range("SESSION_LIST_DEFAULT_LIMIT", c.ListLimit, 1, 100),
		config.Range("SESSION_ACCESS_CODE_LENGTH", c.AccessCodeLength, 4, 12),
		config.Required("SESSION_EVENTS_TOPIC", c.EventsTopic),
	)
}
