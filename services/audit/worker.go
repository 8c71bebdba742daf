package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/bus"
)

const (
	// insertTimeout bounds one batch insert, so a database that stops answering (rather than
	// refusing connections) is noticed and the cooldown starts.
	insertTimeout = 20 * time.Second
	// dlqTimeout bounds one dead-letter publish.
	dlqTimeout = 5 * time.Second
	// depthTimeout bounds the queue depth probe after each batch.
	depthTimeout = time.Second
	// maxHandled bounds the ids of handled entries waiting to be deleted from the stream.
	maxHandled = 100000
	// idleFlushDelay is how long after its last batch a worker that got no other one deletes that
	// batch's entries from the stream (a busy worker does it at the start of its next batch). The
	// bus acknowledges a batch as soon as the handler returns: the delay leaves it ample time to.
	idleFlushDelay = time.Second
)

// errStopping is returned by a batch interrupted by Stop while cooling down: its entries stay
// pending and are delivered again.
var errStopping = errors.New("audit worker: stopping")

// worker stores the audit stream: it is the bus.BatchHandler of the audit consumer group.
//
// Per batch: every entry is decoded, scrubbed and validated (a bad one is dead-lettered with the
// reason and acknowledged: it can never succeed); duplicates of one event id within the batch are
// handled once; the sampler keeps or rolls up noisy events; the kept events and the rollup rows
// are inserted in one transaction, idempotently by id. Then:
//   - stored: every entry is acknowledged;
//   - the database refused some rows' content (ErrRejected): rows are inserted one by one and the
//     refused ones dead-lettered, so one poison row cannot block the stream;
//   - the database is unavailable: the worker cools down for DBCooldown (the next batch waits for
//     it instead of hammering the database), critical events are dead-lettered (so they are not
//     lost whatever happens to the stream) and acknowledged, and everything else is left
//     unacknowledged: the bus delivers it again after the cooldown. Nothing is dropped.
type worker struct {
	cfg     Config
	store   Store
	bus     bus.Bus
	sampler *sampler
	m       *metrics
	logger  *slog.Logger

	// runCtx bounds the database and bus calls of a batch. It is not the handler's context: Stop
	// lets the batch in flight finish its insert (a drain), and cancels runCtx only when its own
	// deadline passes.
	runCtx context.Context
	// stopping is closed by Stop; it ends a cooldown wait early.
	stopping <-chan struct{}

	mu            sync.Mutex
	cooldownUntil time.Time
	// cooldownWaits counts batches that waited for a cooldown to end (tests read it).
	cooldownWaits atomic.Int64
	// handled are the ids of the previous batch's entries that the bus acknowledged after it
	// returned; the next batch, the idle flush or Stop deletes them from the stream. See
	// flushHandled.
	handled []string
	// busy is set while a batch is handled and lastDone is when the last one returned: the idle
	// flush (timer idle) runs only idleFlushDelay after the last batch, with none in flight.
	// halted is set by Stop, which then waits for an idle flush in progress (flushing).
	busy     bool
	lastDone time.Time
	idle     *time.Timer
	halted   bool
	flushing sync.WaitGroup
}

// item is one distinct event of a batch and the stream entries that carried it (a producer that
// retried may have published it twice).
type item struct {
	rec  Record
	msgs []bus.Message
}

func (it item) ids() []string {
	out := make([]string, len(it.msgs))
	for i, m := range it.msgs {
		out[i] = m.ID
	}
	return out
}

// handle is the bus.BatchHandler.
func (w *worker) handle(ctx context.Context, msgs []bus.Message) error {
	start := time.Now()
	w.setBusy()
	defer func() {
		w.m.batch.Observe(time.Since(start).Seconds())
		w.observeDepth()
		w.setIdle()
	}()
	w.flushHandled(w.runCtx)
	if err := w.waitCooldown(ctx); err != nil {
		return err // nothing acknowledged
	}
	pending, err := w.process(msgs)
	w.setHandled(msgs, pending)
	switch {
	case err != nil:
		return &bus.BatchError{Failed: pending, Err: err}
	case len(pending) > 0:
		return &bus.BatchError{Failed: pending, Err: errors.New("audit worker: dead-lettering failed")}
	}
	return nil
}

