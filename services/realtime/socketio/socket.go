package socketio

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/classwaves/classwaves/services/realtime/engineio"
)

// Handshake describes how a socket connected. Socket.Handshake makes one on each call from what the socket
// keeps, the raw CONNECT payload and when it came, and from the session's compact handshake request
// (engineio.Request): Auth, Header and Query decode them on each call, so that an idle socket holds no
// handshake and no decoded maps.
type Handshake struct {
	// RawAuth is the CONNECT packet's payload as sent ("{}" when none): the client's auth option. With
	// recovery on, a reconnecting client's pid and offset are part of it, as in the reference server.
	RawAuth json.RawMessage
	Address string // remote IP address
	Host    string
	Secure  bool      // whether the handshake came over TLS
	Time    time.Time // when the namespace connection was requested

	req *engineio.Request // the Engine.IO handshake request
}

func newHandshake(conn *engineio.Conn, auth json.RawMessage, at time.Time) *Handshake {
	if auth == nil {
		auth = json.RawMessage("{}")
	}
	r := conn.Request()
	addr := r.RemoteAddr()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	return &Handshake{RawAuth: auth, Address: addr, Host: r.Host(), Secure: r.Secure(), Time: at, req: r}
}

// Auth returns the CONNECT payload decoded, with numbers as json.Number: a new map on each call, empty
// when the client sent no object.
func (h *Handshake) Auth() map[string]any { return decodeAuth(h.RawAuth) }

// decodeAuth decodes a CONNECT payload as Handshake.Auth does.
func decodeAuth(raw json.RawMessage) map[string]any {
	if v, err := decodeJSON(raw); err == nil {
		if obj, ok := v.(map[string]any); ok {
			return obj
		}
	}
	return map[string]any{}
}

// Header returns the headers of the Engine.IO handshake request, as a new map.
func (h *Handshake) Header() http.Header { return h.req.Header() }

// HeaderValue returns the first value of one header of the Engine.IO handshake request (case-insensitive),
// without allocating.
func (h *Handshake) HeaderValue(name string) string { return h.req.HeaderValue(name) }

// Query returns the query parameters of the Engine.IO handshake request, as a new map.
func (h *Handshake) Query() url.Values { return h.req.Query() }

// EventHandler handles an event received by a socket. It runs on the connection's reading goroutine:
// long work should move elsewhere (the socket is safe for concurrent use).
type EventHandler func(e *Event)

// eventHandler is a handler set by On, or by OnBorrowed (borrows), for the event name. The Name of the
// events it handles is that string, so that a received event's name needs no string of its own. A socket
// holds its handlers by value in a slice: a handful per socket, with no allocation each.
type eventHandler struct {
	name    string
	fn      EventHandler
	borrows bool
}

// AckFunc receives the acknowledgement of an emitted event, or an error (ErrAckTimeout, ErrDisconnected,
// or the context's error) when none will come. It is called exactly once.
type AckFunc func(args Args, err error)

// Event is an event received by a socket. For a handler set with OnBorrowed, its binary attachments
// (in Args) are valid only until the handler returns; the handler may keep the Event itself (to Ack
// later, for example).
type Event struct {
	Name string
	Args Args

	socket *Socket
	id     uint64
	hasAck bool
	acked  atomic.Bool
}

// Socket returns the socket that received the event.
func (e *Event) Socket() *Socket { return e.socket }

// HasAck reports whether the client asked for an acknowledgement.
func (e *Event) HasAck() bool { return e.hasAck }

// Ack sends the acknowledgement with args ([]byte arguments become binary attachments). It does nothing
// when the client asked for none, and fails with ErrAlreadyAcked the second time.
func (e *Event) Ack(args ...any) error {
	if !e.hasAck {
		return nil
	}
	if e.acked.Swap(true) {
		return ErrAlreadyAcked
	}
	data, attachments, err := encodePayload(nilToEmpty(args))
	if err != nil {
		return err
	}
	p := &Packet{Type: PacketAck, Namespace: e.socket.ns.name, ID: e.id, HasID: true, Data: data, Attachments: attachments}
	if len(attachments) > 0 {
		p.Type = PacketBinaryAck
	}
	e.socket.write(p.Messages(), false)
	return nil
}

