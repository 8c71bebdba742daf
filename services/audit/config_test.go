package audit

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/config"
)

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("HOSTNAME", "host-7")
	tests := []struct {
		name string
		env  map[string]string
		want Config
	}{
		{
			name: "seed defaults",
			want: Config{
				Log:           auditlog.Config{StreamKey: "audit:log", MaxBacklog: 50000, EnqueueTimeout: 50 * time.Millisecond, HashUserAgent: true},
				ConsumerGroup: "auditlog", ConsumerName: "host-7-audit-worker", BatchSize: 200,
				BlockDuration: 2 * time.Second, NoisySampleRate: 0.05, NoisyHardCapPerMin: 100,
				DLQKey: "audit:log:dlq", DBCooldown: 10 * time.Second, DLQReplayMode: "stream",
			},
		},
		{
			name: "every variable",
			env: map[string]string{
				"AUDIT_LOG_STREAM_KEY": "s", "AUDIT_LOG_MAX_BACKLOG": "7", "AUDIT_LOG_ENQUEUE_TIMEOUT_MS": "20",
				"AUDIT_HASH_USER_AGENT": "0", "AUDIT_LOG_CONSUMER_GROUP": "g", "AUDIT_LOG_CONSUMER_NAME": "c",
				"AUDIT_LOG_BATCH_SIZE": "50", "AUDIT_LOG_BLOCK_MS": "100", "AUDIT_NOISY_SAMPLE_RATE": "0.5",
				"AUDIT_NOISY_HARD_CAP_PER_MIN": "9", "AUDIT_LOG_DLQ_KEY": "d", "AUDIT_LOG_DB_COOLDOWN_MS": "300",
				"AUDIT_DLQ_REPLAY_MODE": "db",
			},
			want: Config{
				Log:           auditlog.Config{StreamKey: "s", MaxBacklog: 7, EnqueueTimeout: 20 * time.Millisecond},
				ConsumerGroup: "g", ConsumerName: "c", BatchSize: 50, BlockDuration: 100 * time.Millisecond,
				NoisySampleRate: 0.5, NoisyHardCapPerMin: 9, DLQKey: "d", DBCooldown: 300 * time.Millisecond,
				DLQReplayMode: "db",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Config
			f := config.NewFlagSet("test", config.MapEnv(tt.env))
			got.RegisterFlags(f)
			if err := f.Parse(nil); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config mismatch (-want +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want []string // lines of the error
	}{
		{"defaults", func(*Config) {}, nil},
		{"batch size", func(c *Config) { c.BatchSize = 0 }, []string{"AUDIT_LOG_BATCH_SIZE must be between 1 and 10000, got 0"}},
		{"block", func(c *Config) { c.BlockDuration = 0 }, []string{"AUDIT_LOG_BLOCK_MS must be positive, got 0s"}},
		{"sample rate", func(c *Config) { c.NoisySampleRate = 1.5 }, []string{"AUDIT_NOISY_SAMPLE_RATE must be between 0 and 1, got 1.5"}},
		{"hard cap", func(c *Config) { c.NoisyHardCapPerMin = -1 }, []string{"AUDIT_NOISY_HARD_CAP_PER_MIN must not be negative, got -1"}},
		{"cooldown", func(c *Config) { c.DBCooldown = 0 }, []string{"AUDIT_LOG_DB_COOLDOWN_MS must be positive, got 0s"}},
		{"replay mode", func(c *Config) { c.DLQReplayMode = "redis" }, []string{`AUDIT_DLQ_REPLAY_MODE must be one of stream, db; got "redis"`}},
		{"dlq is the stream", func(c *Config) { c.DLQKey = c.Log.StreamKey }, []string{`AUDIT_LOG_DLQ_KEY must differ from AUDIT_LOG_STREAM_KEY, both are "audit:log"`}},
		{"names", func(c *Config) { c.ConsumerGroup, c.ConsumerName, c.DLQKey = "", "", "" }, []string{
			"AUDIT_LOG_CONSUMER_GROUP is required", "AUDIT_LOG_CONSUMER_NAME is required", "AUDIT_LOG_DLQ_KEY is required",
		}},
		{"client", func(c *Config) { c.Log.EnqueueTimeout = 0 }, []string{"AUDIT_LOG_ENQUEUE_TIMEOUT_MS must be positive, got 0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mod(&cfg)
			var got []string
			if err := cfg.Validate(); err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
