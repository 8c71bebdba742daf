package redisbus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/internal/delivery"
	"github.com/classwaves/classwaves/pkg/retry"
)

// handbackIdle is the idle time a releasing member gives its pending entries, so that its
// successor's XAUTOCLAIM takes them at once whatever its ClaimIdle.
const handbackIdle = 24 * time.Hour

// cleanupTimeout bounds what a member does on its way out (hand back, release, leave).
const cleanupTimeout = 5 * time.Second

// member is one subscription of a group: a keeper goroutine (heartbeat, assignment, lease
// renewal) and a worker goroutine (leases taken and released, reads, handler calls, acks). Only
// the worker touches parts; mu guards what the two share.
type member struct {
	b     *Bus
	t     topicInfo
	group string
	opts  bus.SubscribeOptions
	h     bus.BatchHandler

	membersKey string
	leaseKeys  []string

	mu      sync.Mutex
	desired map[int]bool   // partitions assigned to us; nil until the first heartbeat
	held    map[int]uint64 // partitions whose lease we hold -> generation
	lost    map[int]uint64 // leases the keeper found gone -> generation
	wake    chan struct{}  // keeper -> worker: assignment or leases changed

	// Worker-only state.
	parts       map[int]*part
	gen         uint64
	nextAcquire time.Time
}

// part is the worker's state of a partition it holds.
type part struct {
	gen uint64
	// needOwn: our own pending entries (failed, or left by our previous run) come first, once
	// retryAt has passed.
	needOwn bool
	retryAt time.Time
	// needForeign: entries other members left pending must be claimed (after ClaimIdle) before
	// new ones are read; checked at takeover and every ClaimIdle.
	needForeign bool
	foreignAt   time.Time
	cursor      string // XAUTOCLAIM scan position
	sweepAt     time.Time
	// buf holds entries read but not handled yet (a read returns up to BatchSize per partition).
	buf []bus.Message
}

func (p *part) live() bool { return !p.needOwn && !p.needForeign }

// delivered is a message with its partition.
type delivered struct {
	msg  bus.Message
	part int
}

// Subscribe joins group on topic: the group is created on every partition stream (from the
// oldest entry) if needed, then the member runs until ctx ends or the subscription is closed.
func (b *Bus) Subscribe(ctx context.Context, topic, group string, h bus.BatchHandler, opts bus.SubscribeOptions) (bus.Subscription, error) {
	if b.isClosed() {
		return nil, bus.ErrClosed
	}
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	if group == "" {
		return nil, errors.New("redisbus: empty group name")
	}
	if h == nil {
		return nil, errors.New("redisbus: nil handler")
	}
	opts = delivery.Defaults(topic, opts)
	t := b.topic(topic)
	m := &member{
		b: b, t: t, group: group, opts: opts, h: h,
		membersKey: b.opts.Prefix + topic + "#g#" + group + "#members",
		held:       make(map[int]uint64),
		lost:       make(map[int]uint64),
		wake:       make(chan struct{}, 1),
		parts:      make(map[int]*part),
	}
	for p := range t.parts {
		m.leaseKeys = append(m.leaseKeys, b.opts.Prefix+topic+"#g#"+group+"#lease#"+strconv.Itoa(p))
	}
	all := make([]int, t.parts)
	for p := range all {
		all[p] = p
	}
	if err := m.createGroups(ctx, all); err != nil {
		return nil, fmt.Errorf("redisbus: subscribe %s/%s: %w", topic, group, err)
	}
	s, err := b.start(ctx, m.keep, m.work)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// createGroups creates the group on the given partition streams (and the streams), from "0".
func (m *member) createGroups(ctx context.Context, parts []int) error {
	for _, p := range parts {
		err := m.b.rdb.XGroupCreateMkStream(ctx, m.t.streams[p], m.group, "0").Err()
		if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return err
		}
	}
	return nil
}

func isNoGroup(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOGROUP") }

func (m *member) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *member) logArgs(args ...any) []any {
	return append([]any{"topic", m.t.name, "group", m.group, "consumer", m.opts.Consumer}, args...)
}

