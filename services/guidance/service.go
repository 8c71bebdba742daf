// Package guidance is the guidance service: it analyses each group's discussion (Tier 1, per group
// about every AI_TIER1_INTERVAL of transcript) and each session (Tier 2, every AI_TIER2_INTERVAL,
// on demand and once at the end), stores the insights (ai_insights), turns them into teacher
// prompts with dedupe, cooldown, expiry and teacher feedback, and publishes insights and prompts
// on the bus (GUIDANCE_EVENTS_TOPIC) for the realtime edge to deliver as ai:tier1:insight,
// ai:tier2:insight, teacher:alert and teacher:recommendations. It never speaks Socket.IO.
//
// Input arrives over the bus: transcripts and speech activity (stt) and session status changes
// (session), read as the consumer group "guidance". What the service analyses is stored first
// (idempotent by transcript and window id), and each group's analysis cursor, each prompt's
// cooldown slot and each session's Tier 2 schedule live in the database and move by
// compare-and-set, so several replicas, redeliveries and restarts never analyse a span twice or
// raise a prompt twice. About a session (teacher, school, objectives, group and student names,
// whether AI analysis is on) it asks the session service (GetSessionContext, an internal RPC).
//
// Layout: store.go is the persistence port and sqlstore.go its SQLite and PostgreSQL adapter;
// scheduler.go reads the bus and decides when to analyse; analysis.go runs the analyzers;
// prompts.go is the prompt policy; events.go publishes; server.go is the gRPC port; authz.go
// says who may see what; sessions.go caches session contexts. The analyzers are ports
// (services/guidance/analyzer): the built-in lexical analyzer or the LLM analyzer.
package guidance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/services/guidance/analyzer"
)

// ConsumerGroup is the bus consumer group the service reads stt and session events as.
const ConsumerGroup = "guidance"

// Service is the guidance service.
type Service struct {
	cfg      Config
	store    Store
	migrate  func(context.Context) error
	bus      bus.Bus
	sessions *sessionCache
	tier1    analyzer.Tier1Analyzer
	tier2    analyzer.Tier2Analyzer
	audit    *auditlog.Client
	logger   *slog.Logger
	m        *metrics
	now      func() time.Time
	consumer string

	locks keyedLocks
	t1    tierStats
	t2    tierStats

	// promptsDelivered and emitsFailedTotal are this process's delivery counters (health).
	promptsDelivered atomic.Int64
	emitsFailedTotal atomic.Int64

	// afterKey, when set (tests), runs after a key's messages are handled; an error leaves them
	// unacknowledged, as a crash before the acknowledgement would.
	afterKey func(msgs []bus.Message) error

	mu        sync.Mutex
	state     int
	subs      []bus.Subscription
	runCtx    context.Context
	runCancel context.CancelFunc
	loops     sync.WaitGroup
	quit      chan struct{}
}

const (
	stateNew = iota
	stateRunning
	stateStopped
)

// Option changes how New builds the service.
type Option func(*Service)

// WithClock replaces time.Now for everything the service times by the clock: insight and prompt
// times, cooldowns, expiry and the Tier 2 schedule (not the analysed spans, which follow window
// timestamps).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithConsumerName names this process in the bus consumer group (default: hostname-pid).
func WithConsumerName(name string) Option { return func(s *Service) { s.consumer = name } }

// New builds the guidance service on db (SQLite or PostgreSQL) and b (Redis Streams or
// in-process). sessions is a client of the session service carrying service credentials (it is
// asked GetSessionContext). tier1 and tier2 are the analyzers. It validates cfg and touches
// neither the database nor the bus: Start does. audit may be nil (actions are then not
// audited), logger nil (discard), reg nil (metrics not registered).
func New(cfg Config, db *store.DB, b bus.Bus, sessions sessionv1.SessionServiceClient, tier1 analyzer.Tier1Analyzer, tier2 analyzer.Tier2Analyzer,
	audit *auditlog.Client, logger *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case b == nil:
		return nil, errors.New("guidance: New needs a bus")
	case sessions == nil:
		return nil, errors.New("guidance: New needs a session service client")
	case tier1 == nil || tier2 == nil:
		return nil, errors.New("guidance: New needs a Tier 1 and a Tier 2 analyzer")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		cfg: cfg, bus: b, tier1: tier1, tier2: tier2, audit: audit,
		logger: logger.With("component", "guidance"),
		m:      newMetrics(reg),
		now:    time.Now,
	}
	if db == nil {
		return nil, errors.New("guidance: New needs a database")
	}
	st := newSQLStore(db)
	s.store, s.migrate = st, st.Migrate
	for _, o := range opts {
		o(s)
	}
	s.sessions = &sessionCache{client: sessions, ttl: cfg.SessionCacheTTL, now: s.now, fetched: s.recordSession, m: map[string]*sessionInfo{}}
	s.runCtx, s.runCancel = context.WithCancel(context.Background())
	return s, nil
}

