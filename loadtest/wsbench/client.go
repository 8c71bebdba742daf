package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The load generator speaks Socket.IO v5 over Engine.IO v4 on a WebSocket (no polling, no upgrade) and
// understands only what the benchmark needs: the Engine.IO open packet and heartbeat, CONNECT to the
// namespace, event and ack packets in text, and the binary attachments that follow BINARY_EVENT and
// BINARY_ACK headers (skipped). It is written to hold many connections cheaply: one reading goroutine per
// connection, a pooled write buffer, and no per-message allocation for the broadcast ticks it counts.

const (
	namespace    = "/bench"
	joinAckID    = 0
	handshakeMax = 10 * time.Second
	writeTimeout = 30 * time.Second
)

var (
	prefixEvent   = []byte("42" + namespace + ",")
	prefixAck     = []byte("43" + namespace + ",")
	prefixConnect = []byte("40" + namespace + ",")
	prefixTick    = []byte("42" + namespace + `,["tick",`)
	seqKey        = []byte(`"seq":`)
)

// errProtocol reports a packet the load generator did not expect.
var errProtocol = errors.New("wsbench: unexpected packet")

// openPacket is the Engine.IO handshake.
type openPacket struct {
	SID          string `json:"sid"`
	PingInterval int64  `json:"pingInterval"`
	PingTimeout  int64  `json:"pingTimeout"`
}

// client is one Socket.IO connection to the namespace.
type client struct {
	idx int
	ws  *websocket.Conn
	run *loadRun

	wmu sync.Mutex // serializes writes: pongs (reader) and chunks (sender)

	pings  atomic.Int32
	got    atomic.Int32 // ticks of the current broadcast round
	closed atomic.Bool
	err    atomic.Pointer[error]

	// Chunk sending: window holds one token per chunk awaiting its ack.
	window chan struct{}
	nextID uint64 // sender goroutine only
}

func (c *client) fail(err error) {
	c.err.CompareAndSwap(nil, &err)
}

// Err returns the first error the connection saw, if any.
func (c *client) Err() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *client) write(typ int, data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteMessage(typ, data)
}

// readMessage reads the next message into buf, reusing its storage.
func readMessage(ws *websocket.Conn, buf []byte) (int, []byte, error) {
	typ, r, err := ws.NextReader()
	if err != nil {
		return 0, buf, err
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return typ, buf, nil
		}
		if err != nil {
			return typ, buf, err
		}
	}
}

// dial opens the Engine.IO session, connects the namespace and joins room; it returns once the join is
// acknowledged. The caller starts the reading loop.
func dial(ctx context.Context, d *websocket.Dialer, wsURL string, room string, idx int, lr *loadRun) (*client, *openPacket, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeMax)
	defer cancel()
	ws, resp, err := d.DialContext(ctx, wsURL, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, nil, err
	}
	c := &client{idx: idx, ws: ws, run: lr}
	deadline, _ := ctx.Deadline()
	_ = ws.SetReadDeadline(deadline)
	buf := make([]byte, 0, 512)

	// Engine.IO open packet.
	typ, buf, err := readMessage(ws, buf)
	if err != nil {
		_ = ws.Close()
		return nil, nil, err
	}
	if typ != websocket.TextMessage || len(buf) == 0 || buf[0] != '0' {
		_ = ws.Close()
		return nil, nil, fmt.Errorf("%w: want the open packet, got %q", errProtocol, truncate(buf))
	}
	var open openPacket
	if err := json.Unmarshal(buf[1:], &open); err != nil {
		_ = ws.Close()
		return nil, nil, fmt.Errorf("%w: open packet: %v", errProtocol, err)
	}

	// Namespace CONNECT, then the join with ack id 0.
	if err := c.write(websocket.TextMessage, []byte("40"+namespace+",")); err != nil {
		_ = ws.Close()
		return nil, nil, err
	}
	join, _ := json.Marshal([]any{"join", map[string]string{"room": room}})
	joinSent := false
	for {
		typ, buf, err = readMessage(ws, buf)
		if err != nil {
			_ = ws.Close()
			return nil, nil, err
		}
		switch {
		case typ != websocket.TextMessage:
			continue
		case len(buf) == 1 && buf[0] == '2':
			c.pings.Add(1)
			if err := c.write(websocket.TextMessage, []byte("3")); err != nil {
				_ = ws.Close()
				return nil, nil, err
			}
		case bytes.HasPrefix(buf, prefixConnect) && !joinSent:
			msg := append([]byte("42"+namespace+","+strconv.Itoa(joinAckID)), join...)
			if err := c.write(websocket.TextMessage, msg); err != nil {
				_ = ws.Close()
				return nil, nil, err
			}
			joinSent = true
		case bytes.HasPrefix(buf, prefixAck) && joinSent:
			rest := buf[len(prefixAck):]
			if !bytes.HasPrefix(rest, []byte(strconv.Itoa(joinAckID)+"[")) || !bytes.Contains(rest, []byte(`"ok":true`)) {
				_ = ws.Close()
				return nil, nil, fmt.Errorf("%w: join refused: %q", errProtocol, truncate(buf))
			}
			_ = ws.SetReadDeadline(time.Time{})
			c.nextID = joinAckID + 1
			return c, &open, nil
		default:
			_ = ws.Close()
			return nil, nil, fmt.Errorf("%w: while connecting: %q", errProtocol, truncate(buf))
		}
	}
}

func truncate(b []byte) []byte {
	if len(b) > 120 {
		return b[:120]
	}
	return b
}

