package guidance

import (
	"fmt"
	"strings"
	"time"

	"github.com/classwaves/classwaves/pkg/config"
	busevents "github.com/classwaves/classwaves/pkg/events"
)

// Defaults, from the seed where it names them.
const (
	DefaultTier1Interval         = 30 * time.Second
	DefaultTier1MinWords         = 15
	DefaultTier2Interval         = 3 * time.Minute
	DefaultPromptCooldown        = 2 * time.Minute
	DefaultPromptTTL             = 10 * time.Minute
	DefaultDismissCooldownFactor = 3.0
	DefaultEventsTopic           = busevents.GuidanceTopic
	DefaultSTTTopic              = busevents.STTTopic
	DefaultSessionTopic          = busevents.SessionTopic
	DefaultWorkers               = 8
	DefaultSessionCacheTTL       = 30 * time.Second
	DefaultAITimeout             = 20 * time.Second
	DefaultAIMaxRetries          = 2
	DefaultAIConcurrency         = 8
	DefaultAIMaxTokens           = 1024
	DefaultTranscriptGrace       = 20 * time.Second
	DefaultSchoolDailyTokens     = 2_000_000
)

// Config configures the guidance service. Env names are the seed's; those it does not name are
// marked new.
type Config struct {
	// Tier1Interval is AI_TIER1_INTERVAL_MS: a group is analysed once the transcript and speech
	// activity it has not been analysed on span this long, by window timestamps (default 30000).
	Tier1Interval time.Duration
	// Tier1MinWords is AI_TIER1_MIN_WORDS (new): a span with fewer transcribed words and no
	// silence signal is skipped (default 15).
	Tier1MinWords int
	// Tier2Interval is AI_TIER2_INTERVAL_MS: how often an active session with new Tier 1
	// insights gets a Tier 2 analysis (default 180000).
	Tier2Interval time.Duration
	// PromptCooldown is GUIDANCE_PROMPT_COOLDOWN_MS (new): no prompt of the same kind and category
	// for the same group inside it (default 120000).
	PromptCooldown time.Duration
	// PromptTTL is GUIDANCE_PROMPT_TTL_MS (new): a pending prompt expires after it (default 600000).
	PromptTTL time.Duration
	// DismissCooldownFactor is GUIDANCE_DISMISS_COOLDOWN_FACTOR (new): after a dismissal the
	// cooldown of that group and category is multiplied by it (default 3).
	DismissCooldownFactor float64
	// EventsTopic is GUIDANCE_EVENTS_TOPIC (new): the bus topic insights and prompts are published
	// on (default guidance:events).
	EventsTopic string
	// STTTopic is STT_EVENTS_TOPIC, the stt service's topic: transcripts and speech activity are
	// read from it (default stt:events).
	STTTopic string
	// SessionTopic is SESSION_EVENTS_TOPIC, the session service's topic: status changes are read
	// from it (default session:events).
	SessionTopic string
	// Workers is GUIDANCE_WORKERS (new): groups handled at once by one process (default 8).
	Workers int
	// SessionCacheTTL is GUIDANCE_SESSION_CACHE_TTL_MS (new): how long a session's context
	// (teacher, school, objectives, names) is reused before it is asked again; a status change
	// refreshes it at once (default 30000).
	SessionCacheTTL time.Duration
	// TranscriptGrace is GUIDANCE_TRANSCRIPT_GRACE_MS (new): how long a window with speech but no
	// transcript yet holds its span's Tier 1 analysis back, waiting for the transcription
	// (default 20000; 0 analyses at once).
	TranscriptGrace time.Duration
	// LLM holds the settings of the LLM analyzer; the guidance service only reports whether an
	// endpoint is configured, the process wiring builds the analyzer from them.
	LLM LLMConfig
}

