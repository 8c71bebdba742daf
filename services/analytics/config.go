package analytics

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/classwaves/classwaves/pkg/config"
	busevents "github.com/classwaves/classwaves/pkg/events"
)

// Defaults, from the seed where it names them.
const (
	DefaultEventsTopic         = busevents.AnalyticsTopic
	DefaultSessionEventsTopic  = busevents.SessionTopic
	DefaultSTTEventsTopic      = busevents.STTTopic
	DefaultGuidanceEventsTopic = busevents.GuidanceTopic
	DefaultConsumerGroup       = "analytics"
	DefaultFinalizeLease       = 30 * time.Second
	DefaultSummaryRetryAfter   = 5
	DefaultSessionRPCTimeout   = 5 * time.Second
	DefaultBatchSize           = 100
)

// Config configures the analytics service. Env names are the seed's where it has them; the others
// are marked new.
type Config struct {
	// SummariesEnabled is FEATURE_GROUP_SESSION_SUMMARIES: build a session summary and one per group
	// after finalization (default off). Transcript text is kept (in analytics.transcript_texts) only
	// while it is on, and deleted once the summaries are built.
	SummariesEnabled bool
	// EventsTopic is ANALYTICS_EVENTS_TOPIC (new): where AnalyticsFinalized and SummariesReady are
	// published (default analytics:events).
	EventsTopic string
	// SessionEventsTopic is SESSION_EVENTS_TOPIC, the session service's topic (default
	// session:events); the same variable configures the producer.
	SessionEventsTopic string
	// STTEventsTopic is STT_EVENTS_TOPIC, the stt service's topic (default stt:events).
	STTEventsTopic string
	// GuidanceEventsTopic is GUIDANCE_EVENTS_TOPIC (new), the guidance service's topic (default
	// guidance:events).
	GuidanceEventsTopic string
	// ConsumerGroup is ANALYTICS_CONSUMER_GROUP (new): the bus consumer group every analytics
	// replica joins on the three topics, so each event is handled by one replica (default analytics).
	ConsumerGroup string
	// ConsumerName is ANALYTICS_CONSUMER_NAME (new): this replica's name in the group; it must be
	// unique among live replicas (default: hostname-pid plus a random suffix).
	ConsumerName string
	// FinalizeLease is ANALYTICS_FINALIZE_LEASE_MS (new): how long a replica's claim on a session's
	// finalization (or summaries) holds before another replica may take it over (default 30000).
	FinalizeLease time.Duration
	// SummaryRetryAfter is ANALYTICS_SUMMARY_RETRY_AFTER_SECONDS (new): the Retry-After answered
	// while summaries are pending (default 5).
	SummaryRetryAfter int
	// SessionRPCTimeout is ANALYTICS_SESSION_RPC_TIMEOUT_MS (new): the timeout of each
	// GetSessionContext call (default 5000).
	SessionRPCTimeout time.Duration
	// SummarizerEndpoint is AI_SUMMARIZER_ENDPOINT: an OpenAI-compatible API root for the LLM
	// summarizer; empty means the built-in extractive summarizer. The process wiring builds the LLM
	// client from it.
	SummarizerEndpoint string
	// SummarizerModel is AI_SUMMARIZER_MODEL (new): the model of the LLM summarizer; required
	// when AI_SUMMARIZER_ENDPOINT is set.
	SummarizerModel string
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		EventsTopic:         DefaultEventsTopic,
		SessionEventsTopic:  DefaultSessionEventsTopic,
		STTEventsTopic:      DefaultSTTEventsTopic,
		GuidanceEventsTopic: DefaultGuidanceEventsTopic,
		ConsumerGroup:       DefaultConsumerGroup,
		FinalizeLease:       DefaultFinalizeLease,
		SummaryRetryAfter:   DefaultSummaryRetryAfter,
		SessionRPCTimeout:   DefaultSessionRPCTimeout,
	}
}

