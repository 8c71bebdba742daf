package analytics

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
		"FEATURE_GROUP_SESSION_SUMMARIES":       "1",
		"ANALYTICS_EVENTS_TOPIC":                "cw:analytics",
		"SESSION_EVENTS_TOPIC":                  "cw:session",
		"STT_EVENTS_TOPIC":                      "cw:stt",
		"GUIDANCE_EVENTS_TOPIC":                 "cw:guidance",
		"ANALYTICS_CONSUMER_GROUP":              "analytics-2",
		"ANALYTICS_CONSUMER_NAME":               "pod-7",
		"ANALYTICS_FINALIZE_LEASE_MS":           "45000",
		"ANALYTICS_SUMMARY_RETRY_AFTER_SECONDS": "9",
		"ANALYTICS_SESSION_RPC_TIMEOUT_MS":      "2500",
		"AI_SUMMARIZER_ENDPOINT":                "http://127.0.0.1:8000/v1",
		"AI_SUMMARIZER_MODEL":                   "qwen2.5-7b-instruct",
	}
	f := config.NewFlagSet("test", config.MapEnv(env))
	var got Config
	got.RegisterFlags(f)
	if err := f.Parse(nil); err != nil {
		t.Fatal(err)
	}
	want := Config{
		SummariesEnabled: true, EventsTopic: "cw:analytics", SessionEventsTopic: "cw:session", STTEventsTopic: "cw:stt",
		GuidanceEventsTopic: "cw:guidance", ConsumerGroup: "analytics-2", ConsumerName: "pod-7", FinalizeLease: 45 * time.Second,
		SummaryRetryAfter: 9, SessionRPCTimeout: 2500 * time.Millisecond, SummarizerEndpoint: "http://127.0.0.1:8000/v1",
		SummarizerModel: "qwen2.5-7b-instruct",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Config mismatch (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if got.consumerName("x") != "pod-7" {
		t.Errorf("consumer name = %q", got.consumerName("x"))
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
		t.Errorf("defaults: %v", err)
	}
	if a, b := def.consumerName("aa"), def.consumerName("bb"); a == b || !strings.HasSuffix(a, "-aa") {
		t.Errorf("default consumer names %q, %q: want distinct, suffixed", a, b)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"lease", func(c *Config) { c.FinalizeLease = 0 }, "ANALYTICS_FINALIZE_LEASE_MS must be between 100ms and 10m0s, got 0s"},
		{"retry after", func(c *Config) { c.SummaryRetryAfter = 0 }, "ANALYTICS_SUMMARY_RETRY_AFTER_SECONDS must be between 1 and 3600, got 0"},
		{"topic", func(c *Config) { c.EventsTopic = "" }, "ANALYTICS_EVENTS_TOPIC is required"},
		{"own topic consumed", func(c *Config) { c.EventsTopic = c.SessionEventsTopic }, "ANALYTICS_EVENTS_TOPIC must differ from the consumed topics"},
		{"group", func(c *Config) { c.ConsumerGroup = " " }, "ANALYTICS_CONSUMER_GROUP is required"},
		{"endpoint", func(c *Config) { c.SummarizerEndpoint, c.SummarizerModel = "localhost:8000", "m" }, "AI_SUMMARIZER_ENDPOINT must be an absolute http or https URL"},
		{"model", func(c *Config) { c.SummarizerEndpoint = "https://api.example.com/v1" }, "AI_SUMMARIZER_MODEL is required when AI_SUMMARIZER_ENDPOINT is set"},
		{"rpc timeout", func(c *Config) { c.SessionRPCTimeout = time.Hour }, "ANALYTICS_SESSION_RPC_TIMEOUT_MS must be between"},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		tt.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate = %v, want %q", tt.name, err, tt.want)
		}
	}
}