func nilToEmpty(args []any) []any {
	if args == nil {
		return []any{}
	}
	return args
}

type pendingAck struct {
	fn    AckFunc
	timer *time.Timer
}

// Socket is a client's connection to one namespace. Its methods are safe for concurrent use. Its flags
// come last, in one word: 208 bytes is a smaller size class than the 224 they took in declaration order.
type Socket struct {
	ns      *Namespace
	client  *client
	rawAuth json.RawMessage // the CONNECT packet's payload (nil: none), for Handshake
	at      int64           // when the connection to the namespace was requested (Unix nanoseconds)
	done    engineio.Done   // closed by cancel, when the socket disconnects

	// Set before the socket is shared (by newSocket, or by the adapter when restoring a session).
	id, pid string

	mu                 sync.Mutex
	handlers           []eventHandler // by name; a handful per socket, so a slice (a map cost ~250 bytes)
	disconnectHandlers []func(reason string)
	data               any
	acks               map[uint64]*pendingAck // nil until the first emit that wants an ack
	nextAckID          uint64

	// setup is the socket's state while it connects; nil once it is open both ways.
	setup atomic.Pointer[socketSetup]

	gone      atomic.Bool // disconnected: emits fail
	recovered bool        // set before the socket is shared, as id and pid
	connected bool        // guarded by mu
}

// socketSetup is what a socket needs only while it connects: incoming packets wait in inBuf until the
// connection handlers have run (they register the event handlers); outgoing ones wait in outBuf until
// the CONNECT packet is queued. A connected socket drops it, about 100 bytes that ten thousand idle
// sockets would otherwise each keep.
type socketSetup struct {
	missed []*Packet // a recovered session's missed packets, sent after the CONNECT packet

	inMu    sync.Mutex
	inReady bool
	inBuf   []*Packet

	outMu    sync.Mutex
	outReady bool
	outBuf   []engineio.Message
}

func newSocket(ns *Namespace, c *client, auth json.RawMessage) *Socket {
	s := &Socket{ns: ns, client: c, rawAuth: auth, at: time.Now().UnixNano(), id: newID()}
	if ns.srv.cfg.Recovery.Enabled {
		s.pid = newID()
	}
	s.setup.Store(&socketSetup{})
	return s
}

// ID returns the socket id (also the name of the socket's own room).
func (s *Socket) ID() string { return s.id }

// Namespace returns the socket's namespace.
func (s *Socket) Namespace() *Namespace { return s.ns }

// Handshake returns how the socket connected, as a new value on each call.
func (s *Socket) Handshake() *Handshake {
	return newHandshake(s.client.conn, s.rawAuth, time.Unix(0, s.at))
}

// Conn returns the underlying Engine.IO session (shared by the client's sockets of every namespace).
func (s *Socket) Conn() *engineio.Conn { return s.client.conn }

// Recovered reports whether the socket is a recovered session: same id, rooms restored and missed
// packets sent.
func (s *Socket) Recovered() bool { return s.recovered }

// Context returns a context canceled when the socket disconnects.
func (s *Socket) Context() context.Context { return s.done.Context() }

// cancel cancels the socket's context. The session's end disconnects every socket, so the context ends
// with the session's too.
func (s *Socket) cancel() {
	s.done.Close()
}

// Connected reports whether the socket is connected.
func (s *Socket) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

// Data returns the value set by SetData (restored with a recovered session).
func (s *Socket) Data() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}

// SetData attaches an application value to the socket, for example the authenticated identity. It is
// persisted with the session for recovery.
func (s *Socket) SetData(v any) {
	s.mu.Lock()
	s.data = v
	s.mu.Unlock()
}

// On sets the handler of event name, replacing any previous one. Events without a handler are ignored.
// The event's binary attachments are h's own: it may keep them.
func (s *Socket) On(event string, h EventHandler) {
	s.setHandler(eventHandler{name: event, fn: h})
}

