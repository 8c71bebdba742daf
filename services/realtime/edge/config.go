package edge

import (
	"errors"
	"fmt"
	"time"

	"github.com/classwaves/classwaves/pkg/config"
	busevents "github.com/classwaves/classwaves/pkg/events"
)

// SchemaVersion is carried by every server-emitted payload.
const SchemaVersion = "1.0"

// Default bus topics.
const (
	DefaultSessionEventsTopic   = busevents.SessionTopic
	DefaultSTTEventsTopic       = busevents.STTTopic
	DefaultGuidanceEventsTopic  = busevents.GuidanceTopic
	DefaultAnalyticsEventsTopic = busevents.AnalyticsTopic
)

// Config configures an Edge.
type Config struct {
	// AllowedOrigins is the Origin allowlist (FRONTEND_URL, STUDENT_APP_URL). Empty allows only requests
	// without an Origin header or from the request's own host.
	AllowedOrigins []string
	// OrderedEmits serializes emits per room (WS_ORDERED_EMITS, default true).
	OrderedEmits bool
	// UnifiedSTT accepts audio on /sessions (WS_UNIFIED_STT, default true); off, audio events are refused.
	UnifiedSTT bool
	// GuidanceCanonical makes /guidance the only namespace for AI insight events (GUIDANCE_CANONICAL);
	// off (the default), ai:tier1:insight and ai:tier2:insight also go to the session room on /sessions.
	GuidanceCanonical bool
	// AnalyticsUseNamespaced sends analytics:finalized and analytics:failed to the session room on
	// /sessions only (ANALYTICS_USE_NAMESPACED, default true); off, they also go to the session room on
	// /guidance.
	AnalyticsUseNamespaced bool
	// MaxAudioChunkBytes is the hard cap of one audio:chunk (WS_MAX_AUDIO_CHUNK_BYTES, default 2 MiB).
	MaxAudioChunkBytes int
	// SessionEventsTopic, STTEventsTopic, GuidanceEventsTopic and AnalyticsEventsTopic are the bus
	// topics fanned out to clients.
	SessionEventsTopic   string
	STTEventsTopic       string
	GuidanceEventsTopic  string
	AnalyticsEventsTopic string
	// RecoveryWindow is how long a disconnected socket can come back with its id, rooms and the events
	// it missed (Socket.IO connection state recovery; WS_RECOVERY_WINDOW, default 2m). 0 turns recovery
	// off.
	RecoveryWindow time.Duration
	// RecoveryMaxPackets bounds the events kept for recovery per namespace (WS_RECOVERY_MAX_PACKETS,
	// default 10000); a client whose last event fell out of them gets a new session.
	RecoveryMaxPackets int
	// RPCTimeout bounds each call to the session service (default 5s).
	RPCTimeout time.Duration
	// PingInterval and PingTimeout tune Engine.IO heartbeats (defaults 25s and 20s).
	PingInterval, PingTimeout time.Duration

	// MaxAudioEventsPerSec is the per-socket audio:chunk event rate (WS_MAX_AUDIO_EVENTS_PER_SEC,
	// default 20); the bucket holds one second of events.
	MaxAudioEventsPerSec int
	// MaxAudioBytesPerSec is the per-socket audio byte rate (WS_MAX_AUDIO_BYTES_PER_SEC, default 1 MiB).
	MaxAudioBytesPerSec int
	// SchoolAudioLimit is the audio byte rate of all sockets of one school on this replica
	// (WS_SCHOOL_AUDIO_LIMIT, default 5 MiB/s).
	SchoolAudioLimit int
	// SessionAudioLimit is the audio byte rate of all sockets of one session on this replica
	// (WS_SESSION_AUDIO_LIMIT, default 2 MiB/s).
	SessionAudioLimit int
	// BackpressureHintThreshold is the number of consecutive dropped chunks after which a socket gets an
	// AUDIO_BACKPRESSURE hint (WS_BACKPRESSURE_HINT_THRESHOLD, default 3).
	BackpressureHintThreshold int
	// BackpressureHintCooldown is the minimum time between two hints to one socket
	// (WS_BACKPRESSURE_HINT_COOLDOWN_MS, default 5000 ms).
	BackpressureHintCooldown time.Duration
	// DevObservabilityToken, when set, must be sent as the gRPC metadata "x-dev-observability-token"
	// to call RealtimeService.GetActiveConnections (DEV_OBSERVABILITY_TOKEN); unset, the call is open.
	DevObservabilityToken string
	// Clock is the time source of the audio rate limits and hint cooldowns; nil means time.Now.
	// Not a flag: tests inject a fake clock.
	Clock func() time.Time
}

