// Package stt is the speech-to-text service: each group's audio arrives over a gRPC stream from
// the realtime edge, is aggregated in memory into windows of STT_WINDOW_SECONDS (never written to
// disk, released after each window), and each window is transcribed through an OpenAI-compatible
// Whisper endpoint; transcripts are stored (audio.transcriptions) and published on the bus
// (TranscriptReady) for the edge to emit as transcription:group:new. Voice activity is measured
// on PCM and WAV windows and published (SpeechActivity) even when STT_PROVIDER=off. Per-school
// daily budgets stop transcription with one alert per threshold (BudgetAlert, audited once).
//
// Layout: services/stt/audio turns chunks into windows (formats, refusals, voice activity);
// services/stt/whisper is the transcription client (retries, concurrency limit, confidence and
// filtering); services/stt/openaitest is a local server speaking the OpenAI transcription API
// for tests. In this package, Store (store.go) is the persistence port and sqlStore its SQLite
// and PostgreSQL adapter; group.go holds the windowing of each group, pipeline.go what happens
// to a closed window, flush.go FlushGroups and the drain, server.go the gRPC port.
package stt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/services/stt/whisper"
)

// Transcriber is the port to the transcription API; *whisper.Client implements it.
type Transcriber interface {
	Transcribe(ctx context.Context, req whisper.Request) (whisper.Response, error)
}

var _ Transcriber = (*whisper.Client)(nil)

// Service is the stt service.
type Service struct {
	cfg         Config
	store       Store
	migrate     func(context.Context) error
	bus         bus.Bus
	audit       *auditlog.Client
	logger      *slog.Logger
	m           *metrics
	transcriber Transcriber // nil when STT_PROVIDER=off
	budget      *budgets
	now         func() time.Time

	// runCtx is the parent of every job's context; cancelling it abandons the work in flight.
	runCtx    context.Context
	runCancel context.CancelFunc

	mu     sync.Mutex
	state  int
	groups map[groupKey]*group

	// jobsMu guards jobsClosed and the jobs.Add calls, so that Stop's Wait never races an Add.
	jobsMu     sync.Mutex
	jobsClosed bool
	jobs       sync.WaitGroup

	queue     chan flushTask
	quit      chan struct{}
	workers   sync.WaitGroup
	sweepDone chan struct{}

	// published, when set, is told each transcript's close-to-publish time (excluding the
	// transcription call) and how much of it was spent waiting for the group's previous window.
	published func(closeToPublish, waitPrev time.Duration)
}

const (
	stateNew = iota
	stateRunning
	stateStopped
)

// option changes how newService builds the service (tests).
type option func(*Service)

// withPublished reports each transcript's close-to-publish time to fn.
func withPublished(fn func(closeToPublish, waitPrev time.Duration)) option {
	return func(s *Service) { s.published = fn }
}

// withClock replaces time.Now for budget days and window times.
func withClock(now func() time.Time) option { return func(s *Service) { s.now = now } }

// New builds the stt service on db (SQLite or PostgreSQL) and b (Redis Streams or in-process).
// It validates cfg and touches neither the database nor the bus: Start does. audit may be nil
// (budget alerts are then not audited), logger nil (discard), reg nil (metrics not registered).
func New(cfg Config, db *store.DB, b bus.Bus, audit *auditlog.Client, logger *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if db == nil {
		return nil, errors.New("stt: New needs a database")
	}
	st := newSQLStore(db)
	s, err := newService(cfg, st, b, audit, logger, reg)
	if err != nil {
		return nil, err
	}
	s.migrate = st.Migrate
	return s, nil
}

func newService(cfg Config, st Store, b bus.Bus, audit *auditlog.Client, logger *slog.Logger, reg prometheus.Registerer, opts ...option) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, errors.New("stt: New needs a bus")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		cfg:    cfg,
		store:  st,
		bus:    b,
		audit:  audit,
		logger: logger.With("component", "stt"),
		m:      newMetrics(reg),
		now:    time.Now,
		groups: map[groupKey]*group{},
	}
	if cfg.Provider == ProviderOpenAI {
		s.transcriber = whisper.New(whisper.Config{
			BaseURL:     cfg.OpenAIBaseURL,
			APIKey:      cfg.OpenAIAPIKey,
			Model:       cfg.WhisperModel,
			Timeout:     cfg.WhisperTimeout,
			Concurrency: cfg.WhisperConcurrency,
			MaxRetries:  cfg.WhisperMaxRetries,
		}, whisper.WithObserver(s.m))
	}
	for _, o := range opts {
		o(s)
	}
	s.budget = newBudgets(s)
	s.runCtx, s.runCancel = context.WithCancel(context.Background())
	return s, nil
}

