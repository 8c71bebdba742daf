package engineio

import (
	"container/heap"
	"sync"
	"time"
)

// clockStart is the origin of heartbeat deadlines: time.Since reads the monotonic clock.
var clockStart = time.Now()

func monotonic() time.Duration { return time.Since(clockStart) }

// heartbeats keeps the heartbeat deadline of every session of a server, when its next ping is due or,
// once a ping is sent, when its pong must have come, in one min-heap behind one timer. A time.Timer per
// session cost an idle session about 160 bytes, and every ping made two timers and a closure of garbage.
//
// A session's deadline fields (Conn.hb*) change under both the session's mu and h.mu, so either lock
// reads them safely, except hbIndex, which heap operations move under h.mu alone.
type heartbeats struct {
	mu      sync.Mutex
	due     deadlines
	timer   *time.Timer
	at      time.Duration // when timer fires (monotonic); 0: stopped
	stopped bool
}

func newHeartbeats() *heartbeats {
	h := &heartbeats{}
	h.timer = time.AfterFunc(time.Hour, h.fire)
	h.timer.Stop()
	return h
}

// schedule sets c's deadline to d from now. pong: it is a pong's (the session ends when it passes);
// otherwise the next ping's. c.mu is held.
func (h *heartbeats) schedule(c *Conn, d time.Duration, pong bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	c.hbDue = monotonic() + d
	c.hbPong = pong
	c.hbGen++ // a deadline that fire has already taken is void
	if c.hbIndex == 0 {
		heap.Push(&h.due, c)
	} else {
		heap.Fix(&h.due, int(c.hbIndex-1))
	}
	h.armLocked()
}

// cancel removes c's deadline. c.mu is held.
func (h *heartbeats) cancel(c *Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.hbIndex != 0 {
		heap.Remove(&h.due, int(c.hbIndex-1))
	}
	c.hbPong = false
	c.hbGen++
}

// armLocked makes the timer fire by the earliest deadline.
func (h *heartbeats) armLocked() {
	if len(h.due) == 0 || h.stopped {
		return // a timer that fires for nothing re-arms nothing
	}
	first := h.due[0].hbDue
	if h.at != 0 && h.at <= first {
		return // it fires in time, and fire arms it again for the rest
	}
	h.at = first
	h.timer.Reset(max(first-monotonic(), 0))
}

// expiry is a deadline that passed, as fire took it.
type expiry struct {
	c   *Conn
	gen uint32
}

// fire takes every deadline that passed, arms the timer for the next, and then handles them: it runs on
// the timer's goroutine, without h.mu, since handling takes each session's mu.
func (h *heartbeats) fire() {
	h.mu.Lock()
	h.at = 0
	now := monotonic()
	var passed []expiry
	for len(h.due) > 0 && h.due[0].hbDue <= now {
		c := heap.Pop(&h.due).(*Conn)
		passed = append(passed, expiry{c: c, gen: c.hbGen})
	}
	h.armLocked()
	h.mu.Unlock()
	for _, e := range passed {
		e.c.heartbeat(e.gen)
	}
}

// stop stops the timer and drops every deadline (the server is closing).
func (h *heartbeats) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	h.timer.Stop()
	for _, c := range h.due {
		c.hbIndex = 0
	}
	h.due = nil
}

// deadlines is a min-heap of sessions by deadline; a session's hbIndex is its index plus one (0: not in
// the heap).
type deadlines []*Conn

func (d deadlines) Len() int           { return len(d) }
func (d deadlines) Less(i, j int) bool { return d[i].hbDue < d[j].hbDue }
func (d deadlines) Swap(i, j int) {
	d[i], d[j] = d[j], d[i]
	d[i].hbIndex, d[j].hbIndex = int32(i+1), int32(j+1)
}
func (d *deadlines) Push(x any) {
	c := x.(*Conn)
	c.hbIndex = int32(len(*d) + 1)
	*d = append(*d, c)
}
func (d *deadlines) Pop() any {
	old := *d
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*d = old[:len(old)-1]
	c.hbIndex = 0
	return c
}
