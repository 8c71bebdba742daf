package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/services/realtime/engineio"
	"github.com/classwaves/classwaves/services/realtime/socketio"
	"github.com/classwaves/classwaves/services/realtime/socketio/redisadapter"
)

// Namespaces served by the edge.
const (
	NamespaceSessions = "/sessions"
	NamespaceGuidance = "/guidance"
)

// Edge is the ClassWaves realtime edge.
type Edge struct {
	cfg      Config
	verifier *authn.Verifier
	sessions sessionv1.SessionServiceClient
	stt      sttv1.SttServiceClient
	bus      bus.Bus
	logger   *slog.Logger
	metrics  *metrics

	srv      *socketio.Server
	recovery *redisadapter.Store // nil without WithRedis
	sessNS   *socketio.Namespace
	guideNS  *socketio.Namespace
	handler  http.Handler
	audioMu  sync.Mutex
	audio    map[string]*audioStream // by group id
	subsMu   sync.Mutex
	subs     []bus.Subscription
	stopOnce sync.Once

	quotaMu        sync.Mutex
	schoolBuckets  map[string]*bucket
	sessionBuckets map[string]*bucket
	lastSweep      time.Time
}

// Option adjusts how New builds an Edge.
type Option func(*options)

type options struct {
	redis       redis.UniversalClient
	redisPrefix string
}

// WithRedis keeps connection state recovery in Redis (package redisadapter) instead of this process's
// memory, so that a client can recover its session on any edge replica. Every replica must use the same
// Redis and keyPrefix (e.g. the bus prefix, BUS_KEY_PREFIX) and receive the same bus events (the Redis
// bus). Without it (monolithic mode) recovery works within this process only.
func WithRedis(client redis.UniversalClient, keyPrefix string) Option {
	return func(o *options) { o.redis, o.redisPrefix = client, keyPrefix }
}

// New builds an Edge. The session and stt clients must carry service credentials (the internal RPCs
// require a service principal); the edge passes the socket's principal in the request fields.
func New(cfg Config, verifier *authn.Verifier, sessions sessionv1.SessionServiceClient, stt sttv1.SttServiceClient,
	b bus.Bus, logger *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Edge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if verifier == nil || sessions == nil || b == nil {
		return nil, errors.New("edge: verifier, session client and bus are required")
	}
	if stt == nil && cfg.UnifiedSTT {
		return nil, errors.New("edge: an stt client is required when UnifiedSTT is on")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	maxPayload := max(1_000_000, cfg.MaxAudioChunkBytes+64<<10)
	sioCfg := socketio.Config{
		Engine: engineio.Config{
			PingInterval: cfg.PingInterval,
			PingTimeout:  cfg.PingTimeout,
			MaxPayload:   maxPayload,
			CheckOrigin:  engineio.AllowOrigins(cfg.AllowedOrigins...),
		},
		OrderedEmits: cfg.OrderedEmits,
		Recovery: socketio.RecoveryConfig{
			Enabled:                  cfg.RecoveryWindow > 0,
			MaxDisconnectionDuration: cfg.RecoveryWindow,
			MaxPackets:               cfg.RecoveryMaxPackets,
		},
		Logger: logger,
	}
	var store *redisadapter.Store
	if o.redis != nil && cfg.RecoveryWindow > 0 {
		store, err = redisadapter.New(o.redis, redisadapter.Options{
			Prefix: o.redisPrefix, EncodeData: encodeConn, DecodeData: decodeConn, Logger: logger,
		})
		if err != nil {
			return nil, fmt.Errorf("edge: %w", err)
		}
		sioCfg.NewAdapter = store.NewAdapter
	}
	srv, err := socketio.NewServer(sioCfg)
	if err != nil {
		if store != nil {
			_ = store.Close()
		}
		return nil, fmt.Errorf("edge: %w", err)
	}
	e := &Edge{
		cfg: cfg, verifier: verifier, sessions: sessions, stt: stt, bus: b, logger: logger, metrics: m,
		srv: srv, recovery: store, audio: map[string]*audioStream{},
		schoolBuckets: map[string]*bucket{}, sessionBuckets: map[string]*bucket{},
	}
	e.sessNS = srv.Of(NamespaceSessions)
	e.guideNS = srv.Of(NamespaceGuidance)
	for _, ns := range []*socketio.Namespace{e.sessNS, e.guideNS} {
		ns.Use(e.authenticate)
		name := ns.Name()
		ns.OnConnection(func(s *socketio.Socket) { e.onConnection(name, s) })
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	e.handler = mux
	return e, nil
}

// Handler serves Socket.IO at /socket.io/.
func (e *Edge) Handler() http.Handler { return e.handler }

// Server returns the underlying Socket.IO server (for wiring adapters or tests).
func (e *Edge) Server() *socketio.Server { return e.srv }

// Start subscribes to the bus fan-out of session, stt, guidance and analytics events. The subscriptions
// live until Stop.
func (e *Edge) Start(ctx context.Context) error {
	e.subsMu.Lock()
	defer e.subsMu.Unlock()
	for _, topic := range e.topics() {
		sub, err := e.bus.FanOut(ctx, topic, e.handleBusMessage)
		if err != nil {
			for _, s := range e.subs {
				_ = s.Close()
			}
			e.subs = nil
			return fmt.Errorf("edge: fan-out %s: %w", topic, err)
		}
		e.subs = append(e.subs, sub)
	}
	return nil
}

// topics returns the bus topics the edge fans out, each once (configured names may coincide).
func (e *Edge) topics() []string {
	var out []string
	for _, t := range []string{e.cfg.SessionEventsTopic, e.cfg.STTEventsTopic, e.cfg.GuidanceEventsTopic, e.cfg.AnalyticsEventsTopic} {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// Stop closes the bus subscriptions, the audio streams and the Socket.IO server.
func (e *Edge) Stop(ctx context.Context) error {
	var errs []error
	e.stopOnce.Do(func() {
		e.subsMu.Lock()
		for _, s := range e.subs {
			errs = append(errs, s.Close())
		}
		e.subs = nil
		e.subsMu.Unlock()

		e.audioMu.Lock()
		streams := make([]*audioStream, 0, len(e.audio))
		for _, st := range e.audio {
			streams = append(streams, st)
		}
		e.audio = map[string]*audioStream{}
		e.audioMu.Unlock()
		for _, st := range streams {
			st.stop(ctx)
		}
		errs = append(errs, e.srv.Close())
		if e.recovery != nil {
			errs = append(errs, e.recovery.Close())
		}
	})
	return errors.Join(errs...)
}
