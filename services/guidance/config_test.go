package guidance

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
		"AI_TIER1_INTERVAL_MS":             "20000",
		"AI_TIER1_MIN_WORDS":               "5",
		"AI_TIER2_INTERVAL_MS":             "60000",
		"GUIDANCE_PROMPT_COOLDOWN_MS":      "30000",
		"GUIDANCE_PROMPT_TTL_MS":           "120000",
		"GUIDANCE_DISMISS_COOLDOWN_FACTOR": "2.5",
		"GUIDANCE_EVENTS_TOPIC":            "cw:guidance",
		"STT_EVENTS_TOPIC":                 "cw:stt",
		"SESSION_EVENTS_TOPIC":             "cw:session",
		"GUIDANCE_WORKERS":                 "16",
		"GUIDANCE_SESSION_CACHE_TTL_MS":    "5000",
		"AI_TIER1_ENDPOINT":                "http://127.0.0.1:8000/v1/chat/completions",
		"AI_TIER2_ENDPOINT":                "https://llm.example/v1",
		"AI_API_KEY":                       "k",
		"AI_TIER1_MODEL":                   "m1",
		"AI_TIER2_MODEL":                   "m2",
		"AI_TIMEOUT_MS":                    "7000",
		"AI_MAX_RETRIES":                   "1",
		"AI_CONCURRENCY":                   "3",
		"AI_MAX_TOKENS":                    "512",
		"GUIDANCE_TRANSCRIPT_GRACE_MS":     "7000",
		"AI_SCHOOL_DAILY_TOKEN_BUDGET":     "1000",
	}
	f := config.NewFlagSet("test", config.MapEnv(env))
	var got Config
	got.RegisterFlags(f)
	if err := f.Parse(nil); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Tier1Interval: 20 * time.Second, Tier1MinWords: 5, Tier2Interval: time.Minute, PromptCooldown: 30 * time.Second,
		PromptTTL: 2 * time.Minute, DismissCooldownFactor: 2.5, EventsTopic: "cw:guidance", STTTopic: "cw:stt",
		SessionTopic: "cw:session", Workers: 16, SessionCacheTTL: 5 * time.Second, TranscriptGrace: 7 * time.Second,
		LLM: LLMConfig{Tier1Endpoint: "http://127.0.0.1:8000/v1/chat/completions", Tier2Endpoint: "https://llm.example/v1",
			APIKey: "k", Tier1Model: "m1", Tier2Model: "m2", Timeout: 7 * time.Second, MaxRetries: 1, Concurrency: 3, MaxTokens: 512,
			SchoolDailyTokenBudget: 1000},
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
	if err := def.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*Config)
		want []string
	}{
		{"interval", func(c *Config) { c.Tier1Interval = 0 }, []string{"AI_TIER1_INTERVAL_MS must be between"}},
		{"min words", func(c *Config) { c.Tier1MinWords = -1 }, []string{"AI_TIER1_MIN_WORDS must not be negative"}},
		{"factor", func(c *Config) { c.DismissCooldownFactor = 0.5 }, []string{"GUIDANCE_DISMISS_COOLDOWN_FACTOR must be between 1 and 100, got 0.5"}},
		{"ttl", func(c *Config) { c.PromptTTL = 0 }, []string{"GUIDANCE_PROMPT_TTL_MS"}},
		{"topics", func(c *Config) { c.EventsTopic = c.STTTopic }, []string{"GUIDANCE_EVENTS_TOPIC must differ"}},
		{"endpoint", func(c *Config) { c.LLM.Tier1Endpoint = "localhost:8000" }, []string{`AI_TIER1_ENDPOINT must be an absolute http or https URL, got "localhost:8000"`}},
		{"several", func(c *Config) { c.Workers = 0; c.LLM.Concurrency = 0; c.SessionTopic = "" }, []string{"GUIDANCE_WORKERS", "AI_CONCURRENCY", "SESSION_EVENTS_TOPIC is required"}},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		tt.mod(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: validated", tt.name)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tt.name, err, w)
			}
		}
	}
}
