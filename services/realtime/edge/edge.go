package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/services/realtime/engineio"
	"github.com/classwaves/classwaves/services/realtime/socketio"
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

// New builds an Edge. The session and stt clients must carry service credentials (the internal RPCs
// require a service principal); the edge passes the socket's principal in the request fields.
func New(cfg Config, verifier *authn.Verifier, sessions sessionv1.SessionServiceClient, stt sttv1.SttServiceClient,
	b bus.Bus, logger *slog.Logger, reg prometheus.Registerer) (*Edge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
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
	srv, err := socketio.NewServer(socketio.Config{
		Engine: engineio.Config{
			PingInterval: cfg.PingInterval,
			PingTimeout:  cfg.PingTimeout,
			MaxPayload:   maxPayload,
			CheckOrigin:  engineio.AllowOrigins(cfg.AllowedOrigins...),
		},
		OrderedEmits: cfg.OrderedEmits,
		Logger:       logger,
	})
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	e := &Edge{
		cfg: cfg, verifier: verifier, sessions: sessions, stt: stt, bus: b, logger: logger, metrics: m,
		srv: srv, audio: map[string]*audioStream{},
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

// Start subscribes to the bus fan-out of session and stt events. The subscriptions live until Stop.
func (e *Edge) Start(ctx context.Context) error {
	e.subsMu.Lock()
	defer e.subsMu.Unlock()
	for _, topic := range []string{e.cfg.SessionEventsTopic, e.cfg.STTEventsTopic} {
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
	})
	return errors.Join(errs...)
}
