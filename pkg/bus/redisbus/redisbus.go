// Package redisbus is the Redis Streams adapter of the bus port (microservices mode), on go-redis v9.
//
// # Layout
//
// A topic is Partitions streams. With one partition (the default) the stream key is
// Prefix+topic, e.g. "cw:dev:audit:log", and message ids are the stream's own entry ids. With N > 1
// partitions the streams are Prefix+topic+"#0" ... "#N-1", a message goes to the stream of its key's
// hash (keyless messages are spread round-robin), and a Lua script gives every message of the topic
// an id from one topic-wide sequence (key Prefix+topic+"#id"), so ids stay unique and increasing
// across the topic's streams: Replay and fan-out merge the streams in publish order, and Delete
// needs no partition. An entry's fields are "key", "payload" and one "h:<name>" per header.
//
// Publish is XADD with MAXLEN ~ (each partition is capped at its share of the topic's MaxLen):
// the oldest entries are trimmed, consumed or not. Len is XLEN: consumed entries count until
// trimmed, as the stream keeps them for Replay.
//
// # Consumer groups and per-key order
//
// Each partition stream has the Redis consumer group. Redis hands entries to whichever member
// reads first, which would break per-key order, so a partition is leased to one member of the
// group at a time and only the holder reads it:
//
//   - Members heartbeat into a sorted set (Prefix+topic+"#g#"+group+"#members", scored by expiry on
//     the Redis clock) every LeaseTTL/3. Each member computes the same assignment from the sorted
//     member names: partition p belongs to member p mod n.
//   - A member takes an assigned partition with a lease key (SET NX PX LeaseTTL, value: the
//     consumer name), renews it while it lives, and releases the partitions it is no longer
//     assigned after finishing its batch in flight. A member that dies stops renewing; its
//     partitions move once its heartbeat and leases expire.
//   - A member that takes a partition first re-reads its own pending entries (a restarted consumer
//     keeps its name), then claims the entries other members left pending (XAUTOCLAIM, once idle
//     for ClaimIdle) before it reads new ones (XREADGROUP ">"), so a key's messages never overtake
//     each other across a handover. A member releasing a partition marks its pending entries idle
//     (XCLAIM IDLE JUSTID), so its successor claims them at once instead of after ClaimIdle.
//   - After a failed batch the partition pauses for Retry and then redelivers its failed entries
//     (XCLAIM to itself) before anything newer; other partitions go on.
//
// Reads are XREADGROUP COUNT BatchSize BLOCK MaxWait over the live partitions a member holds: a
// batch goes to the handler as soon as any entry is there, and the block also bounds how long
// closing a subscription waits.
//
// Messages are acknowledged (XACK) after the handler returns nil; a *bus.BatchError acknowledges
// all but the failed ones. Delivery counts come from XPENDING. A message that fails on its
// MaxDeliveries-th delivery, or is found pending with MaxDeliveries deliveries used up (its member
// died), is moved to the dead-letter topic (published, then XACKed: a crash in between can
// leave a duplicate in the dead-letter topic, never a loss). An entry that cannot be decoded (no
// "payload" field) is dead-lettered at once with reason "malformed entry: ...".
//
// Loops survive Redis restarts: every failed call backs off (50 ms doubling to 5 s) and retries; a
// stream or group that vanished (a restart without persistence) is re-created (XGROUP CREATE
// MKSTREAM from "0") on NOGROUP; leases and heartbeats that vanished are taken again.
//
// Each group member and fan-out subscriber holds one connection of the client's pool while it
// blocks in a read: size the pool (REDIS_POOL_SIZE) for them plus the publishers.
//
// Consumer names must be unique among the live members of a group (the default hostname-pid is).
// Partition counts must agree across every process using a topic.
//
// # Fan-out
//
// FanOut reads with XREAD from the topic's last id at the time of the call, each subscriber with
// its own cursor, so every replica sees every message. With several partitions it reads them all
// at once (one atomic XREAD) and merges by id.
//
// # Contexts
//
// go-redis bounds a command by a context's deadline only when the client was built with
// ContextTimeoutEnabled. When it was not, Publish, Replay, Delete and Len run the command on a
// goroutine owned by the bus and return when ctx ends (the command may still complete), so the
// audit client's 50 ms enqueue timeout holds either way.
package redisbus

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classwaves/classwaves/pkg/bus"
)

// Entry fields.
const (
	fieldKey     = "key"
	fieldPayload = "payload"
	headerPrefix = "h:"
)

// HeaderMalformed is set on a message Replay returns for an entry it could not decode (no
// "payload" field); its Payload is then the entry's raw fields as a JSON object.
const HeaderMalformed = "bus-malformed"

