package socketio

import (
	"context"
	"slices"
	"sync"
)

// Middleware runs when a client asks to join a namespace, before the connection handlers. Returning an
// error refuses the connection with a CONNECT_ERROR packet (see ConnectError). ctx is canceled when the
// client's connection closes. Middlewares run on a goroutine of their own and may block (for I/O), but
// must return once ctx is done.
type Middleware func(ctx context.Context, s *Socket) error

// Namespace is a Socket.IO namespace: a communication channel multiplexed over a client's connection,
// with its own middlewares, connection handlers, sockets and rooms.
type Namespace struct {
	srv     *Server
	name    string
	adapter Adapter
	locker  roomLocker

	mu          sync.RWMutex
	sockets     map[string]*Socket
	middlewares []Middleware
	onConnect   []func(*Socket)
}

func newNamespace(srv *Server, name string) *Namespace {
	ns := &Namespace{srv: srv, name: name, sockets: make(map[string]*Socket)}
	ns.adapter = srv.cfg.NewAdapter(ns)
	return ns
}

// Name returns the namespace name, for example "/" or "/sessions".
func (n *Namespace) Name() string { return n.name }

// Server returns the namespace's server.
func (n *Namespace) Server() *Server { return n.srv }

// Adapter returns the namespace's adapter.
func (n *Namespace) Adapter() Adapter { return n.adapter }

// Use adds a connect middleware; middlewares run in the order they were added.
func (n *Namespace) Use(mw Middleware) {
	n.mu.Lock()
	n.middlewares = append(n.middlewares, mw)
	n.mu.Unlock()
}

// OnConnection adds a handler called with every socket that joins the namespace, after the client has
// been sent the CONNECT packet. Packets from the socket are handled only once every connection handler
// has returned, so handlers registered here (Socket.On) see all of them.
func (n *Namespace) OnConnection(h func(s *Socket)) {
	n.mu.Lock()
	n.onConnect = append(n.onConnect, h)
	n.mu.Unlock()
}

func (n *Namespace) middlewareList() []Middleware {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return slices.Clone(n.middlewares)
}

func (n *Namespace) runConnectionHandlers(s *Socket) {
	n.mu.RLock()
	hs := slices.Clone(n.onConnect)
	n.mu.RUnlock()
	for _, h := range hs {
		if s.gone.Load() {
			return
		}
		s.safely("connection handler", func() { h(s) })
	}
}

// Sockets returns the sockets connected to the namespace on this server.
func (n *Namespace) Sockets() []*Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]*Socket, 0, len(n.sockets))
	for _, s := range n.sockets {
		out = append(out, s)
	}
	return out
}

// Socket returns the socket with id connected to the namespace on this server.
func (n *Namespace) Socket(id string) (*Socket, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	s, ok := n.sockets[id]
	return s, ok
}

func (n *Namespace) addSocket(s *Socket) {
	n.mu.Lock()
	n.sockets[s.id] = s
	n.mu.Unlock()
}

func (n *Namespace) removeSocket(s *Socket) {
	n.mu.Lock()
	if n.sockets[s.id] == s {
		delete(n.sockets, s.id)
	}
	n.mu.Unlock()
}

// restore recovers the session named by the socket's handshake auth (pid and offset), if the adapter
// still has it: the socket takes the session's id, data and rooms and queues the missed packets.
func (n *Namespace) restore(s *Socket) bool {
	auth := decodeAuth(s.rawAuth)
	pid, ok1 := auth["pid"].(string)
	offset, ok2 := auth["offset"].(string)
	if !ok1 || !ok2 {
		return false
	}
	sess, err := n.adapter.RestoreSession(pid, offset, func(sess *Session) {
		s.id, s.pid, s.data = sess.SID, sess.PID, sess.Data
		s.recovered = true
		s.setup.Load().missed = sess.MissedPackets
		n.addSocket(s)
	})
	if err != nil {
		n.srv.log.Debug("socketio: session not restored", "namespace", n.name, "err", err)
	}
	return err == nil && sess != nil && s.recovered
}

