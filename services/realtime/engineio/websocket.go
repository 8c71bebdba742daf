package engineio

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// wsTransport is one WebSocket connection. Only the session's writer goroutine writes data frames (the
// reader answers the upgrade probe before the writer starts); close may be called from anywhere.
type wsTransport struct {
	conn      *websocket.Conn
	bc        batchConn    // conn's net.Conn
	br        bufio.Reader // conn's read buffer (conn holds &br)
	rc        syscall.RawConn
	poller    *poller       // the server's idle-connection poller; nil: t keeps a reading goroutine
	pw        watch         // t's registration with poller
	session   *Conn         // the session t was parked for, which resume reads for
	lastRead  time.Duration // when the last message was read (monotonic); see streaming
	streak    uint8         // messages in a row that came less than ReadLinger apart, up to streamingAfter
	closeOnce sync.Once
}

// close sends a normal-closure frame, without waiting long for it, and closes the connection.
func (t *wsTransport) close() {
	t.closeOnce.Do(func() {
		if t.poller != nil {
			t.poller.forget(&t.pw, t.rc)
		}
		deadline := time.Now().Add(100 * time.Millisecond)
		t.bc.abandon(deadline)
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		_ = t.conn.WriteControl(websocket.CloseMessage, msg, deadline)
		_ = t.conn.Close()
	})
}

// serveWebSocket upgrades r and starts serving the connection: a new WebSocket session when c is nil,
// otherwise an upgrade of session c from polling. It returns once the connection is upgraded: the
// connection's reader runs on a goroutine of its own (tracked by the server's wait group), so that the
// HTTP server's buffers and the handler's stack are released while the connection lives.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, c *Conn) {
	if !s.track() {
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	handedOff := false
	defer func() {
		if !handedOff {
			s.wg.Done()
		}
	}()
	t := new(wsTransport)
	conn, err := s.upgrader.Upgrade(&hijacker{ResponseWriter: w, srv: s, t: t}, r, nil)
	if err != nil {
		return // the upgrader answered the request
	}
	conn.SetReadLimit(int64(s.cfg.MaxPayload))
	t.conn = conn
	if s.poller != nil {
		if sc, ok := t.bc.Conn.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				t.rc, t.poller = rc, s.poller
			}
		}
	}
	// read runs the read loop on its own goroutine, which takes over this call's wait group count.
	read := func(probing bool) {
		handedOff = true
		go func() {
			defer s.wg.Done()
			c.readLoop(t, probing)
		}()
	}

	if c == nil {
		c = s.start(r, TransportWebSocket, t)
		if c == nil {
			t.close()
			return
		}
		c.mu.Lock()
		c.queue = append([]Packet{s.openPacket(c.id, []string{})}, c.queue...)
		c.schedulePingLocked()
		started := c.startWriterLocked()
		c.mu.Unlock()
		if !started {
			t.close()
			return
		}
		read(false)
		return
	}

	// An upgrade: the reference server accepts the WebSocket and closes it at once when the session
	// cannot be upgraded (already upgraded, upgrading, or closing).
	c.mu.Lock()
	if c.state != stateOpen || c.transport != TransportPolling || c.probe != nil {
		c.mu.Unlock()
		t.close()
		return
	}
	c.probe = t
	c.probeTimer = time.AfterFunc(s.cfg.UpgradeTimeout, func() { c.dropProbe(t) })
	c.mu.Unlock()
	read(true)
}

// startWriterLocked makes sure that the writer goroutine of the session's WebSocket runs, unless the
// server is closing. The writer runs only while there is something to do: it exits when the queue is
// empty, and whoever queues a packet or closes the session starts it again.
func (c *Conn) startWriterLocked() bool {
	if c.writerOn {
		return true
	}
	if c.ws == nil || c.state == stateClosed || !c.srv.track() {
		return false
	}
	c.writerOn = true
	go c.writeLoop(c.ws)
	return true
}