// DefaultConfig returns the defaults RegisterFlags sets.
func DefaultConfig() Config {
	return Config{
		OrderedEmits:           true,
		UnifiedSTT:             true,
		GuidanceCanonical:      false,
		AnalyticsUseNamespaced: true,
		MaxAudioChunkBytes:     2 << 20,
		SessionEventsTopic:     DefaultSessionEventsTopic,
		STTEventsTopic:         DefaultSTTEventsTopic,
		GuidanceEventsTopic:    DefaultGuidanceEventsTopic,
		AnalyticsEventsTopic:   DefaultAnalyticsEventsTopic,
		RecoveryWindow:         2 * time.Minute,
		RecoveryMaxPackets:     10000,
		RPCTimeout:             5 * time.Second,
		PingInterval:           25 * time.Second,
		PingTimeout:            20 * time.Second,

		MaxAudioEventsPerSec:      20,
		MaxAudioBytesPerSec:       1 << 20,
		SchoolAudioLimit:          5 << 20,
		SessionAudioLimit:         2 << 20,
		BackpressureHintThreshold: 3,
		BackpressureHintCooldown:  5 * time.Second,
	}
}

// RegisterFlags registers c's settings as -realtime.* flags with the seed's environment names.
// AllowedOrigins is not registered: the caller fills it from FRONTEND_URL and STUDENT_APP_URL.
func (c *Config) RegisterFlags(f *config.FlagSet) {
	d := DefaultConfig()
	f.Bool(&c.OrderedEmits, "realtime.ordered-emits", "WS_ORDERED_EMITS", d.OrderedEmits,
		"serialize WebSocket emits per room to preserve event ordering")
	f.Bool(&c.UnifiedSTT, "realtime.unified-stt", "WS_UNIFIED_STT", d.UnifiedSTT,
		"accept audio:chunk on the /sessions namespace and stream it to stt")
	f.Bool(&c.GuidanceCanonical, "realtime.guidance-canonical", "GUIDANCE_CANONICAL", d.GuidanceCanonical,
		"emit AI insights only on the /guidance namespace")
	f.Bool(&c.AnalyticsUseNamespaced, "realtime.analytics-use-namespaced", "ANALYTICS_USE_NAMESPACED",
		d.AnalyticsUseNamespaced, "emit analytics:finalized and analytics:failed on /sessions only (off: also on /guidance)")
	f.Int(&c.MaxAudioChunkBytes, "realtime.max-audio-chunk-bytes", "WS_MAX_AUDIO_CHUNK_BYTES", d.MaxAudioChunkBytes,
		"hard cap in bytes of one audio:chunk")
	f.String(&c.SessionEventsTopic, "realtime.session-events-topic", "REALTIME_SESSION_EVENTS_TOPIC", d.SessionEventsTopic,
		"bus topic of session events fanned out to sockets")
	f.String(&c.STTEventsTopic, "realtime.stt-events-topic", "REALTIME_STT_EVENTS_TOPIC", d.STTEventsTopic,
		"bus topic of stt events fanned out to sockets")
	f.String(&c.GuidanceEventsTopic, "realtime.guidance-events-topic", "REALTIME_GUIDANCE_EVENTS_TOPIC",
		d.GuidanceEventsTopic, "bus topic of guidance events (insights, teacher prompts) fanned out to sockets")
	f.String(&c.AnalyticsEventsTopic, "realtime.analytics-events-topic", "REALTIME_ANALYTICS_EVENTS_TOPIC",
		d.AnalyticsEventsTopic, "bus topic of analytics events (finalization, summaries) fanned out to sockets")
	f.Duration(&c.RecoveryWindow, "realtime.recovery-window", "WS_RECOVERY_WINDOW", d.RecoveryWindow,
		"how long a disconnected socket can recover its rooms and missed events (0: recovery off)")
	f.Int(&c.RecoveryMaxPackets, "realtime.recovery-max-packets", "WS_RECOVERY_MAX_PACKETS", d.RecoveryMaxPackets,
		"events kept per namespace for connection state recovery")
	f.Duration(&c.RPCTimeout, "realtime.rpc-timeout", "REALTIME_RPC_TIMEOUT", d.RPCTimeout,
		"timeout of each call from the edge to the session service")
	f.Duration(&c.PingInterval, "realtime.ping-interval", "WS_PING_INTERVAL", d.PingInterval, "Engine.IO ping interval")
	f.Duration(&c.PingTimeout, "realtime.ping-timeout", "WS_PING_TIMEOUT", d.PingTimeout, "Engine.IO ping timeout")
	f.Int(&c.MaxAudioEventsPerSec, "realtime.max-audio-events-per-sec", "WS_MAX_AUDIO_EVENTS_PER_SEC",
		d.MaxAudioEventsPerSec, "max audio:chunk events per socket per second")
	f.Int(&c.MaxAudioBytesPerSec, "realtime.max-audio-bytes-per-sec", "WS_MAX_AUDIO_BYTES_PER_SEC",
		d.MaxAudioBytesPerSec, "max audio bytes per socket per second")
	f.Int(&c.SchoolAudioLimit, "realtime.school-audio-limit", "WS_SCHOOL_AUDIO_LIMIT", d.SchoolAudioLimit,
		"max audio bytes per second of one school (per replica)")
	f.Int(&c.SessionAudioLimit, "realtime.session-audio-limit", "WS_SESSION_AUDIO_LIMIT", d.SessionAudioLimit,
		"max audio bytes per second of one session (per replica)")
	f.Int(&c.BackpressureHintThreshold, "realtime.backpressure-hint-threshold", "WS_BACKPRESSURE_HINT_THRESHOLD",
		d.BackpressureHintThreshold, "consecutive dropped audio chunks before a backpressure hint")
	f.DurationMS(&c.BackpressureHintCooldown, "realtime.backpressure-hint-cooldown", "WS_BACKPRESSURE_HINT_COOLDOWN_MS",
		d.BackpressureHintCooldown, "minimum time between two backpressure hints to one socket")
	f.String(&c.DevObservabilityToken, "realtime.dev-observability-token", "DEV_OBSERVABILITY_TOKEN", "",
		"token required (gRPC metadata x-dev-observability-token) by GetActiveConnections; empty leaves it open")
}