// OnBorrowed sets the handler of event name like On, but lends h the event's binary attachments rather
// than giving it copies: the event's binary attachments are valid only until h returns; h must copy what
// it keeps. Nor may h pass them to anything that keeps them, Emit and Ack included (they send after h
// returns). The event's last attachment is then the connection's read buffer itself, which saves an
// allocation of its size per event: for a stream of binary events (audio chunks), the copies would be
// most of the server's garbage.
func (s *Socket) OnBorrowed(event string, h EventHandler) {
	s.setHandler(eventHandler{name: event, fn: h, borrows: true})
}

func (s *Socket) setHandler(h eventHandler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, old := range s.handlers {
		if old.name == h.name {
			s.handlers[i] = h
			return
		}
	}
	s.handlers = append(s.handlers, h)
}

// OnDisconnect adds a function called with the reason when the socket disconnects.
func (s *Socket) OnDisconnect(f func(reason string)) {
	s.mu.Lock()
	s.disconnectHandlers = append(s.disconnectHandlers, f)
	s.mu.Unlock()
}

// Join adds the socket to rooms.
func (s *Socket) Join(rooms ...string) {
	if s.gone.Load() {
		return
	}
	s.ns.adapter.AddAll(s.id, rooms)
	if s.gone.Load() {
		// Disconnected meanwhile: whichever of this and the disconnection's cleanup came second removed
		// the socket from its rooms; make sure it was not the disconnection.
		s.ns.adapter.DelAll(s.id)
	}
}

// Leave removes the socket from room.
func (s *Socket) Leave(room string) { s.ns.adapter.Del(s.id, room) }

// Rooms returns the rooms the socket is in, its own room included.
func (s *Socket) Rooms() []string { return s.ns.adapter.Rooms(s.id) }

// To returns a broadcast to rooms that excludes this socket.
func (s *Socket) To(rooms ...string) BroadcastOperator {
	return BroadcastOperator{ns: s.ns, except: []string{s.id}}.To(rooms...)
}

// Broadcast returns a broadcast to the whole namespace that excludes this socket.
func (s *Socket) Broadcast() BroadcastOperator {
	return BroadcastOperator{ns: s.ns, except: []string{s.id}}
}

func newEventPacket(nsp, event string, args []any) (*Packet, error) {
	if reservedEvents[event] {
		return nil, ErrReservedEvent
	}
	values := make([]any, 0, 1+len(args))
	values = append(values, event)
	values = append(values, args...)
	data, attachments, err := encodePayload(values)
	if err != nil {
		return nil, err
	}
	p := &Packet{Type: PacketEvent, Namespace: nsp, Data: data, Attachments: attachments}
	if len(attachments) > 0 {
		p.Type = PacketBinaryEvent
	}
	return p, nil
}

// Emit sends event with args to the client ([]byte arguments, also inside map[string]any and []any
// values, become binary attachments). With recovery on, the packet goes through the adapter so that it
// is kept for a reconnecting client.
func (s *Socket) Emit(event string, args ...any) error {
	if s.gone.Load() {
		return ErrDisconnected
	}
	p, err := newEventPacket(s.ns.name, event, args)
	if err != nil {
		return err
	}
	if s.ns.srv.cfg.Recovery.Enabled {
		return s.ns.adapter.Broadcast(p, BroadcastOptions{Rooms: []string{s.id}})
	}
	s.write(p.Messages(), false)
	return nil
}

// EmitVolatile sends event like Emit, but drops it when the connection is not writable (closed, or its
// write queue past the soft limit). It is never kept for recovery.
func (s *Socket) EmitVolatile(event string, args ...any) error {
	if s.gone.Load() {
		return ErrDisconnected
	}
	p, err := newEventPacket(s.ns.name, event, args)
	if err != nil {
		return err
	}
	s.write(p.Messages(), true)
	return nil
}

// EmitAck sends event and calls ack with the client's acknowledgement, or with ErrAckTimeout when none
// arrived within timeout (no timeout when timeout <= 0), or with ErrDisconnected.
func (s *Socket) EmitAck(event string, timeout time.Duration, ack AckFunc, args ...any) error {
	_, err := s.emitAck(event, timeout, ack, args)
	return err
}