// ServiceNames are the gRPC services this package serves (for health and reflection).
func ServiceNames() []string {
	return []string{sttv1.SttService_ServiceDesc.ServiceName}
}

// Register registers the gRPC server on r. Streams are refused (UNAVAILABLE) until Start.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	sttv1.RegisterSttServiceServer(r, &server{svc: s})
}

// Start applies the migrations and starts the background work: the sweeper that closes windows
// whose stream went quiet, and the flush queue's workers (AUDIO_QUEUE_ENABLED). ctx bounds the
// start only.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return errors.New("stt: Start called twice")
	}
	if s.migrate != nil {
		if err := s.migrate(ctx); err != nil {
			return fmt.Errorf("stt: migrating: %w", err)
		}
	}
	s.quit = make(chan struct{})
	if s.cfg.QueueEnabled {
		s.queue = make(chan flushTask, flushQueueCapacity)
		for range s.cfg.QueueWorkers {
			s.workers.Go(s.flushWorker)
		}
	}
	s.sweepDone = make(chan struct{})
	go s.sweep()
	s.state = stateRunning
	s.logger.Info("stt started", "provider", s.cfg.Provider, "windowSeconds", s.cfg.WindowSeconds,
		"model", s.cfg.WhisperModel, "concurrency", s.cfg.WhisperConcurrency,
		"budgetMinutesPerDay", s.cfg.BudgetMinutesPerDay, "queue", s.cfg.QueueEnabled)
	return nil
}

// Stop drains: streams are refused from now on, every open window is closed and handed to
// transcription, and Stop waits for the transcriptions up to AUDIO_DRAIN_TIMEOUT_MS (or ctx, if
// sooner). What is not done by then is abandoned: calls in flight are cancelled and their audio
// dropped, never written anywhere. Stop before Start, or twice, does nothing.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.state != stateRunning {
		s.state = stateStopped
		s.mu.Unlock()
		s.runCancel()
		return nil
	}
	s.state = stateStopped
	groups := s.snapshotLocked()
	s.mu.Unlock()
	close(s.quit)
	<-s.sweepDone

	closed := 0
	for _, g := range groups {
		closed += s.closeWindow(g)
	}
	s.jobsMu.Lock()
	s.jobsClosed = true
	s.jobsMu.Unlock()

	done := make(chan struct{})
	go func() { s.jobs.Wait(); close(done) }()
	timer := time.NewTimer(s.cfg.DrainTimeout)
	defer timer.Stop()
	var err error
	select {
	case <-done:
	case <-timer.C:
		s.logger.Warn("stt: drain timed out; abandoning the windows in flight", "timeout", s.cfg.DrainTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.runCancel()
	<-done
	s.workers.Wait()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	s.budget.save(sctx)
	cancel()
	s.logger.Info("stt stopped", "windowsClosed", closed)
	return err
}

// usageSaveTicks is how many sweeps (seconds) apart unlimited budgets' use is written.
const usageSaveTicks = 5

// sweep writes unlimited budgets' use every few seconds, and closes windows whose stream stopped
// sending: a window open (by the wall clock) for
// twice STT_WINDOW_SECONDS is closed as it is, so a paused or slow client's last words are
// transcribed.
func (s *Service) sweep() {
	defer close(s.sweepDone)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		if tick%usageSaveTicks == 0 {
			ctx, cancel := context.WithTimeout(s.runCtx, storeTimeout)
			s.budget.save(ctx)
			cancel()
		}
		s.mu.Lock()
		groups := s.snapshotLocked()
		s.mu.Unlock()
		limit := 2 * s.cfg.window()
		now := time.Now()
		for _, g := range groups {
			g.mu.Lock()
			stale := g.asm != nil && g.asm.Duration() > 0 && now.Sub(g.winOpened) >= limit
			g.mu.Unlock()
			if stale {
				s.closeWindow(g)
			}
		}
	}
}

func (s *Service) snapshotLocked() []*group {
	out := make([]*group, 0, len(s.groups))
	for _, g := range s.groups {
		out = append(out, g)
	}
	return out
}

// spawn runs j on its own goroutine unless the service stopped taking jobs.
func (s *Service) spawn(j *windowJob) bool {
	s.jobsMu.Lock()
	defer s.jobsMu.Unlock()
	if s.jobsClosed {
		return false
	}
	s.jobs.Add(1)
	go s.run(j)
	return true
}
