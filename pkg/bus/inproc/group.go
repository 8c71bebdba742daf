package inproc

import (
	"context"
	"fmt"
	"time"

	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/internal/delivery"
)

// group is a consumer group on a topic. Guarded by Bus.mu.
type group struct {
	name string
	t    *topic
	// last is the highest seq taken from the log into window.
	last uint64
	// window holds, in seq order, the messages taken from the log and not yet finished (done
	// entries linger until they reach the front).
	window []*pend
	open   int // entries of window not done
}

// pend is a message of a group's window: undelivered, in flight, or waiting for its retry.
type pend struct {
	e           *entry
	deliveries  int
	owner       *member // handling it now; nil when not in flight
	deliveredAt time.Time
	availableAt time.Time // a failed message waits until then
	done        bool      // acknowledged or dead-lettered
}

// member identifies one subscription of a group.
type member struct{ name string }

// lowestUnacked is the lowest seq the group has not finished.
func (g *group) lowestUnacked() uint64 {
	for _, p := range g.window {
		if !p.done {
			return p.e.seq
		}
	}
	return g.last + 1
}

// pull moves the next message of the log into the window; false when there is none.
func (g *group) pull() bool {
	t := g.t
	for i := t.after(g.last); i < len(t.entries); i++ {
		e := t.entries[i]
		g.last = e.seq
		if e.deleted {
			continue
		}
		g.window = append(g.window, &pend{e: e})
		g.open++
		return true
	}
	return false
}

func (g *group) finish(p *pend) {
	if !p.done {
		p.done = true
		p.owner = nil
		g.open--
	}
}

// compactWindow drops the finished prefix of the window.
func (g *group) compactWindow() {
	i := 0
	for i < len(g.window) && g.window[i].done {
		i++
	}
	if i == 0 {
		return
	}
	if i == len(g.window) {
		g.window = g.window[:0]
		return
	}
	if i >= 64 || i > len(g.window)/2 {
		g.window = append(make([]*pend, 0, len(g.window)-i+64), g.window[i:]...)
	}
}

// take picks up to opts.BatchSize messages for m, in log order, skipping messages whose key is
// blocked by an earlier message of the same key that is in flight elsewhere or waiting for a
// retry. When it picks nothing, next is when a blocked message becomes available (zero: only a
// change of the topic can bring work).
func (g *group) take(b *Bus, m *member, opts bus.SubscribeOptions, now time.Time) (batch []*pend, next time.Time) {
	blocked := make(map[string]bool)
	earliest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	// The window grows only so far past what is blocked, so a long run of messages with one busy
	// key does not pull the whole log in.
	maxOpen := 4*opts.BatchSize + 64
	for i := 0; len(batch) < opts.BatchSize; i++ {
		if i == len(g.window) && (g.open >= maxOpen || !g.pull()) {
			break
		}
		p := g.window[i]
		switch {
		case p.done:
			continue
		case p.e.deleted:
			g.finish(p)
			continue
		case blocked[p.e.key]:
			continue
		case p.owner != nil:
			if claimAt := p.deliveredAt.Add(opts.ClaimIdle); now.Before(claimAt) {
				blocked[p.e.key] = true
				earliest(claimAt)
				continue
			}
			// Held too long by a stuck handler: taken over below.
		case now.Before(p.availableAt):
			blocked[p.e.key] = true
			earliest(p.availableAt)
			continue
		}
		if delivery.Exhausted(p.deliveries, opts.MaxDeliveries) {
			// Delivered MaxDeliveries times without an ack (its member closed or got stuck).
			reason := fmt.Sprintf("delivered %d times without ack", p.deliveries)
			if !g.deadLetter(b, p, opts, reason, now) {
				blocked[p.e.key] = true
				earliest(p.availableAt)
			}
			continue
		}
		p.owner = m
		p.deliveries++
		p.deliveredAt = now
		batch = append(batch, p)
	}
	g.compactWindow()
	return batch, next
}

