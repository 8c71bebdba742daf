// Package analytics is the analytics service: live group metrics, end-of-session finalization,
// summaries, and admin and platform analytics.
//
// Every replica joins one bus consumer group (ANALYTICS_CONSUMER_GROUP) on the session, stt and
// guidance topics. Each event is reduced to a Change (ingest.go) and applied by the store in the
// transaction that records its id, so a redelivered event changes nothing; counters are atomic
// increments, so replicas applying one group's events concurrently lose nothing.
//
// When a session ends, finalization (finalize.go) claims the session in the store (a row with an
// owner and a lease, ANALYTICS_FINALIZE_LEASE_MS), computes the analytics from the stored measures
// and the session service's GetSessionContext (compute.go), writes them once, and publishes
// AnalyticsFinalized: exactly once per claim, from an outbox (the event's id is stored with the
// outcome, and marked published once sent). A replica that dies mid-way leaves a lease that runs
// out; the sweeper of any replica takes the work over, and republishes events left unpublished.
// With FEATURE_GROUP_SESSION_SUMMARIES=1, summaries are then built (summaries.go) by the built-in
// summarizer or an LLM one, stored, and announced with SummariesReady.
//
// Layout, ports and adapters: Store (store.go) is the persistence port and sqlStore (sqlstore.go)
// its SQLite and PostgreSQL adapter; Summarizer (summarizer.go) the summaries port, with
// BuiltinSummarizer and LLMSummarizer (llmsummarizer.go); server.go is the gRPC port.
package analytics

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/store"
)

// Component is another service whose health GetComponentsHealth reports: probed with the standard
// gRPC health Check of Service on Conn.
type Component struct {
	Name string
	Conn grpc.ClientConnInterface
	// Service is the gRPC health service name to check ("" for the server as a whole).
	Service string
}

// subscribeMaxWait bounds an idle bus read.
const subscribeMaxWait = 500 * time.Millisecond

// processedRetention is how long applied event ids (and transcript text kept for summaries) are
// remembered. Redeliveries come within minutes (ClaimIdle), summaries right after a session ends;
// a week is ample.
const processedRetention = 7 * 24 * time.Hour

// Service is the analytics service.
type Service struct {
	cfg        Config
	store      Store
	migrate    func(context.Context) error
	bus        bus.Bus
	sessions   sessionv1.SessionServiceClient
	summarizer Summarizer // nil: the built-in one
	components []Component
	audit      *auditlog.Client
	logger     *slog.Logger
	m          *metrics
	now        func() time.Time
	// name identifies this replica: its consumer name and the prefix of its claims' owners.
	name string

	eventsApplied atomic.Int64
	// eventsHandled counts every message handled, whatever its outcome.
	eventsHandled atomic.Int64
	lastLag       atomic.Uint64 // float64 bits: seconds

	mu        sync.Mutex
	state     int
	subs      []bus.Subscription
	runCtx    context.Context
	runCancel context.CancelFunc
	quit      chan struct{}
	sweepDone chan struct{}

	// jobsMu guards jobsClosed and jobs.Add, so Stop's Wait never races an Add.
	jobsMu     sync.Mutex
	jobsClosed bool
	jobs       sync.WaitGroup
}

const (
	stateNew = iota
	stateRunning
	stateStopped
)

// option changes how newService builds the service (tests).
type option func(*Service)

// withClock replaces time.Now (claims, leases, computed times).
func withClock(now func() time.Time) option { return func(s *Service) { s.now = now } }

// New builds the analytics service on db (SQLite or PostgreSQL) and b (Redis Streams or
// in-process). sessions is the session service's client, carrying service credentials (its
// GetSessionContext is Internal). summarizer nil means the built-in summarizer. components are the
// services GetComponentsHealth probes. audit may be nil (nothing audited), logger nil (discard),
// reg nil (metrics not registered). New validates cfg and touches neither the database nor the
// bus: Start does.
func New(cfg Config, db *store.DB, b bus.Bus, sessions sessionv1.SessionServiceClient, summarizer Summarizer,
	components []Component, audit *auditlog.Client, logger *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if db == nil {
		return nil, errors.New("analytics: New needs a database")
	}
	st := newSQLStore(db)
	s, err := newService(cfg, st, b, sessions, summarizer, components, audit, logger, reg)
	if err != nil {
		return nil, err
	}
	s.migrate = st.Migrate
	return s, nil
}

func newService(cfg Config, st Store, b bus.Bus, sessions sessionv1.SessionServiceClient, summarizer Summarizer,
	components []Component, audit *auditlog.Client, logger *slog.Logger, reg prometheus.Registerer, opts ...option) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, errors.New("analytics: New needs a bus")
	}
	if sessions == nil {
		return nil, errors.New("analytics: New needs a session service client")
	}
	for i, c := range components {
		if c.Name == "" || c.Conn == nil {
			return nil, fmt.Errorf("analytics: component %d needs a name and a connection", i)
		}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	s := &Service{
		cfg: cfg, store: st, bus: b, sessions: sessions, summarizer: summarizer, components: components,
		audit: audit, logger: logger.With("component", "analytics"), m: newMetrics(reg), now: time.Now,
		name: cfg.consumerName(hex.EncodeToString(suffix[:])),
	}
	for _, o := range opts {
		o(s)
	}
	s.runCtx, s.runCancel = context.WithCancel(context.Background())
	return s, nil
}

// ServiceNames are the gRPC services this package serves (for health and reflection).
func ServiceNames() []string {
	return []string{analyticsv1.AnalyticsService_ServiceDesc.ServiceName}
}

