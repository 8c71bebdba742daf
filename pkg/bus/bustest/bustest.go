// Package bustest is the conformance suite of the bus port: every adapter runs Run against a real
// instance of itself, so both adapters keep the semantics the port documents (per-key order in a
// group, at-least-once redelivery, load sharing, fan-out, replay, dead-lettering, partial batch
// acknowledgement, capped backlogs, clean close).
//
// The suite asserts outcomes, never durations: every wait has a generous deadline only so that a
// broken adapter fails instead of hanging.
package bustest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/pkg/bus"
)

// The bus under test must cap CappedTopic at CappedMaxLen messages by trimming the oldest
// (approximate trimming may keep up to twice as many).
const (
	CappedTopic  = "bustest.capped"
	CappedMaxLen = 100
)

// LoadTopic is the topic on which three members of a group must all receive work. An adapter
// that keeps per-key order by partitioning topics must give it at least three partitions.
const LoadTopic = "bustest.load"

// Timeout bounds every wait of the suite; reaching it is a failure, not a measurement.
const Timeout = 30 * time.Second

// fast are the subscription options of the suite: short pauses so that retries happen quickly.
// ClaimIdle stays long: nothing here relies on it (adapters test it themselves).
var fast = bus.SubscribeOptions{
	BatchSize: 10,
	MaxWait:   50 * time.Millisecond,
	Retry:     20 * time.Millisecond,
	ClaimIdle: 10 * time.Second,
}

func with(o bus.SubscribeOptions, consumer string) bus.SubscribeOptions {
	o.Consumer = consumer
	return o
}

// Run runs the conformance suite. newBus returns a fresh, empty bus for one subtest (its own key
// prefix for a shared server); the suite closes it at the end of the subtest.
func Run(t *testing.T, newBus func(t *testing.T) bus.Bus) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b bus.Bus)
	}{
		{"OrderPerKey", testOrderPerKey},
		{"RedeliveryAfterHandlerError", testRedeliveryAfterHandlerError},
		{"RedeliveryToAnotherMember", func(t *testing.T, b bus.Bus) { testRedeliveryAfterClose(t, b, "b") }},
		{"RedeliveryToRestartedMember", func(t *testing.T, b bus.Bus) { testRedeliveryAfterClose(t, b, "a") }},
		{"LoadShared", testLoadShared},
		{"FanOutEverySubscriber", testFanOut},
		{"Replay", testReplay},
		{"DeleteAndLen", testDeleteAndLen},
		{"DeadLetter", testDeadLetter},
		{"BatchErrorAcksOthers", testBatchError},
		{"BacklogCap", testBacklogCap},
		{"CloseStopsSubscriptions", testClose},
		{"ContextEndsSubscription", testContextEnds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBus(t)
			t.Cleanup(func() { _ = b.Close() })
			tt.fn(t, b)
		})
	}
}

// waitFor polls cond until it holds, failing the test after Timeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", Timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

func publish(t testing.TB, b bus.Bus, topic, key, payload string, headers map[string]string) string {
	t.Helper()
	id, err := b.Publish(ctxT(t), topic, bus.Outgoing{Key: key, Payload: []byte(payload), Headers: headers})
	if err != nil {
		t.Fatalf("Publish(%q, %q): %v", topic, payload, err)
	}
	if id == "" {
		t.Fatalf("Publish(%q, %q) returned an empty id", topic, payload)
	}
	return id
}

func subscribe(t testing.TB, b bus.Bus, topic, group string, h bus.BatchHandler, opts bus.SubscribeOptions) bus.Subscription {
	t.Helper()
	s, err := b.Subscribe(context.Background(), topic, group, h, opts)
	if err != nil {
		t.Fatalf("Subscribe(%q, %q): %v", topic, group, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// recorder collects what handlers saw, by member.
type recorder struct {
	mu   sync.Mutex
	msgs map[string][]bus.Message // by member
}

func newRecorder() *recorder { return &recorder{msgs: make(map[string][]bus.Message)} }

func (r *recorder) add(member string, msgs ...bus.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs[member] = append(r.msgs[member], msgs...)
}

// handler records every message for member and acknowledges it.
func (r *recorder) handler(member string) bus.BatchHandler {
	return func(_ context.Context, msgs []bus.Message) error {
		r.add(member, msgs...)
		return nil
	}
}

// all returns every recorded message, members in name order.
func (r *recorder) all() []bus.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []bus.Message
	for _, m := range slices.Sorted(maps.Keys(r.msgs)) {
		out = append(out, r.msgs[m]...)
	}
	return out
}

func (r *recorder) of(member string) []bus.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs[member])
}