// LLMConfig configures the LLM analyzer (package llmanalyzer). Empty endpoints mean the built-in
// analyzer.
type LLMConfig struct {
	// Tier1Endpoint is AI_TIER1_ENDPOINT: an OpenAI-compatible chat endpoint for Tier 1.
	Tier1Endpoint string
	// Tier2Endpoint is AI_TIER2_ENDPOINT: the same for Tier 2.
	Tier2Endpoint string
	// APIKey is AI_API_KEY (new; the process falls back to DATABRICKS_TOKEN).
	APIKey string
	// Tier1Model is AI_TIER1_MODEL (new).
	Tier1Model string
	// Tier2Model is AI_TIER2_MODEL (new).
	Tier2Model string
	// Timeout is AI_TIMEOUT_MS (new): per attempt (default 20000).
	Timeout time.Duration
	// MaxRetries is AI_MAX_RETRIES (new): retries on 429, 5xx and timeouts (default 2).
	MaxRetries int
	// Concurrency is AI_CONCURRENCY (new): requests in flight at once (default 8).
	Concurrency int
	// MaxTokens is AI_MAX_TOKENS (new): the completion cap of one request (default 1024).
	MaxTokens int
	// SchoolDailyTokenBudget is AI_SCHOOL_DAILY_TOKEN_BUDGET (new): tokens per school per UTC day
	// (default 2,000,000; 0: unlimited).
	SchoolDailyTokenBudget int64
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Tier1Interval:         DefaultTier1Interval,
		Tier1MinWords:         DefaultTier1MinWords,
		Tier2Interval:         DefaultTier2Interval,
		PromptCooldown:        DefaultPromptCooldown,
		PromptTTL:             DefaultPromptTTL,
		DismissCooldownFactor: DefaultDismissCooldownFactor,
		EventsTopic:           DefaultEventsTopic,
		STTTopic:              DefaultSTTTopic,
		SessionTopic:          DefaultSessionTopic,
		Workers:               DefaultWorkers,
		SessionCacheTTL:       DefaultSessionCacheTTL,
		TranscriptGrace:       DefaultTranscriptGrace,
		LLM: LLMConfig{
			Timeout:                DefaultAITimeout,
			MaxRetries:             DefaultAIMaxRetries,
			Concurrency:            DefaultAIConcurrency,
			MaxTokens:              DefaultAIMaxTokens,
			SchoolDailyTokenBudget: DefaultSchoolDailyTokens,
		},
	}
}

// RegisterFlags registers every setting as -guidance.* flags reading the env names above. The
// stt and session topic flags read the same env names as those services' own flags, so one
// variable names a topic for its producer and its consumers.
func (c *Config) RegisterFlags(f *config.FlagSet) {
	d := DefaultConfig()
	f.DurationMS(&c.Tier1Interval, "guidance.tier1-interval", "AI_TIER1_INTERVAL_MS", d.Tier1Interval, "transcript span (by window time) after which a group is analysed (Tier 1)")
	f.Int(&c.Tier1MinWords, "guidance.tier1-min-words", "AI_TIER1_MIN_WORDS", d.Tier1MinWords, "fewest words in a span for Tier 1 to run when no silence is signalled")
	f.DurationMS(&c.Tier2Interval, "guidance.tier2-interval", "AI_TIER2_INTERVAL_MS", d.Tier2Interval, "how often an active session with new Tier 1 insights gets a Tier 2 analysis")
	f.DurationMS(&c.PromptCooldown, "guidance.prompt-cooldown", "GUIDANCE_PROMPT_COOLDOWN_MS", d.PromptCooldown, "no prompt of the same kind and category for a group inside this time")
	f.DurationMS(&c.PromptTTL, "guidance.prompt-ttl", "GUIDANCE_PROMPT_TTL_MS", d.PromptTTL, "a pending prompt expires after this time")
	f.Float64(&c.DismissCooldownFactor, "guidance.dismiss-cooldown-factor", "GUIDANCE_DISMISS_COOLDOWN_FACTOR", d.DismissCooldownFactor, "cooldown multiplier after a teacher dismisses a prompt")
	f.String(&c.EventsTopic, "guidance.events-topic", "GUIDANCE_EVENTS_TOPIC", d.EventsTopic, "bus topic of insight and prompt events")
	f.String(&c.STTTopic, "guidance.stt-topic", "STT_EVENTS_TOPIC", d.STTTopic, "bus topic of transcript and speech activity events (read)")
	f.String(&c.SessionTopic, "guidance.session-topic", "SESSION_EVENTS_TOPIC", d.SessionTopic, "bus topic of session status events (read)")
	f.Int(&c.Workers, "guidance.workers", "GUIDANCE_WORKERS", d.Workers, "groups handled at once by one process")
	f.DurationMS(&c.SessionCacheTTL, "guidance.session-cache-ttl", "GUIDANCE_SESSION_CACHE_TTL_MS", d.SessionCacheTTL, "how long a session's context is reused")
	f.DurationMS(&c.TranscriptGrace, "guidance.transcript-grace", "GUIDANCE_TRANSCRIPT_GRACE_MS", d.TranscriptGrace, "how long a window with speech waits for its transcript before Tier 1 analyses the span without it")
	f.String(&c.LLM.Tier1Endpoint, "guidance.ai-tier1-endpoint", "AI_TIER1_ENDPOINT", "", "OpenAI-compatible chat endpoint for Tier 1 (empty: built-in analyzer)")
	f.String(&c.LLM.Tier2Endpoint, "guidance.ai-tier2-endpoint", "AI_TIER2_ENDPOINT", "", "OpenAI-compatible chat endpoint for Tier 2 (empty: built-in analyzer)")
	f.String(&c.LLM.APIKey, "guidance.ai-api-key", "AI_API_KEY", "", "API key of the AI endpoints")
	f.String(&c.LLM.Tier1Model, "guidance.ai-tier1-model", "AI_TIER1_MODEL", "", "model of the Tier 1 endpoint")
	f.String(&c.LLM.Tier2Model, "guidance.ai-tier2-model", "AI_TIER2_MODEL", "", "model of the Tier 2 endpoint")
	f.DurationMS(&c.LLM.Timeout, "guidance.ai-timeout", "AI_TIMEOUT_MS", d.LLM.Timeout, "timeout of one AI request attempt")
	f.Int(&c.LLM.MaxRetries, "guidance.ai-max-retries", "AI_MAX_RETRIES", d.LLM.MaxRetries, "retries of an AI request on 429, 5xx and timeouts")
	f.Int(&c.LLM.Concurrency, "guidance.ai-concurrency", "AI_CONCURRENCY", d.LLM.Concurrency, "AI requests in flight at once")
	f.Int(&c.LLM.MaxTokens, "guidance.ai-max-tokens", "AI_MAX_TOKENS", d.LLM.MaxTokens, "completion token cap of one AI request")
	f.Int64(&c.LLM.SchoolDailyTokenBudget, "guidance.ai-school-daily-token-budget", "AI_SCHOOL_DAILY_TOKEN_BUDGET", d.LLM.SchoolDailyTokenBudget, "AI tokens per school per UTC day (0: unlimited)")
}

