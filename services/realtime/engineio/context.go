package engineio

import (
	"context"
	"time"
)

// DoneContext returns a context that is canceled (Err returns context.Canceled) once done is closed. It
// has no deadline and no values, and costs no allocation and no goroutine: sessions and sockets hold one
// each without a cancelCtx and its children map.
func DoneContext(done <-chan struct{}) context.Context { return doneContext{done} }

type doneContext struct{ done <-chan struct{} }

func (doneContext) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c doneContext) Done() <-chan struct{} { return c.done }

func (c doneContext) Err() error {
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

func (doneContext) Value(any) any { return nil }
