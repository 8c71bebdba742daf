package bustest

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/classwaves/classwaves/pkg/bus"
)

// Benchmark topics: a deployment caps its topics, so PublishTopic may be capped (the adapters'
// benchmarks cap it at the seed's AUDIT_LOG_MAX_BACKLOG, 50000); ConsumeTopic must not be, as
// BenchmarkConsume publishes all of b.N before consuming.
const (
	PublishTopic = "bench.publish"
	ConsumeTopic = "bench.consume"
)

// benchPayload is the size of a typical event (an audit record is a few hundred bytes of JSON).
var benchPayload = make([]byte, 256)

// BenchmarkPublish measures Publish of a 256-byte message with a key and two headers, from one
// goroutine ("serial") and from GOMAXPROCS goroutines ("parallel").
func BenchmarkPublish(b *testing.B, newBus func(b *testing.B) bus.Bus) {
	headers := map[string]string{"content-type": "application/json", "schema": "bench"}
	b.Run("serial", func(b *testing.B) {
		bb := newBus(b)
		ctx := context.Background()
		b.SetBytes(int64(len(benchPayload)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := bb.Publish(ctx, PublishTopic, bus.Outgoing{Key: "k" + strconv.Itoa(i%64), Payload: benchPayload, Headers: headers}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		bb := newBus(b)
		ctx := context.Background()
		var n atomic.Int64
		b.SetBytes(int64(len(benchPayload)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				if _, err := bb.Publish(ctx, PublishTopic, bus.Outgoing{Key: "k" + strconv.FormatInt(i%64, 10), Payload: benchPayload, Headers: headers}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkConsume measures a consumer group's throughput: b.N messages (64 keys) are published
// first, then one member (batches of 100, acknowledged per batch) handles them all; the time of
// the handling is measured.
func BenchmarkConsume(b *testing.B, newBus func(b *testing.B) bus.Bus) {
	bb := newBus(b)
	ctx := context.Background()
	for i := range b.N {
		if _, err := bb.Publish(ctx, ConsumeTopic, bus.Outgoing{Key: "k" + strconv.Itoa(i%64), Payload: benchPayload}); err != nil {
			b.Fatal(err)
		}
	}
	var handled atomic.Int64
	done := make(chan struct{})
	b.SetBytes(int64(len(benchPayload)))
	b.ReportAllocs()
	b.ResetTimer()
	s, err := bb.Subscribe(ctx, ConsumeTopic, "bench", func(_ context.Context, msgs []bus.Message) error {
		if handled.Add(int64(len(msgs))) == int64(b.N) {
			close(done)
		}
		return nil
	}, bus.SubscribeOptions{BatchSize: 100, MaxWait: 100 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("consumed %d of %d", handled.Load(), b.N)
	}
	b.StopTimer()
	_ = s.Close()
}