// Validate reports what is wrong with c, if anything.
func (c Config) Validate() error {
	var errs []error
	if c.MaxAudioChunkBytes <= 0 {
		errs = append(errs, fmt.Errorf("edge: MaxAudioChunkBytes must be positive, got %d", c.MaxAudioChunkBytes))
	}
	if c.SessionEventsTopic == "" || c.STTEventsTopic == "" || c.GuidanceEventsTopic == "" || c.AnalyticsEventsTopic == "" {
		errs = append(errs, errors.New("edge: event topics must be set"))
	}
	if c.RecoveryWindow < 0 {
		errs = append(errs, fmt.Errorf("edge: WS_RECOVERY_WINDOW must not be negative, got %v", c.RecoveryWindow))
	}
	if c.RecoveryWindow > 0 && c.RecoveryMaxPackets <= 0 {
		errs = append(errs, fmt.Errorf("edge: WS_RECOVERY_MAX_PACKETS must be positive, got %d", c.RecoveryMaxPackets))
	}
	if c.RPCTimeout <= 0 {
		errs = append(errs, fmt.Errorf("edge: RPCTimeout must be positive, got %v", c.RPCTimeout))
	}
	if c.PingInterval < 0 || c.PingTimeout < 0 {
		errs = append(errs, errors.New("edge: ping interval and timeout must not be negative"))
	}
	errs = append(errs,
		config.Positive("WS_MAX_AUDIO_EVENTS_PER_SEC", c.MaxAudioEventsPerSec),
		config.Positive("WS_MAX_AUDIO_BYTES_PER_SEC", c.MaxAudioBytesPerSec),
		config.Positive("WS_SCHOOL_AUDIO_LIMIT", c.SchoolAudioLimit),
		config.Positive("WS_SESSION_AUDIO_LIMIT", c.SessionAudioLimit),
		config.Positive("WS_BACKPRESSURE_HINT_THRESHOLD", c.BackpressureHintThreshold),
		config.NonNegative("WS_BACKPRESSURE_HINT_COOLDOWN_MS", c.BackpressureHintCooldown.Milliseconds()),
	)
	return errors.Join(errs...)
}
