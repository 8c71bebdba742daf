package engineio

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Done is a signal that is closed once, like a channel closed to say that something ended, except that
// the channel is made only when something asks for it (Chan, or a Context's Done). Ten thousand idle
// sessions and sockets otherwise held a channel each, about 110 bytes, that nothing ever waited on. The
// zero value is open. It is safe for concurrent use; it must not be copied after first use.
type Done struct {
	mu     sync.Mutex
	ch     chan struct{} // nil until Chan
	closed atomic.Bool
}

// closedChan is the channel of a Done closed before anything asked for its channel.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// Chan returns a channel that is closed when d is.
func (d *Done) Chan() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		if d.closed.Load() {
			return closedChan
		}
		d.ch = make(chan struct{})
	}
	return d.ch
}

// Close closes d and reports whether this call closed it (false: it was closed already).
func (d *Done) Close() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed.Load() {
		return false
	}
	d.closed.Store(true)
	if d.ch != nil {
		close(d.ch)
	}
	return true
}

// Closed reports whether d is closed, without making its channel.
func (d *Done) Closed() bool { return d.closed.Load() }

// Context returns a context that is canceled (Err returns context.Canceled) once d is closed. It has no
// deadline and no values, and costs no allocation and no goroutine: sessions and sockets hold one each
// without a cancelCtx and its children map.
func (d *Done) Context() context.Context { return doneContext{d} }

type doneContext struct{ d *Done }

func (doneContext) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c doneContext) Done() <-chan struct{} { return c.d.Chan() }

func (c doneContext) Err() error {
	if c.d.Closed() {
		return context.Canceled
	}
	return nil
}

func (doneContext) Value(any) any { return nil }
