package audit

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/testenv"
)

func TestWorkerStoresInBatches(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.BatchSize = 200
	h := newHarness(t, cfg, nil, nil)
	const n = 450
	var want []string
	for i := range n {
		h.client.Log(context.Background(), event(i, nil))
		want = append(want, testID(i))
	}
	h.start()
	testenv.Eventually(t, "every event stored", func() bool { rows, _ := h.storedRows(); return rows == n })
	h.stop()

	sort.Strings(want)
	if diff := cmp.Diff(want, h.storedIDs()); diff != "" {
		t.Errorf("stored ids mismatch (-want +got):\n%s", diff)
	}
	sizes := h.faults.calls()
	total := 0
	for _, s := range sizes {
		if s > cfg.BatchSize {
			t.Errorf("an insert of %d rows, batch size %d", s, cfg.BatchSize)
		}
		total += s
	}
	if total != n || len(sizes) < (n+cfg.BatchSize-1)/cfg.BatchSize {
		t.Errorf("inserts %v: %d rows in %d inserts, want %d rows in at least %d", sizes, total, len(sizes), n, 3)
	}
	if got := h.streamLen(); got != 0 {
		t.Errorf("stream holds %d entries after the worker stopped, want 0 (stored entries are deleted)", got)
	}
	if got := testutil.ToFloat64(h.svc.m.processed); got != n {
		t.Errorf("processed = %v, want %d", got, n)
	}
	if got := len(h.dropped()); got != 0 {
		t.Errorf("client dropped %d events, want 0", got)
	}
}

