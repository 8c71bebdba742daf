package socketio

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BroadcastOptions select the recipients of a broadcast.
type BroadcastOptions struct {
	Rooms    []string // target rooms; none means every socket of the namespace
	Except   []string // rooms whose sockets are skipped (a socket's id is a room)
	Volatile bool     // skip recipients that are not writable; never kept for recovery
	Local    bool     // this server's sockets only: a distributed adapter must not fan it out
	// Key names the broadcast across replicas: replicas of one application that make the same broadcast
	// (for example each emitting one event of a shared bus) give it the same key, and a distributed
	// adapter then keeps it for recovery once, under one offset shared by every replica. The
	// MemoryAdapter ignores it.
	Key string
}

// Session is a disconnected socket's state kept for connection state recovery.
type Session struct {
	SID   string   // socket id
	PID   string   // private session id, known only to the client
	Rooms []string // rooms at disconnection, the socket's own included
	Data  any      // Socket.Data
	// MissedPackets are the packets broadcast to the session's rooms after the client's offset (set by
	// RestoreSession), with the offset argument appended.
	MissedPackets []*Packet
}

// Adapter keeps a namespace's rooms and delivers its broadcasts. The default MemoryAdapter serves one
// process; a distributed adapter (for example over Redis) embeds a MemoryAdapter for local delivery
// (Deliver) and room bookkeeping, and overrides Broadcast either to also publish packets (unless
// opts.Local) to the other replicas, which deliver them locally, or, when every replica makes the same
// broadcasts itself (opts.Key names them), to order them through shared storage as package redisadapter
// does. Its recovery methods then use shared storage, so that a client can recover on another replica.
type Adapter interface {
	// AddAll adds socket sid to rooms.
	AddAll(sid string, rooms []string)
	// Del removes socket sid from room.
	Del(sid, room string)
	// DelAll removes socket sid from every room.
	DelAll(sid string)
	// Rooms returns the rooms of socket sid.
	Rooms(sid string) []string
	// SocketIDs returns the ids of this server's sockets in any of rooms (every socket when rooms is empty).
	SocketIDs(rooms []string) []string
	// Broadcast sends p to the sockets matching opts. With recovery enabled it gives every event packet
	// without ack id that is not volatile an offset (appended as the last argument, as the reference server
	// does) and keeps it for recovery.
	Broadcast(p *Packet, opts BroadcastOptions) error
	// PersistSession keeps the state of a socket that disconnected for a recoverable reason.
	PersistSession(s *Session)
	// RestoreSession returns the session persisted under pid with the packets it missed since offset, or
	// nil when it cannot be recovered (unknown or expired session, offset no longer buffered). It consumes
	// the session. Before returning it calls attach(session) and re-adds the session's socket to its rooms,
	// atomically with respect to Broadcast: every packet is then either among MissedPackets or delivered
	// live to the attached socket, none lost and none twice.
	RestoreSession(pid, offset string, attach func(*Session)) (*Session, error)
	// Close releases the adapter's resources.
	Close() error
}

// MemoryAdapter is the default, in-process adapter: rooms in maps, broadcasts delivered to this server's
// sockets, and (with recovery enabled) a bounded in-memory buffer of packets for recovery.
type MemoryAdapter struct {
	ns       *Namespace
	recovery RecoveryConfig

	// rooms and sids index the rooms both ways, except a socket's own room (named after its id), which
	// only a flag in the socket's record holds: see member.
	mu    sync.RWMutex
	rooms map[string]map[string]struct{} // room -> socket ids
	sids  map[string]member              // socket id -> rooms

	// Recovery state: packets[i] has sequence number nextSeq-len(packets)+i.
	epoch     string
	nextSeq   uint64
	packets   []storedPacket
	sessions  map[string]storedSession
	lastSweep time.Time
}

var _ Adapter = (*MemoryAdapter)(nil)

// member is a socket's record in the adapter: the rooms it is in. Every socket is in its own room and
// idle sockets are many, so the record is kept small: the own room is a flag rather than a room of one
// member in MemoryAdapter.rooms, and the other rooms are a slice rather than a map. With a map for each,
// an idle socket in its own room and one shared room cost the adapter about 640 bytes; it now costs
// about 150, mostly its slot in sids and in the shared room's map.
//
// A room named after socket X therefore holds X when X's flag is set, and the sockets stored in rooms[X]
// besides: another socket that joins X's room is stored there, as in any room.
type member struct {
	own bool // the socket is in its own room
	// rooms are the socket's other rooms, each once, in the order joined. A socket is in few rooms, so
	// a linear search is as quick as a map lookup, in a fraction of the memory.
	rooms []string
}

type storedPacket struct {
	at     time.Time
	rooms  []string
	except []string
	packet *Packet
}

type storedSession struct {
	session        *Session
	disconnectedAt time.Time
}

// NewMemoryAdapter returns the in-memory adapter of ns.
func NewMemoryAdapter(ns *Namespace) *MemoryAdapter {
	return &MemoryAdapter{
		ns:       ns,
		recovery: ns.srv.cfg.Recovery,
		rooms:    make(map[string]map[string]struct{}),
		sids:     make(map[string]member),
		epoch:    newID()[:8] + "-",
		sessions: make(map[string]storedSession),
	}
}

