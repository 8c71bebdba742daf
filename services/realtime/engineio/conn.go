package engineio

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

// Errors returned by Conn.Send.
var (
	// ErrClosed reports a send on a session that is closed or closing.
	ErrClosed = errors.New("engineio: session closed")
	// ErrQueueFull reports a send that overflowed the session's write queue; the session is being closed.
	ErrQueueFull = errors.New("engineio: write queue full, session closed")
)

type connState uint8

const (
	stateOpen    connState = iota
	stateClosing           // Close was called: queued packets are flushed, then the session ends
	stateClosed
)

// Conn is one Engine.IO session. Its methods are safe for concurrent use. Its small fields come last,
// packed: an idle server holds one Conn per connection, and 256 bytes is a smaller size class than the
// 288 the fields took in declaration order.
type Conn struct {
	srv *Server
	id  string
	req Request

	deliverMu sync.Mutex // serializes HandleMessage calls

	mu          sync.Mutex
	handler     Handler
	closeReason string
	transport   string
	ws          *wsTransport // the WebSocket transport, once upgraded (or from the handshake)
	probe       *wsTransport // a WebSocket being upgraded to
	queue       []Packet
	queueBytes  int
	closeTimer  *time.Timer
	probeTimer  *time.Timer

	// The heartbeat deadline, kept by the server's heartbeats (see there for the locking): when the next
	// ping is due or, with hbPong, when the pong for the last one must have come.
	hbDue   time.Duration // monotonic
	hbIndex int32         // in the heartbeats' heap, plus one; 0: none
	hbGen   uint32        // changes with each deadline, so that one already taken by fire can be told void

	notify chan struct{} // wakes the pending poll (nil for a session that started on WebSocket)
	done   Done          // closed when the session is closed

	// borrowBinary: the handler is a BorrowingHandler that borrows binary messages. Set before the
	// session's transports read, never changed.
	borrowBinary bool

	// Guarded by mu, except hbPong (see the heartbeat deadline above).
	state      connState
	probed     bool // the probe was answered: polls get a noop so that the client can pause
	pollActive bool
	postActive bool
	writerOn   bool // the WebSocket writer goroutine is running
	hbPong     bool
}

func newConn(s *Server, r *http.Request, transport string, ws *wsTransport) *Conn {
	c := &Conn{
		srv:       s,
		id:        newSID(),
		req:       requestOf(r),
		transport: transport,
		ws:        ws,
	}
	if transport == TransportPolling {
		// Only polls wait on notify; a session that starts on WebSocket never has one pending.
		c.notify = make(chan struct{}, 1)
	}
	return c
}

// ID returns the session id (the sid query parameter).
func (c *Conn) ID() string { return c.id }

// Request returns what the session kept of its handshake request: headers, query parameters, host and
// remote address.
func (c *Conn) Request() *Request { return &c.req }

// Context returns a context that is canceled when the session is closed.
func (c *Conn) Context() context.Context { return c.done.Context() }

// Done returns a channel that is closed when the session is closed.
func (c *Conn) Done() <-chan struct{} { return c.done.Chan() }

// Transport returns the name of the session's current transport.
func (c *Conn) Transport() string { return c.currentTransport() }

// Queued returns the number of packets waiting in the session's write queue.
func (c *Conn) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// PollPending reports whether a polling GET is waiting for packets (for diagnostics and tests).
func (c *Conn) PollPending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pollActive
}

func (c *Conn) currentTransport() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transport
}

// wakeLocked tells the queue's consumer that the queue or the state changed: it starts the WebSocket
// writer, or wakes the pending poll.
func (c *Conn) wakeLocked() {
	if c.ws != nil {
		c.startWriterLocked()
		return
	}
	c.signal()
}

// signal wakes the pending poll, if any.
func (c *Conn) signal() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func messagesSize(msgs []Message) int {
	n := 0
	for _, m := range msgs {
		n += len(m.Data)
	}
	return n
}

func (c *Conn) appendLocked(msgs []Message) {
	for _, m := range msgs {
		c.queue = append(c.queue, Packet{Type: PacketMessage, Data: m.Data, Binary: m.Binary})
	}
	c.queueBytes += messagesSize(msgs)
	c.wakeLocked()
}

// Send queues msgs, in order and contiguously, for the client. It never blocks on the network. It
// returns ErrClosed when the session is closed or closing, and ErrQueueFull when the queue would pass
// its hard limit, in which case the session is closed (asynchronously, reason "transport error").
func (c *Conn) Send(msgs ...Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen {
		return ErrClosed
	}
	if len(c.queue)+len(msgs) > c.srv.cfg.WriteQueueHardLimit ||
		c.queueBytes+messagesSize(msgs) > c.srv.cfg.WriteQueueMaxBytes {
		c.failLocked(ReasonTransportError)
		return ErrQueueFull
	}
	c.appendLocked(msgs)
	return nil
}