// ServiceNames are the gRPC services this package serves (for health and reflection).
func ServiceNames() []string {
	return []string{guidancev1.GuidanceService_ServiceDesc.ServiceName}
}

// Register registers the gRPC server on r. Calls are answered GUIDANCE_NOT_READY until Start.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	guidancev1.RegisterGuidanceServiceServer(r, &server{svc: s})
}

// Start applies the migrations, joins the consumer group "guidance" on the stt and session
// topics, and starts the Tier 2 schedule (which also sweeps expired prompts). ctx bounds the
// start only.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return errors.New("guidance: Start called twice")
	}
	if s.migrate != nil {
		if err := s.migrate(ctx); err != nil {
			return fmt.Errorf("guidance: migrating: %w", err)
		}
	}
	opts := bus.SubscribeOptions{
		Consumer:  s.consumer,
		BatchSize: 4 * s.cfg.Workers,
		// A batch may wait for analyses (an LLM call with retries); only entries held longer than
		// that belong to a consumer that died.
		ClaimIdle: 3*s.cfg.LLM.Timeout*time.Duration(s.cfg.LLM.MaxRetries+1) + 30*time.Second,
	}
	subs, err := bus.SubscribeAll(s.runCtx, s.bus, []string{s.cfg.STTTopic, s.cfg.SessionTopic}, ConsumerGroup, s.handleBatch, opts)
	if err != nil {
		return fmt.Errorf("guidance: %w", err)
	}
	s.subs = subs
	s.quit = make(chan struct{})
	s.loops.Go(s.scheduleLoop)
	s.state = stateRunning
	s.logger.Info("guidance started", "tier1", s.tier1.Name(), "tier2", s.tier2.Name(),
		"tier1Interval", s.cfg.Tier1Interval, "tier2Interval", s.cfg.Tier2Interval,
		"topics", []string{s.cfg.STTTopic, s.cfg.SessionTopic}, "eventsTopic", s.cfg.EventsTopic)
	return nil
}

// Stop stops reading the bus (the batch in flight finishes; what is not acknowledged is
// delivered again to another replica or after restart), stops the schedule, and cancels the
// analyses still running when ctx ends. Stop before Start, or twice, does nothing.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.state != stateRunning {
		s.state = stateStopped
		s.mu.Unlock()
		s.runCancel()
		return nil
	}
	s.state = stateStopped
	subs := s.subs
	close(s.quit)
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		_ = bus.CloseAll(subs)
		s.loops.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.runCancel()
	<-done
	s.logger.Info("guidance stopped")
	return err
}

// running reports whether the service is started and not stopping.
func (s *Service) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateRunning
}

// recordSession records a session the session service described (its school, teacher and
// status), so the Tier 2 schedule knows it.
func (s *Service) recordSession(ctx context.Context, info *sessionInfo) error {
	err := s.store.UpsertSession(ctx, SessionState{SessionID: info.ID, SchoolID: info.SchoolID, TeacherID: info.TeacherID, Status: info.Status},
		s.now().Add(s.cfg.Tier2Interval))
	if err != nil {
		return storeError(ctx, err)
	}
	return nil
}

// tierStats are one tier's counters for the status RPCs (this process's view).
type tierStats struct {
	mu         sync.Mutex
	total      int64
	failures   int64
	lastRun    time.Time
	lastFailed bool
	queue      atomic.Int32
}

func (t *tierStats) record(at time.Time, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total++
	if failed {
		t.failures++
	}
	t.lastRun, t.lastFailed = at, failed
}

func (t *tierStats) snapshot() (total, failures int64, lastRun time.Time, lastFailed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total, t.failures, t.lastRun, t.lastFailed
}

// keyedLocks serializes work per key (a group, or a session's Tier 2) within the process; the
// database's compare-and-set guards across replicas.
type keyedLocks struct {
	mu sync.Mutex
	m  map[string]*keyedLock
}

type keyedLock struct {
	mu   sync.Mutex
	refs int
}

// lock locks key and returns its unlock.
func (k *keyedLocks) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyedLock{}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