// dropProbe abandons the upgrade to t, if it is still in progress, and closes t.
func (c *Conn) dropProbe(t *wsTransport) {
	c.mu.Lock()
	if c.probe == t {
		c.probe = nil
		c.probed = false
		stopTimer(&c.probeTimer)
	}
	c.mu.Unlock()
	t.close()
}

// completeUpgrade makes t the session's transport. It reports false when the upgrade no longer applies.
func (c *Conn) completeUpgrade(t *wsTransport) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen || c.probe != t {
		return false
	}
	stopTimer(&c.probeTimer)
	c.probe = nil
	c.probed = false
	c.transport = TransportWebSocket
	c.ws = t
	if !c.startWriterLocked() {
		c.ws = nil
		return false
	}
	return true
}

// readLoop reads t until it fails or parks. While probing, t is a WebSocket being upgraded to: only the
// probe ping and the upgrade packet are allowed on it.
//
// Once an established transport has handled a message and its read buffer is empty, it parks on the
// server's poller instead of waiting in a read: this goroutine ends, and the poller starts readLoop again
// when the socket becomes readable. An idle connection then holds no goroutine.
func (c *Conn) readLoop(t *wsTransport, probing bool) {
	for {
		// Binary messages are lent to a handler that borrows them, once the transport is established:
		// a probe delivers nothing.
		typ, data, lent, err := t.readMessage(c.borrowBinary && !probing)
		if err != nil {
			if probing {
				c.dropProbe(t)
				return
			}
			reason := ReasonTransportClose
			if errors.Is(err, websocket.ErrReadLimit) {
				reason = ReasonTransportError
			}
			c.finalize(reason)
			return
		}
		var p Packet
		if typ == websocket.BinaryMessage {
			p = Packet{Type: PacketMessage, Data: data, Binary: true}
		} else if p, err = DecodePacket(data); err != nil {
			if probing {
				c.dropProbe(t)
			} else {
				c.finalize(ReasonParseError)
			}
			return
		}
		if !probing {
			open := c.onPacket(p, lent != nil)
			if lent != nil {
				putScratch(lent) // the handler has returned: the message's buffer is no longer lent
			}
			if !open {
				return
			}
			if t.poller != nil && t.br.Buffered() == 0 && !(t.streaming(c.srv.cfg.ReadLinger) && t.linger(c.srv.cfg.ReadLinger)) && t.park(c) {
				return
			}
			continue
		}
		switch {
		case p.Type == PacketPing && string(p.Data) == "probe":
			// The writer goroutine is not running yet for t: this goroutine is its only writer.
			_ = t.conn.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
			if err := t.conn.WriteMessage(websocket.TextMessage, []byte("3probe")); err != nil {
				c.dropProbe(t)
				return
			}
			c.mu.Lock()
			if c.probe == t {
				c.probed = true
				c.signal() // release a pending poll with a noop
			}
			c.mu.Unlock()
		case p.Type == PacketUpgrade:
			if !c.completeUpgrade(t) {
				c.dropProbe(t)
				return
			}
			probing = false
		default:
			c.dropProbe(t)
			return
		}
	}
}

// streamingAfter is how many messages in a row, each less than ReadLinger after the one before, make a
// connection one that streams.
const streamingAfter = 3

// streaming records that a message was just read and reports whether the connection streams: its last
// streamingAfter messages came less than d apart. Only such a connection lingers; one that sends now
// and then (a pong each ping interval, an event, the few packets that set a connection up) parks at once.
// When ten thousand clients connected at once, each reader lingered after its setup packets: about a
// thousand readers with their read buffers were waiting at any time, and the collector, which lets the
// heap grow to twice what it finds live, kept twice their size for as long as the server ran.
func (t *wsTransport) streaming(d time.Duration) bool {
	now := monotonic()
	if t.lastRead != 0 && now-t.lastRead < d {
		t.streak = min(t.streak+1, streamingAfter)
	} else {
		t.streak = 0
	}
	t.lastRead = now
	return t.streak >= streamingAfter
}