// Validate says exactly what is wrong, one problem per line, e.g.
//
//	AI_TIER1_INTERVAL_MS must be between 1s and 1h0m0s, got 0s
//	GUIDANCE_DISMISS_COOLDOWN_FACTOR must be between 1 and 100, got 0.5
//	AI_TIER1_ENDPOINT must be an absolute http or https URL, got "localhost"
func (c Config) Validate() error {
	errs := []error{
		config.Range("AI_TIER1_INTERVAL_MS", c.Tier1Interval, time.Second, time.Hour),
		config.NonNegative("AI_TIER1_MIN_WORDS", c.Tier1MinWords),
		config.Range("AI_TIER2_INTERVAL_MS", c.Tier2Interval, time.Second, 24*time.Hour),
		config.NonNegative("GUIDANCE_PROMPT_COOLDOWN_MS", c.PromptCooldown),
		config.Range("GUIDANCE_PROMPT_TTL_MS", c.PromptTTL, time.Second, 24*time.Hour),
		config.Range("GUIDANCE_DISMISS_COOLDOWN_FACTOR", c.DismissCooldownFactor, 1, 100),
		config.Required("GUIDANCE_EVENTS_TOPIC", c.EventsTopic),
		config.Required("STT_EVENTS_TOPIC", c.STTTopic),
		config.Required("SESSION_EVENTS_TOPIC", c.SessionTopic),
		config.Range("GUIDANCE_TRANSCRIPT_GRACE_MS", c.TranscriptGrace, 0, 10*time.Minute),
		config.Range("GUIDANCE_WORKERS", c.Workers, 1, 256),
		config.Range("GUIDANCE_SESSION_CACHE_TTL_MS", c.SessionCacheTTL, 0, time.Hour),
		config.Positive("AI_TIMEOUT_MS", c.LLM.Timeout),
		config.Range("AI_MAX_RETRIES", c.LLM.MaxRetries, 0, 10),
		config.Range("AI_CONCURRENCY", c.LLM.Concurrency, 1, 1000),
		config.Range("AI_MAX_TOKENS", c.LLM.MaxTokens, 16, 128000),
		config.NonNegative("AI_SCHOOL_DAILY_TOKEN_BUDGET", c.LLM.SchoolDailyTokenBudget),
	}
	if c.EventsTopic != "" && (c.EventsTopic == c.STTTopic || c.EventsTopic == c.SessionTopic) {
		errs = append(errs, fmt.Errorf("GUIDANCE_EVENTS_TOPIC must differ from the topics it reads (STT_EVENTS_TOPIC, SESSION_EVENTS_TOPIC), got %q", c.EventsTopic))
	}
	for _, e := range []struct{ name, v string }{{"AI_TIER1_ENDPOINT", c.LLM.Tier1Endpoint}, {"AI_TIER2_ENDPOINT", c.LLM.Tier2Endpoint}} {
		if strings.TrimSpace(e.v) != "" {
			errs = append(errs, config.URL(e.name, e.v))
		}
	}
	return config.Join(errs...)
}

// analyzerKind is what TierStatus.analyzer reports: "llm" for an "llm:<model>" analyzer name,
// else the name itself ("builtin").
func analyzerKind(name string) string {
	if k, _, ok := strings.Cut(name, ":"); ok {
		return k
	}
	return name
}