// complete settles a batch m handled: acknowledged messages are finished, failed ones wait for
// their retry (or are offered at once when m is closing), and failed ones that used up their
// deliveries are dead-lettered.
func (g *group) complete(b *Bus, m *member, batch []*pend, msgs []bus.Message, err error, opts bus.SubscribeOptions, closing bool, now time.Time) {
	failed := delivery.Failed(err, msgs)
	for _, p := range batch {
		switch {
		case p.done:
		case !failed[p.e.id]:
			g.finish(p) // an ack counts even if another member took the message over meanwhile
		case p.owner != m:
			// Taken over by another member after ClaimIdle: its outcome decides.
		case closing:
			p.owner = nil
			p.availableAt = now
		case delivery.Exhausted(p.deliveries, opts.MaxDeliveries):
			p.owner = nil
			g.deadLetter(b, p, opts, delivery.Reason(err), now)
		default:
			p.owner = nil
			p.availableAt = now.Add(opts.Retry)
		}
	}
	g.compactWindow()
	g.t.notify()
}

// deadLetter moves p to the dead-letter topic; when that topic refuses it, p waits for a retry.
func (g *group) deadLetter(b *Bus, p *pend, opts bus.SubscribeOptions, reason string, now time.Time) bool {
	msg := p.e.message(g.t.name, p.deliveries)
	if opts.DeadLetterTopic == g.t.name {
		// Dead-lettering into the topic itself would loop; drop it loudly instead.
		b.log.Error("bus: dead-letter topic is the topic itself; message dropped",
			"topic", g.t.name, "group", g.name, "id", msg.ID, "reason", reason)
		g.finish(p)
		return true
	}
	id, err := b.topicLocked(opts.DeadLetterTopic).appendLocked(delivery.DeadLetter(msg, g.name, reason))
	if err != nil {
		b.log.Error("bus: dead-lettering failed; will retry", "topic", g.t.name, "group", g.name,
			"id", msg.ID, "dlq", opts.DeadLetterTopic, "err", err)
		p.owner = nil
		p.availableAt = now.Add(opts.Retry)
		return false
	}
	b.log.Warn("bus: message dead-lettered", "topic", g.t.name, "group", g.name, "id", msg.ID,
		"dlq", opts.DeadLetterTopic, "dlqId", id, "deliveries", p.deliveries, "reason", reason)
	g.finish(p)
	return true
}

// Subscribe joins group on topic; a new group starts at the oldest message the topic holds.
func (b *Bus) Subscribe(ctx context.Context, topic, groupName string, h bus.BatchHandler, opts bus.SubscribeOptions) (bus.Subscription, error) {
	opts = delivery.Defaults(topic, opts)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, bus.ErrClosed
	}
	t := b.topicLocked(topic)
	g, ok := t.groups[groupName]
	if !ok {
		g = &group{name: groupName, t: t}
		t.groups[groupName] = g
	}
	m := &member{name: opts.Consumer}
	return b.start(ctx, func(ctx context.Context) { b.consume(ctx, g, m, h, opts) })
}

// consume is a member's loop: take a batch, handle it outside the lock, settle it.
func (b *Bus) consume(ctx context.Context, g *group, m *member, h bus.BatchHandler, opts bus.SubscribeOptions) {
	for ctx.Err() == nil {
		b.mu.Lock()
		batch, next := g.take(b, m, opts, time.Now())
		changed := g.t.changed
		msgs := make([]bus.Message, len(batch))
		for i, p := range batch {
			msgs[i] = p.e.message(g.t.name, p.deliveries)
		}
		b.mu.Unlock()
		if len(batch) == 0 {
			var d time.Duration
			if !next.IsZero() {
				d = max(time.Until(next), time.Millisecond)
			}
			wait(ctx, changed, d)
			continue
		}
		err := delivery.Call(ctx, h, msgs)
		b.mu.Lock()
		g.complete(b, m, batch, msgs, err, opts, ctx.Err() != nil, time.Now())
		b.mu.Unlock()
	}
}