// distinct counts distinct payloads recorded.
func (r *recorder) distinct() int {
	seen := make(map[string]bool)
	for _, m := range r.all() {
		seen[string(m.Payload)] = true
	}
	return len(seen)
}

func payloads(msgs []bus.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Payload)
	}
	return out
}

// assertDrained checks that group holds no unacknowledged message with key: with every earlier
// member closed, a fresh member must see a new sentinel message and nothing before it (an
// unacknowledged message would be redelivered first, per-key order).
func assertDrained(t *testing.T, b bus.Bus, topic, group, key string, opts bus.SubscribeOptions) {
	t.Helper()
	rec := newRecorder()
	s := subscribe(t, b, topic, group, rec.handler("probe"), with(opts, "probe"))
	defer s.Close()
	publish(t, b, topic, key, "sentinel", nil)
	waitFor(t, "the sentinel", func() bool { return slices.Contains(payloads(rec.all()), "sentinel") })
	if diff := cmp.Diff([]string{"sentinel"}, payloads(rec.all())); diff != "" {
		t.Errorf("after the sentinel, group %q redelivered (-want +got):\n%s", group, diff)
	}
}

// testOrderPerKey: a group of three members handles interleaved keys; each key's messages are
// handled in publish order (counting each message's first handling: redeliveries may repeat).
func testOrderPerKey(t *testing.T, b bus.Bus) {
	const keys, perKey = 8, 40
	var mu sync.Mutex
	got := make(map[string][]int) // key -> seq in order of first handling
	seen := make(map[string]bool)
	h := func(_ context.Context, msgs []bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if seen[string(m.Payload)] {
				continue
			}
			seen[string(m.Payload)] = true
			_, seq, _ := strings.Cut(string(m.Payload), "/")
			n, _ := strconv.Atoi(seq)
			got[m.Key] = append(got[m.Key], n)
		}
		return nil
	}
	opts := fast
	opts.BatchSize = 3 // small batches spread keys over members
	for _, m := range []string{"a", "b", "c"} {
		subscribe(t, b, "orders", "g", h, with(opts, m))
	}
	for i := range perKey {
		for k := range keys {
			key := fmt.Sprintf("k%d", k)
			publish(t, b, "orders", key, fmt.Sprintf("%s/%d", key, i), nil)
		}
	}
	waitFor(t, "every message handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == keys*perKey
	})
	mu.Lock()
	defer mu.Unlock()
	want := make([]int, perKey)
	for i := range want {
		want[i] = i
	}
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		if diff := cmp.Diff(want, got[key]); diff != "" {
			t.Errorf("key %s handled out of order (-want +got):\n%s", key, diff)
		}
	}
}

// testRedeliveryAfterHandlerError: a batch whose handler fails is delivered again, in order, with
// its delivery count raised.
func testRedeliveryAfterHandlerError(t *testing.T, b bus.Bus) {
	rec := newRecorder()
	var mu sync.Mutex
	var handled []string
	h := func(_ context.Context, msgs []bus.Message) error {
		rec.add("a", msgs...)
		if msgs[0].Deliveries == 1 {
			return errors.New("transient failure")
		}
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if !slices.Contains(handled, string(m.Payload)) {
				handled = append(handled, string(m.Payload))
			}
		}
		return nil
	}
	for _, p := range []string{"m0", "m1", "m2"} {
		publish(t, b, "jobs", "k", p, nil)
	}
	subscribe(t, b, "jobs", "g", h, with(fast, "a"))
	waitFor(t, "all handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 3
	})
	mu.Lock()
	if diff := cmp.Diff([]string{"m0", "m1", "m2"}, handled); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
	mu.Unlock()
	maxDeliveries := make(map[string]int)
	for _, m := range rec.all() {
		maxDeliveries[string(m.Payload)] = max(maxDeliveries[string(m.Payload)], m.Deliveries)
		if m.Topic != "jobs" || m.Key != "k" {
			t.Errorf("message %s: topic, key = %q, %q; want jobs, k", m.ID, m.Topic, m.Key)
		}
	}
	for _, p := range []string{"m0", "m1", "m2"} {
		if maxDeliveries[p] < 2 {
			t.Errorf("%s: highest Deliveries = %d, want >= 2", p, maxDeliveries[p])
		}
	}
}