// Defaults of Options.
const (
	DefaultLeaseTTL  = 10 * time.Second
	DefaultReadBlock = time.Second
)

// TopicOptions tune one topic.
type TopicOptions struct {
	// MaxLen caps the topic's backlog with XADD MAXLEN ~ (each partition at MaxLen/Partitions,
	// rounded up): Redis trims whole nodes of entries, so a stream may hold up to about 100 entries
	// more than its cap. 0: no cap.
	MaxLen int64
	// Partitions is the number of streams the topic is split into (default 1). A group's members
	// share a topic's partitions, so a group works on at most Partitions members at a time.
	Partitions int
}

// Options configure the bus.
type Options struct {
	// Prefix starts every key, e.g. "cw:dev:".
	Prefix string
	// Default applies to every topic not listed in Topics.
	Default TopicOptions
	// Topics overrides Default by topic name (e.g. "audit:log": {MaxLen: 50000}).
	Topics map[string]TopicOptions
	// LeaseTTL is how long a partition lease and a member heartbeat last without renewal; they are
	// renewed every LeaseTTL/3. A dead member's partitions move after about this long.
	LeaseTTL time.Duration
	// ReadBlock is how long a fan-out read blocks in Redis; it bounds how long closing a fan-out
	// subscription waits (default 1s). Group reads block for SubscribeOptions.MaxWait.
	ReadBlock time.Duration
	// Logger receives errors of the background loops and dead-letter notices (default: discard).
	Logger *slog.Logger
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	check := func(name string, t TopicOptions) error {
		if t.MaxLen < 0 {
			return fmt.Errorf("redisbus: %s MaxLen must be >= 0, got %d", name, t.MaxLen)
		}
		if t.Partitions < 0 || t.Partitions > 1024 {
			return fmt.Errorf("redisbus: %s Partitions must be between 1 and 1024 (0: 1), got %d", name, t.Partitions)
		}
		return nil
	}
	if err := check("default", o.Default); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(o.Topics)) {
		if err := checkTopic(name); err != nil {
			return err
		}
		if err := check("topic "+strconv.Quote(name), o.Topics[name]); err != nil {
			return err
		}
	}
	if o.LeaseTTL < 0 || (o.LeaseTTL > 0 && o.LeaseTTL < 30*time.Millisecond) {
		return fmt.Errorf("redisbus: LeaseTTL must be at least 30ms (0: %v), got %v", DefaultLeaseTTL, o.LeaseTTL)
	}
	if o.ReadBlock < 0 || (o.ReadBlock > 0 && o.ReadBlock < time.Millisecond) {
		return fmt.Errorf("redisbus: ReadBlock must be at least 1ms (0: %v), got %v", DefaultReadBlock, o.ReadBlock)
	}
	return nil
}

// checkTopic refuses names the key layout cannot tell apart.
func checkTopic(topic string) error {
	if topic == "" {
		return errors.New("redisbus: empty topic name")
	}
	if strings.Contains(topic, "#") {
		return fmt.Errorf("redisbus: topic name %q contains '#', which separates partitions in keys", topic)
	}
	return nil
}

// Bus is the Redis Streams adapter. It does not own the client: Close leaves it open.
type Bus struct {
	rdb  redis.UniversalClient
	opts Options
	log  *slog.Logger
	// ctxAware: the client bounds commands by context deadlines itself.
	ctxAware bool
	rr       atomic.Uint64 // round-robin partition of keyless messages

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
	calls  sync.WaitGroup // commands still running after their caller's context ended
}

var _ bus.Bus = (*Bus)(nil)