// process handles one batch and returns the ids of the entries to leave unacknowledged, with an
// error when the database was unavailable.
func (w *worker) process(msgs []bus.Message) (pending []string, err error) {
	var items []item
	byID := map[string]int{}
	for _, m := range msgs {
		rec, reason := decodeEvent(m.Payload)
		if reason != "" {
			if err := w.deadLetter(m, reason); err != nil {
				pending = append(pending, m.ID)
				continue
			}
			w.m.processed.Inc()
			continue
		}
		if i, dup := byID[rec.ID]; dup {
			items[i].msgs = append(items[i].msgs, m)
			continue
		}
		byID[rec.ID] = len(items)
		items = append(items, item{rec: rec, msgs: []bus.Message{m}})
	}

	recs := make([]Record, len(items))
	for i, it := range items {
		recs[i] = it.rec
	}
	plan := w.sampler.plan(recs)
	rows := make([]Record, 0, len(plan.keep)+len(plan.rollups))
	// sources[k] are the items rows[k] stands for.
	sources := make([][]int, 0, cap(rows))
	for _, i := range plan.keep {
		rows = append(rows, recs[i])
		sources = append(sources, []int{i})
	}
	rows = append(rows, plan.rollups...)
	sources = append(sources, plan.sources...)

	if len(rows) > 0 {
		n, err := w.insert(rows)
		switch {
		case err == nil:
			w.m.stored.Add(float64(n))
		case errors.Is(err, ErrRejected):
			more, err := w.insertEach(rows, sources, items)
			if err != nil {
				return w.failed(err, items, pending)
			}
			pending = append(pending, more...)
		default:
			return w.failed(err, items, pending)
		}
	}
	w.sampler.commit(plan)
	w.m.rollups.Add(float64(len(plan.rollups)))
	w.m.sampled.Add(float64(plan.sampled))
	for _, it := range items {
		w.m.processed.Add(float64(len(it.msgs)))
	}
	return pending, nil
}

// setHandled remembers which entries of msgs the bus is about to acknowledge (all but pending).
func (w *worker) setHandled(msgs []bus.Message, pending []string) {
	skip := make(map[string]bool, len(pending))
	for _, id := range pending {
		skip[id] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range msgs {
		if !skip[m.ID] {
			w.handled = append(w.handled, m.ID)
		}
	}
	if over := len(w.handled) - maxHandled; over > 0 {
		w.handled = w.handled[over:] // deletions keep failing: give up on the oldest
	}
}

// flushHandled deletes the entries handled by earlier batches from the stream. Handled entries are
// deleted so that the stream holds only what is still to be stored: its length (bus Len) is then
// the backlog, which the clients compare with AUDIT_LOG_MAX_BACKLOG, and neither Redis nor the
// in-process bus keeps stored events in memory. Deleting only after the bus acknowledged them
// (they are deleted at the start of the next batch, or by the idle flush when no batch comes,
// or by Stop once the subscription is closed) means a deleted entry is never redelivered. A
// failed delete is retried with the next batch or idle flush. ctx bounds it (with dlqTimeout).
func (w *worker) flushHandled(ctx context.Context) {
	w.mu.Lock()
	ids := w.handled
	w.handled = nil
	w.mu.Unlock()
	w.deleteHandled(ctx, ids)
}

// deleteHandled deletes ids (taken from handled) from the stream; on failure they go back to
// handled, to be retried. It reports whether they were deleted.
func (w *worker) deleteHandled(ctx context.Context, ids []string) bool {
	if len(ids) == 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, dlqTimeout)
	defer cancel()
	if err := w.bus.Delete(ctx, w.cfg.Log.StreamKey, ids...); err != nil {
		w.logger.Warn("audit worker: deleting stored entries from the stream failed; will retry", "entries", len(ids), "err", err)
		w.mu.Lock()
		w.handled = append(ids, w.handled...)
		w.mu.Unlock()
		return false
	}
	return true
}

// setBusy marks a batch in flight: the idle flush leaves the handled entries to it.
func (w *worker) setBusy() {
	w.mu.Lock()
	w.busy = true
	w.mu.Unlock()
}

// setIdle marks the end of a batch and arms the idle flush. Without it the last batch before a
// quiet period would stay in the stream (counted as backlog) until the next batch or Stop.
func (w *worker) setIdle() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.busy = false
	w.lastDone = time.Now()
	if w.halted || len(w.handled) == 0 {
		return
	}
	if w.idle == nil {
		w.idle = time.AfterFunc(idleFlushDelay, w.idleFlush)
	} else {
		w.idle.Reset(idleFlushDelay)
	}
}

// idleFlush is the idle timer's function: once idleFlushDelay has passed since the last batch
// returned (so the bus has acknowledged it) with no batch in flight, it deletes the handled
// entries and updates the queue depth gauge. A failed delete is retried after another delay.
func (w *worker) idleFlush() {
	w.mu.Lock()
	if w.busy || w.halted {
		w.mu.Unlock()
		return // the batch in flight (when it ends) or Stop takes care of them
	}
	if wait := idleFlushDelay - time.Since(w.lastDone); wait > 0 {
		w.idle.Reset(wait) // a batch ended after this run was scheduled
		w.mu.Unlock()
		return
	}
	ids := w.handled
	w.handled = nil
	if len(ids) == 0 {
		w.mu.Unlock()
		return
	}
	w.flushing.Add(1) // under mu with halted false: before halt's Wait
	w.mu.Unlock()
	defer w.flushing.Done()
	ok := w.deleteHandled(w.runCtx, ids)
	w.observeDepth()
	if !ok {
		w.mu.Lock()
		if !w.halted && !w.busy {
			w.idle.Reset(idleFlushDelay)
		}
		w.mu.Unlock()
	}
}

// halt stops the idle flush for good and waits for one in progress (Stop, before its last flush).
func (w *worker) halt() {
	w.mu.Lock()
	w.halted = true
	if w.idle != nil {
		w.idle.Stop()
	}
	w.mu.Unlock()
	w.flushing.Wait()
}

