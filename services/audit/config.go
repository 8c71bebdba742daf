package audit

import (
	"fmt"
	"os"
	"time"

	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/config"
)

// DLQ replay modes (AUDIT_DLQ_REPLAY_MODE).
const (
	// ReplayStream re-publishes dead-lettered events to the audit stream, so the worker stores
	// them (the default).
	ReplayStream = "stream"
	// ReplayDB stores dead-lettered events directly in compliance.audit_log.
	ReplayDB = "db"
)

// Config configures the audit service: the enqueueing client every service uses (Log) and the
// worker that stores the stream. Env names and defaults are the seed's.
type Config struct {
	// Log is the client side (AUDIT_LOG_STREAM_KEY, AUDIT_LOG_MAX_BACKLOG,
	// AUDIT_LOG_ENQUEUE_TIMEOUT_MS, AUDIT_HASH_USER_AGENT). RegisterFlags registers it too, so a
	// process registers the audit settings once and builds every service's auditlog.Client from
	// this field. The worker reads Log.StreamKey.
	Log auditlog.Config
	// ConsumerGroup is the worker's consumer group (AUDIT_LOG_CONSUMER_GROUP, default auditlog).
	ConsumerGroup string
	// ConsumerName names this worker in the group (AUDIT_LOG_CONSUMER_NAME, default
	// ${HOSTNAME}-audit-worker). A restarted worker with the same name re-reads what it had
	// taken but not acknowledged.
	ConsumerName string
	// BatchSize is the most events stored per insert (AUDIT_LOG_BATCH_SIZE, default 200).
	BatchSize int
	// BlockDuration is how long the worker waits for a batch to fill before storing what it has
	// (AUDIT_LOG_BLOCK_MS, default 2000 ms).
	BlockDuration time.Duration
	// NoisySampleRate is the share of events of noisy categories kept (AUDIT_NOISY_SAMPLE_RATE,
	// default 0.05); the others are counted in minute rollup rows.
	NoisySampleRate float64
	// NoisyHardCapPerMin is the most noisy events kept per session per minute
	// (AUDIT_NOISY_HARD_CAP_PER_MIN, default 100).
	NoisyHardCapPerMin int
	// DLQKey is the dead-letter stream (AUDIT_LOG_DLQ_KEY, default audit:log:dlq).
	DLQKey string
	// DBCooldown is how long the worker leaves the database alone after an insert failed
	// (AUDIT_LOG_DB_COOLDOWN_MS, default 10000 ms).
	DBCooldown time.Duration
	// DLQReplayMode is how `classwaves audit replay-dlq` replays (AUDIT_DLQ_REPLAY_MODE: stream,
	// the default, or db).
	DLQReplayMode string
}

// Defaults, from the seed.
const (
	DefaultConsumerGroup      = "auditlog"
	DefaultBatchSize          = 200
	DefaultBlockDuration      = 2000 * time.Millisecond
	DefaultNoisySampleRate    = 0.05
	DefaultNoisyHardCapPerMin = 100
	DefaultDLQKey             = "audit:log:dlq"
	DefaultDBCooldown         = 10000 * time.Millisecond
	// MaxBatchSize bounds AUDIT_LOG_BATCH_SIZE: one batch is one transaction.
	MaxBatchSize = 10000
)

// DefaultConsumerName is ${HOSTNAME}-audit-worker, with os.Hostname when HOSTNAME is unset.
func DefaultConsumerName() string {
	host := os.Getenv("HOSTNAME")
	if host == "" {
		host, _ = os.Hostname()
	}
	if host == "" {
		host = "classwaves"
	}
	return host + "-audit-worker"
}

// DefaultConfig returns the seed's defaults.
func DefaultConfig() Config {
	return Config{
		Log:                auditlog.DefaultConfig(),
		ConsumerGroup:      DefaultConsumerGroup,
		ConsumerName:       DefaultConsumerName(),
		BatchSize:          DefaultBatchSize,
		BlockDuration:      DefaultBlockDuration,
		NoisySampleRate:    DefaultNoisySampleRate,
		NoisyHardCapPerMin: DefaultNoisyHardCapPerMin,
		DLQKey:             DefaultDLQKey,
		DBCooldown:         DefaultDBCooldown,
		DLQReplayMode:      ReplayStream,
	}
}