// New returns a bus on rdb. It fails only when opts do not validate.
func New(opts Options, rdb redis.UniversalClient) (*Bus, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if rdb == nil {
		return nil, errors.New("redisbus: nil client")
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.ReadBlock == 0 {
		opts.ReadBlock = DefaultReadBlock
	}
	l := opts.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	b := &Bus{rdb: rdb, opts: opts, log: l, subs: make(map[*subscription]struct{})}
	switch c := rdb.(type) {
	case *redis.Client:
		b.ctxAware = c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		b.ctxAware = c.Options().ContextTimeoutEnabled
	}
	return b, nil
}

// topicInfo is a topic's resolved options and key names.
type topicInfo struct {
	name    string
	parts   int
	partCap int64 // MAXLEN of each partition stream; 0: none
	streams []string
	idKey   string
}

func (b *Bus) topic(name string) topicInfo {
	o, ok := b.opts.Topics[name]
	if !ok {
		o = b.opts.Default
	}
	n := max(o.Partitions, 1)
	t := topicInfo{name: name, parts: n, idKey: b.opts.Prefix + name + "#id"}
	if o.MaxLen > 0 {
		t.partCap = (o.MaxLen + int64(n) - 1) / int64(n)
	}
	if n == 1 {
		t.streams = []string{b.opts.Prefix + name}
	} else {
		for p := range n {
			t.streams = append(t.streams, b.opts.Prefix+name+"#"+strconv.Itoa(p))
		}
	}
	return t
}

// partition picks the stream of a message: by key hash, round-robin for keyless messages.
func (b *Bus) partition(t topicInfo, key string) int {
	if t.parts == 1 {
		return 0
	}
	if key == "" {
		return int(b.rr.Add(1) % uint64(t.parts))
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(t.parts))
}

func (b *Bus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// call runs fn within ctx: directly when the client honours deadlines or ctx cannot end, else on a
// goroutine the bus owns (Close waits for it), returning ctx's error when ctx ends first.
func (b *Bus) call(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.ctxAware || ctx.Done() == nil {
		return fn(ctx)
	}
	// Registered under mu, so that Close's Wait never races with an Add.
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return bus.ErrClosed
	}
	b.calls.Add(1)
	b.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		defer b.calls.Done()
		done <- fn(context.WithoutCancel(ctx))
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// encode renders msg as XADD field/value pairs.
func encode(msg bus.Outgoing) []any {
	v := make([]any, 0, 4+2*len(msg.Headers))
	v = append(v, fieldKey, msg.Key, fieldPayload, msg.Payload)
	for _, k := range slices.Sorted(maps.Keys(msg.Headers)) {
		v = append(v, headerPrefix+k, msg.Headers[k])
	}
	return v
}

// decode reads a stream entry. An entry without a payload field is malformed: the error says so
// and the returned message carries the raw fields as its JSON payload.
func decode(topic string, x redis.XMessage, deliveries int) (bus.Message, error) {
	m := bus.Message{ID: x.ID, Topic: topic, Deliveries: deliveries}
	payload, ok := x.Values[fieldPayload]
	if !ok {
		raw := make(map[string]string, len(x.Values))
		for k, v := range x.Values {
			raw[k] = fmt.Sprint(v)
		}
		m.Payload, _ = json.Marshal(raw)
		m.Key = raw[fieldKey]
		return m, errors.New(`malformed entry: no "payload" field`)
	}
	m.Payload = []byte(fmt.Sprint(payload))
	if k, ok := x.Values[fieldKey]; ok {
		m.Key = fmt.Sprint(k)
	}
	for k, v := range x.Values {
		if name, ok := strings.CutPrefix(k, headerPrefix); ok {
			if m.Headers == nil {
				m.Headers = make(map[string]string)
			}
			m.Headers[name] = fmt.Sprint(v)
		}
	}
	return m, nil
}

// Publish appends msg to topic (XADD MAXLEN ~ its cap) and returns its id.
func (b *Bus) Publish(ctx context.Context, topic string, msg bus.Outgoing) (string, error) {
	if b.isClosed() {
		return "", bus.ErrClosed
	}
	if err := checkTopic(topic); err != nil {
		return "", err
	}
	t := b.topic(topic)
	var id string
	err := b.call(ctx, func(ctx context.Context) error {
		var err error
		id, err = b.add(ctx, t, msg)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("redisbus: publish to %s: %w", topic, err)
	}
	return id, nil
}

// add appends msg to its partition of t.
func (b *Bus) add(ctx context.Context, t topicInfo, msg bus.Outgoing) (string, error) {
	stream := t.streams[b.partition(t, msg.Key)]
	if t.parts == 1 {
		return b.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, MaxLen: t.partCap, Approx: t.partCap > 0, Values: encode(msg)}).Result()
	}
	args := append([]any{t.partCap}, encode(msg)...)
	return publishScript.Run(ctx, b.rdb, []string{stream, t.idKey}, args...).Text()
}

// streamID is a parsed stream entry id, for merging partitions.
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) streamID {
	a, b, _ := strings.Cut(s, "-")
	ms, _ := strconv.ParseUint(a, 10, 64)
	seq, _ := strconv.ParseUint(b, 10, 64)
	return streamID{ms, seq}
}

func compareIDs(a, b string) int {
	x, y := parseStreamID(a), parseStreamID(b)
	if c := cmp.Compare(x.ms, y.ms); c != 0 {
		return c
	}
	return cmp.Compare(x.seq, y.seq)
}