// linger waits up to d for t's next data on the calling goroutine, and reports whether some arrived (or
// the connection failed: the next read reports it). A connection that streams (audio chunks every 100 ms)
// keeps its goroutine and skips the poller's round trip; one that falls quiet parks after d.
func (t *wsTransport) linger(d time.Duration) bool {
	if d <= 0 {
		return false
	}
	if t.bc.SetReadDeadline(time.Now().Add(d)) != nil {
		return true
	}
	_, err := t.br.Peek(1)
	if t.bc.SetReadDeadline(time.Time{}) != nil {
		return true
	}
	return err == nil || !errors.Is(err, os.ErrDeadlineExceeded)
}

// park hands t to the poller. It reports false when t could not be parked (the caller keeps reading).
// On true, the calling goroutine must leave t alone and return: the goroutine the poller starts when the
// socket becomes readable (with a wait group count of its own) reads it from then on. A parked transport
// holds no read buffer either: its (empty) buffer goes back to the server's pool until it resumes.
func (t *wsTransport) park(c *Conn) bool {
	if c.isClosed() {
		return false // the read fails at once and ends the loop
	}
	t.session = c
	t.releaseReadBuffer(c.srv)
	if err := t.poller.park(&t.pw, t.rc, t); err != nil {
		t.acquireReadBuffer(c.srv, nil)
		return false
	}
	return true
}

// resumer resumes reading a connection that was parked on the poller.
type resumer interface{ resume() }

// resume reads t again, once the poller saw its socket readable: t is the poller's resumer, rather than a
// closure made at every park that each parked connection kept.
func (t *wsTransport) resume() {
	c := t.session
	if !c.srv.track() {
		return // the server is closing and closes t
	}
	defer c.srv.wg.Done()
	t.acquireReadBuffer(c.srv, nil)
	c.readLoop(t, false)
}

// messageScratch holds the buffers messages are read into. Every buffer in it is zeroed.
var messageScratch = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// maxScratch is the largest scratch buffer kept for reuse: a bigger message's buffer is left to the
// collector.
const maxScratch = 64 << 10

// readMessage reads the next data message, like gorilla's ReadMessage, into a pooled scratch buffer.
// ReadMessage (io.ReadAll) starts from 512 bytes and grows: a 3 KB audio chunk cost about twice its size
// in garbage, and at a thousand streaming groups that garbage set how often the collector ran. The read
// limit still applies (websocket.ErrReadLimit).
//
// The message is returned in one allocation of its size, copied from the scratch buffer, except a
// binary message read with lend set: it is returned in the scratch buffer itself, and lent points to
// that buffer, which the caller must give back with putScratch once nothing uses the message any more.
// Lending saves the copy, the whole garbage of a binary message.
func (t *wsTransport) readMessage(lend bool) (typ int, data []byte, lent *[]byte, err error) {
	var r io.Reader
	if typ, r, err = t.conn.NextReader(); err != nil {
		return typ, nil, nil, err
	}
	sp := messageScratch.Get().(*[]byte)
	buf := (*sp)[:0]
	for {
		if len(buf) == cap(buf) {
			grown := append(buf, 0)[:len(buf)]
			clear(buf) // the outgrown buffer holds the start of the message
			buf = grown
		}
		var n int
		n, err = r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			break
		}
	}
	*sp = buf
	if err != io.EOF {
		putScratch(sp)
		return typ, nil, nil, err
	}
	if lend && typ == websocket.BinaryMessage {
		return typ, buf, sp, nil
	}
	data = make([]byte, len(buf))
	copy(data, buf)
	putScratch(sp)
	return typ, data, nil, nil
}

// putScratch zeroes the scratch buffer *sp, so that no copy of a client's data (audio) stays behind,
// and returns it to the pool unless it is bigger than maxScratch.
func putScratch(sp *[]byte) {
	buf := *sp
	clear(buf)
	if cap(buf) > maxScratch {
		return
	}
	*sp = buf[:0]
	messageScratch.Put(sp)
}

// readerShells holds bufio.Reader values without a buffer, so that swapping buffers in and out of a
// transport's reader allocates nothing.
var readerShells = sync.Pool{New: func() any { return new(bufio.Reader) }}