// AddAll implements Adapter.
func (a *MemoryAdapter) AddAll(sid string, rooms []string) {
	a.mu.Lock()
	a.addAllLocked(sid, rooms)
	a.mu.Unlock()
}

func (a *MemoryAdapter) addAllLocked(sid string, rooms []string) {
	mine := a.sids[sid]
	for _, r := range rooms {
		if r == sid {
			mine.own = true
			continue
		}
		if slices.Contains(mine.rooms, r) {
			continue // in rooms[r] already
		}
		mine.rooms = append(mine.rooms, r)
		members := a.rooms[r]
		if members == nil {
			members = make(map[string]struct{})
			a.rooms[r] = members
		}
		members[sid] = struct{}{}
	}
	a.sids[sid] = mine // the socket is in the namespace even when rooms is empty
}

// Del implements Adapter.
func (a *MemoryAdapter) Del(sid, room string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	mine, ok := a.sids[sid]
	if !ok {
		return
	}
	if room == sid {
		mine.own = false
	} else if i := slices.Index(mine.rooms, room); i >= 0 {
		mine.rooms = slices.Delete(mine.rooms, i, i+1)
		if len(mine.rooms) == 0 {
			mine.rooms = nil // keep no empty array for as long as the socket stays connected
		}
		a.delMemberLocked(room, sid)
	}
	a.sids[sid] = mine
}

func (a *MemoryAdapter) delMemberLocked(room, sid string) {
	if members := a.rooms[room]; members != nil {
		delete(members, sid)
		if len(members) == 0 {
			delete(a.rooms, room)
		}
	}
}

// DelAll implements Adapter.
func (a *MemoryAdapter) DelAll(sid string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.sids[sid].rooms {
		a.delMemberLocked(r, sid)
	}
	delete(a.sids, sid)
}

// Rooms implements Adapter; the rooms are sorted.
func (a *MemoryAdapter) Rooms(sid string) []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	mine := a.sids[sid]
	out := make([]string, 0, len(mine.rooms)+1)
	if mine.own {
		out = append(out, sid)
	}
	out = append(out, mine.rooms...)
	slices.Sort(out)
	return out
}

// SocketIDs implements Adapter; the ids are sorted.
func (a *MemoryAdapter) SocketIDs(rooms []string) []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []string
	a.matchLocked(BroadcastOptions{Rooms: rooms}, func(sid string) { out = append(out, sid) })
	slices.Sort(out)
	return out
}

// matchLocked calls f with every local socket id matching opts, once each. A room's members are the
// socket named like it, if it is in its own room, and the sockets stored in a.rooms; the former is never
// among the latter.
func (a *MemoryAdapter) matchLocked(opts BroadcastOptions, f func(sid string)) {
	var except map[string]struct{}
	if len(opts.Except) > 0 {
		except = make(map[string]struct{})
		for _, r := range opts.Except {
			if a.sids[r].own {
				except[r] = struct{}{}
			}
			for sid := range a.rooms[r] {
				except[sid] = struct{}{}
			}
		}
	}
	excluded := func(sid string) bool {
		_, ok := except[sid]
		return ok
	}
	switch len(opts.Rooms) {
	case 0:
		for sid := range a.sids {
			if !excluded(sid) {
				f(sid)
			}
		}
	case 1:
		r := opts.Rooms[0]
		if a.sids[r].own && !excluded(r) {
			f(r)
		}
		for sid := range a.rooms[r] {
			if !excluded(sid) {
				f(sid)
			}
		}
	default:
		seen := make(map[string]struct{})
		visit := func(sid string) {
			if _, dup := seen[sid]; dup || excluded(sid) {
				return
			}
			seen[sid] = struct{}{}
			f(sid)
		}
		for _, r := range opts.Rooms {
			if a.sids[r].own {
				visit(r)
			}
			for sid := range a.rooms[r] {
				visit(sid)
			}
		}
	}
}

// Broadcast implements Adapter. Delivery only queues the packet on each recipient's connection, so it
// never waits for a slow client. With recovery on, storing and delivering a packet happen under the
// adapter's lock, so that every recipient sees stored packets in offset order.
func (a *MemoryAdapter) Broadcast(p *Packet, opts BroadcastOptions) error {
	store := a.recovery.Enabled && Recoverable(p, opts)
	if store {
		a.mu.Lock()
		defer a.mu.Unlock()
		p = a.storeLocked(p, opts)
	} else {
		a.mu.RLock()
		defer a.mu.RUnlock()
	}
	a.deliverLocked(p, opts)
	return nil
}

// Deliver sends p to this server's sockets matching opts, as is: it is neither kept for recovery nor
// given an offset. A distributed adapter that keeps packets elsewhere delivers with it.
func (a *MemoryAdapter) Deliver(p *Packet, opts BroadcastOptions) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	a.deliverLocked(p, opts)
}

