// Package redisadapter is a socketio.Adapter that keeps connection state recovery in Redis, so that a
// client whose transport drops can recover its session (socket id, rooms, data, missed packets) on any
// replica of the server, not only the one it was connected to.
//
// # Design
//
// Every replica of the application is assumed to make its broadcasts itself: in ClassWaves each edge
// replica receives every bus event (fan-out) and emits it to its own sockets. What replicas must agree
// on is the recovery offset of each packet, so that a client that saw offset O on replica A can ask
// replica B for exactly the packets after O. The adapter makes Redis the single order of packets:
//
//   - Each namespace has one Redis stream, Prefix+"{sio}:<namespace>:packets", capped with XADD MAXLEN ~
//     at the server's Recovery.MaxPackets. A recoverable broadcast (an event without ack id, not
//     volatile, not local) is appended to it (packet, rooms, excluded rooms) and its stream entry id is
//     its offset. Broadcasts that several replicas make for the same reason carry the same
//     BroadcastOptions.Key: a Lua script appends a keyed packet only if the key is new (the key,
//     Prefix+"{sio}:<namespace>:key:<key>", remembers the entry id for KeyTTL), so the first replica to
//     get there writes it and the others get its id back. Unkeyed broadcasts (a socket's own emits) are
//     always appended.
//   - Packets are delivered from the stream, not by the call that appended them: one reader goroutine
//     per Store follows every namespace stream (XREAD BLOCK) and delivers each entry, with its id as the
//     offset, to this replica's sockets in the entry's rooms. So every replica delivers every packet
//     exactly once and in stream order, and a client's last offset always means "everything before this
//     entry was delivered to me". Broadcast waits (up to DeliveryWait) until the local reader has
//     delivered the entry, so that what a caller emits after it (an acknowledgement, say) is not sent
//     before it.
//   - A disconnected socket's session (socket id, rooms, data encoded by EncodeData, disconnection time)
//     is stored under Prefix+"{sio}:<namespace>:session:<pid>" with the recovery window as TTL.
//     RestoreSession takes it (GETDEL, so a session is recovered once), waits until the local reader has
//     passed the client's offset, reads the entries after the offset up to the reader's position (XRANGE)
//     and keeps those addressed to the session's rooms as the missed packets; then, under the lock the
//     reader delivers with, it reads the few entries the reader delivered meanwhile and re-adds the socket
//     to its rooms: entries up to the reader's position are replayed, later ones are delivered live, none
//     twice and none lost. An offset that is no longer in
//     the stream (trimmed) cannot be recovered: the client gets a new session.
//
// Volatile and local broadcasts, acknowledgements and non-event packets are delivered at once to this
// replica's sockets and never stored. Broadcasts are not forwarded to other replicas as such: a packet
// reaches another replica's sockets only if it is addressed to rooms they are in (a recovered socket's
// own room, for instance). When Redis cannot be reached, Broadcast delivers locally without an offset
// (the packet cannot be recovered) rather than dropping it; a write whose answer was lost may then be
// delivered twice.
//
// Every key carries the hash tag {sio}, so that the script's keys and the streams the reader follows
// with one XREAD share a slot on Redis Cluster. The reader holds one connection of the client's pool
// while it blocks; it also follows a small stream of its own, Prefix+"{sio}:wake:<random>", whose
// entries wake it when namespaces are added or the store closes (deleted on Close, else expiring). Redis 6.2 or later is required (GETDEL,
// exclusive XRANGE).
package redisadapter

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classwaves/classwaves/services/realtime/socketio"
)

// Defaults of Options.
const (
	DefaultReadBlock    = time.Second
	DefaultDeliveryWait = 5 * time.Second
	DefaultOpTimeout    = 5 * time.Second
	DefaultKeyTTL       = 5 * time.Minute
)

