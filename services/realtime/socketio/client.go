package socketio

import (
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/classwaves/classwaves/services/realtime/engineio"
)

// client is the Socket.IO side of one Engine.IO session: it decodes packets and routes them to the
// session's sockets, one per namespace.
type client struct {
	srv  *Server
	conn *engineio.Conn
	dec  Decoder // used by HandleMessage only, which the engine serializes

	mu sync.Mutex
	// nsps are the client's namespaces, connected or connecting: a slice, as a client joins a namespace
	// or two (two maps cost an idle connection ~450 bytes, two slices ~60).
	nsps         []clientNS
	closed       bool
	broken       bool // a protocol error was seen: further packets are ignored
	connectTimer *time.Timer
}

// clientNS is one of a client's namespaces: its socket, or nil while the connection is in progress.
type clientNS struct {
	name string
	sock *Socket
}

var _ engineio.BorrowingHandler = (*client)(nil)

func (s *Server) onConnection(conn *engineio.Conn) engineio.Handler {
	c := &client{
		srv:  s,
		conn: conn,
		dec:  Decoder{MaxAttachments: s.cfg.MaxAttachments},
	}
	c.connectTimer = time.AfterFunc(s.cfg.ConnectTimeout, c.onConnectTimeout)
	return c
}

// onConnectTimeout closes a connection that joined no namespace in time.
func (c *client) onConnectTimeout() {
	c.mu.Lock()
	idle := !c.closed && len(c.nsps) == 0
	c.mu.Unlock()
	if idle {
		_ = c.conn.Close()
	}
}

// fail closes the connection after a protocol error.
func (c *client) fail(reason string, err error) {
	c.mu.Lock()
	c.broken = true
	c.mu.Unlock()
	c.srv.log.Debug("socketio: closing connection", "sid", c.conn.ID(), "reason", reason, "err", err)
	_ = c.conn.Close()
}

// HandleMessage implements engineio.Handler.
func (c *client) HandleMessage(m engineio.Message) {
	c.mu.Lock()
	broken := c.broken
	c.mu.Unlock()
	if broken {
		return
	}
	p, err := c.dec.Add(m)
	if err != nil {
		c.fail("parse error", err)
		return
	}
	if p != nil {
		c.dispatch(p)
	}
}

// BorrowsBinary implements engineio.BorrowingHandler: binary messages are attachments, which the
// decoder copies unless they complete a packet, and the socket copies unless the packet goes to an
// event handler set with OnBorrowed (Packet.own).
func (c *client) BorrowsBinary() bool { return true }

// dispatch routes a decoded packet, with the reference server's rules: a CONNECT for a namespace the
// client is not in starts a connection; any other packet needs a connected socket; anything else (a
// packet for a namespace not joined, a second CONNECT) closes the connection.
func (c *client) dispatch(p *Packet) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	sock := c.socketLocked(p.Namespace)
	switch {
	case sock == nil && p.Type == PacketConnect && c.connectingIndexLocked(p.Namespace) < 0:
		if c.connectTimer != nil {
			c.connectTimer.Stop()
			c.connectTimer = nil
		}
		ns := c.srv.namespace(p.Namespace)
		if ns == nil {
			c.mu.Unlock()
			c.sendConnectError(p.Namespace, &ConnectError{Message: "Invalid namespace"})
			return
		}
		c.nsps = append(c.nsps, clientNS{name: ns.name})
		c.mu.Unlock()
		c.connect(ns, p.Data)
	case sock != nil && p.Type != PacketConnect && p.Type != PacketConnectError:
		c.mu.Unlock()
		sock.onPacket(p)
	default:
		c.mu.Unlock()
		c.fail("invalid state", nil)
	}
}

// socketLocked returns the client's socket in namespace nsp, or nil; c.mu is held.
func (c *client) socketLocked(nsp string) *Socket {
	for _, n := range c.nsps {
		if n.sock != nil && n.name == nsp {
			return n.sock
		}
	}
	return nil
}

// connectingIndexLocked returns the index in c.nsps of namespace nsp's connection in progress, or -1;
// c.mu is held.
func (c *client) connectingIndexLocked(nsp string) int {
	return slices.IndexFunc(c.nsps, func(n clientNS) bool { return n.sock == nil && n.name == nsp })
}