// keep is the keeper loop: heartbeat, compute the assignment, renew leases, every LeaseTTL/3.
func (m *member) keep(ctx context.Context) {
	ttl := m.b.opts.LeaseTTL
	ttlMS := ttl.Milliseconds()
	for {
		members, err := heartbeatScript.Run(ctx, m.b.rdb, []string{m.membersKey}, m.opts.Consumer, ttlMS, "0").StringSlice()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.b.log.Warn("redisbus: heartbeat failed", m.logArgs("err", err)...)
		} else {
			desired := assign(members, m.opts.Consumer, m.t.parts)
			m.mu.Lock()
			changed := !maps.Equal(desired, m.desired)
			m.desired = desired
			held := maps.Clone(m.held)
			m.mu.Unlock()
			if changed {
				m.signal()
			}
			for p, gen := range held {
				ok, err := renewScript.Run(ctx, m.b.rdb, []string{m.leaseKeys[p]}, m.opts.Consumer, ttlMS).Bool()
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					m.b.log.Warn("redisbus: lease renewal failed", m.logArgs("partition", p, "err", err)...)
					continue
				}
				if !ok {
					m.mu.Lock()
					if m.held[p] == gen {
						m.lost[p] = gen
					}
					m.mu.Unlock()
					m.signal()
				}
			}
		}
		if retry.Sleep(ctx, ttl/3) != nil {
			return
		}
	}
}

// assign is the partitions of a topic that member gets among members: partition p goes to the
// member at p mod n in name order. Every member computes the same assignment from the same set.
func assign(members []string, member string, parts int) map[int]bool {
	sorted := slices.Clone(members)
	sort.Strings(sorted)
	i := slices.Index(sorted, member)
	out := make(map[int]bool)
	if i < 0 {
		return out
	}
	for p := i; p < parts; p += len(sorted) {
		out[p] = true
	}
	return out
}

// work is the worker loop: one step at a time, backing off after errors, then clean up.
func (m *member) work(ctx context.Context) {
	var bo backoff
	for ctx.Err() == nil {
		err := m.step(ctx)
		if err == nil {
			bo.reset()
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if isNoGroup(err) {
			// The stream or the group vanished (Redis restarted without persistence, or the
			// key was deleted): create them again and start the partitions over.
			if err := m.createGroups(ctx, slices.Collect(maps.Keys(m.parts))); err != nil {
				m.b.log.Warn("redisbus: re-creating group failed", m.logArgs("err", err)...)
			}
			for _, p := range m.parts {
				// Buffered entries are still handed to the handler: at least once.
				p.needOwn, p.needForeign, p.cursor = true, true, ""
			}
			_ = retry.Sleep(ctx, bo.next())
			continue
		}
		m.b.log.Warn("redisbus: consumer step failed; backing off", m.logArgs("err", err)...)
		_ = retry.Sleep(ctx, bo.next())
	}
	m.leave()
}

// step does one unit of work: settle leases, then handle one batch (buffered, own pending,
// claimed from others, or new), or wait for work.
func (m *member) step(ctx context.Context) error {
	if err := m.reconcile(ctx); err != nil {
		return err
	}
	now := time.Now()
	order := slices.Sorted(maps.Keys(m.parts))
	if batch := m.takeBuffered(order); len(batch) > 0 {
		return m.handle(ctx, batch)
	}
	for _, p := range order {
		if ps := m.parts[p]; ps.needOwn && !now.Before(ps.retryAt) {
			return m.recoverOwn(ctx, p)
		}
	}
	for _, p := range order {
		ps := m.parts[p]
		if !ps.needForeign && !now.Before(ps.sweepAt) {
			ps.needForeign, ps.foreignAt = true, now
		}
		if ps.needForeign && !now.Before(ps.foreignAt) {
			return m.recoverForeign(ctx, p)
		}
	}
	return m.readNew(ctx, order, now)
}

// waitFor is how long the worker may block before a partition needs attention.
func (m *member) waitFor(now time.Time) time.Duration {
	d := m.opts.MaxWait
	due := func(t time.Time) {
		if !t.IsZero() {
			d = min(d, t.Sub(now))
		}
	}
	for _, ps := range m.parts {
		if ps.needOwn {
			due(ps.retryAt)
		}
		if ps.needForeign {
			due(ps.foreignAt)
		} else {
			due(ps.sweepAt)
		}
	}
	if m.wantsMore() {
		due(m.nextAcquire)
	}
	return max(d, time.Millisecond)
}

// wantsMore reports whether partitions assigned to us are not held yet.
func (m *member) wantsMore() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.desired {
		if _, ok := m.parts[p]; !ok {
			return true
		}
	}
	return false
}

