package audit

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/inproc"
	"github.com/classwaves/classwaves/pkg/bus/redisbus"
	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/store/storetest"
	"github.com/classwaves/classwaves/pkg/testenv"
)

// BenchmarkWorker measures sustained throughput of one worker: b.N events are enqueued first
// (untimed), then the worker is started and timed until it has stored them all; events/s is
// reported. "postgres-redis" is the microservices deployment (Redis Streams, PostgreSQL),
// "sqlite-inproc" the monolithic one. Events are of a non-sampled category, so every one is a row.
func BenchmarkWorker(b *testing.B) {
	setups := []struct {
		name string
		open func(b *testing.B) (*store.DB, bus.Bus)
	}{
		{"postgres-redis", func(b *testing.B) (*store.DB, bus.Bus) {
			env := testenv.Redis(b)
			rb, err := redisbus.New(redisbus.Options{Prefix: env.Prefix}, env.Client(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = rb.Close() })
			return storetest.OpenPostgres(b), rb
		}},
		{"sqlite-inproc", func(b *testing.B) (*store.DB, bus.Bus) {
			ib, err := inproc.New(inproc.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = ib.Close() })
			return storetest.OpenSQLite(b), ib
		}},
	}
	for _, s := range setups {
		b.Run(s.name, func(b *testing.B) {
			db, bs := s.open(b)
			cfg := DefaultConfig()
			cfg.ConsumerName = "bench-worker"
			cfg.BlockDuration = 50 * time.Millisecond
			cfg.Log.EnqueueTimeout = 5 * time.Second
			cfg.Log.MaxBacklog = 0
			h := newHarness(b, cfg, db, bs)
			b.StopTimer()
			for i := range b.N {
				h.client.Log(context.Background(), event(i, func(e *auditlog.Event) {
					e.ID = ""
					e.SessionID = "session-" + string(rune('a'+i%10))
					e.Description = "student joined group"
					e.Metadata = map[string]string{"groupId": "g-1", "route": "/api/v1/sessions/{id}/join"}
				}))
			}
			if d := len(h.dropped()); d > 0 {
				b.Fatalf("%d events dropped while enqueueing", d)
			}
			b.StartTimer()
			start := time.Now()
			h.start()
			for testutil.ToFloat64(h.svc.m.processed) < float64(b.N) {
				time.Sleep(time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			h.stop()
			if rows, _ := h.storedRows(); rows != b.N {
				b.Fatalf("stored %d rows, want %d", rows, b.N)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
		})
	}
}