// Register registers the gRPC server on r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	analyticsv1.RegisterAnalyticsServiceServer(r, &server{svc: s})
}

// topics are the consumed topics.
func (s *Service) topics() []string {
	return []string{s.cfg.SessionEventsTopic, s.cfg.STTEventsTopic, s.cfg.GuidanceEventsTopic}
}

// Start applies the migrations, joins the consumer group on the three topics and starts the
// sweeper. ctx bounds the start only.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return errors.New("analytics: Start called twice")
	}
	if s.migrate != nil {
		if err := s.migrate(ctx); err != nil {
			return fmt.Errorf("analytics: migrating: %w", err)
		}
	}
	subs, err := bus.SubscribeAll(s.runCtx, s.bus, s.topics(), s.cfg.ConsumerGroup, s.handleBatch, bus.SubscribeOptions{
		Consumer: s.name,
		// Batches are handed over as soon as an entry arrives; MaxWait only bounds an idle read,
		// and so how long Stop waits for one.
		MaxWait: subscribeMaxWait,
		// A batch may finalize sessions, each waiting on the session service.
		ClaimIdle: max(30*time.Second, 4*s.cfg.SessionRPCTimeout),
	})
	if err != nil {
		return fmt.Errorf("analytics: %w", err)
	}
	s.subs = subs
	s.quit, s.sweepDone = make(chan struct{}), make(chan struct{})
	go s.sweep()
	s.state = stateRunning
	s.logger.Info("analytics started", "consumer", s.name, "group", s.cfg.ConsumerGroup,
		"summaries", s.cfg.SummariesEnabled, "summarizer", s.summarizerName(), "finalizeLease", s.cfg.FinalizeLease)
	return nil
}

// Stop stops consuming (the batch in flight finishes), stops the sweeper, and waits for summary
// builds in flight until ctx ends; then it cancels them (their claims run out and another replica
// takes them over). Stop before Start, or twice, does nothing.
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
	s.subs = nil
	s.mu.Unlock()

	_ = bus.CloseAll(subs) // together: each waits for its read in flight, up to MaxWait
	close(s.quit)
	<-s.sweepDone
	s.jobsMu.Lock()
	s.jobsClosed = true
	s.jobsMu.Unlock()
	done := make(chan struct{})
	go func() { s.jobs.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.runCancel()
	<-done
	s.logger.Info("analytics stopped")
	return err
}

// spawn runs fn on a goroutine owned by the service, unless it is stopping.
func (s *Service) spawn(fn func(ctx context.Context)) bool {
	s.jobsMu.Lock()
	defer s.jobsMu.Unlock()
	if s.jobsClosed {
		return false
	}
	s.jobs.Go(func() { fn(s.runCtx) })
	return true
}

// sweepInterval is how often the sweeper looks for work left behind: a third of the lease,
// between 100 ms and 10 s.
func (s *Service) sweepInterval() time.Duration {
	return min(max(s.cfg.FinalizeLease/3, 100*time.Millisecond), 10*time.Second)
}

// sweepBatch bounds the work the sweeper takes per kind and round.
const sweepBatch = 20

// sweep runs until Stop: it finishes finalizations whose claim ran out (the replica died) or that
// never started (an ended session whose event was lost), summary builds left pending, and events
// left unpublished; and, hourly, it forgets old event ids and transcript text.
func (s *Service) sweep() {
	defer close(s.sweepDone)
	t := time.NewTicker(s.sweepInterval())
	defer t.Stop()
	var lastPurge time.Time
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		s.sweepOnce(s.runCtx)
		if now := s.now(); now.Sub(lastPurge) >= time.Hour {
			lastPurge = now
			ctx, cancel := context.WithTimeout(s.runCtx, time.Minute)
			if n, err := s.store.Purge(ctx, now.Add(-processedRetention)); err != nil {
				s.logger.Warn("analytics: purging old event ids and transcript text", "err", err)
			} else if n > 0 {
				s.logger.Info("analytics: forgot old event ids and transcript text", "rows", n)
			}
			cancel()
		}
	}
}

// sweepOnce does one round of the sweeper's work.
func (s *Service) sweepOnce(ctx context.Context) {
	now := s.now()
	w, err := s.store.Sweep(ctx, now, now.Add(-s.cfg.FinalizeLease), sweepBatch)
	if err != nil {
		s.logger.Warn("analytics: sweeping", "err", err)
		return
	}
	for _, id := range w.Finalize {
		if ctx.Err() != nil {
			return
		}
		if _, err := s.finalize(ctx, id, false); err != nil {
			s.logger.Warn("analytics: finalizing a stuck session", "err", err, "sessionId", id)
		}
	}
	for _, id := range w.Summaries {
		if ctx.Err() != nil {
			return
		}
		owner := s.owner()
		ok, err := s.store.ClaimSummaries(ctx, id, owner, now, now.Add(s.cfg.FinalizeLease))
		if err != nil {
			s.logger.Warn("analytics: claiming summaries", "err", err, "sessionId", id)
			continue
		}
		if ok {
			s.buildSummaries(ctx, id, owner, nil)
		}
	}
	for _, f := range w.Unpublished {
		if ctx.Err() != nil {
			return
		}
		s.republish(ctx, f, now)
	}
}

// summarizerName names the summarizer in use.
func (s *Service) summarizerName() string {
	if s.summarizer == nil {
		return BuiltinName
	}
	return s.summarizer.Name()
}
