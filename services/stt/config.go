package stt

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/classwaves/classwaves/pkg/config"
	busevents "github.com/classwaves/classwaves/pkg/events"
)

// Providers (STT_PROVIDER).
const (
	ProviderOpenAI = "openai"
	ProviderOff    = "off"
)

// Defaults, from the seed where it names them.
const (
	DefaultOpenAIBaseURL      = "https://api.openai.com/v1"
	DefaultWhisperModel       = "whisper-1"
	DefaultWhisperTimeout     = 15000 * time.Millisecond
	DefaultWhisperConcurrency = 20
	DefaultWhisperMaxRetries  = 3
	DefaultWindowSeconds      = 15
	DefaultDrainTimeout       = 750 * time.Millisecond
	DefaultQueueWorkers       = 4
	DefaultMaxPendingWindows  = 3
	DefaultEventsTopic        = busevents.STTTopic
)

// DefaultBudgetAlertPcts is STT_BUDGET_ALERT_PCTS's default.
var DefaultBudgetAlertPcts = []int{50, 75, 90, 100}

// Config configures the stt service. Env names are the seed's; those it does not name are
// marked new.
type Config struct {
	// Provider is STT_PROVIDER: openai (transcribe) or off (windows are dropped and counted;
	// speech activity is still published).
	Provider string
	// OpenAIAPIKey is OPENAI_API_KEY; required for OpenAI's own endpoint.
	OpenAIAPIKey string
	// OpenAIBaseURL is OPENAI_BASE_URL: OpenAI or any compatible server (whisper.cpp, speaches).
	OpenAIBaseURL string
	// WhisperModel is OPENAI_WHISPER_MODEL (default whisper-1).
	WhisperModel string
	// WhisperTimeout is OPENAI_WHISPER_TIMEOUT_MS, per attempt (default 15000).
	WhisperTimeout time.Duration
	// WhisperConcurrency is OPENAI_WHISPER_CONCURRENCY: requests in flight at once, for the
	// whole process (default 20).
	WhisperConcurrency int
	// WhisperMaxRetries is OPENAI_WHISPER_MAX_RETRIES (new): retries of a window on 429, 5xx,
	// timeouts and network errors (default 3).
	WhisperMaxRetries int
	// WindowSeconds is STT_WINDOW_SECONDS: audio per window, 10 to 20 (default 15).
	WindowSeconds int
	// Language is STT_LANGUAGE (new): the ISO-639-1 hint used when a stream names none (default
	// empty: the model detects it).
	Language string
	// BudgetMinutesPerDay is STT_BUDGET_MINUTES_PER_DAY: transcribed minutes per school per UTC
	// day (0: unlimited).
	BudgetMinutesPerDay float64
	// BudgetAlertPcts is STT_BUDGET_ALERT_PCTS: the percentages of the budget at which the
	// school's teachers are alerted (default 50,75,90,100).
	BudgetAlertPcts []int
	// DrainTimeout is AUDIO_DRAIN_TIMEOUT_MS: how long FlushGroups and Stop wait for the
	// windows they close to be transcribed (default 750).
	DrainTimeout time.Duration
	// QueueEnabled is AUDIO_QUEUE_ENABLED: FlushGroups hands each group to a bounded worker
	// queue instead of closing every window at once (default off).
	QueueEnabled bool
	// QueueWorkers is AUDIO_QUEUE_WORKERS (new): the queue's workers (default 4).
	QueueWorkers int
	// MaxPendingWindows is STT_MAX_PENDING_WINDOWS (new): windows of one group waiting for or in
	// transcription; a window closed beyond it is dropped and counted (default 3).
	MaxPendingWindows int
	// SkipSilentWindows is STT_SKIP_SILENT_WINDOWS (new): PCM and WAV windows in which voice
	// activity detection finds less than 0.3 s of speech are not sent for transcription, which
	// saves budget and avoids Whisper's hallucinations on silence (default on).
	SkipSilentWindows bool
	// EventsTopic is STT_EVENTS_TOPIC (new): the bus topic of the service's events (default
	// stt:events).
	EventsTopic string
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Provider:           ProviderOpenAI,
		OpenAIBaseURL:      DefaultOpenAIBaseURL,
		WhisperModel:       DefaultWhisperModel,
		WhisperTimeout:     DefaultWhisperTimeout,
		WhisperConcurrency: DefaultWhisperConcurrency,
		WhisperMaxRetries:  DefaultWhisperMaxRetries,
		WindowSeconds:      DefaultWindowSeconds,
		BudgetAlertPcts:    slices.Clone(DefaultBudgetAlertPcts),
		DrainTimeout:       DefaultDrainTimeout,
		QueueWorkers:       DefaultQueueWorkers,
		MaxPendingWindows:  DefaultMaxPendingWindows,
		SkipSilentWindows:  true,
		EventsTopic:        DefaultEventsTopic,
	}
}