// testRedeliveryAfterClose: member "a" is closed while handling a batch (its handler returns the
// context's error, so nothing is acknowledged); member next ("b": another member; "a": the same
// member restarted) receives the messages again.
func testRedeliveryAfterClose(t *testing.T, b bus.Bus, next string) {
	started := make(chan []bus.Message, 1)
	blocking := func(ctx context.Context, msgs []bus.Message) error {
		select {
		case started <- msgs:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	}
	first := subscribe(t, b, "work", "g", blocking, with(fast, "a"))
	want := []string{"w0", "w1"}
	for _, p := range want {
		publish(t, b, "work", "k", p, nil)
	}
	var inFlight []bus.Message
	select {
	case inFlight = <-started:
	case <-time.After(Timeout):
		t.Fatal("timed out waiting for the first member to receive a batch")
	}
	rec := newRecorder()
	if next != "a" {
		subscribe(t, b, "work", "g", rec.handler(next), with(fast, next))
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if next == "a" {
		subscribe(t, b, "work", "g", rec.handler(next), with(fast, next))
	}
	waitFor(t, "redelivery", func() bool { return rec.distinct() == len(want) })
	got := rec.of(next)
	if diff := cmp.Diff(want, payloads(got)[:len(want)]); diff != "" {
		t.Errorf("redelivered (-want +got):\n%s", diff)
	}
	for _, m := range got {
		if slices.ContainsFunc(inFlight, func(f bus.Message) bool { return f.ID == m.ID }) && m.Deliveries < 2 {
			t.Errorf("message %s was in flight when its member closed; redelivered with Deliveries = %d, want >= 2", m.ID, m.Deliveries)
		}
	}
}

// testLoadShared: three members of a group all receive work.
func testLoadShared(t *testing.T, b bus.Bus) {
	rec := newRecorder()
	members := []string{"a", "b", "c"}
	for _, m := range members {
		h := rec.handler(m)
		subscribe(t, b, LoadTopic, "g", func(ctx context.Context, msgs []bus.Message) error {
			time.Sleep(time.Millisecond) // a little work, so one member cannot drain everything alone
			return h(ctx, msgs)
		}, with(fast, m))
	}
	busy := func() bool {
		for _, m := range members {
			if len(rec.of(m)) == 0 {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(Timeout)
	for i := 0; !busy(); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: messages per member a, b, c = %d, %d, %d",
				len(rec.of("a")), len(rec.of("b")), len(rec.of("c")))
		}
		publish(t, b, LoadTopic, fmt.Sprintf("key-%d", i), strconv.Itoa(i), nil)
		time.Sleep(2 * time.Millisecond)
	}
	// Each message is handled by one member (nothing failed, so nothing was redelivered).
	seen := make(map[string]string)
	for _, m := range members {
		for _, msg := range rec.of(m) {
			if other, dup := seen[msg.ID]; dup {
				t.Errorf("message %s handled by %s and %s", msg.ID, other, m)
			}
			seen[msg.ID] = m
		}
	}
}

type fanMsg struct {
	ID, Topic, Key, Payload string
	Headers                 map[string]string
}

func fanView(m bus.Message) fanMsg {
	return fanMsg{ID: m.ID, Topic: m.Topic, Key: m.Key, Payload: string(m.Payload), Headers: m.Headers}
}

// testFanOut: every fan-out subscriber sees every message published after it subscribed, in
// publish order, and nothing published before.
func testFanOut(t *testing.T, b bus.Bus) {
	publish(t, b, "events", "s1", "before", nil)
	const subs, n = 3, 50
	var mu sync.Mutex
	got := make([][]fanMsg, subs)
	for i := range subs {
		s, err := b.FanOut(context.Background(), "events", func(_ context.Context, m bus.Message) {
			mu.Lock()
			defer mu.Unlock()
			got[i] = append(got[i], fanView(m))
		})
		if err != nil {
			t.Fatalf("FanOut: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
	}
	var want []fanMsg
	for i := range n {
		key := fmt.Sprintf("s%d", i%4)
		h := map[string]string{"trace-id": strconv.Itoa(i)}
		id := publish(t, b, "events", key, "e"+strconv.Itoa(i), h)
		want = append(want, fanMsg{ID: id, Topic: "events", Key: key, Payload: "e" + strconv.Itoa(i), Headers: h})
	}
	waitFor(t, "every subscriber to see every event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, g := range got {
			if len(g) < n {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	for i, g := range got {
		if diff := cmp.Diff(want, g); diff != "" {
			t.Errorf("subscriber %d (-want +got):\n%s", i, diff)
		}
	}
}

type replayMsg struct{ ID, Key, Payload string }

func replayView(msgs []bus.Message) []replayMsg {
	var out []replayMsg
	for _, m := range msgs {
		out = append(out, replayMsg{m.ID, m.Key, string(m.Payload)})
	}
	return out
}

// testReplay: replay returns messages after an offset, in order, and affects no group.
func testReplay(t *testing.T, b bus.Bus) {
	var all []replayMsg
	for i := range 10 {
		key := fmt.Sprintf("k%d", i%3)
		id := publish(t, b, "history", key, "h"+strconv.Itoa(i), map[string]string{"n": strconv.Itoa(i)})
		all = append(all, replayMsg{id, key, "h" + strconv.Itoa(i)})
	}
	tests := []struct {
		name  string
		after string
		limit int
		want  []replayMsg
	}{
		{"from the start", "", 100, all},
		{"zero is the start", "0", 3, all[:3]},
		{"after an offset", all[3].ID, 4, all[4:8]},
		{"limit beyond the end", all[7].ID, 10, all[8:]},
		{"after the last", all[9].ID, 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := b.Replay(ctxT(t), "history", tt.after, tt.limit)
			if err != nil {
				t.Fatalf("Replay(%q, %d): %v", tt.after, tt.limit, err)
			}
			if diff := cmp.Diff(tt.want, replayView(got)); diff != "" {
				t.Errorf("Replay(%q, %d) (-want +got):\n%s", tt.after, tt.limit, diff)
			}
			for _, m := range got {
				if m.Topic != "history" || m.Headers["n"] == "" {
					t.Errorf("message %s: topic %q, headers %v", m.ID, m.Topic, m.Headers)
				}
			}
		})
	}
	if got, err := b.Replay(ctxT(t), "no-such-topic", "", 10); err != nil || len(got) != 0 {
		t.Errorf("Replay(no-such-topic) = %v, %v; want nothing, no error", got, err)
	}
	// Replaying took nothing from a group: a new group still starts at the oldest message.
	rec := newRecorder()
	subscribe(t, b, "history", "g", rec.handler("a"), with(fast, "a"))
	waitFor(t, "the group to read the history", func() bool { return rec.distinct() == len(all) })
}

// testDeleteAndLen: Len counts what a topic holds; Delete removes by id and ignores unknown ids.
func testDeleteAndLen(t *testing.T, b bus.Bus) {
	ctx := ctxT(t)
	if n, err := b.Len(ctx, "deletable"); err != nil || n != 0 {
		t.Fatalf("Len(empty topic) = %d, %v; want 0, nil", n, err)
	}
	var ids []string
	for i := range 5 {
		ids = append(ids, publish(t, b, "deletable", "k", "d"+strconv.Itoa(i), nil))
	}
	if n, err := b.Len(ctx, "deletable"); err != nil || n != 5 {
		t.Fatalf("Len = %d, %v; want 5, nil", n, err)
	}
	if err := b.Delete(ctx, "deletable", ids[1], ids[3]); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := b.Delete(ctx, "deletable", ids[1]); err != nil {
		t.Fatalf("Delete of a deleted id: %v", err)
	}
	if err := b.Delete(ctx, "no-such-topic", ids[0]); err != nil {
		t.Fatalf("Delete on an unknown topic: %v", err)
	}
	if n, err := b.Len(ctx, "deletable"); err != nil || n != 3 {
		t.Errorf("Len after deleting 2 = %d, %v; want 3, nil", n, err)
	}
	got, err := b.Replay(ctx, "deletable", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"d0", "d2", "d4"}, payloads(got)); diff != "" {
		t.Errorf("after Delete (-want +got):\n%s", diff)
	}
}

// testDeadLetter: a message that fails MaxDeliveries times moves to the dead-letter topic with
// the reason headers, and is not delivered again; the others are handled.
func testDeadLetter(t *testing.T, b bus.Bus) {
	tests := []struct {
		name, dlq, wantDLQ string
	}{
		{"default topic", "", "payments:dlq"},
		{"named topic", "poison-box", "poison-box"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			group := "g-" + strings.ReplaceAll(tt.name, " ", "-")
			topic := "payments"
			if tt.dlq != "" {
				topic = "payments2"
			}
			var mu sync.Mutex
			var poisonDeliveries []int
			handled := make(map[string]bool)
			h := func(_ context.Context, msgs []bus.Message) error {
				mu.Lock()
				defer mu.Unlock()
				var failed []string
				for _, m := range msgs {
					if string(m.Payload) == "poison" {
						poisonDeliveries = append(poisonDeliveries, m.Deliveries)
						failed = append(failed, m.ID)
						continue
					}
					handled[string(m.Payload)] = true
				}
				if failed != nil {
					return &bus.BatchError{Failed: failed, Err: errors.New("boom: cannot handle")}
				}
				return nil
			}
			opts := fast
			opts.MaxDeliveries = 3
			opts.DeadLetterTopic = tt.dlq
			sub := subscribe(t, b, topic, group, h, with(opts, "a"))
			publish(t, b, topic, "k", "ok1", nil)
			poisonID := publish(t, b, topic, "k", "poison", map[string]string{"trace-id": "t-1"})
			publish(t, b, topic, "k", "ok2", nil)

			var dead []bus.Message
			waitFor(t, "the dead letter", func() bool {
				var err error
				dead, err = b.Replay(ctxT(t), tt.wantDLQ, "", 10)
				return err == nil && len(dead) > 0
			})
			waitFor(t, "the other messages", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return handled["ok1"] && handled["ok2"]
			})
			if len(dead) != 1 {
				t.Fatalf("dead-letter topic holds %d messages, want 1", len(dead))
			}
			d := dead[0]
			if string(d.Payload) != "poison" || d.Key != "k" || d.Topic != tt.wantDLQ {
				t.Errorf("dead letter: payload %q key %q topic %q; want poison, k, %s", d.Payload, d.Key, d.Topic, tt.wantDLQ)
			}
			wantHeaders := map[string]string{
				"trace-id":               "t-1",
				bus.HeaderDLQSourceTopic: topic,
				bus.HeaderDLQSourceID:    poisonID,
			}
			for k, v := range wantHeaders {
				if d.Headers[k] != v {
					t.Errorf("dead letter header %q = %q, want %q", k, d.Headers[k], v)
				}
			}
			if !strings.Contains(d.Headers[bus.HeaderDLQReason], "boom") {
				t.Errorf("dead letter header %q = %q, want the handler's error", bus.HeaderDLQReason, d.Headers[bus.HeaderDLQReason])
			}
			if err := sub.Close(); err != nil {
				t.Fatal(err)
			}
			assertDrained(t, b, topic, group, "k", opts)
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff([]int{1, 2, 3}, poisonDeliveries); diff != "" {
				t.Errorf("poison deliveries (-want +got):\n%s", diff)
			}
		})
	}
}

// testBatchError: a *BatchError fails only the messages it names; the others are acknowledged and
// never delivered again.
func testBatchError(t *testing.T, b bus.Bus) {
	var ids []string
	for i := range 4 {
		ids = append(ids, publish(t, b, "partial", "k", "p"+strconv.Itoa(i), nil))
	}
	var mu sync.Mutex
	count := make(map[string]int)
	h := func(_ context.Context, msgs []bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		var failed []string
		for _, m := range msgs {
			count[string(m.Payload)]++
			if m.ID == ids[1] && m.Deliveries == 1 {
				failed = append(failed, m.ID)
			}
		}
		if failed != nil {
			return &bus.BatchError{Failed: failed, Err: errors.New("p1 failed")}
		}
		return nil
	}
	sub := subscribe(t, b, "partial", "g", h, with(fast, "a"))
	waitFor(t, "p1's redelivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return count["p1"] == 2 && count["p0"] == 1 && count["p2"] == 1 && count["p3"] == 1
	})
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	assertDrained(t, b, "partial", "g", "k", fast)
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(map[string]int{"p0": 1, "p1": 2, "p2": 1, "p3": 1}, count); diff != "" {
		t.Errorf("deliveries per message (-want +got):\n%s", diff)
	}
}

// testBacklogCap: a capped topic keeps about CappedMaxLen of its newest messages.
func testBacklogCap(t *testing.T, b bus.Bus) {
	const n = 10 * CappedMaxLen
	ids := make([]string, n)
	index := make(map[string]int, n)
	for i := range n {
		ids[i] = publish(t, b, CappedTopic, "k"+strconv.Itoa(i%7), strconv.Itoa(i), nil)
		index[ids[i]] = i
	}
	l, err := b.Len(ctxT(t), CappedTopic)
	if err != nil {
		t.Fatal(err)
	}
	if l < CappedMaxLen || l > 2*CappedMaxLen {
		t.Errorf("Len = %d, want between %d and %d", l, CappedMaxLen, 2*CappedMaxLen)
	}
	kept, err := b.Replay(ctxT(t), CappedTopic, "", n)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(kept)) != l {
		t.Errorf("Replay returned %d messages, Len %d", len(kept), l)
	}
	// The newest messages are kept, contiguous and in order.
	for i, m := range kept {
		if want := n - len(kept) + i; index[m.ID] != want {
			t.Fatalf("kept[%d] is message %d, want %d", i, index[m.ID], want)
		}
	}
}