// readLoop handles the connection's messages until it closes.
func (c *client) readLoop() {
	defer c.closed.Store(true)
	buf := make([]byte, 0, 512)
	attachments := 0 // binary frames still expected after a BINARY_EVENT/BINARY_ACK header
	for {
		typ, msg, err := readMessage(c.ws, buf)
		buf = msg
		if err != nil {
			if !c.run.closing.Load() {
				c.fail(fmt.Errorf("connection %d closed: %w", c.idx, err))
			}
			return
		}
		if typ == websocket.BinaryMessage {
			if attachments == 0 {
				c.fail(fmt.Errorf("%w: binary message without a binary packet header", errProtocol))
				continue
			}
			attachments--
			continue
		}
		if len(msg) == 0 {
			c.fail(fmt.Errorf("%w: empty message", errProtocol))
			continue
		}
		switch msg[0] {
		case '2': // Engine.IO ping
			c.pings.Add(1)
			if err := c.write(websocket.TextMessage, []byte("3")); err != nil {
				c.fail(err)
			}
			continue
		case '1': // Engine.IO close
			c.fail(fmt.Errorf("connection %d: server closed the session", c.idx))
			_ = c.ws.Close()
			return
		case '6': // noop
			continue
		case '4': // Socket.IO packet, below
		default:
			c.fail(fmt.Errorf("%w: %q", errProtocol, truncate(msg)))
			continue
		}
		switch {
		case bytes.HasPrefix(msg, prefixTick):
			c.onTick(msg[len(prefixTick):])
		case bytes.HasPrefix(msg, prefixAck):
			c.onAck()
		case bytes.HasPrefix(msg, []byte("45")) || bytes.HasPrefix(msg, []byte("46")):
			n, ok := attachmentCount(msg[2:])
			if !ok {
				c.fail(fmt.Errorf("%w: bad binary header %q", errProtocol, truncate(msg)))
				continue
			}
			attachments += n
			if msg[1] == '6' {
				c.onAck()
			}
		case bytes.HasPrefix(msg, prefixEvent):
			// Another event: not part of the benchmark, ignored.
		default:
			// DISCONNECT, CONNECT_ERROR or a packet of another namespace.
			c.fail(fmt.Errorf("%w: %q", errProtocol, truncate(msg)))
		}
	}
}

// attachmentCount parses the "<n>-" of a binary packet header.
func attachmentCount(b []byte) (int, bool) {
	i := bytes.IndexByte(b, '-')
	if i <= 0 || i > 6 {
		return 0, false
	}
	n, err := strconv.Atoi(string(b[:i]))
	return n, err == nil && n >= 0
}

// onTick counts a broadcast tick: its seq must belong to the current round and not have been seen by
// this connection before.
func (c *client) onTick(body []byte) {
	r := c.run.round.Load()
	i := bytes.Index(body, seqKey)
	if r == nil || i < 0 {
		c.run.strayTicks.Add(1)
		return
	}
	seq, ok := parseInt(body[i+len(seqKey):])
	if !ok || seq < r.from || seq >= r.from+int64(r.count) {
		c.run.strayTicks.Add(1)
		return
	}
	bit := seq - r.from
	row := r.seen[c.idx]
	if row[bit/64]&(1<<(bit%64)) != 0 {
		r.duplicates.Add(1)
		return
	}
	row[bit/64] |= 1 << (bit % 64)
	c.got.Add(1)
	if r.received.Add(1) == r.expected {
		r.last.Store(time.Now().UnixNano())
		close(r.done)
	}
}

// parseInt parses the leading decimal digits of b.
func parseInt(b []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9' && i < 18; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	return n, i > 0
}

// onAck handles a chunk acknowledgement (the join's was consumed by dial).
func (c *client) onAck() {
	if c.window == nil {
		c.fail(fmt.Errorf("%w: unsolicited ack", errProtocol))
		return
	}
	select {
	case <-c.window:
		c.run.chunksAcked.Add(1)
	default:
		c.fail(fmt.Errorf("%w: ack without a chunk in flight", errProtocol))
	}
}

// sendChunks sends chunk events (each a BINARY_EVENT header and one attachment) with ack ids, keeping at
// most cap(c.window) unacknowledged, until stop is closed.
func (c *client) sendChunks(stop <-chan struct{}, chunk *websocket.PreparedMessage, groupID string) {
	header := make([]byte, 0, 128)
	for {
		select {
		case <-stop:
			return
		case c.window <- struct{}{}:
		}
		header = header[:0]
		header = append(header, "451-"+namespace+","...)
		header = strconv.AppendUint(header, c.nextID, 10)
		header = append(header, `["chunk",{"groupId":"`...)
		header = append(header, groupID...)
		header = append(header, `","audioData":{"_placeholder":true,"num":0}}]`...)
		c.nextID++
		c.wmu.Lock()
		_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
		err := c.ws.WriteMessage(websocket.TextMessage, header)
		if err == nil {
			err = c.ws.WritePreparedMessage(chunk)
		}
		c.wmu.Unlock()
		if err != nil {
			c.fail(fmt.Errorf("connection %d: sending a chunk: %w", c.idx, err))
			<-c.window
			return
		}
		c.run.chunksSent.Add(1)
	}
}

// newDialer returns the WebSocket dialer of the load generator: small buffers, a shared write buffer
// pool, no compression.
func newDialer() *websocket.Dialer {
	return &websocket.Dialer{
		NetDialContext:   (&net.Dialer{Timeout: handshakeMax}).DialContext,
		HandshakeTimeout: handshakeMax,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		WriteBufferPool:  &sync.Pool{},
	}
}

// socketURL returns the WebSocket URL of the Socket.IO endpoint at base (http://host:port).
func socketURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Scheme = "ws"
	u.Path = "/socket.io/"
	u.RawQuery = "EIO=4&transport=websocket"
	return u.String(), nil
}