func TestWorkerSampling(t *testing.T) {
	t.Parallel()
	noisy := func(n int, mod func(*auditlog.Event)) auditlog.Event {
		return event(n, func(e *auditlog.Event) {
			e.EventType = "session.heartbeat"
			e.Category = auditlog.CategorySessionActivity
			if mod != nil {
				mod(e)
			}
		})
	}
	minute2 := func(e *auditlog.Event) { e.OccurredAt = e.OccurredAt.Add(time.Minute) }
	session2 := func(e *auditlog.Event) { e.SessionID = "session-2" }
	type rollup struct {
		Minute    time.Time
		Session   string
		EventType string
		Count     int
	}
	tests := []struct {
		name       string
		rate       float64
		hardCap    int
		events     []auditlog.Event
		wantKept   int // plain rows stored
		wantRollup []rollup
	}{
		{
			name: "hard cap per session per minute", rate: 1, hardCap: 3,
			events:   seq(10, func(i int) auditlog.Event { return noisy(i, nil) }),
			wantKept: 3, wantRollup: []rollup{{t0, "session-1", "session.heartbeat_rollup", 7}},
		},
		{
			name: "rate 0 keeps none", rate: 0, hardCap: 100,
			events:     seq(10, func(i int) auditlog.Event { return noisy(i, nil) }),
			wantRollup: []rollup{{t0, "session-1", "session.heartbeat_rollup", 10}},
		},
		{
			name: "the cap is per session and per minute", rate: 1, hardCap: 2,
			events: append(append(
				seq(5, func(i int) auditlog.Event { return noisy(i, nil) }),
				seq(5, func(i int) auditlog.Event { return noisy(100+i, session2) })...),
				seq(5, func(i int) auditlog.Event { return noisy(200+i, minute2) })...),
			wantKept: 6,
			wantRollup: []rollup{
				{t0, "session-1", "session.heartbeat_rollup", 3},
				{t0, "session-2", "session.heartbeat_rollup", 3},
				{t0.Add(time.Minute), "session-1", "session.heartbeat_rollup", 3},
			},
		},
		{
			name: "critical, compliance and other categories are never sampled", rate: 0, hardCap: 0,
			events: []auditlog.Event{
				noisy(1, func(e *auditlog.Event) { e.Priority = auditlog.PriorityCritical }),
				event(2, func(e *auditlog.Event) { e.Category = auditlog.CategoryCompliance }),
				event(3, func(e *auditlog.Event) { e.Category = auditlog.CategoryAuthentication }),
				event(4, func(e *auditlog.Event) { e.Category = auditlog.CategoryDataAccess }),
				noisy(5, func(e *auditlog.Event) { e.Category = auditlog.CategoryDataAccessRead; e.EventType = "roster.read" }),
			},
			wantKept:   4,
			wantRollup: []rollup{{t0, "session-1", "roster.read_rollup", 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.NoisySampleRate, cfg.NoisyHardCapPerMin = tt.rate, tt.hardCap
			h := newHarness(t, cfg, nil, nil)
			for _, e := range tt.events {
				h.client.Log(context.Background(), e)
			}
			h.start()
			testenv.Eventually(t, "every event handled", func() bool {
				return testutil.ToFloat64(h.svc.m.processed) == float64(len(tt.events))
			})
			h.stop()

			if got := len(h.storedIDs()); got != tt.wantKept {
				t.Errorf("stored %d plain rows, want %d", got, tt.wantKept)
			}
			page := all(t, h.sql, Query{})
			var got []rollup
			for _, r := range page {
				if strings.HasSuffix(r.EventType, RollupSuffix) {
					got = append(got, rollup{r.OccurredAt, r.SessionID, r.EventType, r.Count})
					if r.ActorType != auditlog.ActorSystem || r.Category == "" || r.SchoolID != "school-a" {
						t.Errorf("rollup row %+v lacks actor, category or school", r)
					}
				}
			}
			sortRollups := cmpopts.SortSlices(func(a, b rollup) bool {
				return fmt.Sprint(a.Minute, a.Session, a.EventType) < fmt.Sprint(b.Minute, b.Session, b.EventType)
			})
			if diff := cmp.Diff(tt.wantRollup, got, sortRollups, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("rollups mismatch (-want +got):\n%s", diff)
			}
			_, events := h.storedRows()
			if events != len(tt.events) {
				t.Errorf("stored rows stand for %d events, want %d (sampling must account for every event)", events, len(tt.events))
			}
			if got, want := testutil.ToFloat64(h.svc.m.sampled), float64(len(tt.events)-tt.wantKept); got != want {
				t.Errorf("sampled metric = %v, want %v", got, want)
			}
		})
	}
}

func seq(n int, f func(i int) auditlog.Event) []auditlog.Event {
	out := make([]auditlog.Event, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func TestSamplerRateAndRedelivery(t *testing.T) {
	s := newSampler(0.25, 1000)
	var recs []Record
	for i := range 2000 {
		r := rec(i)
		r.Category = auditlog.CategorySessionActivity
		r.OccurredAt = t0
		recs = append(recs, r)
	}
	p := s.plan(recs)
	kept := len(p.keep)
	if kept+p.sampled != len(recs) {
		t.Fatalf("kept %d + sampled %d != %d events", kept, p.sampled, len(recs))
	}
	if kept < 400 || kept > 600 { // 25% of 2000 is 500; the hash is uniform
		t.Errorf("kept %d of 2000 at rate 0.25", kept)
	}
	again := s.plan(recs)
	if diff := cmp.Diff(p.keep, again.keep); diff != "" {
		t.Errorf("the same batch planned twice before commit differs (-first +second):\n%s", diff)
	}
	s.commit(p)
	// Redelivered after it was stored: kept ones are kept again (a no-op insert), sampled ones
	// are not counted a second time.
	redo := s.plan(recs)
	if diff := cmp.Diff(p.keep, redo.keep); diff != "" {
		t.Errorf("redelivered batch kept different events (-first +redelivered):\n%s", diff)
	}
	if len(redo.rollups) != 0 || redo.sampled != 0 {
		t.Errorf("redelivered batch produced %d rollups for %d events, want none", len(redo.rollups), redo.sampled)
	}
	// Rollup ids depend on the events they stand for only.
	if a, b := p.rollups[0].ID, again.rollups[0].ID; a != b {
		t.Errorf("rollup ids differ for the same events: %s, %s", a, b)
	}
}

func TestWorkerDeadLettersBadEntries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig(), nil, nil)
	ctx := context.Background()
	h.client.Log(ctx, event(1, nil))
	bad := []struct {
		payload    string
		wantReason string
	}{
		{"not json", "malformed: "},
		{"", "malformed: empty payload"},
		{`{"id": 5}`, "malformed: "},
		{`{}`, "invalid: "},
		{`{"id":"` + testID(2) + `","occurredAt":"2026-01-01T00:00:00Z","actorId":"x","actorType":"robot","eventType":"e","eventCategory":"c"}`, "invalid: actor_type"},
		{`{"id":"not-a-uuid","occurredAt":"2026-01-01T00:00:00Z","actorId":"x","actorType":"system","eventType":"e","eventCategory":"c"}`, "invalid: id"},
	}
	for _, b := range bad {
		if _, err := h.bus.Publish(ctx, h.cfg.Log.StreamKey, bus.Outgoing{Key: "k", Payload: []byte(b.payload)}); err != nil {
			t.Fatal(err)
		}
	}
	h.client.Log(ctx, event(3, nil))
	h.start()
	testenv.Eventually(t, "every entry handled", func() bool { return testutil.ToFloat64(h.svc.m.processed) == float64(len(bad)+2) })
	// The worker goes on after bad entries.
	h.client.Log(ctx, event(4, nil))
	testenv.Eventually(t, "a later event stored", func() bool { rows, _ := h.storedRows(); return rows == 3 })
	h.stop()

	if diff := cmp.Diff([]string{testID(1), testID(3), testID(4)}, h.storedIDs(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("stored ids mismatch (-want +got):\n%s", diff)
	}
	dlq := h.dlq()
	if len(dlq) != len(bad) {
		t.Fatalf("DLQ holds %d entries, want %d", len(dlq), len(bad))
	}
	for i, m := range dlq {
		if got := string(m.Payload); got != bad[i].payload {
			t.Errorf("DLQ entry %d payload = %q, want %q", i, got, bad[i].payload)
		}
		if got := m.Headers[bus.HeaderDLQReason]; !strings.HasPrefix(got, bad[i].wantReason) {
			t.Errorf("DLQ entry %d reason = %q, want prefix %q", i, got, bad[i].wantReason)
		}
		if m.Headers[bus.HeaderDLQSourceTopic] != h.cfg.Log.StreamKey || m.Headers[bus.HeaderDLQSourceID] == "" {
			t.Errorf("DLQ entry %d headers %v lack the source", i, m.Headers)
		}
	}
	if got := testutil.ToFloat64(h.svc.m.dlq.WithLabelValues("malformed")); got != 3 {
		t.Errorf("dlq{malformed} = %v, want 3", got)
	}
	// Malformed entries cannot be replayed: they stay for a human.
	n, err := h.svc.ReplayDLQ(ctx, ReplayDB)
	if err != nil || n != 0 {
		t.Errorf("ReplayDLQ = %d, %v; want 0, nil", n, err)
	}
	if got := len(h.dlq()); got != len(bad) {
		t.Errorf("DLQ holds %d entries after replay, want %d", got, len(bad))
	}
}

// TestWorkerDatabaseFailure: while the database fails, the worker cools down instead of retrying
// at once, moves the critical events of the batches it fails to the DLQ and leaves the rest
// pending (entries behind a failed batch wait in the stream: the bus keeps per-key order). Once
// the database is back every event is stored exactly once or in the DLQ, and the DLQ replay
// stores the rest.
func TestWorkerDatabaseFailure(t *testing.T) {
	for _, mode := range []string{ReplayStream, ReplayDB} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, testConfig(), nil, nil)
			ctx := context.Background()
			h.faults.down.Store(true)
			h.start()
			const n = 300
			var want []string
			critical := map[string]bool{}
			for i := range n {
				e := event(i, nil)
				if i%10 == 0 {
					e.Priority = auditlog.PriorityCritical
					critical[testID(i)] = true
				}
				h.client.Log(ctx, e)
				want = append(want, testID(i))
			}
			sort.Strings(want)
			testenv.Eventually(t, "critical events dead-lettered", func() bool { return len(h.dlq()) > 0 })
			testenv.Eventually(t, "a retry after the cooldown", func() bool { return len(h.faults.calls()) >= 2 })
			if rows, _ := h.storedRows(); rows != 0 {
				t.Fatalf("%d rows stored while the database was down", rows)
			}
			if got := testutil.ToFloat64(h.svc.m.dbFailures); got < 1 {
				t.Errorf("db failures = %v, want at least 1", got)
			}

			h.faults.down.Store(false)
			testenv.Eventually(t, "every event stored or dead-lettered", func() bool {
				rows, _ := h.storedRows()
				return rows+len(h.dlq()) == n
			})
			dead := h.dlqEventIDs()
			stored := map[string]bool{}
			for _, id := range h.storedIDs() {
				stored[id] = true
			}
			for _, id := range dead {
				if !critical[id] {
					t.Errorf("DLQ holds %s, which is not critical", id)
				}
				if stored[id] {
					t.Errorf("%s is both stored and dead-lettered", id)
				}
			}

			replayed, err := h.svc.ReplayDLQ(ctx, mode)
			if err != nil || replayed != len(dead) {
				t.Fatalf("ReplayDLQ(%s) = %d, %v; want %d, nil", mode, replayed, err, len(dead))
			}
			testenv.Eventually(t, "every event stored", func() bool { rows, _ := h.storedRows(); return rows == n })
			// Safe to re-run.
			if again, err := h.svc.ReplayDLQ(ctx, mode); err != nil || again != 0 {
				t.Errorf("second ReplayDLQ = %d, %v; want 0, nil", again, err)
			}
			h.stop()
			if diff := cmp.Diff(want, h.storedIDs()); diff != "" {
				t.Errorf("stored ids mismatch (-want +got):\n%s", diff)
			}
			if got := len(h.dlq()); got != 0 {
				t.Errorf("DLQ holds %d entries after replay, want 0", got)
			}
		})
	}
}

