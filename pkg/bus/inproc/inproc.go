// Package inproc is the in-process bus adapter used in monolithic mode (classwaves -target=all).
//
// Each topic is an in-memory log of messages with increasing ids "<n>-0" (n counts from 1), so ids
// look like Redis stream ids and sort the same way. The log keeps messages after they are consumed,
// for Replay, until its backlog cap trims them (TopicOptions).
//
// A consumer group has a cursor into the log and a window of messages taken from it but not yet
// acknowledged (the pending entries). Members of a group pick batches from the window in log order,
// skipping a message whose key is blocked: an earlier message with the same key is being handled by
// another member, or is waiting for its retry. That is how per-key order holds in a group while
// messages with different keys are spread over its members. A failed message is offered again after
// SubscribeOptions.Retry to any member, one whose handler has held it for ClaimIdle can be taken by
// another member, and one that has failed MaxDeliveries times is moved to the dead-letter topic.
//
// A member is woken by every publish, so it hands a batch to its handler as soon as one message is
// available (as XREADGROUP BLOCK does) and SubscribeOptions.MaxWait has nothing to bound here.
//
// All state sits behind one mutex: the bus serves one process and its critical sections are short
// (handlers run outside it). Every goroutine belongs to a subscription, which Close stops.
package inproc

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/classwaves/classwaves/pkg/bus"
)

// Overflow says what Publish does when a topic holds its MaxLen.
type Overflow int

const (
	// TrimOldest drops the oldest messages, consumed or not, like Redis XADD MAXLEN (the default).
	TrimOldest Overflow = iota
	// RejectNew refuses the message with bus.ErrBacklogFull while MaxLen messages are not yet
	// acknowledged by every group of the topic. Messages every group acknowledged are dropped to
	// make room (so they are not available to Replay), and Len counts only the others. A topic
	// without groups counts every message it holds.
	RejectNew
)

// TopicOptions tune one topic.
type TopicOptions struct {
	// MaxLen caps the topic's backlog (0: no cap).
	MaxLen int
	// Overflow is what happens at the cap.
	Overflow Overflow
}

// Options configure the bus.
type Options struct {
	// Default applies to every topic not listed in Topics.
	Default TopicOptions
	// Topics overrides Default by topic name (e.g. "audit:log": {MaxLen: 50000, Overflow: RejectNew}).
	Topics map[string]TopicOptions
	// Logger receives dead-letter notices (default: discard).
	Logger *slog.Logger
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	check := func(name string, t TopicOptions) error {
		if t.MaxLen < 0 {
			return fmt.Errorf("inproc: %s MaxLen must be >= 0, got %d", name, t.MaxLen)
		}
		if t.Overflow != TrimOldest && t.Overflow != RejectNew {
			return fmt.Errorf("inproc: %s Overflow must be TrimOldest or RejectNew, got %d", name, t.Overflow)
		}
		return nil
	}
	if err := check("default", o.Default); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(o.Topics)) {
		if err := check("topic "+strconv.Quote(name), o.Topics[name]); err != nil {
			return err
		}
	}
	return nil
}

// Bus is the in-process adapter. The zero value is not usable; call New.
type Bus struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	closed bool
	topics map[string]*topic
	subs   map[*subscription]struct{}
}

var _ bus.Bus = (*Bus)(nil)

// New returns an empty bus. It fails only when opts do not validate.
func New(opts Options) (*Bus, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	l := opts.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Bus{
		opts:   opts,
		log:    l,
		topics: make(map[string]*topic),
		subs:   make(map[*subscription]struct{}),
	}, nil
}

// entry is one message of a topic's log. Its fields never change after publish except deleted.
type entry struct {
	seq     uint64
	id      string
	key     string
	payload []byte
	headers map[string]string
	deleted bool // removed by Delete or trimmed: pending references to it are dropped
}

// topic is a log plus its groups. Guarded by Bus.mu.
type topic struct {
	name    string
	opts    TopicOptions
	entries []*entry // ascending seq; entries[:head] are trimmed
	head    int
	holes   int // deleted entries at or after head
	lastSeq uint64
	groups  map[string]*group
	// changed is closed and replaced whenever members or fan-out readers may find new work:
	// a publish, an ack or failure that frees a key, a delete.
	changed chan struct{}
}

func (b *Bus) topicLocked(name string) *topic {
	t, ok := b.topics[name]
	if !ok {
		opts, ok := b.opts.Topics[name]
		if !ok {
			opts = b.opts.Default
		}
		t = &topic{name: name, opts: opts, groups: make(map[string]*group), changed: make(chan struct{})}
		b.topics[name] = t
	}
	return t
}

