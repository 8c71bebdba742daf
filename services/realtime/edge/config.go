// Package edge is the ClassWaves side of the realtime edge: the /sessions and /guidance Socket.IO
// namespaces (JWT handshake auth, session and group rooms, REST-first session control), fan-out of bus
// events (session:events, stt:events) to those rooms, and audio ingress to the stt service over one
// StreamAudio stream per group. The protocol itself lives in package socketio.
package edge

import (
	"errors"
	"fmt"
	"time"

	"github.com/classwaves/classwaves/pkg/config"
)

// SchemaVersion is carried by every server-emitted payload.
const SchemaVersion = "1.0"

// Default bus topics.
const (
	DefaultSessionEventsTopic = "session:events"
	DefaultSTTEventsTopic     = "stt:events"
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
	// GuidanceCanonical makes /guidance the only namespace for AI insight events (GUIDANCE_CANONICAL).
	GuidanceCanonical bool
	// MaxAudioChunkBytes is the hard cap of one audio:chunk (WS_MAX_AUDIO_CHUNK_BYTES, default 2 MiB).
	MaxAudioChunkBytes int
	// SessionEventsTopic and STTEventsTopic are the bus topics fanned out to clients.
	SessionEventsTopic string
	STTEventsTopic     string
	// RPCTimeout bounds each call to the session service (default 5s).
	RPCTimeout time.Duration
	// PingInterval and PingTimeout tune Engine.IO heartbeats (defaults 25s and 20s).
	PingInterval, PingTimeout time.Duration
}

// DefaultConfig returns the defaults RegisterFlags sets.
func DefaultConfig() Config {
	return Config{
		OrderedEmits:       true,
		UnifiedSTT:         true,
		GuidanceCanonical:  false,
		MaxAudioChunkBytes: 2 << 20,
		SessionEventsTopic: DefaultSessionEventsTopic,
		STTEventsTopic:     DefaultSTTEventsTopic,
		RPCTimeout:         5 * time.Second,
		PingInterval:       25 * time.Second,
		PingTimeout:        20 * time.Second,
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
	f.Int(&c.MaxAudioChunkBytes, "realtime.max-audio-chunk-bytes", "WS_MAX_AUDIO_CHUNK_BYTES", d.MaxAudioChunkBytes,
		"hard cap in bytes of one audio:chunk")
	f.String(&c.SessionEventsTopic, "realtime.session-events-topic", "REALTIME_SESSION_EVENTS_TOPIC", d.SessionEventsTopic,
		"bus topic of session events fanned out to sockets")
	f.String(&c.STTEventsTopic, "realtime.stt-events-topic", "REALTIME_STT_EVENTS_TOPIC", d.STTEventsTopic,
		"bus topic of stt events fanned out to sockets")
	f.Duration(&c.RPCTimeout, "realtime.rpc-timeout", "REALTIME_RPC_TIMEOUT", d.RPCTimeout,
		"timeout of each call from the edge to the session service")
	f.Duration(&c.PingInterval, "realtime.ping-interval", "WS_PING_INTERVAL", d.PingInterval, "Engine.IO ping interval")
	f.Duration(&c.PingTimeout, "realtime.ping-timeout", "WS_PING_TIMEOUT", d.PingTimeout, "Engine.IO ping timeout")
}

// Validate reports what is wrong with c, if anything.
func (c Config) Validate() error {
	var errs []error
	if c.MaxAudioChunkBytes <= 0 {
		errs = append(errs, fmt.Errorf("edge: MaxAudioChunkBytes must be positive, got %d", c.MaxAudioChunkBytes))
	}
	if c.SessionEventsTopic == "" || c.STTEventsTopic == "" {
		errs = append(errs, errors.New("edge: event topics must be set"))
	}
	if c.RPCTimeout <= 0 {
		errs = append(errs, fmt.Errorf("edge: RPCTimeout must be positive, got %v", c.RPCTimeout))
	}
	if c.PingInterval < 0 || c.PingTimeout < 0 {
		errs = append(errs, errors.New("edge: ping interval and timeout must not be negative"))
	}
	return errors.Join(errs...)
}
