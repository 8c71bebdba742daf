package audit

import (
	"context"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/bus/redisbus"
	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/testenv"
)

// The acceptance fault tests: 10,000 audit events enqueued through the client onto the Redis bus
// while a fault happens, then every event is stored exactly once or in the DLQ, and the DLQ replay
// completes the log.

const faultEvents = 10000

// openPostgresBehindProxy opens a fresh test database through a TCP proxy the test can cut.
func openPostgresBehindProxy(t *testing.T) (*store.DB, *testenv.Proxy) {
	t.Helper()
	pg := testenv.Postgres(t)
	u, err := url.Parse(pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, u.Host)
	db, err := store.Open(context.Background(), store.Config{Provider: store.Postgres, URL: proxy.URL(pg.URL), MaxOpenConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, proxy
}

func newRedisBus(t *testing.T, rdb redis.UniversalClient, prefix string) *redisbus.Bus {
	t.Helper()
	b, err := redisbus.New(redisbus.Options{Prefix: prefix, LeaseTTL: 2 * time.Second}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func faultConfig() Config {
	cfg := testConfig()
	cfg.DBCooldown = 200 * time.Millisecond
	cfg.BlockDuration = 50 * time.Millisecond
	return cfg
}

// enqueue logs faultEvents events from 4 goroutines (every 20th critical, 10 sessions) and calls
// at(n) on the test goroutine when about n events have been enqueued, for each n in marks, in order.
func enqueue(t *testing.T, h *harness, marks []int, at func(n int)) (critical map[string]bool) {
	t.Helper()
	critical = map[string]bool{}
	for i := range faultEvents {
		if i%20 == 0 {
			critical[testID(i)] = true
		}
	}
	var next atomic.Int64
	var done atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= faultEvents {
					return
				}
				h.client.Log(context.Background(), event(i, func(e *auditlog.Event) {
					e.SessionID = "session-" + string(rune('a'+i%10))
					if critical[testID(i)] {
						e.Priority = auditlog.PriorityCritical
					}
				}))
				done.Add(1)
			}
		}()
	}
	for _, m := range marks {
		testenv.Eventually(t, "events enqueued", func() bool { return done.Load() >= int64(m) })
		at(m)
	}
	wg.Wait()
	return critical
}

// settle waits until every event the client did not drop is stored or dead-lettered, and returns
// the stored ids and the DLQ's event ids.
func settle(t *testing.T, h *harness) (stored, dead map[string]bool) {
	t.Helper()
	testenv.Eventually(t, "every enqueued event stored or dead-lettered", func() bool {
		stored, dead = h.storedSet(), h.dlqSet()
		drops := h.dropped()
		for i := range faultEvents {
			id := testID(i)
			if _, dropped := drops[id]; !dropped && !stored[id] && !dead[id] {
				return false
			}
		}
		return true
	})
	return stored, dead
}

// TestFaultPostgresCut: PostgreSQL's connections are cut while the events are enqueued, then
// restored. Nothing is lost: each event is stored exactly once or (critical ones) dead-lettered,
// and the DLQ replay brings the log to exactly 10,000 rows.
func TestFaultPostgresCut(t *testing.T) {
	t.Parallel()
	db, proxy := openPostgresBehindProxy(t)
	env := testenv.Redis(t)
	b := newRedisBus(t, env.Client(t), env.Prefix)
	h := newHarness(t, faultConfig(), db, b)
	h.start()

	critical := enqueue(t, h, []int{1000, 9000}, func(n int) {
		switch n {
		case 1000:
			proxy.Cut()
		case 9000:
			testenv.Eventually(t, "the worker to meet the cut", func() bool { return testutil.ToFloat64(h.svc.m.dbFailures) > 0 })
			if err := proxy.Restore(); err != nil {
				t.Fatalf("Restore: %v", err)
			}
		}
	})
	if drops := h.dropped(); len(drops) != 0 {
		t.Fatalf("the client dropped %d events with Redis up (want 0): %v", len(drops), sample(drops))
	}
	stored, dead := settle(t, h)
	for id := range dead {
		if !critical[id] {
			t.Errorf("DLQ holds %s, which is not critical", id)
		}
	}
	t.Logf("after restore: %d stored, %d dead-lettered (critical), %d both (commit outcome lost in the cut)",
		len(stored), len(dead), len(intersect(stored, dead)))

	replayed, err := h.svc.ReplayDLQ(context.Background(), ReplayStream)
	if err != nil {
		t.Fatalf("ReplayDLQ: %v", err)
	}
	if replayed < len(dead) {
		t.Errorf("replayed %d, want at least %d", replayed, len(dead))
	}
	testenv.Eventually(t, "10,000 rows", func() bool { rows, _ := h.storedRows(); return rows == faultEvents })
	// The row count alone does not say the worker is done: an event both stored and dead-lettered
	// (its commit outcome lost in the cut) counts before the replay, while the entry the replay
	// re-published is still in the stream. The worker deletes what it stored, also when no batch
	// follows (the idle flush), so the backlog goes back to 0 while it runs.
	testenv.Eventually(t, "the stream to drain (the replayed entries handled)", func() bool { return h.streamLen() == 0 })
	h.stop()
	h.assertExactlyAll(nil)
	if n := len(h.dlq()); n != 0 {
		t.Errorf("DLQ holds %d entries after replay, want 0", n)
	}
	if n := h.streamLen(); n != 0 {
		t.Errorf("the stream holds %d entries after everything was stored, want 0 (stored entries are deleted, so its length is the backlog)", n)
	}
}

// TestFaultRedisRestart: Redis is restarted (gracefully: SIGTERM, then started again on the same
// port) while the events are enqueued, and PostgreSQL is cut around the restart so that critical
// events are dead-lettered too.
//
// What a restart keeps: the test server persists to an append-only file (fsync every second, and
// on the SIGTERM), as a production Redis for the audit stream must, so every entry Redis
// acknowledged survives: the stream, the consumer group's pending entries and the DLQ. What it
// loses is what it never acknowledged: Log calls made while Redis is down fail within
// AUDIT_LOG_ENQUEUE_TIMEOUT_MS and are counted as client-side drops (the test knows which, through
// the drop hook). A drop on a timeout is ambiguous (the XADD may have landed after the client gave
// up), so the assertion is: every event not dropped is stored exactly once after the replay,
// dropped events are stored at most once, nothing else is stored.
func TestFaultRedisRestart(t *testing.T) {
	t.Parallel()
	db, proxy := openPostgresBehindProxy(t)
	srv := testenv.StartRedis(t)
	opts, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	b := newRedisBus(t, rdb, "cw:test:")
	cfg := faultConfig()
	cfg.Log.EnqueueTimeout = auditlog.DefaultEnqueueTimeout // the seed's 50 ms: the restart must cost drops, not stalls
	h := newHarness(t, cfg, db, b)
	h.start()

	enqueue(t, h, []int{3000, 5000, 7000}, func(n int) {
		switch n {
		case 3000:
			proxy.Cut()
		case 5000:
			srv.Restart(t)
		case 7000:
			if err := proxy.Restore(); err != nil {
				t.Fatalf("Restore: %v", err)
			}
		}
	})
	drops := h.dropped()
	reasons := map[string]int{}
	for _, r := range drops {
		reasons[r]++
	}
	t.Logf("client-side drops during the restart: %d %v", len(drops), reasons)

	stored, dead := settle(t, h)
	t.Logf("after recovery: %d stored, %d dead-lettered", len(stored), len(dead))
	replayed, err := h.svc.ReplayDLQ(context.Background(), ReplayDB)
	if err != nil {
		t.Fatalf("ReplayDLQ: %v", err)
	}
	t.Logf("replayed %d DLQ entries into the database", replayed)
	h.stop()
	h.assertExactlyAll(drops)
}

func sample(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if len(out) == 5 {
			break
		}
		out[k] = v
	}
	return out
}