// socketsLocked returns the client's connected sockets; c.mu is held.
func (c *client) socketsLocked() []*Socket {
	var socks []*Socket
	for _, n := range c.nsps {
		if n.sock != nil {
			socks = append(socks, n.sock)
		}
	}
	return socks
}

func (c *client) sendConnectError(nsp string, err error) {
	ce, ok := err.(*ConnectError)
	if !ok {
		ce = &ConnectError{Message: err.Error()}
	}
	body := struct {
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}{ce.Message, ce.Data}
	data, mErr := json.Marshal(body)
	if mErr != nil {
		data, _ = json.Marshal(struct {
			Message string `json:"message"`
		}{ce.Message})
	}
	p := &Packet{Type: PacketConnectError, Namespace: nsp, Data: data}
	_ = c.conn.Send(p.Messages()...)
}

// connect runs the namespace's middlewares (in a goroutine of its own when there are any, so that the
// connection keeps reading, heartbeats included) and then completes the connection.
func (c *client) connect(ns *Namespace, auth json.RawMessage) {
	sock := newSocket(ns, c, auth)
	restored := false
	if ns.srv.cfg.Recovery.Enabled {
		restored = ns.restore(sock)
	}
	mws := ns.middlewareList()
	if len(mws) == 0 || (restored && ns.srv.cfg.Recovery.SkipMiddlewares) {
		c.finishConnect(sock)
		return
	}
	if !c.srv.track() {
		c.abortConnect(sock)
		return
	}
	go func() {
		defer c.srv.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				c.srv.log.Error("socketio: connect middleware panicked", "namespace", ns.name, "panic", r)
				c.refuseConnect(sock, &ConnectError{Message: "Internal error"})
			}
		}()
		for _, mw := range mws {
			if err := mw(c.conn.Context(), sock); err != nil {
				c.refuseConnect(sock, err)
				return
			}
		}
		c.finishConnect(sock)
	}()
}

// abortConnect undoes a connection in progress.
func (c *client) abortConnect(sock *Socket) {
	c.mu.Lock()
	if i := c.connectingIndexLocked(sock.ns.name); i >= 0 {
		c.nsps = slices.Delete(c.nsps, i, i+1)
	}
	c.mu.Unlock()
	sock.gone.Store(true)
	sock.detach()
	sock.cancel()
}

func (c *client) refuseConnect(sock *Socket, err error) {
	c.abortConnect(sock)
	c.sendConnectError(sock.ns.name, err)
}

// finishConnect registers the socket, sends the CONNECT packet (then, for a recovered session, the
// missed packets), runs the connection handlers and then lets the socket's incoming packets through.
func (c *client) finishConnect(sock *Socket) {
	// Join the namespace first: if the connection closes meanwhile, whichever of HandleClose and the
	// check below comes second undoes it.
	if !sock.recovered {
		sock.ns.addSocket(sock)
		sock.ns.adapter.AddAll(sock.id, []string{sock.id})
	}
	sock.mu.Lock()
	sock.connected = true
	sock.mu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		sock.mu.Lock()
		sock.connected = false
		sock.mu.Unlock()
		sock.gone.Store(true)
		sock.detach()
		sock.cancel()
		return
	}
	// dispatch added the namespace's entry, and only this call or abortConnect removes it.
	c.nsps[c.connectingIndexLocked(sock.ns.name)].sock = sock
	c.mu.Unlock()

	sock.openOutput()
	sock.ns.runConnectionHandlers(sock)
	sock.openInput()
}

func (c *client) removeSocket(sock *Socket) {
	c.mu.Lock()
	c.nsps = slices.DeleteFunc(c.nsps, func(n clientNS) bool { return n.sock == sock })
	c.mu.Unlock()
}

// disconnectAll disconnects every socket of the client and closes the connection.
func (c *client) disconnectAll() {
	c.mu.Lock()
	socks := c.socketsLocked()
	c.mu.Unlock()
	for _, s := range socks {
		s.disconnect()
	}
	_ = c.conn.Close()
}

// HandleClose implements engineio.Handler.
func (c *client) HandleClose(reason string) {
	c.mu.Lock()
	c.closed = true
	if c.connectTimer != nil {
		c.connectTimer.Stop()
		c.connectTimer = nil
	}
	socks := c.socketsLocked()
	c.mu.Unlock()
	for _, s := range socks {
		s.onClose(reason)
	}
}