// RegisterFlags registers every setting as -stt.* flags reading the env names above.
func (c *Config) RegisterFlags(f *config.FlagSet) {
	d := DefaultConfig()
	f.String(&c.Provider, "stt.provider", "STT_PROVIDER", d.Provider, "speech-to-text provider: openai or off (windows dropped, speech activity still published)")
	f.String(&c.OpenAIAPIKey, "stt.openai-api-key", "OPENAI_API_KEY", "", "OpenAI API key (required for OpenAI's own endpoint)")
	f.String(&c.OpenAIBaseURL, "stt.openai-base-url", "OPENAI_BASE_URL", d.OpenAIBaseURL, "OpenAI-compatible API root for transcription")
	f.String(&c.WhisperModel, "stt.whisper-model", "OPENAI_WHISPER_MODEL", d.WhisperModel, "transcription model")
	f.DurationMS(&c.WhisperTimeout, "stt.whisper-timeout", "OPENAI_WHISPER_TIMEOUT_MS", d.WhisperTimeout, "timeout of one transcription attempt")
	f.Int(&c.WhisperConcurrency, "stt.whisper-concurrency", "OPENAI_WHISPER_CONCURRENCY", d.WhisperConcurrency, "transcription requests in flight at once (whole process)")
	f.Int(&c.WhisperMaxRetries, "stt.whisper-max-retries", "OPENAI_WHISPER_MAX_RETRIES", d.WhisperMaxRetries, "retries of a window on 429, 5xx, timeouts and network errors")
	f.Int(&c.WindowSeconds, "stt.window-seconds", "STT_WINDOW_SECONDS", d.WindowSeconds, "seconds of audio per transcription window (10-20)")
	f.String(&c.Language, "stt.language", "STT_LANGUAGE", "", "ISO-639-1 language hint when a stream names none (empty: detect)")
	f.Float64(&c.BudgetMinutesPerDay, "stt.budget-minutes-per-day", "STT_BUDGET_MINUTES_PER_DAY", 0, "transcribed minutes per school per UTC day (0: unlimited)")
	f.IntList(&c.BudgetAlertPcts, "stt.budget-alert-pcts", "STT_BUDGET_ALERT_PCTS", d.BudgetAlertPcts, "budget percentages at which teachers are alerted")
	f.DurationMS(&c.DrainTimeout, "stt.drain-timeout", "AUDIO_DRAIN_TIMEOUT_MS", d.DrainTimeout, "how long a flush or shutdown waits for open windows to be transcribed")
	f.Bool(&c.QueueEnabled, "stt.queue-enabled", "AUDIO_QUEUE_ENABLED", false, "flush groups through a bounded worker queue")
	f.Int(&c.QueueWorkers, "stt.queue-workers", "AUDIO_QUEUE_WORKERS", d.QueueWorkers, "workers of the flush queue")
	f.Int(&c.MaxPendingWindows, "stt.max-pending-windows", "STT_MAX_PENDING_WINDOWS", d.MaxPendingWindows, "windows of one group waiting for transcription before new ones are dropped")
	f.Bool(&c.SkipSilentWindows, "stt.skip-silent-windows", "STT_SKIP_SILENT_WINDOWS", d.SkipSilentWindows, "do not transcribe PCM/WAV windows without speech")
	f.String(&c.EventsTopic, "stt.events-topic", "STT_EVENTS_TOPIC", d.EventsTopic, "bus topic of transcript, speech activity and budget events")
}

// Validate says exactly what is wrong, one problem per line, e.g.
//
//	STT_WINDOW_SECONDS must be between 10 and 20, got 30
//	OPENAI_API_KEY is required when STT_PROVIDER is openai and OPENAI_BASE_URL is OpenAI's (https://api.openai.com/v1)
//	STT_BUDGET_ALERT_PCTS must be between 1 and 100, got 150
func (c Config) Validate() error {
	errs := []error{
		config.OneOf("STT_PROVIDER", c.Provider, ProviderOpenAI, ProviderOff),
		config.Range("STT_WINDOW_SECONDS", c.WindowSeconds, 10, 20),
		config.NonNegative("STT_BUDGET_MINUTES_PER_DAY", c.BudgetMinutesPerDay),
		config.Positive("AUDIO_DRAIN_TIMEOUT_MS", c.DrainTimeout),
		config.Positive("AUDIO_QUEUE_WORKERS", c.QueueWorkers),
		config.Positive("STT_MAX_PENDING_WINDOWS", c.MaxPendingWindows),
		config.Required("STT_EVENTS_TOPIC", c.EventsTopic),
	}
	for _, p := range c.BudgetAlertPcts {
		errs = append(errs, config.Range("STT_BUDGET_ALERT_PCTS", p, 1, 100))
	}
	if c.Language != "" && !isLanguage(c.Language) {
		errs = append(errs, fmt.Errorf("STT_LANGUAGE must be an ISO-639-1 code such as en, got %q", c.Language))
	}
	if c.Provider == ProviderOpenAI {
		errs = append(errs,
			config.Required("OPENAI_WHISPER_MODEL", c.WhisperModel),
			config.Positive("OPENAI_WHISPER_TIMEOUT_MS", c.WhisperTimeout),
			config.Range("OPENAI_WHISPER_CONCURRENCY", c.WhisperConcurrency, 1, 1000),
			config.Range("OPENAI_WHISPER_MAX_RETRIES", c.WhisperMaxRetries, 0, 10),
		)
		if u, err := url.Parse(c.OpenAIBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("OPENAI_BASE_URL must be an absolute http or https URL, got %q", c.OpenAIBaseURL))
		} else if strings.TrimSpace(c.OpenAIAPIKey) == "" && u.Host == "api.openai.com" {
			errs = append(errs, fmt.Errorf("OPENAI_API_KEY is required when STT_PROVIDER is openai and OPENAI_BASE_URL is OpenAI's (%s); set STT_PROVIDER=off to run without transcription", c.OpenAIBaseURL))
		}
	}
	return config.Join(errs...)
}

func isLanguage(s string) bool {
	return len(s) == 2 && s[0] >= 'a' && s[0] <= 'z' && s[1] >= 'a' && s[1] <= 'z'
}

// window is the audio per window.
func (c Config) window() time.Duration { return time.Duration(c.WindowSeconds) * time.Second }

// alertPcts returns the alert thresholds sorted, without duplicates.
func (c Config) alertPcts() []int {
	p := slices.Clone(c.BudgetAlertPcts)
	slices.Sort(p)
	return slices.Compact(p)
}