// reconcile drops partitions whose lease was lost, releases those no longer assigned, and takes
// assigned ones that are free.
func (m *member) reconcile(ctx context.Context) error {
	m.mu.Lock()
	desired := maps.Clone(m.desired)
	lost := m.lost
	m.lost = make(map[int]uint64)
	m.mu.Unlock()
	for p, ps := range m.parts {
		switch {
		case lost[p] == ps.gen && lost[p] != 0:
			m.b.log.Warn("redisbus: partition lease lost", m.logArgs("partition", p)...)
			m.drop(p)
		case desired != nil && !desired[p]:
			if err := m.release(ctx, p); err != nil {
				return err
			}
		}
	}
	if desired == nil || time.Now().Before(m.nextAcquire) {
		return nil
	}
	ttlMS := m.b.opts.LeaseTTL.Milliseconds()
	missing := false
	for _, p := range slices.Sorted(maps.Keys(desired)) {
		if _, ok := m.parts[p]; ok {
			continue
		}
		ok, err := acquireScript.Run(ctx, m.b.rdb, []string{m.leaseKeys[p]}, m.opts.Consumer, ttlMS).Bool()
		if err != nil {
			return err
		}
		if !ok {
			missing = true
			continue
		}
		if err := m.createGroups(ctx, []int{p}); err != nil {
			return err
		}
		m.gen++
		m.parts[p] = &part{gen: m.gen, needOwn: true, needForeign: true}
		m.mu.Lock()
		m.held[p] = m.gen
		m.mu.Unlock()
	}
	if missing {
		// Held by a member that has not released it yet: try again shortly, not every step.
		m.nextAcquire = time.Now().Add(min(m.b.opts.LeaseTTL/10, 100*time.Millisecond))
	}
	return nil
}

// drop forgets a partition without touching Redis.
func (m *member) drop(p int) {
	delete(m.parts, p)
	m.mu.Lock()
	delete(m.held, p)
	m.mu.Unlock()
}

// release hands back our pending entries of partition p and gives up its lease.
func (m *member) release(ctx context.Context, p int) error {
	if err := m.handBack(ctx, p); err != nil {
		return err
	}
	m.drop(p)
	return releaseScript.Run(ctx, m.b.rdb, []string{m.leaseKeys[p]}, m.opts.Consumer).Err()
}

// handBack marks our pending entries of partition p as long idle (XCLAIM ... IDLE JUSTID, which
// leaves their delivery counts alone), so the next holder claims them at once.
func (m *member) handBack(ctx context.Context, p int) error {
	stream := m.t.streams[p]
	start := "-"
	for {
		pend, err := m.b.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: stream, Group: m.group, Start: start, End: "+", Count: 1000, Consumer: m.opts.Consumer,
		}).Result()
		if err != nil || len(pend) == 0 {
			if isNoGroup(err) {
				return nil
			}
			return err
		}
		args := []any{"XCLAIM", stream, m.group, m.opts.Consumer, 0}
		for _, e := range pend {
			args = append(args, e.ID)
		}
		args = append(args, "IDLE", handbackIdle.Milliseconds(), "JUSTID")
		if err := m.b.rdb.Do(ctx, args...).Err(); err != nil {
			return err
		}
		if len(pend) < 1000 {
			return nil
		}
		start = "(" + pend[len(pend)-1].ID
	}
}

// leave is the worker's exit: hand back and release every partition, leave the member set.
func (m *member) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	for p := range m.parts {
		if err := m.release(ctx, p); err != nil {
			m.b.log.Warn("redisbus: releasing partition on close failed", m.logArgs("partition", p, "err", err)...)
			m.drop(p)
		}
	}
	if err := heartbeatScript.Run(ctx, m.b.rdb, []string{m.membersKey}, m.opts.Consumer, m.b.opts.LeaseTTL.Milliseconds(), "1").Err(); err != nil {
		m.b.log.Warn("redisbus: leaving the group failed", m.logArgs("err", err)...)
	}
}

// takeBuffered takes up to BatchSize buffered messages of live partitions, in partition order.
func (m *member) takeBuffered(order []int) []delivered {
	var batch []delivered
	for _, p := range order {
		ps := m.parts[p]
		if !ps.live() {
			continue
		}
		for len(ps.buf) > 0 && len(batch) < m.opts.BatchSize {
			batch = append(batch, delivered{ps.buf[0], p})
			ps.buf = ps.buf[1:]
		}
	}
	return batch
}