// To returns a broadcast to the sockets in any of rooms.
func (n *Namespace) To(rooms ...string) BroadcastOperator {
	return BroadcastOperator{ns: n}.To(rooms...)
}

// Except returns a broadcast to every socket of the namespace except those in rooms.
func (n *Namespace) Except(rooms ...string) BroadcastOperator {
	return BroadcastOperator{ns: n}.Except(rooms...)
}

// Emit broadcasts event to every socket of the namespace.
func (n *Namespace) Emit(event string, args ...any) error {
	return BroadcastOperator{ns: n}.Emit(event, args...)
}

// BroadcastOperator describes a broadcast: target rooms, excluded rooms, flags. Its methods return
// modified copies, so operators can be built step by step and reused.
type BroadcastOperator struct {
	ns       *Namespace
	rooms    []string
	except   []string
	volatile bool
	local    bool
	key      string
}

// To adds target rooms (a socket in any of them receives the broadcast once).
func (b BroadcastOperator) To(rooms ...string) BroadcastOperator {
	b.rooms = append(slices.Clip(b.rooms), rooms...)
	return b
}

// Except adds rooms whose sockets are skipped.
func (b BroadcastOperator) Except(rooms ...string) BroadcastOperator {
	b.except = append(slices.Clip(b.except), rooms...)
	return b
}

// Volatile makes the broadcast skip recipients whose connection is not writable; it is never kept for
// recovery.
func (b BroadcastOperator) Volatile() BroadcastOperator {
	b.volatile = true
	return b
}

// Local limits the broadcast to this server's sockets (no fan-out to other replicas).
func (b BroadcastOperator) Local() BroadcastOperator {
	b.local = true
	return b
}

// Key names the broadcast across replicas (see BroadcastOptions.Key).
func (b BroadcastOperator) Key(key string) BroadcastOperator {
	b.key = key
	return b
}

// Emit sends event with args to the matching sockets. With Config.OrderedEmits, broadcasts to the same
// rooms are serialized, so every recipient sees them in one order.
func (b BroadcastOperator) Emit(event string, args ...any) error {
	p, err := newEventPacket(b.ns.name, event, args)
	if err != nil {
		return err
	}
	if b.ns.srv.cfg.OrderedEmits {
		unlock := b.ns.locker.lock(b.rooms)
		defer unlock()
	}
	return b.ns.adapter.Broadcast(p, BroadcastOptions{
		Rooms: b.rooms, Except: b.except, Volatile: b.volatile, Local: b.local, Key: b.key,
	})
}

// roomLocker serializes broadcasts per room. A broadcast to the whole namespace excludes every other
// broadcast; a broadcast to rooms excludes those to any of the same rooms.
type roomLocker struct {
	all   sync.RWMutex
	mu    sync.Mutex
	rooms map[string]*roomLock
}

type roomLock struct {
	sync.Mutex
	refs int
}

// lock locks rooms (in sorted order, so that concurrent lockers cannot deadlock) and returns the unlock.
func (l *roomLocker) lock(rooms []string) (unlock func()) {
	if len(rooms) == 0 {
		l.all.Lock()
		return l.all.Unlock
	}
	l.all.RLock()
	names := slices.Compact(slices.Sorted(slices.Values(rooms)))
	locks := make([]*roomLock, len(names))
	l.mu.Lock()
	if l.rooms == nil {
		l.rooms = make(map[string]*roomLock)
	}
	for i, name := range names {
		rl := l.rooms[name]
		if rl == nil {
			rl = &roomLock{}
			l.rooms[name] = rl
		}
		rl.refs++
		locks[i] = rl
	}
	l.mu.Unlock()
	for _, rl := range locks {
		rl.Lock()
	}
	return func() {
		for i := len(locks) - 1; i >= 0; i-- {
			locks[i].Unlock()
		}
		l.mu.Lock()
		for i, name := range names {
			if locks[i].refs--; locks[i].refs == 0 {
				delete(l.rooms, name)
			}
		}
		l.mu.Unlock()
		l.all.RUnlock()
	}
}