// Options configure a Store. Zero values take the defaults.
type Options struct {
	// Prefix starts every key, e.g. "cw:prod:".
	Prefix string
	// ReadBlock is how long the reader blocks in XREAD (default 1s). The reader is woken at once when a
	// namespace is added or the store closes; ReadBlock bounds the wait only when that wake-up fails.
	ReadBlock time.Duration
	// DeliveryWait bounds how long Broadcast waits for the local reader to deliver what it appended
	// (default 5s).
	DeliveryWait time.Duration
	// OpTimeout bounds each Redis command of Broadcast, PersistSession and RestoreSession (default 5s).
	OpTimeout time.Duration
	// KeyTTL is how long a broadcast key is remembered (default 5m): a replica making a keyed broadcast
	// later than that after the first one appends it again.
	KeyTTL time.Duration
	// EncodeData and DecodeData turn Socket.Data into bytes and back for a stored session (default:
	// encoding/json, decoding into map[string]any and the like). A session whose data fails to encode is
	// not stored; one whose data fails to decode is not recovered.
	EncodeData func(any) ([]byte, error)
	DecodeData func([]byte) (any, error)
	// Logger receives Redis errors and degraded deliveries (default: discard).
	Logger *slog.Logger
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{
		"ReadBlock": o.ReadBlock, "DeliveryWait": o.DeliveryWait, "OpTimeout": o.OpTimeout, "KeyTTL": o.KeyTTL,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("redisadapter: %s must not be negative, got %v", name, d))
		}
	}
	if o.ReadBlock > 0 && o.ReadBlock < time.Millisecond {
		errs = append(errs, fmt.Errorf("redisadapter: ReadBlock must be at least 1ms, got %v", o.ReadBlock))
	}
	if (o.EncodeData == nil) != (o.DecodeData == nil) {
		errs = append(errs, errors.New("redisadapter: EncodeData and DecodeData must be set together"))
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.ReadBlock == 0 {
		o.ReadBlock = DefaultReadBlock
	}
	if o.DeliveryWait == 0 {
		o.DeliveryWait = DefaultDeliveryWait
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = DefaultOpTimeout
	}
	if o.KeyTTL == 0 {
		o.KeyTTL = DefaultKeyTTL
	}
	if o.EncodeData == nil {
		o.EncodeData = json.Marshal
		o.DecodeData = func(b []byte) (any, error) {
			var v any
			err := json.Unmarshal(b, &v)
			return v, err
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Store holds the Redis side of one Socket.IO server's adapters and runs the reader that delivers their
// packets. Pass its NewAdapter as socketio.Config.NewAdapter, and Close it after the server.
type Store struct {
	rdb  redis.UniversalClient
	opts Options

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	// wake is a stream of the store's own that the reader follows with the packet streams: an entry wakes
	// the reader from its blocking read (go-redis cannot interrupt one), when the adapters change or on
	// Close.
	wake string

	mu       sync.Mutex
	adapters map[string]*Adapter // by stream key
}

// wakeTTL is how long the wake stream outlives its last entry.
const wakeTTL = time.Hour

// New returns a Store on rdb and starts its reader.
func New(rdb redis.UniversalClient, opts Options) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("redisadapter: a Redis client is required")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	var id [8]byte
	_, _ = rand.Read(id[:])
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		rdb: rdb, opts: opts, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		wake: opts.Prefix + "{sio}:wake:" + hex.EncodeToString(id[:]), adapters: map[string]*Adapter{},
	}
	go s.run()
	return s, nil
}

// Close stops the reader and waits for it. Adapters made by the store stop recovering packets; close the
// server first.
func (s *Store) Close() error {
	s.cancel()
	s.signal()
	<-s.done
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.OpTimeout)
	defer cancel()
	_ = s.rdb.Del(ctx, s.wake).Err()
	return nil
}

// NewAdapter returns the adapter of ns; it has the signature of socketio.Config.NewAdapter.
func (s *Store) NewAdapter(ns *socketio.Namespace) socketio.Adapter {
	base := s.opts.Prefix + "{sio}:" + ns.Name() + ":"
	a := &Adapter{
		MemoryAdapter: socketio.NewMemoryAdapter(ns),
		store:         s,
		ns:            ns,
		recovery:      ns.Server().Recovery(),
		base:          base,
		stream:        base + "packets",
		advanced:      make(chan struct{}),
	}
	// Start following the stream from its current end. If Redis does not answer now, the reader retries;
	// until then broadcasts are delivered locally without an offset.
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.OpTimeout)
	if err := a.init(ctx); err != nil {
		s.opts.Logger.Warn("redisadapter: cannot read the packet stream yet; retrying", "namespace", ns.Name(), "err", err)
	}
	cancel()
	s.mu.Lock()
	s.adapters[a.stream] = a
	s.mu.Unlock()
	s.signal()
	return a
}