// TestWorkerCooldownDoesNotSpin: after a failure the next batch waits for the cooldown rather than
// trying the database again; Stop cuts the wait short and leaves the entries in the stream.
func TestWorkerCooldownDoesNotSpin(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.DBCooldown = time.Hour
	h := newHarness(t, cfg, nil, nil)
	h.faults.down.Store(true)
	h.start()
	for i := range 20 {
		h.client.Log(context.Background(), event(i, nil))
	}
	testenv.Eventually(t, "a redelivered batch waiting for the cooldown", func() bool { return h.svc.worker.cooldownWaits.Load() > 0 })
	h.stop()
	if got := len(h.faults.calls()); got != 1 {
		t.Errorf("%d insert attempts during the cooldown, want 1", got)
	}
	if got := h.streamLen(); got != 20 {
		t.Errorf("stream holds %d entries, want 20 (pending, not lost)", got)
	}
	if got := len(h.dlq()); got != 0 {
		t.Errorf("DLQ holds %d entries, want 0 (no critical events)", got)
	}
}

// TestWorkerStopDrains: Stop waits for the batch in flight to be stored; with an expired context it
// cancels the batch, which stays in the stream.
func TestWorkerStopDrains(t *testing.T) {
	t.Parallel()
	t.Run("in-flight batch is stored", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, testConfig(), nil, nil)
		entered, release := h.faults.holdInserts()
		for i := range 50 {
			h.client.Log(context.Background(), event(i, nil))
		}
		h.start()
		<-entered
		stopped := make(chan error, 1)
		go func() { stopped <- h.svc.Stop(context.Background()) }()
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned %v while a batch was being inserted", err)
		case <-time.After(50 * time.Millisecond):
		}
		release()
		if err := <-stopped; err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if rows, _ := h.storedRows(); rows != 50 {
			t.Errorf("stored %d rows, want 50", rows)
		}
		if got := h.streamLen(); got != 0 {
			t.Errorf("stream holds %d entries after the drain, want 0", got)
		}
	})
	t.Run("expired stop context cancels the batch", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, testConfig(), nil, nil)
		entered, release := h.faults.holdInserts()
		defer release()
		for i := range 50 {
			h.client.Log(context.Background(), event(i, nil))
		}
		h.start()
		<-entered
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := h.svc.Stop(ctx); err != context.Canceled {
			t.Errorf("Stop = %v, want context.Canceled", err)
		}
		if rows, _ := h.storedRows(); rows != 0 {
			t.Errorf("stored %d rows, want 0", rows)
		}
		if got := h.streamLen(); got != 50 {
			t.Errorf("stream holds %d entries, want 50 (left for the next worker)", got)
		}
	})
}

