package audit

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/inproc"
	"github.com/classwaves/classwaves/pkg/logging"
	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/store/storetest"
)

// waitTimeout bounds every wait for the worker; it is a hang guard, not a speed assertion.
const waitTimeout = 90 * time.Second

// faultStore wraps a real store and injects failures: while down, Insert and Ping fail as if the
// database were unreachable; while gate is set, Insert waits for it (or for its context). It
// records the size of every Insert call. It is fault injection in front of a real database, not a
// fake of one.
type faultStore struct {
	Store
	down atomic.Bool

	mu      sync.Mutex
	gate    chan struct{}
	entered chan struct{}
	sizes   []int
}

var errInjected = errors.New("injected: connection refused")

func (f *faultStore) Insert(ctx context.Context, recs []Record) (int, error) {
	f.mu.Lock()
	f.sizes = append(f.sizes, len(recs))
	gate, entered := f.gate, f.entered
	f.mu.Unlock()
	if entered != nil {
		select {
		case entered <- struct{}{}:
		default:
		}
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if f.down.Load() {
		return 0, errInjected
	}
	return f.Store.Insert(ctx, recs)
}

func (f *faultStore) Ping(ctx context.Context) error {
	if f.down.Load() {
		return errInjected
	}
	return f.Store.Ping(ctx)
}

func (f *faultStore) calls() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.sizes...)
}

// holdInserts makes Insert wait until the returned release is called; entered receives a value
// each time an Insert starts waiting.
func (f *faultStore) holdInserts() (entered <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = make(chan struct{})
	f.entered = make(chan struct{}, 16)
	gate := f.gate
	var once sync.Once
	return f.entered, func() { once.Do(func() { close(gate) }) }
}

// harness is an audit service on a real database and bus, with a client publishing to it.
type harness struct {
	t      testing.TB
	cfg    Config
	db     *store.DB
	sql    *sqlStore
	faults *faultStore
	bus    bus.Bus
	svc    *Service
	client *auditlog.Client
	reg    *prometheus.Registry

	dropsMu sync.Mutex
	drops   map[string]string // event id -> reason
}

// testConfig is DefaultConfig with a short cooldown and block, for tests.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.ConsumerName = "test-worker"
	cfg.BlockDuration = 20 * time.Millisecond
	cfg.DBCooldown = 50 * time.Millisecond
	cfg.Log.EnqueueTimeout = 5 * time.Second // the tests are about the worker, not the deadline
	return cfg
}

// newHarness builds the service on db and b (nil: a fresh SQLite database, a fresh in-process
// bus), migrated but not started.
func newHarness(t testing.TB, cfg Config, db *store.DB, b bus.Bus) *harness {
	t.Helper()
	if db == nil {
		db = storetest.OpenSQLite(t)
	}
	if b == nil {
		ib, err := inproc.New(inproc.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ib.Close() })
		b = ib
	}
	h := &harness{t: t, cfg: cfg, db: db, bus: b, reg: prometheus.NewRegistry(), drops: map[string]string{}}
	h.sql = newSQLStore(db)
	if err := h.sql.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.faults = &faultStore{Store: h.sql}
	svc, err := newService(cfg, h.faults, b, logging.Discard(), h.reg)
	if err != nil {
		t.Fatal(err)
	}
	svc.migrate = h.sql.Migrate
	h.svc = svc
	h.client = auditlog.New(cfg.Log, b, h.reg, auditlog.WithDropHook(func(id, reason string) {
		h.dropsMu.Lock()
		h.drops[id] = reason
		h.dropsMu.Unlock()
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.svc.Stop(ctx)
		_ = h.client.Close()
	})
	return h
}

func (h *harness) start() {
	h.t.Helper()
	if err := h.svc.Start(context.Background()); err != nil {
		h.t.Fatalf("Start: %v", err)
	}
}

func (h *harness) stop() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := h.svc.Stop(ctx); err != nil {
		h.t.Fatalf("Stop: %v", err)
	}
}

// storedRows returns how many rows the table holds and the sum of their counts.
func (h *harness) storedRows() (rows, events int) {
	h.t.Helper()
	err := h.db.QueryRowContext(context.Background(),
		"SELECT COUNT(*), COALESCE(SUM(event_count), 0) FROM "+h.sql.table).Scan(&rows, &events)
	if err != nil {
		h.t.Fatalf("counting rows: %v", err)
	}
	return rows, events
}

// storedIDs returns the ids of the stored rows whose event type does not end in _rollup, sorted.
func (h *harness) storedIDs() []string {
	h.t.Helper()
	rows, err := h.db.QueryContext(context.Background(),
		"SELECT id FROM "+h.sql.table+" WHERE event_type NOT LIKE '%\\_rollup' ESCAPE '\\' ORDER BY id")
	if err != nil {
		h.t.Fatalf("listing ids: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// dlq returns the dead-letter stream's messages.
func (h *harness) dlq() []bus.Message {
	h.t.Helper()
	var out []bus.Message
	after := "0"
	for {
		msgs, err := h.bus.Replay(context.Background(), h.cfg.DLQKey, after, 1000)
		if err != nil {
			h.t.Fatalf("reading the DLQ: %v", err)
		}
		if len(msgs) == 0 {
			return out
		}
		out = append(out, msgs...)
		after = msgs[len(msgs)-1].ID
	}
}

// dlqEventIDs decodes the DLQ's events and returns their ids, sorted.
func (h *harness) dlqEventIDs() []string {
	h.t.Helper()
	var out []string
	for _, m := range h.dlq() {
		rec, reason := decodeEvent(m.Payload)
		if reason != "" {
			h.t.Fatalf("DLQ entry %s does not decode: %s", m.ID, reason)
		}
		out = append(out, rec.ID)
	}
	sort.Strings(out)
	return out
}

func (h *harness) streamLen() int64 {
	h.t.Helper()
	n, err := h.bus.Len(context.Background(), h.cfg.Log.StreamKey)
	if err != nil {
		h.t.Fatalf("Len: %v", err)
	}
	return n
}

func (h *harness) dropped() map[string]string {
	h.dropsMu.Lock()
	defer h.dropsMu.Unlock()
	out := make(map[string]string, len(h.drops))
	for k, v := range h.drops {
		out[k] = v
	}
	return out
}

// event returns a valid event with id n.
func event(n int, mod func(*auditlog.Event)) auditlog.Event {
	e := auditlog.Event{
		ID:         testID(n),
		OccurredAt: t0.Add(time.Duration(n) * time.Millisecond),
		ActorID:    "teacher-1",
		ActorType:  auditlog.ActorTeacher,
		EventType:  "session.start",
		Category:   auditlog.CategorySession,
		SchoolID:   "school-a",
		SessionID:  "session-1",
	}
	if mod != nil {
		mod(&e)
	}
	return e
}