// releaseReadBuffer moves t's empty read buffer to the server's pool. The reader the WebSocket
// connection holds (t.br) is left without a buffer until acquireReadBuffer; nothing reads it meanwhile.
func (t *wsTransport) releaseReadBuffer(s *Server) {
	shell := readerShells.Get().(*bufio.Reader)
	*shell = t.br
	shell.Reset(nil)
	t.br = bufio.Reader{}
	s.readBuffers.Put(shell)
}

// acquireReadBuffer gives t's reader a buffer: one from the server's pool, or else spare's when it has
// the server's ReadBufferSize (spare is a reader nothing reads again, or nil), or else a new one.
func (t *wsTransport) acquireReadBuffer(s *Server, spare *bufio.Reader) {
	switch r, _ := s.readBuffers.Get().(*bufio.Reader); {
	case r != nil:
		t.br = *r
		*r = bufio.Reader{}
		readerShells.Put(r)
	case spare != nil && spare.Size() == s.cfg.ReadBufferSize:
		t.br = *spare
	default:
		t.br = *bufio.NewReaderSize(nil, s.cfg.ReadBufferSize)
	}
	t.br.Reset(&t.bc)
}

// writeLoop drains the session's queue to t, batch by batch, until the queue is empty or the session or t
// ends. All the packets queued when a batch starts are written with one system call (a batch over
// batchMax bytes with a few), under one write deadline.
//
// A writer starts when a packet is queued to an empty queue. Before its first batch it coalesces: it
// yields the processor, and keeps yielding until coalesceStill yields in a row bring no new packet (or
// coalescePackets are queued, or after coalesceYields yields). A sender in the middle of a burst (a
// broadcast emitting to many sessions, message after message) then queues more before the batch is
// taken, and on a busy server batches hold many packets rather than one. A lone packet costs
// coalesceStill yields.
func (c *Conn) writeLoop(t *wsTransport) {
	defer c.srv.wg.Done()
	c.coalesce()
	var batch []Packet
	for {
		c.mu.Lock()
		if c.ws != t && c.state != stateClosed {
			// Not (or no longer) this transport's turn; cannot happen today, but never write out of turn.
			c.writerOn = false
			c.mu.Unlock()
			return
		}
		batch, c.queue = c.queue, batch[:0]
		c.queueBytes = 0
		state := c.state
		if len(batch) == 0 && state != stateClosing {
			// Idle (or closed): the next Send, ping or Close starts a writer again.
			c.writerOn = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()

		if len(batch) == 0 { // closing, and everything queued was written
			t.close()
			c.finalize(ReasonForcedClose)
			return
		}
		if err := c.writeBatch(t, batch); err != nil {
			c.finalize(ReasonTransportError)
			return
		}
		clear(batch)
	}
}

const (
	coalescePackets = 64
	coalesceYields  = 32
	coalesceStill   = 2 // yields in a row without a new packet that end the coalescing
)

func (c *Conn) coalesce() {
	n, still := c.Queued(), 0
	for range coalesceYields {
		runtime.Gosched()
		m := c.Queued()
		if m >= coalescePackets {
			return
		}
		if m > n {
			n, still = m, 0
			continue
		}
		if still++; still == coalesceStill {
			return
		}
	}
}

// writeBatch writes batch to t with one system call (or a few, past batchMax bytes).
func (c *Conn) writeBatch(t *wsTransport, batch []Packet) error {
	if err := t.conn.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout)); err != nil {
		return err
	}
	t.bc.begin()
	for _, p := range batch {
		if err := writePacket(t, p); err != nil {
			_ = t.bc.flush()
			return err
		}
	}
	return t.bc.flush()
}

func writePacket(t *wsTransport, p Packet) error {
	if p.Binary {
		return t.conn.WriteMessage(websocket.BinaryMessage, p.Data)
	}
	w, err := t.conn.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte{'0' + byte(p.Type)}); err != nil {
		return err
	}
	if _, err := w.Write(p.Data); err != nil {
		return err
	}
	return w.Close()
}