// signal wakes the reader, so that it reads the current set of streams.
func (s *Store) signal() {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.OpTimeout)
	defer cancel()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: s.wake, MaxLen: 16, Approx: true, Values: []any{"w", "1"}})
		p.PExpire(ctx, s.wake, wakeTTL)
		return nil
	})
	if err != nil {
		s.opts.Logger.Debug("redisadapter: waking the reader failed; it wakes after ReadBlock", "err", err)
	}
}

func (s *Store) remove(a *Adapter) {
	s.mu.Lock()
	if s.adapters[a.stream] == a {
		delete(s.adapters, a.stream)
	}
	s.mu.Unlock()
	s.signal()
}

// run follows the streams of the store's adapters and delivers their entries until Close.
func (s *Store) run() {
	defer close(s.done)
	var failures int
	backoff := func() {
		failures++
		d := min(50*time.Millisecond<<min(failures, 7), 5*time.Second)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-s.ctx.Done():
		case <-t.C:
		}
	}
	wakeCursor := "0-0"
	for s.ctx.Err() == nil {
		s.mu.Lock()
		var pending []*Adapter
		streams := []string{s.wake}
		cursors := []string{wakeCursor}
		byStream := make(map[string]*Adapter, len(s.adapters))
		for key, a := range s.adapters {
			cursor, ok := a.position()
			if !ok {
				pending = append(pending, a)
				continue
			}
			streams = append(streams, key)
			cursors = append(cursors, cursor)
			byStream[key] = a
		}
		s.mu.Unlock()
		for _, a := range pending {
			ctx, cancel := context.WithTimeout(s.ctx, s.opts.OpTimeout)
			err := a.init(ctx)
			cancel()
			if err != nil && s.ctx.Err() == nil {
				s.opts.Logger.Warn("redisadapter: reading the packet stream failed", "namespace", a.ns.Name(), "err", err)
			}
		}
		if len(pending) > 0 && len(byStream) == 0 {
			backoff()
			continue
		}
		res, err := s.rdb.XRead(s.ctx, &redis.XReadArgs{
			Streams: append(streams, cursors...), Count: 256, Block: s.opts.ReadBlock,
		}).Result()
		if errors.Is(err, redis.Nil) {
			failures = 0
			continue
		}
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.opts.Logger.Warn("redisadapter: reading the packet streams failed; backing off", "err", err)
			backoff()
			continue
		}
		failures = 0
		for _, st := range res {
			if st.Stream == s.wake {
				if n := len(st.Messages); n > 0 {
					wakeCursor = st.Messages[n-1].ID
				}
				continue
			}
			if a := byStream[st.Stream]; a != nil {
				a.deliver(st.Messages)
			}
		}
	}
}

// Adapter is the adapter of one namespace: rooms and local delivery as the embedded MemoryAdapter, with
// recovery kept in Redis (see the package documentation).
type Adapter struct {
	*socketio.MemoryAdapter
	store    *Store
	ns       *socketio.Namespace
	recovery socketio.RecoveryConfig
	base     string // key prefix of the namespace
	stream   string

	// mu serializes the reader's deliveries with RestoreSession. cursor is the id of the last entry
	// delivered; advanced is closed (and replaced) whenever it moves.
	mu       sync.Mutex
	ready    bool
	cursor   string
	advanced chan struct{}
}

var _ socketio.Adapter = (*Adapter)(nil)

// init sets the reader's position to the stream's last entry, unless it is set already.
func (a *Adapter) init(ctx context.Context) error {
	if _, ok := a.position(); ok {
		return nil
	}
	xs, err := a.store.rdb.XRevRangeN(ctx, a.stream, "+", "-", 1).Result()
	if err != nil {
		return err
	}
	cursor := "0-0"
	if len(xs) > 0 {
		cursor = xs[0].ID
	}
	a.mu.Lock()
	if !a.ready {
		a.ready, a.cursor = true, cursor
	}
	a.mu.Unlock()
	return nil
}

// position returns the id of the last entry delivered, and whether the reader follows the stream.
func (a *Adapter) position() (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cursor, a.ready
}

