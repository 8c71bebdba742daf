package engineio

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// batchMax is the size past which a batch is written before more frames are added to it.
const batchMax = 64 << 10

// batchPool holds the buffers of batches in progress; a connection holds one only while it writes.
var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

var errConnClosing = errors.New("engineio: connection closing")

// batchConn is the net.Conn under a WebSocket connection. Between begin and flush (the session writer's
// batch), the frames gorilla writes are gathered in one pooled buffer and written with one system call,
// under one write deadline: the last one set. Outside a batch, writes and deadlines go straight through.
// Once abandon is called, every write goes straight through: a close frame is never held in a batch.
type batchConn struct {
	net.Conn
	closing atomic.Bool

	mu       sync.Mutex
	batching bool
	deadline time.Time
	buf      *[]byte
	flushes  int // system calls of batches, for tests
}

func (b *batchConn) Write(p []byte) (int, error) {
	if b.closing.Load() {
		return b.Conn.Write(p)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.batching {
		return b.Conn.Write(p)
	}
	if len(*b.buf) > 0 && len(*b.buf)+len(p) > batchMax {
		if err := b.writeOutLocked(); err != nil {
			return 0, err
		}
	}
	*b.buf = append(*b.buf, p...)
	return len(p), nil
}

// SetWriteDeadline sets the deadline of the next batch write while batching, and of the connection
// otherwise.
func (b *batchConn) SetWriteDeadline(t time.Time) error {
	if !b.closing.Load() {
		b.mu.Lock()
		if b.batching {
			b.deadline = t
			b.mu.Unlock()
			return nil
		}
		b.mu.Unlock()
	}
	return b.Conn.SetWriteDeadline(t)
}

// writeOutLocked writes the batch gathered so far.
func (b *batchConn) writeOutLocked() error {
	if len(*b.buf) == 0 {
		return nil
	}
	if err := b.Conn.SetWriteDeadline(b.deadline); err != nil {
		return err
	}
	// abandon sets closing, then its own short deadline: when closing is still false here, that deadline
	// comes after ours and bounds this write.
	if b.closing.Load() {
		return errConnClosing
	}
	_, err := b.Conn.Write(*b.buf)
	*b.buf = (*b.buf)[:0]
	b.flushes++
	return err
}

// begin starts a batch.
func (b *batchConn) begin() {
	b.mu.Lock()
	b.batching = true
	if b.buf == nil {
		b.buf = batchPool.Get().(*[]byte)
		*b.buf = (*b.buf)[:0]
	}
	b.mu.Unlock()
}

// flush ends the batch and writes it.
func (b *batchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.batching {
		return nil
	}
	b.batching = false
	err := b.writeOutLocked()
	if cap(*b.buf) <= 4*batchMax {
		batchPool.Put(b.buf)
	}
	b.buf = nil
	return err
}

// abandon makes every later write go straight through and bounds any write in progress by d.
func (b *batchConn) abandon(d time.Time) {
	b.closing.Store(true)
	_ = b.Conn.SetWriteDeadline(d)
}

// batchFlushes returns the number of batch writes so far.
func (b *batchConn) batchFlushes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushes
}

// hijacker makes the upgrader's Hijack return a batchConn, and a read buffer of the server's
// ReadBufferSize that the upgrader keeps as the connection's (the upgrader's ReadBufferSize is 0, so it
// reuses the hijacked reader): the transport can then tell whether a message is already buffered. Both
// are fields of the transport t, so that a connection's transport, writer and reader are one allocation.
//
// The buffer is one that a parked connection gave back to the server's pool, or else the HTTP server's
// own reader's when it has the right size. The HTTP server never gets a hijacked connection's reader back,
// so a new buffer per connection would be garbage, and buffers of parked connections would pile up in
// the pool while every new connection brought its own.
type hijacker struct {
	http.ResponseWriter
	srv *Server
	t   *wsTransport
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	t := h.t
	t.bc = batchConn{Conn: conn}
	if brw.Reader.Buffered() > 0 {
		// The client sent data before the handshake completed: the upgrader refuses it.
		return &t.bc, brw, nil
	}
	t.acquireReadBuffer(h.srv, brw.Reader) // the HTTP server never reads its reader again
	return &t.bc, bufio.NewReadWriter(&t.br, brw.Writer), nil
}
