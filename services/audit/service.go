// Package audit is the audit service: the compliance audit log (FERPA/COPPA).
//
// Services enqueue events with pkg/auditlog onto the audit stream (AUDIT_LOG_STREAM_KEY). This
// package's worker reads that stream as the consumer group AUDIT_LOG_CONSUMER_GROUP in batches of
// AUDIT_LOG_BATCH_SIZE (waiting at most AUDIT_LOG_BLOCK_MS for one to fill), samples the noisy
// categories into minute rollups, and stores the rest in compliance.audit_log, idempotently by
// event id. When the database fails it cools down (AUDIT_LOG_DB_COOLDOWN_MS) and leaves the
// entries pending, except critical events, which go to the dead-letter stream (AUDIT_LOG_DLQ_KEY);
// malformed entries go there too. ReplayDLQ (`classwaves audit replay-dlq`) brings them back. The
// gRPC server answers RecordEvents (the synchronous path) and QueryAuditLog (admins, REST
// GET /api/v1/admin/audit-log).
//
// Layout, ports and adapters: Store (store.go) is the persistence port, sqlStore (sqlstore.go) its
// adapter for SQLite and PostgreSQL; the worker and the gRPC server use only the port and the
// bus.Bus port, so they know nothing of SQL or Redis.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	auditv1 "github.com/classwaves/classwaves/pkg/api/classwaves/audit/v1"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/store"
)

// Service is the audit service: its gRPC server, its worker and DLQ replay.
type Service struct {
	cfg     Config
	store   Store
	migrate func(context.Context) error // nil when the store needs none
	bus     bus.Bus
	logger  *slog.Logger
	m       *metrics
	sampler *sampler

	mu        sync.Mutex
	worker    *worker
	sub       bus.Subscription
	stopping  chan struct{}
	runCancel context.CancelFunc
	state     int // stateNew, stateRunning, stateStopped
}

const (
	stateNew = iota
	stateRunning
	stateStopped
)

// New builds the audit service on db (SQLite or PostgreSQL) and b (Redis Streams or in-process).
// It validates cfg and touches neither the database nor the bus: Start does. logger may be nil
// (discard); reg may be nil (metrics not registered).
func New(cfg Config, db *store.DB, b bus.Bus, logger *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if db == nil {
		return nil, errors.New("audit: New needs a database")
	}
	st := newSQLStore(db)
	s, err := newService(cfg, st, b, logger, reg)
	if err != nil {
		return nil, err
	}
	s.migrate = st.Migrate
	return s, nil
}

// newService builds the service on any Store (tests wrap the SQL store to inject faults).
func newService(cfg Config, st Store, b bus.Bus, logger *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, errors.New("audit: New needs a bus")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{
		cfg:     cfg,
		store:   st,
		bus:     b,
		logger:  logger.With("component", "audit"),
		m:       newMetrics(reg),
		sampler: newSampler(cfg.NoisySampleRate, cfg.NoisyHardCapPerMin),
	}, nil
}

// ServiceNames are the gRPC services this package serves (for health and reflection).
func ServiceNames() []string {
	return []string{auditv1.AuditService_ServiceDesc.ServiceName}
}

// Register registers the gRPC server on r. The server needs no Start (RecordEvents and
// QueryAuditLog use the database directly) but the table exists only after Start migrated it.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	auditv1.RegisterAuditServiceServer(r, &server{svc: s})
}

// Start applies the migrations and starts the worker: it joins the consumer group and stores
// batches until Stop. ctx bounds the start only; the worker runs until Stop.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return errors.New("audit: Start called twice")
	}
	if s.migrate != nil {
		if err := s.migrate(ctx); err != nil {
			return fmt.Errorf("audit: migrating: %w", err)
		}
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopping := make(chan struct{})
	w := &worker{
		cfg: s.cfg, store: s.store, bus: s.bus, sampler: s.sampler, m: s.m,
		logger: s.logger, runCtx: runCtx, stopping: stopping,
	}
	sub, err := s.bus.Subscribe(runCtx, s.cfg.Log.StreamKey, s.cfg.ConsumerGroup, w.handle, bus.SubscribeOptions{
		Consumer:  s.cfg.ConsumerName,
		BatchSize: s.cfg.BatchSize,
		MaxWait:   s.cfg.BlockDuration,
		// A batch may wait out a cooldown and then an insert; only entries held longer than that
		// belong to a worker that died.
		ClaimIdle: s.cfg.DBCooldown + insertTimeout + 30*time.Second,
		// The worker decides what is dead-lettered (malformed, invalid, refused, or critical while
		// the database is down); an outage must not push ordinary events to the DLQ just because
		// they were delivered often.
		MaxDeliveries:   -1,
		DeadLetterTopic: s.cfg.DLQKey,
	})
	if err != nil {
		cancel()
		return fmt.Errorf("audit: subscribing to %s: %w", s.cfg.Log.StreamKey, err)
	}
	s.worker, s.sub, s.stopping, s.runCancel, s.state = w, sub, stopping, cancel, stateRunning
	s.logger.Info("audit worker started", "stream", s.cfg.Log.StreamKey, "group", s.cfg.ConsumerGroup,
		"consumer", s.cfg.ConsumerName, "batchSize", s.cfg.BatchSize)
	return nil
}

// Stop drains the worker: it stops taking batches, lets the batch in flight finish (its insert
// and acknowledgement; a cooldown wait is cut short, leaving that batch pending), and returns.
// When ctx ends first, the batch's database work is cancelled (its entries stay pending, to be
// delivered again) and ctx's error returned. Stop before Start, or twice, does nothing.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.state != stateRunning {
		s.state = stateStopped
		s.mu.Unlock()
		return nil
	}
	s.state = stateStopped
	w, sub, cancel := s.worker, s.sub, s.runCancel
	close(s.stopping)
	s.mu.Unlock()

	done := make(chan error, 1)
	go func() { done <- sub.Close() }()
	// The last batch is acknowledged once the subscription is closed: stop the idle flush (waiting
	// for one in progress) and delete what is left from the stream (bounded by its own short
	// timeout, also when ctx has ended).
	flushCtx := context.WithoutCancel(ctx)
	select {
	case err := <-done:
		w.halt()
		w.flushHandled(flushCtx)
		cancel()
		return err
	case <-ctx.Done():
		cancel()
		<-done
		w.halt()
		w.flushHandled(flushCtx)
		return ctx.Err()
	}
}
