package ratelimit

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classwaves/classwaves/pkg/testenv"
)

var start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// clock is a controllable clock for the in-memory limiter.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: start} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// backend is a Limiter implementation under test. Redis runs on its own clock, so the cases keep
// to limits whose emission interval (hours) dwarfs the test's run time, and allow RetryAfter and
// ResetAfter to be short of the exact value by at most slack.
type backend struct {
	name  string
	new   func(t *testing.T) Limiter
	slack time.Duration
}

func backends() []backend {
	return []backend{
		{"memory", func(*testing.T) Limiter { return NewMemory(WithClock(newClock().Now)) }, 0},
		{"redis", func(t *testing.T) Limiter {
			env := testenv.Redis(t)
			return NewRedis(env.Client(t), env.Prefix+"cw:test:rl:")
		}, time.Minute},
	}
}

// call is one Allow and what it must answer.
type call struct {
	key           string
	wantAllowed   bool
	wantRemaining int
	wantRetry     time.Duration // for refusals
	wantReset     time.Duration
}

// limiterCases are run against every backend.
var limiterCases = []struct {
	name  string
	limit Limit
	calls []call
}{
	{"burst then refuse", Limit{Rate: 3, Period: 3 * time.Hour, Burst: 3}, []call{
		{"a", true, 2, 0, time.Hour},
		{"a", true, 1, 0, 2 * time.Hour},
		{"a", true, 0, 0, 3 * time.Hour},
		{"a", false, 0, time.Hour, 3 * time.Hour},
		{"a", false, 0, time.Hour, 3 * time.Hour},
	}},
	{"burst above rate", Limit{Rate: 1, Period: time.Hour, Burst: 2}, []call{
		{"a", true, 1, 0, time.Hour},
		{"a", true, 0, 0, 2 * time.Hour},
		{"a", false, 0, time.Hour, 2 * time.Hour},
	}},
	{"burst of one", Limit{Rate: 2, Period: 2 * time.Hour, Burst: 1}, []call{
		{"a", true, 0, 0, time.Hour},
		{"a", false, 0, time.Hour, time.Hour},
	}},
	{"keys are independent", PerPeriod(1, time.Hour), []call{
		{"a", true, 0, 0, time.Hour},
		{"a", false, 0, time.Hour, time.Hour},
		{"b", true, 0, 0, time.Hour},
		{"global:203.0.113.7", true, 0, 0, time.Hour},
		{"global:203.0.113.8", true, 0, 0, time.Hour},
	}},
}

func within(got, want, slack time.Duration) bool {
	return got <= want && got >= want-slack
}

func TestLimiters(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			for _, tt := range limiterCases {
				t.Run(tt.name, func(t *testing.T) {
					l := b.new(t)
					for i, c := range tt.calls {
						got, err := l.Allow(context.Background(), c.key, tt.limit)
						if err != nil {
							t.Fatalf("call %d: Allow() error = %v", i, err)
						}
						if got.Allowed != c.wantAllowed || got.Remaining != c.wantRemaining || got.Limit != tt.limit {
							t.Fatalf("call %d: Allow(%q) = allowed %v remaining %d limit %v, want %v %d %v",
								i, c.key, got.Allowed, got.Remaining, got.Limit, c.wantAllowed, c.wantRemaining, tt.limit)
						}
						if !within(got.RetryAfter, c.wantRetry, b.slack) {
							t.Errorf("call %d: RetryAfter = %v, want %v (slack %v)", i, got.RetryAfter, c.wantRetry, b.slack)
						}
						if !within(got.ResetAfter, c.wantReset, b.slack) {
							t.Errorf("call %d: ResetAfter = %v, want %v (slack %v)", i, got.ResetAfter, c.wantReset, b.slack)
						}
					}
				})
			}
			t.Run("invalid limit", func(t *testing.T) {
				l := b.new(t)
				for _, lim := range []Limit{{}, {Rate: 1, Period: time.Hour}, {Rate: 0, Period: time.Hour, Burst: 1}, {Rate: 10, Period: time.Nanosecond, Burst: 1}} {
					if _, err := l.Allow(context.Background(), "a", lim); err == nil {
						t.Errorf("Allow(%+v) = nil error", lim)
					}
				}
			})
		})
	}
}

// TestMemoryRefill: the in-memory limiter's clock can move, so refills are checked exactly.
func TestMemoryRefill(t *testing.T) {
	clk := newClock()
	m := NewMemory(WithClock(clk.Now))
	l := PerPeriod(3, 3*time.Hour)
	allow := func() Result {
		t.Helper()
		r, err := m.Allow(context.Background(), "k", l)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for range 3 {
		allow()
	}
	if r := allow(); r.Allowed {
		t.Fatal("fourth call allowed")
	}
	clk.Advance(59 * time.Minute)
	if r := allow(); r.Allowed || r.RetryAfter != time.Minute {
		t.Fatalf("after 59m: %+v, want refused, retry in 1m", r)
	}
	clk.Advance(time.Minute)
	if r := allow(); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("after one emission interval: %+v, want one allowed", r)
	}
	clk.Advance(4 * time.Hour)
	if r := allow(); !r.Allowed || r.Remaining != 2 {
		t.Fatalf("after a long pause: %+v, want the full burst back", r)
	}
}

// TestMemoryForgets: keys back to their full burst are swept, so distinct keys do not pile up.
func TestMemoryForgets(t *testing.T) {
	clk := newClock()
	m := NewMemory(WithClock(clk.Now))
	l := PerPeriod(10, time.Minute)
	for i := range sweepEvery - 1 {
		if _, err := m.Allow(context.Background(), "ip:"+string(rune(i)), l); err != nil {
			t.Fatal(err)
		}
	}
	if m.Len() != sweepEvery-1 {
		t.Fatalf("Len() = %d, want %d", m.Len(), sweepEvery-1)
	}
	clk.Advance(time.Minute)
	if _, err := m.Allow(context.Background(), "last", l); err != nil {
		t.Fatal(err)
	}
	if got := m.Len(); got != 1 {
		t.Errorf("Len() after a sweep = %d, want 1", got)
	}
}

// TestRedisKeys: keys are the seed's cw:{env}:rl:<key>, not redis_rate's rate:<key>, and expire.
func TestRedisKeys(t *testing.T) {
	env := testenv.Redis(t)
	client := env.Client(t)
	prefix := env.Prefix + DefaultConfig().KeyPrefix("test")
	l := NewRedis(client, prefix)
	ctx := context.Background()
	if _, err := l.Allow(ctx, "global:203.0.113.7", PerPeriod(5, time.Minute)); err != nil {
		t.Fatal(err)
	}
	want := env.Prefix + "cw:test:rl:global:203.0.113.7"
	if n, err := client.Exists(ctx, want, "rate:"+want).Result(); err != nil || n != 1 {
		t.Fatalf("EXISTS = %d, %v, want only %s", n, err, want)
	}
	if ok, _ := client.Exists(ctx, want).Result(); ok != 1 {
		t.Fatalf("%s does not exist", want)
	}
	if ttl, err := client.TTL(ctx, want).Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("TTL(%s) = %v, %v, want within the period", want, ttl, err)
	}
}

// unreachableRedis is a client of a port nobody listens on.
func unreachableRedis(t *testing.T) *redis.Client {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRedisDown(t *testing.T) {
	l := NewRedis(unreachableRedis(t), "cw:test:rl:")
	if _, err := l.Allow(context.Background(), "a", PerPeriod(1, time.Minute)); err == nil {
		t.Error("Allow() on an unreachable Redis = nil error")
	}
}