// RegisterFlags registers every setting as -analytics.* flags reading the env names above.
func (c *Config) RegisterFlags(f *config.FlagSet) {
	d := DefaultConfig()
	f.Bool(&c.SummariesEnabled, "analytics.group-session-summaries", "FEATURE_GROUP_SESSION_SUMMARIES", false,
		"build session and group summaries after a session ends")
	f.String(&c.EventsTopic, "analytics.events-topic", "ANALYTICS_EVENTS_TOPIC", d.EventsTopic,
		"bus topic of finalization and summaries events")
	f.String(&c.SessionEventsTopic, "analytics.session-events-topic", "SESSION_EVENTS_TOPIC", d.SessionEventsTopic,
		"bus topic of session and group events (consumed)")
	f.String(&c.STTEventsTopic, "analytics.stt-events-topic", "STT_EVENTS_TOPIC", d.STTEventsTopic,
		"bus topic of transcript and speech activity events (consumed)")
	f.String(&c.GuidanceEventsTopic, "analytics.guidance-events-topic", "GUIDANCE_EVENTS_TOPIC", d.GuidanceEventsTopic,
		"bus topic of insight and prompt events (consumed)")
	f.String(&c.ConsumerGroup, "analytics.consumer-group", "ANALYTICS_CONSUMER_GROUP", d.ConsumerGroup,
		"bus consumer group shared by the analytics replicas")
	f.String(&c.ConsumerName, "analytics.consumer-name", "ANALYTICS_CONSUMER_NAME", "",
		"this replica's consumer name (default hostname-pid-random)")
	f.DurationMS(&c.FinalizeLease, "analytics.finalize-lease", "ANALYTICS_FINALIZE_LEASE_MS", d.FinalizeLease,
		"how long a finalization claim holds before another replica may take it over")
	f.Int(&c.SummaryRetryAfter, "analytics.summary-retry-after", "ANALYTICS_SUMMARY_RETRY_AFTER_SECONDS", d.SummaryRetryAfter,
		"Retry-After seconds answered while summaries are pending")
	f.DurationMS(&c.SessionRPCTimeout, "analytics.session-rpc-timeout", "ANALYTICS_SESSION_RPC_TIMEOUT_MS", d.SessionRPCTimeout,
		"timeout of each call to the session service")
	f.String(&c.SummarizerEndpoint, "analytics.summarizer-endpoint", "AI_SUMMARIZER_ENDPOINT", "",
		"OpenAI-compatible API root of the LLM summarizer (empty: built-in summarizer)")
	f.String(&c.SummarizerModel, "analytics.summarizer-model", "AI_SUMMARIZER_MODEL", "",
		"model of the LLM summarizer")
}

// Validate says exactly what is wrong, one problem per line, e.g.
//
//	ANALYTICS_FINALIZE_LEASE_MS must be between 1s and 10m0s, got 0s
//	AI_SUMMARIZER_MODEL is required when AI_SUMMARIZER_ENDPOINT is set
func (c Config) Validate() error {
	errs := []error{
		config.Required("ANALYTICS_EVENTS_TOPIC", c.EventsTopic),
		config.Required("SESSION_EVENTS_TOPIC", c.SessionEventsTopic),
		config.Required("STT_EVENTS_TOPIC", c.STTEventsTopic),
		config.Required("GUIDANCE_EVENTS_TOPIC", c.GuidanceEventsTopic),
		config.Required("ANALYTICS_CONSUMER_GROUP", c.ConsumerGroup),
		config.Range("ANALYTICS_FINALIZE_LEASE_MS", c.FinalizeLease, 100*time.Millisecond, 10*time.Minute),
		config.Range("ANALYTICS_SUMMARY_RETRY_AFTER_SECONDS", c.SummaryRetryAfter, 1, 3600),
		config.Range("ANALYTICS_SESSION_RPC_TIMEOUT_MS", c.SessionRPCTimeout, 100*time.Millisecond, time.Minute),
	}
	if c.EventsTopic != "" && (c.EventsTopic == c.SessionEventsTopic || c.EventsTopic == c.STTEventsTopic || c.EventsTopic == c.GuidanceEventsTopic) {
		errs = append(errs, fmt.Errorf("ANALYTICS_EVENTS_TOPIC must differ from the consumed topics, got %q", c.EventsTopic))
	}
	if c.SummarizerEndpoint != "" {
		errs = append(errs, config.URL("AI_SUMMARIZER_ENDPOINT", c.SummarizerEndpoint))
		if strings.TrimSpace(c.SummarizerModel) == "" {
			errs = append(errs, config.Errorf("AI_SUMMARIZER_MODEL is required when AI_SUMMARIZER_ENDPOINT is set"))
		}
	}
	return config.Join(errs...)
}

// consumerName is ConsumerName, or hostname-pid-random: two replicas (or two services in one test
// process) must never share a name in a consumer group.
func (c Config) consumerName(random string) string {
	if c.ConsumerName != "" {
		return c.ConsumerName
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "analytics"
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), random)
}