// recoverOwn redelivers our own pending entries of partition p (failed ones after Retry, or those
// left by our previous run), older than anything buffered, with their delivery counts raised.
func (m *member) recoverOwn(ctx context.Context, p int) error {
	ps := m.parts[p]
	stream := m.t.streams[p]
	end := "+"
	if len(ps.buf) > 0 {
		end = "(" + ps.buf[0].ID
	}
	pend, err := m.b.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: stream, Group: m.group, Start: "-", End: end, Count: int64(m.opts.BatchSize), Consumer: m.opts.Consumer,
	}).Result()
	if err != nil {
		return err
	}
	if len(pend) == 0 {
		ps.needOwn = false
		return nil
	}
	ids := make([]string, len(pend))
	counts := make(map[string]int, len(pend))
	for i, e := range pend {
		ids[i] = e.ID
		counts[e.ID] = int(e.RetryCount) + 1 // XCLAIM below counts one more delivery
	}
	xs, err := m.b.rdb.XClaim(ctx, &redis.XClaimArgs{
		Stream: stream, Group: m.group, Consumer: m.opts.Consumer, Messages: ids,
	}).Result()
	if err != nil {
		return err
	}
	return m.deliverClaimed(ctx, p, xs, counts)
}

// recoverForeign claims entries other members left pending in partition p once idle for
// ClaimIdle (XAUTOCLAIM), and clears needForeign once none is left.
func (m *member) recoverForeign(ctx context.Context, p int) error {
	ps := m.parts[p]
	stream := m.t.streams[p]
	start := ps.cursor
	if start == "" {
		start = "0-0"
	}
	xs, next, err := m.b.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: stream, Group: m.group, MinIdle: m.opts.ClaimIdle, Start: start,
		Count: int64(m.opts.BatchSize), Consumer: m.opts.Consumer,
	}).Result()
	if err != nil {
		return err
	}
	ps.cursor = next
	if len(xs) > 0 {
		// The claim raised the delivery counts; read them.
		pend, err := m.b.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: stream, Group: m.group, Start: xs[0].ID, End: xs[len(xs)-1].ID,
			Count: int64(10 * m.opts.BatchSize), Consumer: m.opts.Consumer,
		}).Result()
		if err != nil {
			return err
		}
		counts := make(map[string]int, len(pend))
		for _, e := range pend {
			counts[e.ID] = int(e.RetryCount)
		}
		return m.deliverClaimed(ctx, p, xs, counts)
	}
	if next != "0-0" && next != "" {
		return nil // more of the pending list to scan
	}
	sum, err := m.b.rdb.XPending(ctx, stream, m.group).Result()
	if err != nil {
		return err
	}
	now := time.Now()
	ps.cursor = ""
	if sum.Count-sum.Consumers[m.opts.Consumer] > 0 {
		// Entries of another member that are not idle long enough yet: keep the partition's new
		// entries waiting (per-key order) and look again soon.
		ps.foreignAt = now.Add(min(max(m.opts.ClaimIdle/4, 10*time.Millisecond), time.Second))
		return nil
	}
	ps.needForeign = false
	ps.sweepAt = now.Add(m.opts.ClaimIdle)
	return nil
}

// deliverClaimed handles entries claimed from the pending list: those whose deliveries are used
// up or that cannot be decoded are dead-lettered, the others go to the handler.
func (m *member) deliverClaimed(ctx context.Context, p int, xs []redis.XMessage, counts map[string]int) error {
	var batch []delivered
	for _, x := range xs {
		n := max(counts[x.ID], 1)
		msg, err := decode(m.t.name, x, n)
		switch {
		case err != nil:
			if err := m.deadLetter(ctx, p, msg, err.Error()); err != nil {
				return err
			}
		case m.opts.MaxDeliveries > 0 && n > m.opts.MaxDeliveries:
			if err := m.deadLetter(ctx, p, msg, fmt.Sprintf("delivered %d times without ack", n-1)); err != nil {
				return err
			}
		default:
			batch = append(batch, delivered{msg, p})
		}
	}
	if len(batch) == 0 {
		return nil
	}
	return m.handle(ctx, batch)
}