func (s *Socket) emitAck(event string, timeout time.Duration, ack AckFunc, args []any) (uint64, error) {
	p, err := newEventPacket(s.ns.name, event, args)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	if s.gone.Load() {
		s.mu.Unlock()
		return 0, ErrDisconnected
	}
	id := s.nextAckID
	s.nextAckID++
	pa := &pendingAck{fn: ack}
	if timeout > 0 {
		pa.timer = time.AfterFunc(timeout, func() {
			if pa := s.takeAck(id); pa != nil {
				pa.fn(Args{}, ErrAckTimeout)
			}
		})
	}
	if s.acks == nil {
		s.acks = make(map[uint64]*pendingAck)
	}
	s.acks[id] = pa
	s.mu.Unlock()
	p.ID, p.HasID = id, true
	s.write(p.Messages(), false)
	return id, nil
}

// EmitWithAck sends event and waits for the client's acknowledgement, until ctx is done or the socket
// disconnects.
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	type result struct {
		args Args
		err  error
	}
	ch := make(chan result, 1)
	id, err := s.emitAck(event, 0, func(a Args, err error) { ch <- result{a, err} }, args)
	if err != nil {
		return Args{}, err
	}
	select {
	case r := <-ch:
		return r.args, r.err
	case <-ctx.Done():
		s.takeAck(id)
		return Args{}, ctx.Err()
	}
}

func (s *Socket) takeAck(id uint64) *pendingAck {
	s.mu.Lock()
	defer s.mu.Unlock()
	pa := s.acks[id]
	if pa == nil {
		return nil
	}
	delete(s.acks, id)
	if pa.timer != nil {
		pa.timer.Stop()
	}
	return pa
}

// Disconnect disconnects the socket from its namespace (the client gets a DISCONNECT packet and does not
// reconnect it). With closeConn, the client's other namespaces are disconnected too and the connection
// is closed.
func (s *Socket) Disconnect(closeConn bool) {
	if closeConn {
		s.client.disconnectAll()
		return
	}
	s.disconnect()
}

func (s *Socket) disconnect() {
	if !s.Connected() {
		return
	}
	p := &Packet{Type: PacketDisconnect, Namespace: s.ns.name}
	s.write(p.Messages(), false)
	s.onClose(ReasonServerNamespaceDisconnect)
}

// write sends msgs (one packet) to the client, or buffers them until the CONNECT packet is queued.
// Volatile messages are dropped rather than buffered.
func (s *Socket) write(msgs []engineio.Message, volatile bool) {
	if st := s.setup.Load(); st != nil {
		st.outMu.Lock()
		if !st.outReady {
			switch {
			case volatile:
			case len(st.outBuf)+len(msgs) > s.ns.srv.engine.Config().WriteQueueHardLimit:
				// As an overflowing write queue does: the client cannot keep up, close it.
				st.outBuf = nil
				s.client.fail("write buffer overflow before connect", nil)
			default:
				st.outBuf = append(st.outBuf, msgs...)
			}
			st.outMu.Unlock()
			return
		}
		st.outMu.Unlock()
	}
	if volatile {
		s.client.conn.SendVolatile(msgs...)
	} else {
		_ = s.client.conn.Send(msgs...)
	}
}

// openOutput queues the CONNECT packet, the missed packets of a recovered session and what was emitted
// meanwhile, in that order, and lets later writes through.
func (s *Socket) openOutput() {
	st := s.setup.Load()
	st.outMu.Lock()
	defer st.outMu.Unlock()
	var body struct {
		SID string `json:"sid"`
		PID string `json:"pid,omitempty"`
	}
	body.SID, body.PID = s.id, s.pid
	data, _ := json.Marshal(body)
	msgs := (&Packet{Type: PacketConnect, Namespace: s.ns.name, Data: data}).Messages()
	for _, p := range st.missed {
		msgs = append(msgs, p.Messages()...)
	}
	msgs = append(msgs, st.outBuf...)
	_ = s.client.conn.Send(msgs...)
	st.missed, st.outBuf = nil, nil
	st.outReady = true
}

// onPacket handles a packet for this socket, or buffers it while the connection handlers run.
func (s *Socket) onPacket(p *Packet) {
	if st := s.setup.Load(); st != nil {
		st.inMu.Lock()
		if !st.inReady {
			if len(st.inBuf) >= s.ns.srv.cfg.MaxPendingPackets {
				st.inMu.Unlock()
				s.client.fail("too many pending packets", nil)
				return
			}
			p.own() // handled after this message's HandleMessage returns
			st.inBuf = append(st.inBuf, p)
			st.inMu.Unlock()
			return
		}
		st.inMu.Unlock()
	}
	s.handlePacket(p)
}