func (t *topic) notify() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// live is the number of messages the log holds.
func (t *topic) live() int { return len(t.entries) - t.head - t.holes }

// after returns the index of the first entry with seq > seq.
func (t *topic) after(seq uint64) int {
	return t.head + searchAfter(t.entries[t.head:], seq)
}

// searchAfter is a binary search over entries ordered by seq: the first index with seq greater
// than s.
func searchAfter(es []*entry, s uint64) int {
	i, _ := slices.BinarySearchFunc(es, s+1, func(e *entry, target uint64) int {
		switch {
		case e.seq < target:
			return -1
		case e.seq > target:
			return 1
		}
		return 0
	})
	return i
}

// trimFront drops entries from the head until the log holds at most n messages.
func (t *topic) trimFront(n int) {
	for t.live() > n && t.head < len(t.entries) {
		e := t.entries[t.head]
		if e.deleted {
			t.holes--
		}
		e.deleted = true
		t.entries[t.head] = nil
		t.head++
	}
	t.compact()
}

// compact reclaims the trimmed prefix and deleted entries once they are the larger part.
func (t *topic) compact() {
	if t.head+t.holes < 1024 || t.head+t.holes < len(t.entries)/2 {
		return
	}
	kept := make([]*entry, 0, t.live())
	for _, e := range t.entries[t.head:] {
		if !e.deleted {
			kept = append(kept, e)
		}
	}
	t.entries, t.head, t.holes = kept, 0, 0
}

// consumedBefore is the lowest seq some group has not acknowledged (every message before it has
// been acknowledged by every group); 0 when the topic has no group.
func (t *topic) consumedBefore() uint64 {
	if len(t.groups) == 0 {
		return 0
	}
	low := t.lastSeq + 1
	for _, g := range t.groups {
		low = min(low, g.lowestUnacked())
	}
	return low
}

// dropConsumed removes, for a RejectNew topic, the messages every group has acknowledged.
func (t *topic) dropConsumed() {
	low := t.consumedBefore()
	for t.head < len(t.entries) && t.entries[t.head].seq < low {
		e := t.entries[t.head]
		if e.deleted {
			t.holes--
		}
		e.deleted = true
		t.entries[t.head] = nil
		t.head++
	}
	t.compact()
}

// appendLocked adds msg to t and returns its id.
func (t *topic) appendLocked(msg bus.Outgoing) (string, error) {
	if t.opts.MaxLen > 0 && t.opts.Overflow == RejectNew && t.live() >= t.opts.MaxLen {
		t.dropConsumed()
		if t.live() >= t.opts.MaxLen {
			return "", bus.ErrBacklogFull
		}
	}
	t.lastSeq++
	e := &entry{
		seq:     t.lastSeq,
		id:      formatID(t.lastSeq),
		key:     msg.Key,
		payload: slices.Clone(msg.Payload),
		headers: maps.Clone(msg.Headers),
	}
	t.entries = append(t.entries, e)
	if t.opts.MaxLen > 0 && t.opts.Overflow == TrimOldest {
		t.trimFront(t.opts.MaxLen)
	}
	t.notify()
	return e.id, nil
}

func (e *entry) message(topic string, deliveries int) bus.Message {
	return bus.Message{
		ID:         e.id,
		Topic:      topic,
		Key:        e.key,
		Payload:    slices.Clone(e.payload),
		Headers:    maps.Clone(e.headers),
		Deliveries: deliveries,
	}
}

func formatID(seq uint64) string { return strconv.FormatUint(seq, 10) + "-0" }

// parseID reads "<n>-<m>" or "<n>" (as Redis accepts) and returns the greatest seq not after it:
// ids here are all "<n>-0", so "<n>-<m>" with m > 0 lies between n and n+1.
func parseID(id string) (uint64, error) {
	ms, seq, found := strings.Cut(id, "-")
	n, err := strconv.ParseUint(ms, 10, 64)
	if err == nil && found {
		_, err = strconv.ParseUint(seq, 10, 64)
	}
	if err != nil {
		return 0, fmt.Errorf("inproc: invalid message id %q", id)
	}
	return n, nil
}

// Publish appends msg to topic. It fails with bus.ErrBacklogFull only on a RejectNew topic.
func (b *Bus) Publish(ctx context.Context, topic string, msg bus.Outgoing) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return "", bus.ErrClosed
	}
	return b.topicLocked(topic).appendLocked(msg)
}