// TestWorkerPoisonRow: a row the database refuses is dead-lettered alone; the rest of its batch is
// stored.
func TestWorkerPoisonRow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig(), nil, nil)
	h.faults.Store = rejectingStore{Store: h.sql, badID: testID(7)}
	for i := range 20 {
		h.client.Log(context.Background(), event(i, nil))
	}
	h.start()
	testenv.Eventually(t, "the batch handled", func() bool { return testutil.ToFloat64(h.svc.m.processed) == 20 })
	h.stop()
	if rows, _ := h.storedRows(); rows != 19 {
		t.Errorf("stored %d rows, want 19", rows)
	}
	dlq := h.dlq()
	if len(dlq) != 1 || !strings.HasPrefix(dlq[0].Headers[bus.HeaderDLQReason], reasonRejected) {
		t.Fatalf("DLQ = %v, want the one refused row with reason %s", dlq, reasonRejected)
	}
	if got := h.dlqEventIDs(); len(got) != 1 || got[0] != testID(7) {
		t.Errorf("DLQ event ids = %v, want [%s]", got, testID(7))
	}
}

// rejectingStore refuses any insert containing badID, as a database refusing a value would.
type rejectingStore struct {
	Store
	badID string
}

func (r rejectingStore) Insert(ctx context.Context, recs []Record) (int, error) {
	for _, rec := range recs {
		if rec.ID == r.badID {
			return 0, fmt.Errorf("%w: value refused", ErrRejected)
		}
	}
	return r.Store.Insert(ctx, recs)
}

func TestServiceLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig(), nil, nil)
	if err := h.svc.Stop(context.Background()); err != nil {
		t.Errorf("Stop before Start = %v", err)
	}
	h2 := newHarness(t, testConfig(), nil, nil)
	h2.start()
	if err := h2.svc.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	h2.stop()
	h2.stop() // twice is fine
	if _, err := h2.svc.ReplayDLQ(context.Background(), "redis"); err == nil {
		t.Error("ReplayDLQ with an unknown mode succeeded")
	}
}

// TestWorkerLostCommitReplay: a batch whose commit succeeded but whose outcome was lost (the
// connection cut before the reply) has its critical events dead-lettered although they are
// stored. Replaying them to the stream must not leave anything behind: the replayed entries are
// handled (stored once, by id) and deleted, and so is every stored entry once the worker goes idle
// with no batch after it, so the stream's length (the backlog) returns to 0 while the worker runs.
func TestWorkerLostCommitReplay(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig(), nil, nil)
	h.faults.Store = &lostCommitStore{Store: h.sql}
	const n = 100
	critical := 0
	for i := range n {
		h.client.Log(context.Background(), event(i, func(e *auditlog.Event) {
			if i%10 == 0 {
				e.Priority = auditlog.PriorityCritical
				critical++
			}
		}))
	}
	h.start()
	testenv.Eventually(t, "the stream to drain", func() bool { return h.streamLen() == 0 })
	testenv.Eventually(t, "the queue depth gauge at 0", func() bool { return testutil.ToFloat64(h.svc.m.queueDepth) == 0 })
	if rows, _ := h.storedRows(); rows != n {
		t.Fatalf("stored %d rows, want %d", rows, n)
	}
	stored := h.storedSet()
	dead := h.dlqEventIDs()
	if len(dead) != critical {
		t.Fatalf("DLQ holds %d events, want the %d critical ones", len(dead), critical)
	}
	for _, id := range dead {
		if !stored[id] {
			t.Errorf("%s dead-lettered but not stored: the lost commit did commit", id)
		}
	}

	replayed, err := h.svc.ReplayDLQ(context.Background(), ReplayStream)
	if err != nil || replayed != critical {
		t.Fatalf("ReplayDLQ = %d, %v; want %d, nil", replayed, err, critical)
	}
	// The rows are all there already: only the stream says when the worker has handled the replay.
	testenv.Eventually(t, "the replayed entries handled and deleted", func() bool { return h.streamLen() == 0 })
	if got := testutil.ToFloat64(h.svc.m.processed); got != n+float64(critical) {
		t.Errorf("processed = %v, want %d (every entry, the replayed ones included)", got, n+critical)
	}
	h.stop()
	if rows, _ := h.storedRows(); rows != n {
		t.Errorf("stored %d rows after the replay, want %d (stored once, by id)", rows, n)
	}
	if got := len(h.dlq()); got != 0 {
		t.Errorf("DLQ holds %d entries after replay, want 0", got)
	}
	if got := h.streamLen(); got != 0 {
		t.Errorf("stream holds %d entries after the worker stopped, want 0", got)
	}
}

// lostCommitStore commits the first multi-row insert but reports it failed, as when PostgreSQL's
// connection is cut between the COMMIT and its reply.
type lostCommitStore struct {
	Store
	lost atomic.Bool
}

func (s *lostCommitStore) Insert(ctx context.Context, recs []Record) (int, error) {
	n, err := s.Store.Insert(ctx, recs)
	if err == nil && len(recs) > 1 && s.lost.CompareAndSwap(false, true) {
		return 0, errInjected
	}
	return n, err
}