// testClose: Close waits for the handler in flight, stops every subscription and makes every
// later call fail with bus.ErrClosed.
func testClose(t *testing.T, b bus.Bus) {
	started := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	returned := false
	subscribe(t, b, "closing", "g", func(ctx context.Context, _ []bus.Message) error {
		once.Do(func() { close(started) })
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // still working after the cancellation: Close must wait
		mu.Lock()
		returned = true
		mu.Unlock()
		return ctx.Err()
	}, with(fast, "a"))
	fan, err := b.FanOut(context.Background(), "closing", func(context.Context, bus.Message) {})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, b, "closing", "k", "x", nil)
	select {
	case <-started:
	case <-time.After(Timeout):
		t.Fatal("timed out waiting for the handler")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	mu.Lock()
	if !returned {
		t.Error("Close returned before the handler in flight")
	}
	mu.Unlock()
	if err := fan.Close(); err != nil {
		t.Errorf("Subscription.Close after Bus.Close = %v, want nil", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	ctx := ctxT(t)
	calls := []struct {
		name string
		call func() error
	}{
		{"Publish", func() error { _, err := b.Publish(ctx, "closing", bus.Outgoing{Payload: []byte("y")}); return err }},
		{"Subscribe", func() error {
			_, err := b.Subscribe(ctx, "closing", "g", func(context.Context, []bus.Message) error { return nil }, fast)
			return err
		}},
		{"FanOut", func() error { _, err := b.FanOut(ctx, "closing", func(context.Context, bus.Message) {}); return err }},
		{"Replay", func() error { _, err := b.Replay(ctx, "closing", "", 1); return err }},
		{"Delete", func() error { return b.Delete(ctx, "closing", "1-0") }},
		{"Len", func() error { _, err := b.Len(ctx, "closing"); return err }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, bus.ErrClosed) {
			t.Errorf("%s after Close = %v, want bus.ErrClosed", c.name, err)
		}
	}
}

// testContextEnds: a subscription ends when the context given to Subscribe ends; its Close then
// returns at once.
func testContextEnds(t *testing.T, b bus.Bus) {
	ctx, cancel := context.WithCancel(context.Background())
	rec := newRecorder()
	s, err := b.Subscribe(ctx, "ctx", "g", rec.handler("a"), with(fast, "a"))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, b, "ctx", "k", "c0", nil)
	waitFor(t, "the first message", func() bool { return rec.distinct() == 1 })
	cancel()
	if err := s.Close(); err != nil {
		t.Errorf("Close after the context ended = %v", err)
	}
	n := len(rec.all())
	publish(t, b, "ctx", "k", "c1", nil)
	// Another member proves c1 was deliverable; the ended one must not have taken it.
	other := newRecorder()
	subscribe(t, b, "ctx", "g", other.handler("b"), with(fast, "b"))
	waitFor(t, "c1 at the other member", func() bool { return other.distinct() == 1 })
	if got := len(rec.all()); got != n {
		t.Errorf("the ended subscription handled %d more messages", got-n)
	}
}