func intersect(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if b[k] {
			out = append(out, k)
		}
	}
	return out
}

func (h *harness) storedSet() map[string]bool {
	out := map[string]bool{}
	for _, id := range h.storedIDs() {
		out[id] = true
	}
	return out
}

// dlqSet returns the event ids in the DLQ, skipping entries that are not events (an entry the bus
// found deleted when it redelivered it is dead-lettered by the bus as malformed).
func (h *harness) dlqSet() map[string]bool {
	out := map[string]bool{}
	for _, m := range h.dlq() {
		if rec, reason := decodeEvent(m.Payload); reason == "" {
			out[rec.ID] = true
		}
	}
	return out
}

// assertExactlyAll checks the table: no duplicate ids, nothing but the test's events, and every
// event except the dropped ones (which may or may not be there) stored.
func (h *harness) assertExactlyAll(dropped map[string]string) {
	h.t.Helper()
	var rows, distinct int
	if err := h.db.QueryRowContext(context.Background(),
		"SELECT COUNT(*), COUNT(DISTINCT id) FROM "+h.sql.table).Scan(&rows, &distinct); err != nil {
		h.t.Fatal(err)
	}
	if rows != distinct {
		h.t.Errorf("%d rows but %d distinct ids", rows, distinct)
	}
	want := map[string]bool{}
	for i := range faultEvents {
		want[testID(i)] = true
	}
	stored := h.storedSet()
	missing, extra, droppedStored := 0, 0, 0
	for id := range want {
		_, wasDropped := dropped[id]
		switch {
		case stored[id] && wasDropped:
			droppedStored++
		case !stored[id] && !wasDropped:
			missing++
		}
	}
	for id := range stored {
		if !want[id] {
			extra++
		}
	}
	if missing > 0 || extra > 0 || rows != len(stored) {
		h.t.Errorf("%d events neither stored nor dropped, %d unknown rows, %d rows for %d ids", missing, extra, rows, len(stored))
	}
	if dropped == nil && rows != faultEvents {
		h.t.Errorf("%d rows, want exactly %d", rows, faultEvents)
	}
	h.t.Logf("stored %d rows: %d events, %d of the %d client-side drops landed anyway (enqueue timed out after Redis took it)",
		rows, len(stored), droppedStored, len(dropped))
}