// deliverLocked queues p on the matching sockets' connections; a.mu is held.
func (a *MemoryAdapter) deliverLocked(p *Packet, opts BroadcastOptions) {
	msgs := p.Messages()
	a.ns.mu.RLock()
	defer a.ns.mu.RUnlock()
	a.matchLocked(opts, func(sid string) {
		if s := a.ns.sockets[sid]; s != nil {
			s.write(msgs, opts.Volatile)
		}
	})
}

// storeLocked appends the next offset to p's arguments, keeps the result and returns it.
func (a *MemoryAdapter) storeLocked(p *Packet, opts BroadcastOptions) *Packet {
	now := time.Now()
	a.sweepLocked(now)
	offset := a.epoch + strconv.FormatUint(a.nextSeq, 36)
	a.nextSeq++
	stored := p.WithOffset(offset)
	a.packets = append(a.packets, storedPacket{
		at: now, rooms: slices.Clone(opts.Rooms), except: slices.Clone(opts.Except), packet: stored,
	})
	if over := len(a.packets) - a.recovery.MaxPackets; over > 0 {
		clear(a.packets[:over])
		a.packets = a.packets[over:]
	}
	return stored
}

// WithOffset returns a copy of event packet p with offset appended to its arguments, as connection state
// recovery sends it (the client takes the last string argument of every event as its offset).
func (p *Packet) WithOffset(offset string) *Packet {
	data := bytes.TrimRight(p.Data, " \t\r\n")
	if len(data) < 2 || data[len(data)-1] != ']' {
		return p // not an array; cannot happen for packets built by this package
	}
	q, _ := json.Marshal(offset)
	out := make([]byte, 0, len(data)+len(q)+1)
	out = append(out, data[:len(data)-1]...)
	if len(bytes.TrimSpace(data[1:len(data)-1])) > 0 {
		out = append(out, ',')
	}
	out = append(out, q...)
	out = append(out, ']')
	c := *p
	c.Data = out
	return &c
}

// sweepLocked drops packets and sessions older than the recovery window (at most once a second for
// sessions, so that the cost stays amortized).
func (a *MemoryAdapter) sweepLocked(now time.Time) {
	cutoff := now.Add(-a.recovery.MaxDisconnectionDuration)
	n := 0
	for n < len(a.packets) && a.packets[n].at.Before(cutoff) {
		n++
	}
	if n > 0 {
		clear(a.packets[:n])
		a.packets = a.packets[n:]
	}
	if now.Sub(a.lastSweep) < time.Second {
		return
	}
	a.lastSweep = now
	for pid, s := range a.sessions {
		if s.disconnectedAt.Before(cutoff) {
			delete(a.sessions, pid)
		}
	}
}

// PersistSession implements Adapter.
func (a *MemoryAdapter) PersistSession(s *Session) {
	if !a.recovery.Enabled || s.PID == "" {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	a.sweepLocked(now)
	a.sessions[s.PID] = storedSession{session: s, disconnectedAt: now}
}

// RestoreSession implements Adapter.
func (a *MemoryAdapter) RestoreSession(pid, offset string, attach func(*Session)) (*Session, error) {
	if !a.recovery.Enabled {
		return nil, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	a.sweepLocked(now)
	stored, ok := a.sessions[pid]
	if !ok {
		return nil, nil
	}
	delete(a.sessions, pid)
	if stored.disconnectedAt.Before(now.Add(-a.recovery.MaxDisconnectionDuration)) {
		return nil, nil
	}
	seqText, ok := strings.CutPrefix(offset, a.epoch)
	if !ok {
		return nil, nil
	}
	seq, err := strconv.ParseUint(seqText, 36, 64)
	if err != nil || seq >= a.nextSeq {
		return nil, nil
	}
	first := a.nextSeq - uint64(len(a.packets))
	if seq+1 < first {
		return nil, nil // packets after the offset were dropped: the client would miss some
	}
	sess := *stored.session
	sess.Rooms = slices.Clone(sess.Rooms)
	sess.MissedPackets = nil
	for _, sp := range a.packets[seq+1-first:] {
		if includes(sess.Rooms, sp) {
			sess.MissedPackets = append(sess.MissedPackets, sp.packet)
		}
	}
	attach(&sess)
	a.addAllLocked(sess.SID, sess.Rooms)
	return &sess, nil
}

// includes reports whether a socket in rooms was a recipient of sp.
func includes(rooms []string, sp storedPacket) bool {
	included := len(sp.rooms) == 0
	for _, r := range rooms {
		if slices.Contains(sp.except, r) {
			return false
		}
		if !included && slices.Contains(sp.rooms, r) {
			included = true
		}
	}
	return included
}

// Close implements Adapter.
func (a *MemoryAdapter) Close() error { return nil }

// Recoverable reports whether a broadcast of p with opts is kept for connection state recovery (given
// recovery is on): an event without acknowledgement id that is not volatile.
func Recoverable(p *Packet, opts BroadcastOptions) bool {
	return (p.Type == PacketEvent || p.Type == PacketBinaryEvent) && !p.HasID && !opts.Volatile
}
