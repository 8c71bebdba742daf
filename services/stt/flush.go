package stt

import (
	"context"
	"slices"
	"strings"
	"time"
)

// flushQueueCapacity bounds the flush queue (AUDIO_QUEUE_ENABLED): a flush that finds it full
// gives the groups it cannot queue up as timed out.
const flushQueueCapacity = 1024

// FlushResult is what FlushGroups reports.
type FlushResult struct {
	// WindowsFlushed counts the open windows closed.
	WindowsFlushed int
	// TimedOut are the groups whose windows were not transcribed and published in time; their
	// audio is dropped.
	TimedOut []string
}

// flushTask is one group handed to the flush queue.
type flushTask struct {
	ctx    context.Context
	g      *group
	result chan<- flushOutcome
}

type flushOutcome struct {
	g       *group
	flushed int
	done    bool
}

// Flush closes the open windows of a session's groups (all of them when groupIDs is empty) and
// waits, at most timeout (0: AUDIO_DRAIN_TIMEOUT_MS), until they and the windows closed before
// them are transcribed and published. Groups not done by then are abandoned: their
// transcriptions in flight are cancelled and their audio dropped.
//
// Without AUDIO_QUEUE_ENABLED every window is closed at once (and the transcription concurrency
// limit does the pacing); with it, each group is a task for the queue's AUDIO_QUEUE_WORKERS
// workers, so a large session's end does not burst.
func (s *Service) Flush(ctx context.Context, sessionID string, groupIDs []string, timeout time.Duration) (FlushResult, error) {
	if timeout <= 0 {
		timeout = s.cfg.DrainTimeout
	}
	s.mu.Lock()
	if s.state != stateRunning {
		s.mu.Unlock()
		return FlushResult{}, ErrUnavailable
	}
	sessionID = strings.ToLower(sessionID)
	want := map[string]bool{}
	for _, id := range groupIDs {
		want[strings.ToLower(id)] = true
	}
	var groups []*group
	for k, g := range s.groups {
		if k.session == sessionID && (len(want) == 0 || want[k.group]) {
			groups = append(groups, g)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(groups, func(a, b *group) int { return strings.Compare(a.key.group, b.key.group) })

	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var res FlushResult
	done := map[*group]bool{}
	if s.cfg.QueueEnabled {
		results := make(chan flushOutcome, len(groups))
		queued := 0
		for _, g := range groups {
			select {
			case s.queue <- flushTask{ctx: fctx, g: g, result: results}:
				queued++
			default: // the queue is full: this group is not drained
			}
		}
		for range queued {
			select {
			case o := <-results:
				res.WindowsFlushed += o.flushed
				done[o.g] = o.done
			case <-fctx.Done():
			}
		}
	} else {
		tails := make([][2]<-chan struct{}, len(groups))
		for i, g := range groups {
			res.WindowsFlushed += s.closeWindow(g)
			tails[i] = g.tails()
		}
		for i, g := range groups {
			done[g] = waitTails(fctx, tails[i])
		}
	}
	for _, g := range groups {
		if !done[g] {
			res.TimedOut = append(res.TimedOut, g.key.group)
			s.abandon(g)
		}
	}
	return res, nil
}

// tails returns the channels that close when the group's jobs so far are done.
func (g *group) tails() [2]<-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return [2]<-chan struct{}{g.tail, g.actTail}
}

func waitTails(ctx context.Context, t [2]<-chan struct{}) bool {
	for _, c := range t {
		select {
		case <-orClosed(c):
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// flushWorker serves the flush queue until Stop.
func (s *Service) flushWorker() {
	for {
		select {
		case <-s.quit:
			return
		case t := <-s.queue:
			o := flushOutcome{g: t.g}
			if t.ctx.Err() == nil {
				o.flushed = s.closeWindow(t.g)
				o.done = waitTails(t.ctx, t.g.tails())
			}
			t.result <- o // buffered for every task of the flush
		}
	}
}

// abandon drops what a group still holds after a drain ran out of time: the open window's audio
// and the jobs in flight (cancelled; their audio is released as they end).
func (s *Service) abandon(g *group) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.asm != nil {
		if w := g.asm.Cut(); w != nil {
			w.Release()
			s.m.windows.WithLabelValues(outcomeDrain).Inc()
		}
		s.trackBytesLocked(g)
	}
	g.jobCancel()
	g.jobCtx, g.jobCancel = context.WithCancel(s.runCtx)
}