// Replay returns up to limit messages with ids greater than after.
func (b *Bus) Replay(ctx context.Context, topic, after string, limit int) ([]bus.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("inproc: replay limit must be positive, got %d", limit)
	}
	var from uint64
	if after != "" {
		var err error
		if from, err = parseID(after); err != nil {
			return nil, err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, bus.ErrClosed
	}
	t, ok := b.topics[topic]
	if !ok {
		return nil, nil
	}
	var out []bus.Message
	for _, e := range t.entries[t.after(from):] {
		if len(out) == limit {
			break
		}
		if !e.deleted {
			out = append(out, e.message(topic, 0))
		}
	}
	return out, nil
}

// Delete removes messages by id; unknown ids are ignored.
func (b *Bus) Delete(ctx context.Context, topic string, ids ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	seqs := make([]uint64, 0, len(ids))
	for _, id := range ids {
		s, err := parseID(id)
		if err != nil {
			return err
		}
		if strings.HasSuffix(id, "-0") || !strings.Contains(id, "-") {
			seqs = append(seqs, s)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return bus.ErrClosed
	}
	t, ok := b.topics[topic]
	if !ok {
		return nil
	}
	for _, s := range seqs {
		if s == 0 {
			continue
		}
		i := t.after(s - 1)
		if i >= len(t.entries) || t.entries[i].seq != s || t.entries[i].deleted {
			continue
		}
		t.entries[i].deleted = true
		t.holes++
	}
	t.compact()
	t.notify()
	return nil
}

// Len reports how many messages topic holds (for a RejectNew topic: not yet acknowledged by
// every group).
func (b *Bus) Len(ctx context.Context, topic string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, bus.ErrClosed
	}
	t, ok := b.topics[topic]
	if !ok {
		return 0, nil
	}
	if t.opts.Overflow == RejectNew {
		t.dropConsumed()
	}
	return int64(t.live()), nil
}

// Close stops every subscription, waiting for handlers in flight, and refuses further calls.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := slices.Collect(maps.Keys(b.subs))
	b.mu.Unlock()
	for _, s := range subs {
		_ = s.Close()
	}
	return nil
}

// subscription is a running member of a group or fan-out reader: one goroutine, stopped by
// Close or by its context.
type subscription struct {
	b      *Bus
	cancel context.CancelFunc
	done   chan struct{}
}

// Close stops the subscription and waits for its handler to return.
func (s *subscription) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// start registers s and runs loop on its own goroutine until ctx ends.
func (b *Bus) start(ctx context.Context, loop func(ctx context.Context)) (*subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &subscription{b: b, cancel: cancel, done: make(chan struct{})}
	b.subs[s] = struct{}{}
	go func() {
		defer close(s.done)
		defer func() {
			b.mu.Lock()
			delete(b.subs, s)
			b.mu.Unlock()
		}()
		loop(ctx)
	}()
	return s, nil
}

// wait blocks until ch is closed, d passes (d <= 0: no timer) or ctx ends; false when ctx ended.
func wait(ctx context.Context, ch <-chan struct{}, d time.Duration) bool {
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-ch:
	case <-timer:
	}
	return true
}

// FanOut calls h for every message published to topic after the call, in publish order. A reader
// slower than the topic's trimming misses the trimmed messages.
func (b *Bus) FanOut(ctx context.Context, topic string, h bus.Handler) (bus.Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, bus.ErrClosed
	}
	cursor := b.topicLocked(topic).lastSeq
	return b.start(ctx, func(ctx context.Context) {
		const chunk = 256
		for {
			b.mu.Lock()
			t := b.topicLocked(topic)
			var msgs []bus.Message
			for _, e := range t.entries[t.after(cursor):] {
				if len(msgs) == chunk {
					break
				}
				cursor = e.seq
				if !e.deleted {
					msgs = append(msgs, e.message(topic, 1))
				}
			}
			changed := t.changed
			b.mu.Unlock()
			for _, m := range msgs {
				if ctx.Err() != nil {
					return
				}
				callFanOut(ctx, h, m, b.log)
			}
			if len(msgs) == 0 && !wait(ctx, changed, 0) {
				return
			}
		}
	})
}

// callFanOut runs h, logging a panic instead of dying of it.
func callFanOut(ctx context.Context, h bus.Handler, m bus.Message, log *slog.Logger) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("bus: fan-out handler panicked", "topic", m.Topic, "id", m.ID, "panic", fmt.Sprint(r))
		}
	}()
	h(ctx, m)
}
