package auditlog_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/inproc"
	"github.com/classwaves/classwaves/pkg/bus/redisbus"
	"github.com/classwaves/classwaves/pkg/testenv"
)

// BenchmarkLog measures what a request pays to audit an action: Client.Log's latency on the
// caller's side (sanitize, encode, publish), reported as p50 and p99 in microseconds, on the
// in-process bus (monolithic mode) and on Redis Streams, from one caller and from many.
func BenchmarkLog(b *testing.B) {
	buses := []struct {
		name string
		open func(b *testing.B) bus.Bus
	}{
		{"inproc", func(b *testing.B) bus.Bus {
			ib, err := inproc.New(inproc.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = ib.Close() })
			return ib
		}},
		{"redis", func(b *testing.B) bus.Bus {
			env := testenv.Redis(b)
			rb, err := redisbus.New(redisbus.Options{Prefix: env.Prefix}, env.Client(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = rb.Close() })
			return rb
		}},
	}
	for _, bb := range buses {
		for _, parallel := range []bool{false, true} {
			name := bb.name + "/serial"
			if parallel {
				name = bb.name + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				bs := bb.open(b)
				cfg := auditlog.DefaultConfig()
				cfg.MaxBacklog = 0 // the stream is not consumed here
				dropped := 0
				var mu sync.Mutex
				c := auditlog.New(cfg, bs, nil, auditlog.WithDropHook(func(string, string) { mu.Lock(); dropped++; mu.Unlock() }))
				defer c.Close()
				e := testEvent()
				e.ID = "" // a fresh id each time, as in production
				e.UserAgent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"
				e.Metadata = map[string]string{"route": "/api/v1/sessions/{id}", "groupId": "g-1"}
				var lat []time.Duration
				b.ReportAllocs()
				b.ResetTimer()
				if parallel {
					b.RunParallel(func(pb *testing.PB) {
						var mine []time.Duration
						for pb.Next() {
							start := time.Now()
							c.Log(context.Background(), e)
							mine = append(mine, time.Since(start))
						}
						mu.Lock()
						lat = append(lat, mine...)
						mu.Unlock()
					})
				} else {
					lat = make([]time.Duration, 0, b.N)
					for range b.N {
						start := time.Now()
						c.Log(context.Background(), e)
						lat = append(lat, time.Since(start))
					}
				}
				b.StopTimer()
				slices.Sort(lat)
				pct := func(p float64) float64 {
					return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Nanoseconds()) / 1e3
				}
				b.ReportMetric(pct(0.50), "p50-µs")
				b.ReportMetric(pct(0.99), "p99-µs")
				b.ReportMetric(float64(dropped)/float64(len(lat)), "dropped/op")
			})
		}
	}
}
