package inproc_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/bustest"
	"github.com/classwaves/classwaves/pkg/bus/inproc"
	"github.com/classwaves/classwaves/pkg/testenv"
)

func newBus(t testing.TB, opts inproc.Options) *inproc.Bus {
	t.Helper()
	b, err := inproc.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bus.Bus {
		return newBus(t, inproc.Options{Topics: map[string]inproc.TopicOptions{
			bustest.CappedTopic: {MaxLen: bustest.CappedMaxLen},
		}})
	})
}

func publish(t *testing.T, b bus.Bus, topic, payload string) (string, error) {
	t.Helper()
	return b.Publish(context.Background(), topic, bus.Outgoing{Key: "k", Payload: []byte(payload)})
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    inproc.Options
		wantErr string
	}{
		{"zero", inproc.Options{}, ""},
		{"capped", inproc.Options{Default: inproc.TopicOptions{MaxLen: 10, Overflow: inproc.RejectNew}}, ""},
		{"negative default", inproc.Options{Default: inproc.TopicOptions{MaxLen: -1}}, "default MaxLen must be >= 0, got -1"},
		{"bad overflow", inproc.Options{Topics: map[string]inproc.TopicOptions{"a": {Overflow: 7}}}, `topic "a" Overflow must be TrimOldest or RejectNew, got 7`},
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

func TestIDs(t *testing.T) {
	b := newBus(t, inproc.Options{})
	var got []string
	for _, p := range []string{"a", "b", "c"} {
		id, err := publish(t, b, "t", p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if diff := cmp.Diff([]string{"1-0", "2-0", "3-0"}, got); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		after string
		want  int
	}{{"1", 2}, {"1-0", 2}, {"1-5", 2}, {"3-0", 0}} {
		msgs, err := b.Replay(context.Background(), "t", tt.after, 10)
		if err != nil || len(msgs) != tt.want {
			t.Errorf("Replay(after %q) = %d messages, %v; want %d", tt.after, len(msgs), err, tt.want)
		}
	}
	for _, bad := range []string{"x", "1-x", "-1"} {
		if _, err := b.Replay(context.Background(), "t", bad, 10); err == nil {
			t.Errorf("Replay(after %q) succeeded, want an error", bad)
		}
	}
	if _, err := b.Replay(context.Background(), "t", "", 0); err == nil {
		t.Error("Replay(limit 0) succeeded, want an error")
	}
}

func TestTrimOldestIsExact(t *testing.T) {
	b := newBus(t, inproc.Options{Default: inproc.TopicOptions{MaxLen: 5}})
	for _, p := range []string{"1", "2", "3", "4", "5", "6", "7", "8"} {
		if _, err := publish(t, b, "t", p); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := b.Replay(context.Background(), "t", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		got = append(got, string(m.Payload))
	}
	if diff := cmp.Diff([]string{"4", "5", "6", "7", "8"}, got); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
}

func TestRejectNew(t *testing.T) {
	b := newBus(t, inproc.Options{Topics: map[string]inproc.TopicOptions{"audit:log": {MaxLen: 3, Overflow: inproc.RejectNew}}})
	for _, p := range []string{"a", "b", "c"} {
		if _, err := publish(t, b, "audit:log", p); err != nil {
			t.Fatalf("Publish(%s): %v", p, err)
		}
	}
	if _, err := publish(t, b, "audit:log", "d"); !errors.Is(err, bus.ErrBacklogFull) {
		t.Fatalf("Publish beyond the cap = %v, want ErrBacklogFull", err)
	}
	// A group that has consumed everything frees the backlog.
	var mu sync.Mutex
	n := 0
	s, err := b.Subscribe(context.Background(), "audit:log", "auditlog", func(_ context.Context, msgs []bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		n += len(msgs)
		return nil
	}, bus.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	testenv.Eventually(t, "the group to consume", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return n == 3
	})
	testenv.Eventually(t, "the backlog to empty", func() bool {
		l, err := b.Len(context.Background(), "audit:log")
		return err == nil && l == 0
	})
	if _, err := publish(t, b, "audit:log", "d"); err != nil {
		t.Fatalf("Publish after consumption = %v, want nil", err)
	}
}

// A handler stuck past ClaimIdle loses its messages to another member.
func TestClaimIdleTakesOverStuckHandler(t *testing.T) {
	b := newBus(t, inproc.Options{})
	release := make(chan struct{})
	stuck := make(chan struct{})
	var once sync.Once
	opts := bus.SubscribeOptions{ClaimIdle: 50 * time.Millisecond, MaxWait: 10 * time.Millisecond}
	a, err := b.Subscribe(context.Background(), "t", "g", func(context.Context, []bus.Message) error {
		once.Do(func() { close(stuck) })
		<-release
		return nil
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := publish(t, b, "t", "x"); err != nil {
		t.Fatal(err)
	}
	<-stuck
	got := make(chan bus.Message, 10)
	c, err := b.Subscribe(context.Background(), "t", "g", func(_ context.Context, msgs []bus.Message) error {
		for _, m := range msgs {
			got <- m
		}
		return nil
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case m := <-got:
		if string(m.Payload) != "x" || m.Deliveries != 2 {
			t.Errorf("taken over: payload %q deliveries %d; want x, 2", m.Payload, m.Deliveries)
		}
	case <-time.After(bustest.Timeout):
		t.Fatal("timed out waiting for the takeover")
	}
	close(release)
}

// A message whose member closed during its last allowed delivery is dead-lettered, not
// delivered again.
func TestExhaustedByClosedMemberIsDeadLettered(t *testing.T) {
	b := newBus(t, inproc.Options{})
	started := make(chan struct{})
	var once sync.Once
	opts := bus.SubscribeOptions{MaxDeliveries: 1, MaxWait: 10 * time.Millisecond}
	a, err := b.Subscribe(context.Background(), "t", "g", func(ctx context.Context, _ []bus.Message) error {
		once.Do(func() { close(started) })
		<-ctx.Done()
		return ctx.Err()
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publish(t, b, "t", "x"); err != nil {
		t.Fatal(err)
	}
	<-started
	_ = a.Close()
	c, err := b.Subscribe(context.Background(), "t", "g", func(context.Context, []bus.Message) error {
		t.Error("the exhausted message was delivered again")
		return nil
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var dead []bus.Message
	testenv.Eventually(t, "the dead letter", func() bool {
		dead, _ = b.Replay(context.Background(), "t:dlq", "", 10)
		return len(dead) == 1
	})
	if got := dead[0].Headers[bus.HeaderDLQReason]; got != "delivered 1 times without ack" {
		t.Errorf("reason = %q", got)
	}
}

// A panicking handler fails its batch; the message is delivered again and the consumer survives.
func TestHandlerPanic(t *testing.T) {
	b := newBus(t, inproc.Options{})
	done := make(chan int, 1)
	s, err := b.Subscribe(context.Background(), "t", "g", func(_ context.Context, msgs []bus.Message) error {
		if msgs[0].Deliveries == 1 {
			panic("bad message")
		}
		done <- msgs[0].Deliveries
		return nil
	}, bus.SubscribeOptions{Retry: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := publish(t, b, "t", "x"); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-done:
		if d != 2 {
			t.Errorf("Deliveries = %d, want 2", d)
		}
	case <-time.After(bustest.Timeout):
		t.Fatal("timed out")
	}
}

// benchBus caps topics at the seed's AUDIT_LOG_MAX_BACKLOG, as a deployment would.
func benchBus(b *testing.B) bus.Bus {
	return newBus(b, inproc.Options{Topics: map[string]inproc.TopicOptions{bustest.PublishTopic: {MaxLen: 50000}}})
}

func BenchmarkPublish(b *testing.B) { bustest.BenchmarkPublish(b, benchBus) }

func BenchmarkConsume(b *testing.B) { bustest.BenchmarkConsume(b, benchBus) }