// openInput handles the packets buffered while the connection handlers ran, then lets packets through.
// It comes after openOutput: the socket is then open both ways and drops its setup state.
func (s *Socket) openInput() {
	st := s.setup.Load()
	for {
		st.inMu.Lock()
		batch := st.inBuf
		st.inBuf = nil
		if len(batch) == 0 {
			st.inReady = true
			st.inMu.Unlock()
			s.setup.Store(nil)
			return
		}
		st.inMu.Unlock()
		for _, p := range batch {
			s.handlePacket(p)
		}
	}
}

func (s *Socket) handlePacket(p *Packet) {
	switch p.Type {
	case PacketEvent, PacketBinaryEvent:
		s.handleEvent(p)
	case PacketAck, PacketBinaryAck:
		if !p.HasID {
			return
		}
		p.own() // the arguments go to an AckFunc, which may keep them (EmitWithAck returns them)
		args, err := newArgs(p, 0)
		if err != nil {
			s.client.fail("bad ack", err)
			return
		}
		if pa := s.takeAck(p.ID); pa != nil {
			s.safely("ack callback", func() { pa.fn(args, nil) })
		}
	case PacketDisconnect:
		s.onClose(ReasonClientNamespaceDisconnect)
	}
}

// handler returns the handler of event name (a copy: s.handlers may change once s.mu is released), or
// one with a nil fn; s.mu is held. Comparing with string(name) does not allocate.
func (s *Socket) handler(name []byte) eventHandler {
	for _, h := range s.handlers {
		if h.name == string(name) {
			return h
		}
	}
	return eventHandler{}
}

// handleEvent runs the handler of event packet p, which DecodePacket validated: its first element is the
// event name, decoded in p.name.
func (s *Socket) handleEvent(p *Packet) {
	args, err := newArgs(p, 1)
	if err != nil {
		s.client.fail("bad event", err)
		return
	}
	s.mu.Lock()
	h := s.handler(p.name)
	s.mu.Unlock()
	if h.fn == nil {
		return // dropped: nothing sees its attachments, lent or not
	}
	if !h.borrows {
		p.own()
		args.attachments = p.Attachments
	}
	e := &Event{Name: h.name, Args: args, socket: s, id: p.ID, hasAck: p.HasID}
	s.safely("event handler", func() { h.fn(e) })
}

// safely runs f, logging a panic instead of letting it end the connection's goroutine.
func (s *Socket) safely(what string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			s.ns.srv.log.Error("socketio: "+what+" panicked", "namespace", s.ns.name, "socket", s.id, "panic", r)
		}
	}()
	f()
}

// detach removes the socket from its namespace and its rooms.
func (s *Socket) detach() {
	s.ns.removeSocket(s)
	s.ns.adapter.DelAll(s.id)
}

// onClose ends the socket: it persists the session when recovery applies, leaves the rooms, fails the
// pending acknowledgements and calls the disconnect handlers.
func (s *Socket) onClose(reason string) {
	s.mu.Lock()
	if !s.connected {
		s.mu.Unlock()
		return
	}
	s.connected = false
	s.gone.Store(true)
	acks := s.acks
	s.acks = nil
	handlers := s.disconnectHandlers
	data := s.data
	s.mu.Unlock()

	if s.ns.srv.cfg.Recovery.Enabled && recoverableReasons[reason] {
		s.ns.adapter.PersistSession(&Session{SID: s.id, PID: s.pid, Rooms: s.ns.adapter.Rooms(s.id), Data: data})
	}
	s.detach()
	s.client.removeSocket(s)
	s.cancel()
	for _, pa := range acks {
		if pa.timer != nil {
			pa.timer.Stop()
		}
		s.safely("ack callback", func() { pa.fn(Args{}, ErrDisconnected) })
	}
	for _, h := range handlers {
		s.safely("disconnect handler", func() { h(reason) })
	}
}