// mergeCut merges per-stream reads (each ascending, each at most limit long) into one ascending
// list that is complete up to its end: when a stream returned limit entries it may have more, so
// nothing after its last entry is kept.
func mergeCut(reads [][]redis.XMessage, limit int) []redis.XMessage {
	var all []redis.XMessage
	cut := ""
	for _, r := range reads {
		all = append(all, r...)
		if len(r) >= limit && len(r) > 0 {
			if last := r[len(r)-1].ID; cut == "" || compareIDs(last, cut) < 0 {
				cut = last
			}
		}
	}
	slices.SortFunc(all, func(a, b redis.XMessage) int { return compareIDs(a.ID, b.ID) })
	if cut != "" {
		i, _ := slices.BinarySearchFunc(all, cut, func(x redis.XMessage, id string) int { return compareIDs(x.ID, id) })
		all = all[:i+1]
	}
	return all
}

// Replay returns up to limit messages with ids greater than after (XRANGE with an exclusive
// start). Entries it cannot decode are returned with the HeaderMalformed header.
func (b *Bus) Replay(ctx context.Context, topic, after string, limit int) ([]bus.Message, error) {
	if b.isClosed() {
		return nil, bus.ErrClosed
	}
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("redisbus: replay limit must be positive, got %d", limit)
	}
	start := "-"
	if after != "" && after != "0" {
		start = "(" + after
	}
	t := b.topic(topic)
	var entries []redis.XMessage
	err := b.call(ctx, func(ctx context.Context) error {
		if t.parts == 1 {
			var err error
			entries, err = b.rdb.XRangeN(ctx, t.streams[0], start, "+", int64(limit)).Result()
			return err
		}
		// One transaction: a consistent snapshot of every partition.
		cmds := make([]*redis.XMessageSliceCmd, t.parts)
		if _, err := b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for i, s := range t.streams {
				cmds[i] = p.XRangeN(ctx, s, start, "+", int64(limit))
			}
			return nil
		}); err != nil {
			return err
		}
		reads := make([][]redis.XMessage, t.parts)
		for i, c := range cmds {
			reads[i] = c.Val()
		}
		entries = mergeCut(reads, limit)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redisbus: replay %s after %q: %w", topic, after, err)
	}
	if len(entries) > limit {
		entries = entries[:limit]
	}
	out := make([]bus.Message, 0, len(entries))
	for _, x := range entries {
		m, err := decode(topic, x, 0)
		if err != nil {
			m.Headers = map[string]string{HeaderMalformed: err.Error()}
		}
		out = append(out, m)
	}
	return out, nil
}

// Delete removes messages by id (XDEL); unknown ids are ignored.
func (b *Bus) Delete(ctx context.Context, topic string, ids ...string) error {
	if b.isClosed() {
		return bus.ErrClosed
	}
	if err := checkTopic(topic); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	t := b.topic(topic)
	err := b.call(ctx, func(ctx context.Context) error {
		_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, s := range t.streams {
				p.XDel(ctx, s, ids...)
			}
			return nil
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("redisbus: delete from %s: %w", topic, err)
	}
	return nil
}

// Len reports how many entries the topic's streams hold (XLEN).
func (b *Bus) Len(ctx context.Context, topic string) (int64, error) {
	if b.isClosed() {
		return 0, bus.ErrClosed
	}
	if err := checkTopic(topic); err != nil {
		return 0, err
	}
	t := b.topic(topic)
	var n int64
	err := b.call(ctx, func(ctx context.Context) error {
		cmds := make([]*redis.IntCmd, t.parts)
		if _, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, s := range t.streams {
				cmds[i] = p.XLen(ctx, s)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, c := range cmds {
			n += c.Val()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("redisbus: len of %s: %w", topic, err)
	}
	return n, nil
}

// Close stops every subscription, waiting for handlers in flight, and refuses further calls. The
// client stays open.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := slices.Collect(maps.Keys(b.subs))
	b.mu.Unlock()
	for _, s := range subs {
		_ = s.Close()
	}
	b.calls.Wait()
	return nil
}

// subscription is a running group member or fan-out reader: goroutines stopped by Close or by
// the context given at subscription.
type subscription struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Close stops the subscription and waits for its goroutines (and the handler in flight).
func (s *subscription) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// start registers a subscription whose goroutines are run; it ends when they all return.
func (b *Bus) start(ctx context.Context, run ...func(ctx context.Context)) (*subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, bus.ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &subscription{cancel: cancel, done: make(chan struct{})}
	b.subs[s] = struct{}{}
	var wg sync.WaitGroup
	for _, r := range run {
		wg.Go(func() { r(ctx) })
	}
	go func() {
		wg.Wait()
		cancel()
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
		close(s.done)
	}()
	return s, nil
}

// backoff paces retries of a failing loop: 50 ms doubling to 5 s.
type backoff struct{ d time.Duration }

func (b *backoff) next() time.Duration {
	b.d = min(max(b.d*2, 50*time.Millisecond), 5*time.Second)
	return b.d
}

func (b *backoff) reset() { b.d = 0 }