// deliver sends the entries read from the stream to this replica's sockets.
func (a *Adapter) deliver(xs []redis.XMessage) {
	a.mu.Lock()
	defer a.mu.Unlock()
	moved := false
	for _, x := range xs {
		if compareIDs(x.ID, a.cursor) <= 0 {
			continue
		}
		a.cursor, moved = x.ID, true
		e, err := decodeEntry(a.ns.Name(), x)
		if err != nil {
			a.store.opts.Logger.Warn("redisadapter: skipped an undecodable packet", "namespace", a.ns.Name(), "id", x.ID, "err", err)
			continue
		}
		a.MemoryAdapter.Deliver(e.packet.WithOffset(x.ID), socketio.BroadcastOptions{Rooms: e.rooms, Except: e.except})
	}
	if moved {
		close(a.advanced)
		a.advanced = make(chan struct{})
	}
}

// waitDelivered waits until the reader has delivered entry id, or ctx ends.
func (a *Adapter) waitDelivered(ctx context.Context, id string) bool {
	for {
		a.mu.Lock()
		done := a.ready && compareIDs(a.cursor, id) >= 0
		ch := a.advanced
		a.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// appendScript appends a packet to the stream (KEYS[1]) and returns its id. With a second key it does
// so only if that key is new, remembering the id under it for ARGV[2] ms; otherwise it returns the id
// remembered. ARGV[1] is the MAXLEN cap; the entry's fields follow.
var appendScript = redis.NewScript(`
if #KEYS == 2 then
  local id = redis.call('GET', KEYS[2])
  if id then return id end
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))
if #KEYS == 2 then redis.call('SET', KEYS[2], id, 'PX', ARGV[2]) end
return id
`)

// maxKeyLen is the longest broadcast key used as is; longer ones are hashed.
const maxKeyLen = 128

// Broadcast implements socketio.Adapter: recoverable packets go through the stream (see the package
// documentation), the others straight to this replica's sockets.
func (a *Adapter) Broadcast(p *socketio.Packet, opts socketio.BroadcastOptions) error {
	if !a.recovery.Enabled || opts.Local || !socketio.Recoverable(p, opts) {
		a.MemoryAdapter.Deliver(p, opts)
		return nil
	}
	if _, ready := a.position(); !ready {
		a.store.opts.Logger.Warn("redisadapter: packet stream not followed yet; delivering without recovery",
			"namespace", a.ns.Name())
		a.MemoryAdapter.Deliver(p, opts)
		return nil
	}
	keys := []string{a.stream}
	if opts.Key != "" {
		k := opts.Key
		if len(k) > maxKeyLen {
			sum := sha256.Sum256([]byte(k))
			k = "sha256:" + hex.EncodeToString(sum[:])
		}
		keys = append(keys, a.base+"key:"+k)
	}
	args := []any{a.recovery.MaxPackets, a.store.opts.KeyTTL.Milliseconds()}
	args = append(args, encodeEntry(p, opts)...)
	ctx, cancel := context.WithTimeout(a.store.ctx, a.store.opts.OpTimeout)
	id, err := appendScript.Run(ctx, a.store.rdb, keys, args...).Text()
	cancel()
	if err != nil {
		a.store.opts.Logger.Warn("redisadapter: storing a packet failed; delivering without recovery",
			"namespace", a.ns.Name(), "err", err)
		a.MemoryAdapter.Deliver(p, opts)
		return nil
	}
	ctx, cancel = context.WithTimeout(a.store.ctx, a.store.opts.DeliveryWait)
	defer cancel()
	if !a.waitDelivered(ctx, id) {
		a.store.opts.Logger.Warn("redisadapter: packet not delivered yet; it follows when the reader catches up",
			"namespace", a.ns.Name(), "id", id)
	}
	return nil
}

// storedSession is a session's record in Redis.
type storedSession struct {
	SID   string   `json:"sid"`
	Rooms []string `json:"rooms"`
	Data  []byte   `json:"data,omitempty"`
	At    int64    `json:"at"` // disconnection, Unix ms
}

// maxPIDLen bounds the private session ids looked up (the server's are 20 characters).
const maxPIDLen = 64

func (a *Adapter) sessionKey(pid string) string { return a.base + "session:" + pid }

// PersistSession implements socketio.Adapter.
func (a *Adapter) PersistSession(s *socketio.Session) {
	if !a.recovery.Enabled || s.PID == "" || len(s.PID) > maxPIDLen {
		return
	}
	rec := storedSession{SID: s.SID, Rooms: s.Rooms, At: time.Now().UnixMilli()}
	if s.Data != nil {
		data, err := a.store.opts.EncodeData(s.Data)
		if err != nil {
			a.store.opts.Logger.Warn("redisadapter: session data not encodable; session not kept", "namespace", a.ns.Name(), "err", err)
			return
		}
		rec.Data = data
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(a.store.ctx, a.store.opts.OpTimeout)
	defer cancel()
	if err := a.store.rdb.Set(ctx, a.sessionKey(s.PID), body, a.recovery.MaxDisconnectionDuration).Err(); err != nil {
		a.store.opts.Logger.Warn("redisadapter: storing a session failed", "namespace", a.ns.Name(), "err", err)
	}
}

// RestoreSession implements socketio.Adapter.
func (a *Adapter) RestoreSession(pid, offset string, attach func(*socketio.Session)) (*socketio.Session, error) {
	if !a.recovery.Enabled || pid == "" || len(pid) > maxPIDLen || !validID(offset) {
		return nil, nil
	}
	if _, ready := a.position(); !ready {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(a.store.ctx, a.store.opts.OpTimeout)
	defer cancel()
	body, err := a.store.rdb.GetDel(ctx, a.sessionKey(pid)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redisadapter: reading session: %w", err)
	}
	var rec storedSession
	if err := json.Unmarshal(body, &rec); err != nil || rec.SID == "" {
		return nil, fmt.Errorf("redisadapter: undecodable session record: %v", err)
	}
	if time.Since(time.UnixMilli(rec.At)) > a.recovery.MaxDisconnectionDuration {
		return nil, nil
	}
	var data any
	if rec.Data != nil {
		if data, err = a.store.opts.DecodeData(rec.Data); err != nil {
			return nil, fmt.Errorf("redisadapter: undecodable session data: %w", err)
		}
	}
	// Entries up to the client's offset must be behind the local reader, else it would deliver them
	// to the restored socket again.
	if !a.waitDelivered(ctx, offset) {
		return nil, errors.New("redisadapter: the local reader did not reach the client's offset in time")
	}
	// Read what the reader has delivered so far without holding it up, then, holding it, what it
	// delivered meanwhile, and attach the socket before it delivers more.
	through, _ := a.position()
	missed, ok, err := a.missed(ctx, offset, through, rec.Rooms, true)
	if err != nil || !ok {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if compareIDs(a.cursor, through) > 0 {
		more, _, err := a.missed(ctx, "("+through, a.cursor, rec.Rooms, false)
		if err != nil {
			return nil, err
		}
		missed = append(missed, more...)
	}
	sess := &socketio.Session{SID: rec.SID, PID: pid, Rooms: rec.Rooms, Data: data, MissedPackets: missed}
	attach(sess)
	a.MemoryAdapter.AddAll(sess.SID, sess.Rooms)
	return sess, nil
}

// replayPage is how many entries one XRANGE of a replay reads.
const replayPage = 500

// missed returns the packets of the stream entries from start (an id, or "(" and an id to exclude it)
// through through that a socket in rooms received, with their offsets. With offsetFirst, start is the
// client's offset: the entry itself is not returned, and ok is false when it is no longer in the stream
// (entries after it may have been trimmed).
func (a *Adapter) missed(ctx context.Context, start, through string, rooms []string, offsetFirst bool) (packets []*socketio.Packet, ok bool, err error) {
	for page := 0; ; page++ {
		xs, err := a.store.rdb.XRangeN(ctx, a.stream, start, through, replayPage).Result()
		if err != nil {
			return nil, false, fmt.Errorf("redisadapter: reading missed packets: %w", err)
		}
		if page == 0 && offsetFirst {
			if len(xs) == 0 || xs[0].ID != start {
				return nil, false, nil
			}
			xs = xs[1:]
		}
		for _, x := range xs {
			e, err := decodeEntry(a.ns.Name(), x)
			if err != nil {
				a.store.opts.Logger.Warn("redisadapter: skipped an undecodable packet", "namespace", a.ns.Name(), "id", x.ID, "err", err)
				continue
			}
			if includes(rooms, e.rooms, e.except) {
				packets = append(packets, e.packet.WithOffset(x.ID))
			}
		}
		if len(xs) == 0 {
			return packets, true, nil
		}
		start = "(" + xs[len(xs)-1].ID
	}
}

// includes reports whether a socket in rooms was a recipient of a broadcast to targets except excluded.
func includes(rooms, targets, excluded []string) bool {
	included := len(targets) == 0
	for _, r := range rooms {
		for _, x := range excluded {
			if x == r {
				return false
			}
		}
		if !included {
			for _, t := range targets {
				if t == r {
					included = true
					break
				}
			}
		}
	}
	return included
}

// Close implements socketio.Adapter: the store stops following the namespace's stream.
func (a *Adapter) Close() error {
	a.store.remove(a)
	return nil
}

// Entry fields.
const (
	fieldType        = "t"
	fieldData        = "d"
	fieldRooms       = "r"
	fieldExcept      = "x"
	fieldAttachments = "n"
	attachmentPrefix = "a"
)

func encodeEntry(p *socketio.Packet, opts socketio.BroadcastOptions) []any {
	fields := []any{fieldType, strconv.Itoa(int(p.Type)), fieldData, string(p.Data)}
	if len(opts.Rooms) > 0 {
		r, _ := json.Marshal(opts.Rooms)
		fields = append(fields, fieldRooms, string(r))
	}
	if len(opts.Except) > 0 {
		x, _ := json.Marshal(opts.Except)
		fields = append(fields, fieldExcept, string(x))
	}
	if len(p.Attachments) > 0 {
		fields = append(fields, fieldAttachments, strconv.Itoa(len(p.Attachments)))
		for i, b := range p.Attachments {
			fields = append(fields, attachmentPrefix+strconv.Itoa(i), string(b))
		}
	}
	return fields
}

type entry struct {
	packet *socketio.Packet
	rooms  []string
	except []string
}

// maxAttachments bounds the attachments decoded from one entry.
const maxAttachments = 1000

func decodeEntry(nsp string, x redis.XMessage) (entry, error) {
	str := func(name string) (string, bool) {
		v, ok := x.Values[name].(string)
		return v, ok
	}
	var e entry
	typ, ok := str(fieldType)
	if !ok {
		return e, errors.New("no packet type")
	}
	t, err := strconv.Atoi(typ)
	if err != nil || (socketio.PacketType(t) != socketio.PacketEvent && socketio.PacketType(t) != socketio.PacketBinaryEvent) {
		return e, fmt.Errorf("packet type %q is not an event", typ)
	}
	data, ok := str(fieldData)
	if !ok || !json.Valid([]byte(data)) || !strings.HasPrefix(strings.TrimSpace(data), "[") {
		return e, errors.New("packet data is not a JSON array")
	}
	p := &socketio.Packet{Type: socketio.PacketType(t), Namespace: nsp, Data: json.RawMessage(data)}
	if r, ok := str(fieldRooms); ok {
		if err := json.Unmarshal([]byte(r), &e.rooms); err != nil {
			return e, fmt.Errorf("rooms: %w", err)
		}
	}
	if r, ok := str(fieldExcept); ok {
		if err := json.Unmarshal([]byte(r), &e.except); err != nil {
			return e, fmt.Errorf("excluded rooms: %w", err)
		}
	}
	if n, ok := str(fieldAttachments); ok {
		count, err := strconv.Atoi(n)
		if err != nil || count < 0 || count > maxAttachments {
			return e, fmt.Errorf("attachment count %q", n)
		}
		for i := range count {
			b, ok := str(attachmentPrefix + strconv.Itoa(i))
			if !ok {
				return e, fmt.Errorf("attachment %d missing", i)
			}
			p.Attachments = append(p.Attachments, []byte(b))
		}
	}
	if (p.Type == socketio.PacketBinaryEvent) != (len(p.Attachments) > 0) {
		return e, errors.New("attachments do not match the packet type")
	}
	e.packet = p
	return e, nil
}

// parseID splits a stream id "<ms>-<seq>".
func parseID(id string) (ms, seq uint64, ok bool) {
	a, b, found := strings.Cut(id, "-")
	if !found || a == "" || b == "" || len(a) > 20 || len(b) > 20 {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}

func validID(id string) bool {
	_, _, ok := parseID(id)
	return ok
}

// compareIDs orders two valid stream ids (an invalid id sorts first).
func compareIDs(x, y string) int {
	xm, xs, _ := parseID(x)
	ym, ys, _ := parseID(y)
	switch {
	case xm != ym:
		if xm < ym {
			return -1
		}
		return 1
	case xs != ys:
		if xs < ys {
			return -1
		}
		return 1
	}
	return 0
}
