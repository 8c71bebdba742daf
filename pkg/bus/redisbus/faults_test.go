package redisbus_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/bustest"
	"github.com/classwaves/classwaves/pkg/bus/redisbus"
	"github.com/classwaves/classwaves/pkg/testenv"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), bustest.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// collector records what a group handler saw.
type collector struct {
	mu   sync.Mutex
	msgs []bus.Message
}

func (c *collector) handle(_ context.Context, msgs []bus.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, msgs...)
	return nil
}

func (c *collector) all() []bus.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bus.Message(nil), c.msgs...)
}

func (c *collector) distinct() map[string]bool {
	seen := make(map[string]bool)
	for _, m := range c.all() {
		seen[string(m.Payload)] = true
	}
	return seen
}

var fast = bus.SubscribeOptions{MaxWait: 50 * time.Millisecond, Retry: 20 * time.Millisecond, BatchSize: 10}

func subscribe(t testing.TB, b bus.Bus, topic, group string, h bus.BatchHandler, opts bus.SubscribeOptions) bus.Subscription {
	t.Helper()
	s, err := b.Subscribe(ctxT(t), topic, group, h, opts)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// readAsGhost delivers the next entry of stream to consumer "ghost" of group, as a consumer that
// then died would have, and returns its id.
func readAsGhost(t *testing.T, rdb *redis.Client, stream, group string) string {
	t.Helper()
	ctx := ctxT(t)
	if err := rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err(); err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		t.Fatal(err)
	}
	res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "ghost", Streams: []string{stream, ">"}, Count: 1, Block: -1}).Result()
	if err != nil || len(res) == 0 || len(res[0].Messages) == 0 {
		t.Fatalf("XREADGROUP as ghost: %v %v", res, err)
	}
	return res[0].Messages[0].ID
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    redisbus.Options
		wantErr string
	}{
		{"zero", redisbus.Options{}, ""},
		{"typical", redisbus.Options{Prefix: "cw:dev:", Topics: map[string]redisbus.TopicOptions{"audit:log": {MaxLen: 50000}}}, ""},
		{"negative cap", redisbus.Options{Default: redisbus.TopicOptions{MaxLen: -1}}, "default MaxLen must be >= 0"},
		{"too many partitions", redisbus.Options{Topics: map[string]redisbus.TopicOptions{"a": {Partitions: 5000}}}, `topic "a" Partitions must be between 1 and 1024`},
		{"hash in topic", redisbus.Options{Topics: map[string]redisbus.TopicOptions{"a#1": {}}}, "contains '#'"},
		{"tiny lease", redisbus.Options{LeaseTTL: time.Millisecond}, "LeaseTTL must be at least 30ms"},
		{"negative block", redisbus.Options{ReadBlock: -time.Second}, "ReadBlock must be at least 1ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// The wire format: a one-partition topic is the stream Prefix+topic, entries carry key, payload
// and h:<header> fields (what operators and the seed's tooling see).
func TestKeyLayoutAndEntryFields(t *testing.T) {
	env := testenv.Redis(t)
	rdb := env.Client(t)
	b := newBus(t, rdb, redisbus.Options{Prefix: env.Prefix})
	id, err := b.Publish(ctxT(t), "audit:log", bus.Outgoing{Key: "s1", Payload: []byte(`{"a":1}`), Headers: map[string]string{"content-type": "application/json"}})
	if err != nil {
		t.Fatal(err)
	}
	xs, err := rdb.XRange(ctxT(t), env.Prefix+"audit:log", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := []redis.XMessage{{ID: id, Values: map[string]any{"key": "s1", "payload": `{"a":1}`, "h:content-type": "application/json"}}}
	if diff := cmp.Diff(want, xs); diff != "" {
		t.Errorf("stream entries (-want +got):\n%s", diff)
	}
}

// With several partitions, ids come from one topic-wide sequence: unique and increasing in
// publish order across the partition streams.
func TestPartitionedIDsFollowPublishOrder(t *testing.T) {
	env := testenv.Redis(t)
	b := newBus(t, env.Client(t), redisbus.Options{Prefix: env.Prefix, Default: redisbus.TopicOptions{Partitions: 8}})
	var ids []string
	for i := range 200 {
		id, err := b.Publish(ctxT(t), "t", bus.Outgoing{Key: "k" + strconv.Itoa(i), Payload: []byte(strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) > 0 && !idLess(ids[len(ids)-1], id) {
			t.Fatalf("id %d = %s does not follow %s", i, id, ids[len(ids)-1])
		}
		ids = append(ids, id)
	}
	var got []string
	after := ""
	for {
		page, err := b.Replay(ctxT(t), "t", after, 33)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			got = append(got, m.ID)
		}
		after = page[len(page)-1].ID
	}
	if diff := cmp.Diff(ids, got); diff != "" {
		t.Errorf("paged replay (-want +got):\n%s", diff)
	}
}

func idLess(a, b string) bool {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	x, _ := strconv.ParseUint(am, 10, 64)
	y, _ := strconv.ParseUint(bm, 10, 64)
	if x != y {
		return x < y
	}
	p, _ := strconv.ParseUint(as, 10, 64)
	q, _ := strconv.ParseUint(bs, 10, 64)
	return p < q
}

// A consumer that restarts under the same name re-reads its own pending entries first, without
// waiting for ClaimIdle.
func TestRestartedConsumerRereadsItsPending(t *testing.T) {
	env := testenv.Redis(t)
	rdb := env.Client(t)
	b := newBus(t, rdb, redisbus.Options{Prefix: env.Prefix})
	if _, err := b.Publish(ctxT(t), "jobs", bus.Outgoing{Key: "k", Payload: []byte("p")}); err != nil {
		t.Fatal(err)
	}
	stream := env.Prefix + "jobs"
	ctx := ctxT(t)
	if err := rdb.XGroupCreateMkStream(ctx, stream, "g", "0").Err(); err != nil {
		t.Fatal(err)
	}
	// Consumer "c1" read the entry, then its process died.
	if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c1", Streams: []string{stream, ">"}, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	var c collector
	o := fast
	o.Consumer, o.ClaimIdle = "c1", time.Hour
	subscribe(t, b, "jobs", "g", c.handle, o)
	testenv.Eventually(t, "the pending entry", func() bool { return len(c.all()) > 0 })
	if m := c.all()[0]; string(m.Payload) != "p" || m.Deliveries != 2 {
		t.Errorf("redelivered %q with Deliveries %d; want p, 2", m.Payload, m.Deliveries)
	}
	testenv.Eventually(t, "the ack", func() bool { return rdb.XPending(ctx, stream, "g").Val().Count == 0 })
}

// A dead consumer's lease and heartbeat expire; the survivor takes the partition and claims the
// dead one's pending entry once idle for ClaimIdle (XAUTOCLAIM). An entry whose deliveries were
// already used up is dead-lettered instead.
func TestClaimsIdleEntriesOfDeadConsumer(t *testing.T) {
	env := testenv.Redis(t)
	rdb := env.Client(t)
	b := newBus(t, rdb, redisbus.Options{Prefix: env.Prefix, LeaseTTL: time.Second})
	ctx := ctxT(t)
	for _, p := range []string{"alive", "poison"} {
		if _, err := b.Publish(ctx, "jobs", bus.Outgoing{Key: "k", Payload: []byte(p)}); err != nil {
			t.Fatal(err)
		}
	}
	stream := env.Prefix + "jobs"
	readAsGhost(t, rdb, stream, "g")
	poison := readAsGhost(t, rdb, stream, "g")
	for range 4 { // the poison entry has been delivered 5 times
		if err := rdb.XClaim(ctx, &redis.XClaimArgs{Stream: stream, Group: "g", Consumer: "ghost", Messages: []string{poison}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// The ghost still holds the partition's lease and is a live member, for a while.
	if err := rdb.Set(ctx, env.Prefix+"jobs#g#g#lease#0", "ghost", 500*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	var c collector
	o := fast
	o.Consumer, o.ClaimIdle = "survivor", 300*time.Millisecond
	subscribe(t, b, "jobs", "g", c.handle, o)
	testenv.Eventually(t, "the claimed entry", func() bool { return len(c.all()) > 0 })
	if m := c.all()[0]; string(m.Payload) != "alive" || m.Deliveries != 2 {
		t.Errorf("claimed %q with Deliveries %d; want alive, 2", m.Payload, m.Deliveries)
	}
	var dead []bus.Message
	testenv.Eventually(t, "the dead letter", func() bool {
		dead, _ = b.Replay(ctx, "jobs:dlq", "", 10)
		return len(dead) == 1
	})
	if got, want := dead[0].Headers[bus.HeaderDLQReason], "delivered 5 times without ack"; got != want {
		t.Errorf("dlq-reason = %q, want %q", got, want)
	}
	testenv.Eventually(t, "an empty pending list", func() bool { return rdb.XPending(ctx, stream, "g").Val().Count == 0 })
	for _, m := range c.all() {
		if string(m.Payload) == "poison" {
			t.Error("the exhausted entry was delivered")
		}
	}
}

// Entries written raw without a payload are dead-lettered with a reason; the consumer goes on.
func TestMalformedEntriesAreDeadLettered(t *testing.T) {
	for _, parts := range []int{1, 4} {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			env := testenv.Redis(t)
			rdb := env.Client(t)
			b := newBus(t, rdb, redisbus.Options{Prefix: env.Prefix, Default: redisbus.TopicOptions{Partitions: parts}})
			ctx := ctxT(t)
			stream := env.Prefix + "audit:log"
			if parts > 1 {
				stream += "#" + strconv.Itoa(parts-1)
			}
			var c collector
			subscribe(t, b, "audit:log", "auditlog", c.handle, fast)
			for _, values := range []map[string]any{{"foo": "bar"}, {"key": "k", "h:x": "y"}} {
				if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: values}).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := b.Publish(ctx, "audit:log", bus.Outgoing{Key: "k", Payload: []byte("good")}); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, "the good entry", func() bool { return c.distinct()["good"] })
			var dead []bus.Message
			testenv.Eventually(t, "two dead letters", func() bool {
				dead, _ = b.Replay(ctx, "audit:log:dlq", "", 10)
				return len(dead) == 2
			})
			for _, d := range dead {
				if !strings.HasPrefix(d.Headers[bus.HeaderDLQReason], "malformed entry") {
					t.Errorf("dlq-reason = %q, want malformed entry...", d.Headers[bus.HeaderDLQReason])
				}
			}
			if string(dead[0].Payload) != `{"foo":"bar"}` {
				t.Errorf("dead letter payload = %s, want the raw fields", dead[0].Payload)
			}
			if len(c.all()) != 1 {
				t.Errorf("handler saw %d messages, want only the good one", len(c.all()))
			}
		})
	}
}

// A stream deleted under a running group (as a restart without persistence would) is re-created
// with its group; consumption goes on.
func TestGroupRecreatedWhenStreamVanishes(t *testing.T) {
	env := testenv.Redis(t)
	rdb := env.Client(t)
	b := newBus(t, rdb, redisbus.Options{Prefix: env.Prefix})
	ctx := ctxT(t)
	var c collector
	subscribe(t, b, "t", "g", c.handle, fast)
	if _, err := b.Publish(ctx, "t", bus.Outgoing{Payload: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "before", func() bool { return c.distinct()["before"] })
	if err := rdb.Del(ctx, env.Prefix+"t").Err(); err != nil {
		t.Fatal(err)
	}
	// Publishing recreates the stream without the group; the consumer must notice.
	deadline := time.Now().Add(bustest.Timeout)
	for i := 0; !c.distinct()["after"+strconv.Itoa(i-1)]; i++ {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for consumption after the stream vanished")
		}
		if _, err := b.Publish(ctx, "t", bus.Outgoing{Payload: []byte("after" + strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Redis restarted mid-run: publishing (retried by the caller) and consuming resume, and every
// message Redis acknowledged reaches the group and the fan-out subscriber. The private server
// persists to an append-only file and stops gracefully, as a production Redis with AOF would; a
// server without persistence loses what it held, which no client can prevent.
func TestRedisRestartMidRun(t *testing.T) {
	srv := testenv.StartRedis(t)
	ropts, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ropts.MaxRetries = -1 // the bus and the publisher below do their own retrying
	rdb := redis.NewClient(ropts)
	t.Cleanup(func() { _ = rdb.Close() })
	b := newBus(t, rdb, redisbus.Options{Prefix: "cw:test:", Default: redisbus.TopicOptions{Partitions: 2}, LeaseTTL: time.Second, ReadBlock: 100 * time.Millisecond})

	var group collector
	subscribe(t, b, "events", "g", group.handle, fast)
	var fanMu sync.Mutex
	fanSeen := make(map[string]bool)
	fan, err := b.FanOut(ctxT(t), "events", func(_ context.Context, m bus.Message) {
		fanMu.Lock()
		defer fanMu.Unlock()
		fanSeen[string(m.Payload)] = true
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fan.Close() })

	const n = 300
	published := make(chan int, n)
	var failures atomic.Int64
	go func() {
		defer close(published)
		for i := 0; i < n; {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := b.Publish(ctx, "events", bus.Outgoing{Key: "k" + strconv.Itoa(i%5), Payload: []byte(strconv.Itoa(i))})
			cancel()
			if errors.Is(err, bus.ErrClosed) {
				return
			}
			if err != nil {
				failures.Add(1)
				time.Sleep(20 * time.Millisecond)
				continue // Redis is down: publish the same message again
			}
			published <- i
			i++
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for i := range published {
		if i == n/3 {
			srv.Restart(t)
		}
	}
	t.Logf("publishes refused while Redis restarted: %d", failures.Load())
	testenv.Eventually(t, "the group to see every message", func() bool { return len(group.distinct()) == n })
	testenv.Eventually(t, "the fan-out subscriber to see every message", func() bool {
		fanMu.Lock()
		defer fanMu.Unlock()
		return len(fanSeen) == n
	})
}

// Publish returns when its context's deadline passes even when the client does not bound
// commands by context deadlines itself (the audit client enqueues with a 50 ms timeout).
func TestPublishHonoursDeadlineOfUnresponsiveRedis(t *testing.T) {
	// A server that accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	rdb := redis.NewClient(&redis.Options{Addr: l.Addr().String(), ReadTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	b := newBus(t, rdb, redisbus.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = b.Publish(ctx, "audit:log", bus.Outgoing{Payload: []byte("x")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish = %v, want context.DeadlineExceeded", err)
	}
}

// Per-key order holds while members join and leave mid-stream and partitions move between them.
func TestOrderPerKeyAcrossRebalancing(t *testing.T) {
	env := testenv.Redis(t)
	b := newBus(t, env.Client(t), redisbus.Options{Prefix: env.Prefix, Default: redisbus.TopicOptions{Partitions: 4}, LeaseTTL: 300 * time.Millisecond})
	const keys, rounds = 8, 60
	var mu sync.Mutex
	seen := make(map[string]bool)
	got := make(map[string][]int)
	h := func(_ context.Context, msgs []bus.Message) error {
		mu.Lock()
		for _, m := range msgs {
			if !seen[string(m.Payload)] {
				seen[string(m.Payload)] = true
				_, n, _ := strings.Cut(string(m.Payload), "/")
				i, _ := strconv.Atoi(n)
				got[m.Key] = append(got[m.Key], i)
			}
		}
		mu.Unlock()
		time.Sleep(time.Millisecond)
		return nil
	}
	o := fast
	o.BatchSize = 4
	var perMember sync.Map // name -> *atomic.Int64
	member := func(name string) bus.Subscription {
		o.Consumer = name
		n := new(atomic.Int64)
		perMember.Store(name, n)
		return subscribe(t, b, "orders", "g", func(ctx context.Context, msgs []bus.Message) error {
			n.Add(int64(len(msgs)))
			return h(ctx, msgs)
		}, o)
	}
	a := member("a")
	for r := range rounds {
		switch r {
		case rounds / 4:
			member("b")
		case rounds / 2:
			member("c")
		case 3 * rounds / 4:
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
		}
		for k := range keys {
			key := "k" + strconv.Itoa(k)
			if _, err := b.Publish(ctxT(t), "orders", bus.Outgoing{Key: key, Payload: []byte(key + "/" + strconv.Itoa(r))}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	testenv.Eventually(t, "every message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == keys*rounds
	})
	perMember.Range(func(name, n any) bool {
		t.Logf("member %s handled %d messages", name, n.(*atomic.Int64).Load())
		return true
	})
	want := make([]int, rounds)
	for i := range want {
		want[i] = i
	}
	mu.Lock()
	defer mu.Unlock()
	for k := range keys {
		key := "k" + strconv.Itoa(k)
		if diff := cmp.Diff(want, got[key]); diff != "" {
			t.Errorf("key %s out of order (-want +got):\n%s", key, diff)
		}
	}
}
