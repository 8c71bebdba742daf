package stt

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/pkg/config"
)

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"STT_PROVIDER":               "openai",
		"OPENAI_API_KEY":             "sk-x",
		"OPENAI_BASE_URL":            "http://127.0.0.1:8080/v1",
		"OPENAI_WHISPER_MODEL":       "whisper-large-v3",
		"OPENAI_WHISPER_TIMEOUT_MS":  "9000",
		"OPENAI_WHISPER_CONCURRENCY": "64",
		"OPENAI_WHISPER_MAX_RETRIES": "5",
		"STT_WINDOW_SECONDS":         "12",
		"STT_LANGUAGE":               "es",
		"STT_BUDGET_MINUTES_PER_DAY": "120.5",
		"STT_BUDGET_ALERT_PCTS":      "80, 95",
		"AUDIO_DRAIN_TIMEOUT_MS":     "1500",
		"AUDIO_QUEUE_ENABLED":        "1",
		"AUDIO_QUEUE_WORKERS":        "8",
		"STT_MAX_PENDING_WINDOWS":    "2",
		"STT_SKIP_SILENT_WINDOWS":    "0",
		"STT_EVENTS_TOPIC":           "cw:stt",
	}
	f := config.NewFlagSet("test", config.MapEnv(env))
	var got Config
	got.RegisterFlags(f)
	if err := f.Parse(nil); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Provider: "openai", OpenAIAPIKey: "sk-x", OpenAIBaseURL: "http://127.0.0.1:8080/v1",
		WhisperModel: "whisper-large-v3", WhisperTimeout: 9 * time.Second, WhisperConcurrency: 64, WhisperMaxRetries: 5,
		WindowSeconds: 12, Language: "es", BudgetMinutesPerDay: 120.5, BudgetAlertPcts: []int{80, 95},
		DrainTimeout: 1500 * time.Millisecond, QueueEnabled: true, QueueWorkers: 8, MaxPendingWindows: 2,
		SkipSilentWindows: false, EventsTopic: "cw:stt",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Config mismatch (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	f = config.NewFlagSet("test", config.MapEnv(nil))
	var def Config
	def.RegisterFlags(f)
	if err := f.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(DefaultConfig(), def); diff != "" {
		t.Errorf("defaults mismatch (-want +got):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*Config)
		want []string // substrings of the error, one per problem
	}{
		{"defaults need a key for OpenAI", func(*Config) {}, []string{"OPENAI_API_KEY is required when STT_PROVIDER is openai"}},
		{"off needs nothing", func(c *Config) { c.Provider = ProviderOff }, nil},
		{"local server needs no key", func(c *Config) { c.OpenAIBaseURL = "http://whisper:8080/v1" }, nil},
		{"everything wrong", func(c *Config) {
			c.Provider = "azure"
			c.WindowSeconds = 30
			c.BudgetMinutesPerDay = -1
			c.BudgetAlertPcts = []int{0, 150}
			c.DrainTimeout = 0
			c.QueueWorkers = 0
			c.MaxPendingWindows = 0
			c.EventsTopic = ""
			c.Language = "english"
		}, []string{
			`STT_PROVIDER must be one of openai, off; got "azure"`,
			"STT_WINDOW_SECONDS must be between 10 and 20, got 30",
			"STT_BUDGET_MINUTES_PER_DAY must not be negative, got -1",
			"STT_BUDGET_ALERT_PCTS must be between 1 and 100, got 0",
			"STT_BUDGET_ALERT_PCTS must be between 1 and 100, got 150",
			"AUDIO_DRAIN_TIMEOUT_MS must be positive",
			"AUDIO_QUEUE_WORKERS must be positive, got 0",
			"STT_MAX_PENDING_WINDOWS must be positive, got 0",
			"STT_EVENTS_TOPIC is required",
			`STT_LANGUAGE must be an ISO-639-1 code such as en, got "english"`,
		}},
		{"OpenAI settings", func(c *Config) {
			c.OpenAIBaseURL = "localhost:8080"
			c.WhisperConcurrency = 0
			c.WhisperTimeout = 0
			c.WhisperMaxRetries = 11
			c.WhisperModel = ""
		}, []string{
			"OPENAI_BASE_URL must be an absolute http or https URL",
			"OPENAI_WHISPER_CONCURRENCY must be between 1 and 1000, got 0",
			"OPENAI_WHISPER_TIMEOUT_MS must be positive",
			"OPENAI_WHISPER_MAX_RETRIES must be between 0 and 10, got 11",
			"OPENAI_WHISPER_MODEL is required",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%s", len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%s", w, err)
				}
			}
		})
	}
}

func FuzzDecodePageToken(f *testing.F) {
	f.Add(EncodePageToken(Cursor{WindowStart: time.Unix(1700000000, 0), ID: "0b7f6f9e-1f0c-4c1e-9a6b-7b3f2a1c9d00"}))
	f.Add("")
	f.Add("djF8MXwy")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := DecodePageToken(tok)
		if err != nil {
			return
		}
		back, err := DecodePageToken(EncodePageToken(c))
		if err != nil || !back.WindowStart.Equal(c.WindowStart) || back.ID != c.ID {
			t.Fatalf("a decoded token does not round-trip: %+v -> %+v, %v", c, back, err)
		}
	})
}