// RegisterFlags registers the client's flags (see auditlog.Config.RegisterFlags) and
// -audit.consumer-group (AUDIT_LOG_CONSUMER_GROUP), -audit.consumer-name
// (AUDIT_LOG_CONSUMER_NAME), -audit.batch-size (AUDIT_LOG_BATCH_SIZE), -audit.block
// (AUDIT_LOG_BLOCK_MS), -audit.noisy-sample-rate (AUDIT_NOISY_SAMPLE_RATE),
// -audit.noisy-hard-cap-per-min (AUDIT_NOISY_HARD_CAP_PER_MIN), -audit.dlq-key
// (AUDIT_LOG_DLQ_KEY), -audit.db-cooldown (AUDIT_LOG_DB_COOLDOWN_MS) and -audit.dlq-replay-mode
// (AUDIT_DLQ_REPLAY_MODE).
func (c *Config) RegisterFlags(f *config.FlagSet) {
	c.Log.RegisterFlags(f)
	f.String(&c.ConsumerGroup, "audit.consumer-group", "AUDIT_LOG_CONSUMER_GROUP", DefaultConsumerGroup,
		"consumer group of the audit workers")
	f.String(&c.ConsumerName, "audit.consumer-name", "AUDIT_LOG_CONSUMER_NAME", DefaultConsumerName(),
		"this audit worker's name in its group (keep it stable across restarts)")
	f.Int(&c.BatchSize, "audit.batch-size", "AUDIT_LOG_BATCH_SIZE", DefaultBatchSize,
		"most audit events stored per insert")
	f.DurationMS(&c.BlockDuration, "audit.block", "AUDIT_LOG_BLOCK_MS", DefaultBlockDuration,
		"how long the audit worker waits for a batch to fill")
	f.Float64(&c.NoisySampleRate, "audit.noisy-sample-rate", "AUDIT_NOISY_SAMPLE_RATE", DefaultNoisySampleRate,
		"share (0..1) of noisy-category audit events kept; the rest are counted in minute rollups")
	f.Int(&c.NoisyHardCapPerMin, "audit.noisy-hard-cap-per-min", "AUDIT_NOISY_HARD_CAP_PER_MIN", DefaultNoisyHardCapPerMin,
		"most noisy-category audit events kept per session per minute")
	f.String(&c.DLQKey, "audit.dlq-key", "AUDIT_LOG_DLQ_KEY", DefaultDLQKey,
		"dead-letter stream for audit events that could not be stored")
	f.DurationMS(&c.DBCooldown, "audit.db-cooldown", "AUDIT_LOG_DB_COOLDOWN_MS", DefaultDBCooldown,
		"pause after a failed audit insert before the database is tried again")
	f.String(&c.DLQReplayMode, "audit.dlq-replay-mode", "AUDIT_DLQ_REPLAY_MODE", ReplayStream,
		"how `classwaves audit replay-dlq` replays: stream (back to the audit stream) or db (straight to the table)")
}

// Validate says exactly what is wrong, one problem per line, e.g.
//
//	AUDIT_LOG_BATCH_SIZE must be between 1 and 10000, got 0
//	AUDIT_NOISY_SAMPLE_RATE must be between 0 and 1, got 1.5
//	AUDIT_LOG_DLQ_KEY must differ from AUDIT_LOG_STREAM_KEY, both are "audit:log"
//	AUDIT_DLQ_REPLAY_MODE must be one of stream, db; got "redis"
func (c Config) Validate() error {
	errs := []error{
		c.Log.Validate(),
		config.Required("AUDIT_LOG_CONSUMER_GROUP", c.ConsumerGroup),
		config.Required("AUDIT_LOG_CONSUMER_NAME", c.ConsumerName),
		config.Range("AUDIT_LOG_BATCH_SIZE", c.BatchSize, 1, MaxBatchSize),
		config.Positive("AUDIT_LOG_BLOCK_MS", c.BlockDuration),
		config.Range("AUDIT_NOISY_SAMPLE_RATE", c.NoisySampleRate, 0, 1),
		config.NonNegative("AUDIT_NOISY_HARD_CAP_PER_MIN", c.NoisyHardCapPerMin),
		config.Required("AUDIT_LOG_DLQ_KEY", c.DLQKey),
		config.Positive("AUDIT_LOG_DB_COOLDOWN_MS", c.DBCooldown),
		config.OneOf("AUDIT_DLQ_REPLAY_MODE", c.DLQReplayMode, ReplayStream, ReplayDB),
	}
	if c.DLQKey != "" && c.DLQKey == c.Log.StreamKey {
		errs = append(errs, fmt.Errorf("AUDIT_LOG_DLQ_KEY must differ from AUDIT_LOG_STREAM_KEY, both are %q", c.DLQKey))
	}
	return config.Join(errs...)
}
