package redisbus_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/bustest"
	"github.com/classwaves/classwaves/pkg/bus/redisbus"
	"github.com/classwaves/classwaves/pkg/testenv"
)

// testOptions are short leases so that rebalancing happens within a test's patience.
func testOptions(prefix string) redisbus.Options {
	return redisbus.Options{
		Prefix:  prefix,
		Default: redisbus.TopicOptions{Partitions: 4},
		Topics: map[string]redisbus.TopicOptions{
			bustest.CappedTopic: {MaxLen: bustest.CappedMaxLen, Partitions: 1},
			bustest.LoadTopic:   {Partitions: 4},
		},
		LeaseTTL:  time.Second,
		ReadBlock: 100 * time.Millisecond,
	}
}

func newBus(t testing.TB, rdb redis.UniversalClient, opts redisbus.Options) *redisbus.Bus {
	t.Helper()
	b, err := redisbus.New(opts, rdb)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	for _, parts := range []int{1, 4} {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			bustest.Run(t, func(t *testing.T) bus.Bus {
				env := testenv.Redis(t)
				opts := testOptions(env.Prefix)
				opts.Default.Partitions = parts
				return newBus(t, env.Client(t), opts)
			})
		})
	}
}

func benchmarks(b *testing.B, run func(b *testing.B, newBus func(b *testing.B) bus.Bus)) {
	for _, parts := range []int{1, 4} {
		b.Run(fmt.Sprintf("partitions=%d", parts), func(b *testing.B) {
			run(b, func(b *testing.B) bus.Bus {
				env := testenv.Redis(b)
				return newBus(b, env.Client(b), redisbus.Options{
					Prefix:  env.Prefix,
					Default: redisbus.TopicOptions{Partitions: parts},
					Topics:  map[string]redisbus.TopicOptions{bustest.PublishTopic: {Partitions: parts, MaxLen: 50000}},
				})
			})
		})
	}
}

func BenchmarkPublish(b *testing.B) { benchmarks(b, bustest.BenchmarkPublish) }

func BenchmarkConsume(b *testing.B) { benchmarks(b, bustest.BenchmarkConsume) }