// insert stores rows within insertTimeout.
func (w *worker) insert(rows []Record) (int, error) {
	ctx, cancel := context.WithTimeout(w.runCtx, insertTimeout)
	defer cancel()
	return w.store.Insert(ctx, rows)
}

// insertEach stores rows one at a time after the batch was rejected, dead-lettering the entries
// behind each row the database refuses. It returns the ids of entries that could not be
// dead-lettered (left pending), or an error when the database turned out to be unavailable.
func (w *worker) insertEach(rows []Record, sources [][]int, items []item) ([]string, error) {
	var pending []string
	for k, row := range rows {
		n, err := w.insert([]Record{row})
		switch {
		case err == nil:
			w.m.stored.Add(float64(n))
			continue
		case !errors.Is(err, ErrRejected):
			return nil, err
		}
		w.logger.Warn("audit worker: database refused a row", "eventId", row.ID, "eventType", row.EventType, "err", err)
		for _, i := range sources[k] {
			for _, m := range items[i].msgs {
				if derr := w.deadLetter(m, bounded(reasonRejected+": "+err.Error())); derr != nil {
					pending = append(pending, m.ID)
				}
			}
		}
	}
	return pending, nil
}

// failed handles a batch whose insert failed for another reason than its content: cut short by
// Stop (the batch is left for the next worker, as it is), or the database is unavailable.
func (w *worker) failed(cause error, items []item, pending []string) ([]string, error) {
	if w.runCtx.Err() != nil {
		for _, it := range items {
			pending = append(pending, it.ids()...)
		}
		return pending, errStopping
	}
	return w.unavailable(cause, items, pending)
}

// unavailable handles a batch the database could not take: cooldown, critical events to the
// dead-letter stream, the rest left pending.
func (w *worker) unavailable(cause error, items []item, pending []string) ([]string, error) {
	w.m.dbFailures.Inc()
	w.mu.Lock()
	w.cooldownUntil = time.Now().Add(w.cfg.DBCooldown)
	w.mu.Unlock()
	w.m.cooldown.Set(1)
	critical := 0
	for _, it := range items {
		if it.rec.Priority != auditlog.PriorityCritical {
			pending = append(pending, it.ids()...)
			continue
		}
		for _, m := range it.msgs {
			if err := w.deadLetter(m, bounded(reasonUnavailable+": "+cause.Error())); err != nil {
				pending = append(pending, m.ID)
				continue
			}
			critical++
			w.m.processed.Inc()
		}
	}
	w.logger.Warn("audit worker: database unavailable, cooling down",
		"err", cause, "cooldown", w.cfg.DBCooldown, "pending", len(pending), "criticalDeadLettered", critical)
	return pending, fmt.Errorf("audit worker: storing batch: %w", cause)
}

// waitCooldown blocks while the worker cools down after a database failure. Stop, a closed bus
// (ctx) or the end of runCtx cut the wait short with an error, leaving the batch pending.
func (w *worker) waitCooldown(ctx context.Context) error {
	w.mu.Lock()
	d := time.Until(w.cooldownUntil)
	w.mu.Unlock()
	if d > 0 {
		w.cooldownWaits.Add(1)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-w.stopping:
			return errStopping
		case <-ctx.Done():
			return ctx.Err()
		case <-w.runCtx.Done():
			return w.runCtx.Err()
		}
	}
	w.m.cooldown.Set(0)
	return nil
}

// deadLetter publishes m to the dead-letter stream with the bus's dlq-* headers.
func (w *worker) deadLetter(m bus.Message, reason string) error {
	ctx, cancel := context.WithTimeout(w.runCtx, dlqTimeout)
	defer cancel()
	h := make(map[string]string, len(m.Headers)+5)
	maps.Copy(h, m.Headers)
	h[bus.HeaderDLQReason] = reason
	h[bus.HeaderDLQSourceTopic] = m.Topic
	h[bus.HeaderDLQSourceID] = m.ID
	h[bus.HeaderDLQGroup] = w.cfg.ConsumerGroup
	h[bus.HeaderDLQDeliveries] = strconv.Itoa(m.Deliveries)
	if _, err := w.bus.Publish(ctx, w.cfg.DLQKey, bus.Outgoing{Key: m.Key, Payload: m.Payload, Headers: h}); err != nil {
		w.logger.Error("audit worker: dead-lettering failed; the entry stays pending", "entryId", m.ID, "reason", reason, "err", err)
		return err
	}
	kind, _, _ := strings.Cut(reason, ":")
	w.m.dlq.WithLabelValues(kind).Inc()
	w.logger.Warn("audit worker: entry dead-lettered", "entryId", m.ID, "reason", reason)
	return nil
}

// observeDepth sets the queue depth gauge from the bus.
func (w *worker) observeDepth() {
	ctx, cancel := context.WithTimeout(w.runCtx, depthTimeout)
	defer cancel()
	if n, err := w.bus.Len(ctx, w.cfg.Log.StreamKey); err == nil {
		w.m.queueDepth.Set(float64(n))
	}
}