// SendVolatile queues msgs like Send, unless the session is not writable: closed, or with
// WriteQueueSoftLimit packets or more already waiting. It reports whether msgs were queued; dropped
// messages are not an error.
func (c *Conn) SendVolatile(msgs ...Message) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen || len(c.queue)+len(msgs) > c.srv.cfg.WriteQueueSoftLimit ||
		c.queueBytes+messagesSize(msgs) > c.srv.cfg.WriteQueueMaxBytes {
		return false
	}
	c.appendLocked(msgs)
	return true
}

// Close closes the session gracefully: packets already queued are sent, then the transport is closed
// (over polling, with a close packet in the next poll). The Handler's HandleClose is called with reason
// "forced close" once done; Close itself never calls it.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen {
		return nil
	}
	c.state = stateClosing
	c.closeReason = ReasonForcedClose
	c.srv.hb.cancel(c)
	if c.transport == TransportPolling {
		c.queue = append(c.queue, Packet{Type: PacketClose})
	}
	// Whatever happens to the transport, the session ends after a bounded time.
	c.closeTimer = time.AfterFunc(c.srv.cfg.PingInterval+c.srv.cfg.PingTimeout, func() {
		c.finalize(ReasonForcedClose)
	})
	c.wakeLocked()
	return nil
}

// failLocked closes the session abruptly but asynchronously, so that it is safe under any lock of the
// caller's: the queue is dropped and later sends fail at once.
func (c *Conn) failLocked(reason string) {
	if c.state != stateOpen {
		return
	}
	c.state = stateClosing
	c.closeReason = reason
	clear(c.queue)
	c.queue = c.queue[:0]
	c.queueBytes = 0
	stopTimer(&c.closeTimer)
	c.closeTimer = time.AfterFunc(0, func() { c.finalize(reason) })
}

func stopTimer(t **time.Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}

// finalize ends the session: it stops the timers, closes the transports, removes the session from the
// server and calls the handler's HandleClose, once.
func (c *Conn) finalize(reason string) {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	if c.state == stateClosing {
		reason = c.closeReason
	}
	c.state = stateClosed
	c.closeReason = reason
	c.srv.hb.cancel(c)
	stopTimer(&c.closeTimer)
	stopTimer(&c.probeTimer)
	ws, probe := c.ws, c.probe
	c.probe = nil
	clear(c.queue)
	c.queue = nil
	c.queueBytes = 0
	h := c.handler
	c.done.Close()
	c.mu.Unlock()

	if ws != nil {
		ws.close()
	}
	if probe != nil {
		probe.close()
	}
	c.srv.remove(c)
	c.srv.log.Debug("engineio: session closed", "sid", c.id, "reason", reason)
	if h != nil {
		h.HandleClose(reason)
	}
}

// schedulePingLocked sets the session's heartbeat deadline to its next ping.
func (c *Conn) schedulePingLocked() {
	c.srv.hb.schedule(c, c.srv.cfg.PingInterval, false)
}

// heartbeat handles the session's heartbeat deadline numbered gen, which passed: the server's
// heartbeats call it, unless the deadline changed since (a pong came, or the session closed). A ping's
// queues a ping and sets the pong's deadline; heartbeats bypass the queue limits, as a client too slow
// to read them is closed when a pong's passes.
func (c *Conn) heartbeat(gen uint32) {
	c.mu.Lock()
	if c.state != stateOpen || c.hbGen != gen {
		c.mu.Unlock()
		return
	}
	if c.hbPong {
		c.mu.Unlock()
		// On a goroutine of its own, as a timer's function ran: finalize calls the handler, which must not
		// hold up the other sessions' heartbeats.
		go c.finalize(ReasonPingTimeout)
		return
	}
	c.queue = append(c.queue, Packet{Type: PacketPing})
	c.wakeLocked()
	c.srv.hb.schedule(c, c.srv.cfg.PingTimeout, true)
	c.mu.Unlock()
}

func (c *Conn) pong() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen || !c.hbPong {
		return // no ping outstanding: ignore the unsolicited pong
	}
	c.schedulePingLocked()
}

// onPacket handles a packet received on the session's current transport. It reports whether the session
// is still open. borrowed: p is a binary message whose Data is lent to the handler (Message.Borrowed).
func (c *Conn) onPacket(p Packet, borrowed bool) bool {
	switch p.Type {
	case PacketPong:
		c.pong()
	case PacketMessage:
		c.deliver(Message{Data: p.Data, Binary: p.Binary, Borrowed: borrowed})
	case PacketClose:
		c.finalize(ReasonTransportClose)
		return false
	case PacketPing:
		// In protocol v4 only the server pings (outside of an upgrade probe), as in the reference server.
		c.finalize(ReasonTransportError)
		return false
	default:
		// open, upgrade and noop carry nothing for an established transport.
	}
	return !c.isClosed()
}

func (c *Conn) isClosed() bool {
	return c.done.Closed()
}

func (c *Conn) deliver(m Message) {
	c.deliverMu.Lock()
	defer c.deliverMu.Unlock()
	c.mu.Lock()
	h, closed := c.handler, c.state == stateClosed
	c.mu.Unlock()
	if h != nil && !closed {
		h.HandleMessage(m)
	}
}