// readNew reads new entries of the live partitions (XREADGROUP ">"), blocking up to MaxWait (less
// when a partition needs attention sooner), into their buffers; malformed entries are
// dead-lettered at once.
func (m *member) readNew(ctx context.Context, order []int, now time.Time) error {
	block := m.waitFor(now)
	var live []int
	for _, p := range order {
		if m.parts[p].live() {
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		t := time.NewTimer(block)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-m.wake:
		case <-t.C:
		}
		return nil
	}
	args := make([]string, 0, 2*len(live))
	for _, p := range live {
		args = append(args, m.t.streams[p])
	}
	for range live {
		args = append(args, ">")
	}
	res, err := m.b.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: m.group, Consumer: m.opts.Consumer, Streams: args,
		Count: int64(m.opts.BatchSize), Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return err
	}
	byStream := make(map[string]int, len(live))
	for _, p := range live {
		byStream[m.t.streams[p]] = p
	}
	for _, s := range res {
		p, ok := byStream[s.Stream]
		if !ok {
			continue
		}
		ps := m.parts[p]
		for _, x := range s.Messages {
			msg, err := decode(m.t.name, x, 1)
			if err != nil {
				if err := m.deadLetter(ctx, p, msg, err.Error()); err != nil {
					// Left pending: redelivered through our own pending list.
					ps.needOwn, ps.retryAt = true, time.Now().Add(m.opts.Retry)
					return err
				}
				continue
			}
			ps.buf = append(ps.buf, msg)
		}
	}
	return nil
}

// handle runs the handler on a batch and settles it: acks for the handled messages; for the
// failed ones a retry of their partition after Retry, or the dead-letter topic when their
// deliveries are used up. A member that is closing leaves failed messages pending (they are
// handed back on the way out) rather than dead-letter them.
func (m *member) handle(ctx context.Context, batch []delivered) error {
	msgs := make([]bus.Message, len(batch))
	for i, d := range batch {
		msgs[i] = d.msg
	}
	herr := delivery.Call(ctx, m.h, msgs)
	failed := delivery.Failed(herr, msgs)
	closing := ctx.Err() != nil
	// Settling must happen even when the subscription is closing.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	acks := make(map[int][]string)
	var dead []delivered
	now := time.Now()
	for _, d := range batch {
		switch {
		case !failed[d.msg.ID]:
			acks[d.part] = append(acks[d.part], d.msg.ID)
		case closing:
		case delivery.Exhausted(d.msg.Deliveries, m.opts.MaxDeliveries):
			dead = append(dead, d)
		default:
			if ps := m.parts[d.part]; ps != nil {
				ps.needOwn, ps.retryAt = true, now.Add(m.opts.Retry)
			}
		}
	}
	if len(acks) > 0 {
		_, err := m.b.rdb.Pipelined(sctx, func(pipe redis.Pipeliner) error {
			for p, ids := range acks {
				pipe.XAck(sctx, m.t.streams[p], m.group, ids...)
			}
			return nil
		})
		if err != nil {
			// Not acknowledged: they stay pending and come back through our own pending list.
			for p := range acks {
				if ps := m.parts[p]; ps != nil {
					ps.needOwn, ps.retryAt = true, now.Add(m.opts.Retry)
				}
			}
			return fmt.Errorf("ack: %w", err)
		}
	}
	for _, d := range dead {
		if err := m.deadLetter(sctx, d.part, d.msg, delivery.Reason(herr)); err != nil {
			if ps := m.parts[d.part]; ps != nil {
				ps.needOwn, ps.retryAt = true, now.Add(m.opts.Retry)
			}
			return err
		}
	}
	if herr != nil && !closing {
		m.b.log.Debug("redisbus: handler failed", m.logArgs("messages", len(failed), "err", herr)...)
	}
	return nil
}

// deadLetter publishes msg to the dead-letter topic, then acknowledges it in partition p.
func (m *member) deadLetter(ctx context.Context, p int, msg bus.Message, reason string) error {
	if m.opts.DeadLetterTopic == m.t.name {
		m.b.log.Error("redisbus: dead-letter topic is the topic itself; message dropped",
			m.logArgs("id", msg.ID, "reason", reason)...)
	} else {
		if err := checkTopic(m.opts.DeadLetterTopic); err != nil {
			return err
		}
		id, err := m.b.add(ctx, m.b.topic(m.opts.DeadLetterTopic), delivery.DeadLetter(msg, m.group, reason))
		if err != nil {
			return fmt.Errorf("dead-letter %s: %w", msg.ID, err)
		}
		m.b.log.Warn("redisbus: message dead-lettered", m.logArgs("id", msg.ID, "dlq", m.opts.DeadLetterTopic,
			"dlqId", id, "deliveries", msg.Deliveries, "reason", reason)...)
	}
	if err := m.b.rdb.XAck(ctx, m.t.streams[p], m.group, msg.ID).Err(); err != nil {
		return fmt.Errorf("ack dead-lettered %s: %w", msg.ID, err)
	}
	return nil
}
