package socketio

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// newTestAdapter returns a MemoryAdapter of a namespace without sockets (recovery off): enough for the
// room bookkeeping, which never looks at the sockets.
func newTestAdapter() *MemoryAdapter {
	return NewMemoryAdapter(&Namespace{srv: &Server{}, sockets: make(map[string]*Socket)})
}

// recipients returns the sorted ids of the sockets a broadcast with opts goes to, as Broadcast and
// Deliver select them.
func recipients(a *MemoryAdapter, opts BroadcastOptions) []string {
	var out []string
	a.mu.RLock()
	a.matchLocked(opts, func(sid string) { out = append(out, sid) })
	a.mu.RUnlock()
	slices.Sort(out)
	return out
}

// adapterModel is the room bookkeeping as the MemoryAdapter first kept it, two maps of sets with every
// room stored, a socket's own included. The adapter now stores rooms more compactly and must still
// answer exactly as this does.
type adapterModel struct {
	rooms map[string]map[string]bool // room -> socket ids
	sids  map[string]map[string]bool // socket id -> rooms
}

func newAdapterModel() *adapterModel {
	return &adapterModel{rooms: make(map[string]map[string]bool), sids: make(map[string]map[string]bool)}
}

func (m *adapterModel) addAll(sid string, rooms []string) {
	if m.sids[sid] == nil {
		m.sids[sid] = make(map[string]bool)
	}
	for _, r := range rooms {
		m.sids[sid][r] = true
		if m.rooms[r] == nil {
			m.rooms[r] = make(map[string]bool)
		}
		m.rooms[r][sid] = true
	}
}

func (m *adapterModel) del(sid, room string) {
	if m.sids[sid] != nil {
		delete(m.sids[sid], room)
	}
	delete(m.rooms[room], sid)
	if len(m.rooms[room]) == 0 {
		delete(m.rooms, room)
	}
}

func (m *adapterModel) delAll(sid string) {
	for r := range m.sids[sid] {
		m.del(sid, r)
	}
	delete(m.sids, sid)
}

// roomsOf is what Rooms returns: sorted, and empty but not nil for an unknown socket.
func (m *adapterModel) roomsOf(sid string) []string {
	rooms := slices.AppendSeq([]string{}, maps.Keys(m.sids[sid]))
	slices.Sort(rooms)
	return rooms
}

// match is what SocketIDs returns and the sockets a broadcast goes to: sorted, and nil when none.
func (m *adapterModel) match(opts BroadcastOptions) []string {
	in := func(sid string, rooms []string) bool {
		for _, r := range rooms {
			if m.rooms[r][sid] {
				return true
			}
		}
		return false
	}
	var out []string
	for _, sid := range slices.Sorted(maps.Keys(m.sids)) {
		if (len(opts.Rooms) == 0 || in(sid, opts.Rooms)) && !in(sid, opts.Except) {
			out = append(out, sid)
		}
	}
	return out
}

// checkAdapter fails t when a's rooms and sockets do not answer as model's, or when a's two indexes
// disagree with each other.
func checkAdapter(t *testing.T, a *MemoryAdapter, model *adapterModel, names []string) {
	t.Helper()
	for _, sid := range names {
		if diff := cmp.Diff(model.roomsOf(sid), a.Rooms(sid)); diff != "" {
			t.Errorf("Rooms(%q) (-want +got):\n%s", sid, diff)
		}
	}
	// Every target of no room, one room or two, each without exception or except one room.
	targets := [][]string{nil}
	for i, r := range names {
		targets = append(targets, []string{r})
		for _, r2 := range names[i+1:] {
			targets = append(targets, []string{r, r2})
		}
	}
	for _, rooms := range targets {
		if diff := cmp.Diff(model.match(BroadcastOptions{Rooms: rooms}), a.SocketIDs(rooms)); diff != "" {
			t.Errorf("SocketIDs(%q) (-want +got):\n%s", rooms, diff)
		}
		for _, except := range names {
			opts := BroadcastOptions{Rooms: rooms, Except: []string{except}}
			if diff := cmp.Diff(model.match(opts), recipients(a, opts)); diff != "" {
				t.Errorf("recipients of %q except %q (-want +got):\n%s", rooms, except, diff)
			}
		}
	}
	checkIndexes(t, a)
}

// checkIndexes fails t when a socket's record and the rooms' members disagree, when a socket's own room
// is stored among its rooms or members, when a record lists a room twice, or when an empty room is kept.
func checkIndexes(t *testing.T, a *MemoryAdapter) {
	t.Helper()
	a.mu.RLock()
	defer a.mu.RUnlock()
	for sid, m := range a.sids {
		for i, r := range m.rooms {
			if r == sid {
				t.Errorf("socket %q: own room stored among its rooms %q", sid, m.rooms)
			}
			if slices.Contains(m.rooms[i+1:], r) {
				t.Errorf("socket %q: room %q listed twice in %q", sid, r, m.rooms)
			}
			if _, ok := a.rooms[r][sid]; !ok {
				t.Errorf("socket %q lists room %q, which does not list it", sid, r)
			}
		}
	}
	for r, members := range a.rooms {
		if len(members) == 0 {
			t.Errorf("empty room %q kept", r)
		}
		for sid := range members {
			if sid == r {
				t.Errorf("room %q stores its own socket", r)
			}
			if !slices.Contains(a.sids[sid].rooms, r) {
				t.Errorf("room %q lists socket %q, which does not list it", r, sid)
			}
		}
	}
}

// adapterOp is a step of TestMemoryAdapterRooms.
type adapterOp struct {
	op    string // "add", "del" or "delAll"
	sid   string
	rooms []string // for "add"; the one room for "del"
}

func (op adapterOp) apply(a *MemoryAdapter, model *adapterModel) {
	switch op.op {
	case "add":
		a.AddAll(op.sid, op.rooms)
		model.addAll(op.sid, op.rooms)
	case "del":
		a.Del(op.sid, op.rooms[0])
		model.del(op.sid, op.rooms[0])
	case "delAll":
		a.DelAll(op.sid)
		model.delAll(op.sid)
	default:
		panic("unknown op " + op.op)
	}
}

func TestMemoryAdapterRooms(t *testing.T) {
	add := func(sid string, rooms ...string) adapterOp { return adapterOp{"add", sid, rooms} }
	del := func(sid, room string) adapterOp { return adapterOp{"del", sid, []string{room}} }
	delAll := func(sid string) adapterOp { return adapterOp{"delAll", sid, nil} }
	for _, tc := range []struct {
		name string
		ops  []adapterOp
		// Spot checks of the end state, beyond the comparison with the model after every step.
		rooms   map[string][]string // socket id -> Rooms
		members map[string][]string // room -> SocketIDs of that room alone
	}{{
		name:    "own room",
		ops:     []adapterOp{add("a", "a"), add("b", "b")},
		rooms:   map[string][]string{"a": {"a"}, "b": {"b"}, "c": {}},
		members: map[string][]string{"a": {"a"}, "b": {"b"}, "c": nil},
	}, {
		name:    "own room and a shared one",
		ops:     []adapterOp{add("b", "b"), add("b", "bench"), add("a", "a"), add("a", "bench")},
		rooms:   map[string][]string{"a": {"a", "bench"}, "b": {"b", "bench"}},
		members: map[string][]string{"a": {"a"}, "bench": {"a", "b"}},
	}, {
		name:    "duplicates on AddAll",
		ops:     []adapterOp{add("a", "a", "r", "r", "a"), add("a", "r", "a"), del("a", "r")},
		rooms:   map[string][]string{"a": {"a"}},
		members: map[string][]string{"a": {"a"}, "r": nil},
	}, {
		name:    "rooms added in one call",
		ops:     []adapterOp{add("a", "z", "a", "m"), add("b", "m", "b")},
		rooms:   map[string][]string{"a": {"a", "m", "z"}, "b": {"b", "m"}},
		members: map[string][]string{"m": {"a", "b"}, "z": {"a"}},
	}, {
		name:    "joining another socket's room",
		ops:     []adapterOp{add("a", "a"), add("b", "b", "a")},
		rooms:   map[string][]string{"a": {"a"}, "b": {"a", "b"}},
		members: map[string][]string{"a": {"a", "b"}, "b": {"b"}},
	}, {
		name:    "leaving one's own room while another socket stays in it",
		ops:     []adapterOp{add("a", "a"), add("b", "b", "a"), del("a", "a")},
		rooms:   map[string][]string{"a": {}, "b": {"a", "b"}},
		members: map[string][]string{"a": {"b"}},
	}, {
		name:    "another socket's room outlives it",
		ops:     []adapterOp{add("a", "a"), add("b", "b", "a"), delAll("a")},
		rooms:   map[string][]string{"a": {}, "b": {"a", "b"}},
		members: map[string][]string{"a": {"b"}},
	}, {
		name:    "leaving another socket's room",
		ops:     []adapterOp{add("a", "a"), add("b", "b", "a"), del("b", "a")},
		rooms:   map[string][]string{"a": {"a"}, "b": {"b"}},
		members: map[string][]string{"a": {"a"}, "b": {"b"}},
	}, {
		name:    "a room named like a socket before it connects",
		ops:     []adapterOp{add("b", "b", "a"), add("a", "a")},
		rooms:   map[string][]string{"a": {"a"}, "b": {"a", "b"}},
		members: map[string][]string{"a": {"a", "b"}},
	}, {
		name:    "Del of the own room keeps the socket in the namespace",
		ops:     []adapterOp{add("a", "a", "r"), del("a", "a"), del("a", "missing"), del("c", "r")},
		rooms:   map[string][]string{"a": {"r"}},
		members: map[string][]string{"a": nil, "r": {"a"}},
	}, {
		name:    "a socket without rooms is in the namespace",
		ops:     []adapterOp{add("a"), add("b", "b"), del("b", "b")},
		rooms:   map[string][]string{"a": {}, "b": {}},
		members: map[string][]string{"a": nil, "b": nil},
	}, {
		name:    "DelAll",
		ops:     []adapterOp{add("a", "a", "r1", "r2"), add("b", "b", "r1"), delAll("a"), delAll("c")},
		rooms:   map[string][]string{"a": {}, "b": {"b", "r1"}},
		members: map[string][]string{"a": nil, "r1": {"b"}, "r2": nil},
	}, {
		name: "rejoining after DelAll",
		ops: []adapterOp{
			add("a", "a", "r"), delAll("a"), add("a", "a"), add("a", "r"),
		},
		rooms:   map[string][]string{"a": {"a", "r"}},
		members: map[string][]string{"a": {"a"}, "r": {"a"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			a, model := newTestAdapter(), newAdapterModel()
			names := []string{"a", "b", "c", "r", "r1", "bench"}
			for _, op := range tc.ops {
				op.apply(a, model)
				checkAdapter(t, a, model, names)
			}
			for sid, want := range tc.rooms {
				if diff := cmp.Diff(want, a.Rooms(sid)); diff != "" {
					t.Errorf("Rooms(%q) (-want +got):\n%s", sid, diff)
				}
			}
			for room, want := range tc.members {
				if diff := cmp.Diff(want, a.SocketIDs([]string{room})); diff != "" {
					t.Errorf("SocketIDs(%q) (-want +got):\n%s", room, diff)
				}
			}
		})
	}
}

// FuzzMemoryAdapter applies the operations that data encodes (three bytes each: the operation, a
// socket and a room, drawn from a few names that are both socket ids and rooms) to a MemoryAdapter and
// to the model, and compares their answers after every step.
func FuzzMemoryAdapter(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 1, 0, 0, 4, 0, 1, 4})
	f.Add([]byte{0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 0, 0})
	f.Add([]byte{3, 0, 4, 0, 1, 1, 1, 1, 0, 2, 1, 0, 0, 1, 1})
	f.Add([]byte{0, 1, 0, 0, 0, 0, 1, 0, 0, 2, 1, 0, 0, 1, 1})
	names := []string{"a", "b", "c", "r", "s"}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 3*64 {
			return // longer sequences find nothing more and slow the fuzzer down
		}
		a, model := newTestAdapter(), newAdapterModel()
		for ; len(data) >= 3; data = data[3:] {
			sid, room := names[int(data[1])%3], names[int(data[2])%len(names)]
			var op adapterOp
			switch data[0] % 4 {
			case 0:
				op = adapterOp{"add", sid, []string{room}}
			case 1:
				op = adapterOp{"del", sid, []string{room}}
			case 2:
				op = adapterOp{"delAll", sid, nil}
			case 3: // several rooms, the socket's own and a duplicate among them
				op = adapterOp{"add", sid, []string{room, sid, room, names[(int(data[2])+1)%len(names)]}}
			}
			op.apply(a, model)
			checkAdapter(t, a, model, names)
			if t.Failed() {
				t.Fatalf("after %+v", op)
			}
		}
	})
}

// TestMemoryAdapterRestoreSession persists a socket's session with its rooms, its own included, and
// checks that restoring it puts the socket back in them and returns the packets sent to them meanwhile.
func TestMemoryAdapterRestoreSession(t *testing.T) {
	a := NewMemoryAdapter(&Namespace{
		srv:     &Server{cfg: Config{Recovery: RecoveryConfig{Enabled: true, MaxDisconnectionDuration: time.Minute, MaxPackets: 100}}},
		sockets: make(map[string]*Socket),
	})
	a.AddAll("a", []string{"a"})
	a.AddAll("a", []string{"r"})
	a.AddAll("b", []string{"b", "a"}) // b in a's room: a's room outlives a's disconnection
	event := func(name string) *Packet {
		p, err := newEventPacket("/", name, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	emit := func(name string, opts BroadcastOptions) {
		if err := a.Broadcast(event(name), opts); err != nil {
			t.Fatal(err)
		}
	}
	emit("before", BroadcastOptions{})
	offset := a.epoch + strconv.FormatUint(a.nextSeq-1, 36)

	a.PersistSession(&Session{SID: "a", PID: "pid-a", Rooms: a.Rooms("a")})
	a.DelAll("a")
	if got, want := a.SocketIDs([]string{"a"}), []string{"b"}; !cmp.Equal(got, want) {
		t.Errorf("SocketIDs(a) while a is away = %q, want %q", got, want)
	}
	emit("to-a", BroadcastOptions{Rooms: []string{"a"}})
	emit("to-r", BroadcastOptions{Rooms: []string{"r"}})
	emit("to-b", BroadcastOptions{Rooms: []string{"b"}})
	emit("except-a", BroadcastOptions{Except: []string{"a"}})
	emit("to-all", BroadcastOptions{})

	var attached *Session
	sess, err := a.RestoreSession("pid-a", offset, func(s *Session) { attached = s })
	if err != nil || sess == nil {
		t.Fatalf("RestoreSession = %v, %v", sess, err)
	}
	if attached != sess {
		t.Errorf("attach got %p, want the session returned, %p", attached, sess)
	}
	var missed []string
	for _, p := range sess.MissedPackets {
		missed = append(missed, strings.SplitN(string(p.Data), `"`, 3)[1])
	}
	if diff := cmp.Diff([]string{"to-a", "to-r", "to-all"}, missed); diff != "" {
		t.Errorf("missed packets (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "r"}, a.Rooms("a")); diff != "" {
		t.Errorf("Rooms(a) after recovery (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "b"}, a.SocketIDs([]string{"a"})); diff != "" {
		t.Errorf("SocketIDs(a) after recovery (-want +got):\n%s", diff)
	}
	checkIndexes(t, a)
}

// retainedPerSocket returns the heap bytes a MemoryAdapter keeps per socket once n sockets are each in
// their own room and one shared room, as the sockets of a session are.
func retainedPerSocket(n int) float64 {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newID()
	}
	a := newTestAdapter()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, sid := range ids {
		a.AddAll(sid, []string{sid}) // as the connection does
		a.AddAll(sid, []string{"bench"})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(a)
	runtime.KeepAlive(ids)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

// TestMemoryAdapterMemoryPerSocket pins the memory an idle socket costs the adapter. A map of rooms per
// socket and a map of one member for its own room cost about 640 bytes a socket; the flag and the slice
// that replace them leave about 150 (between 120 and 190 as the maps' load varies with n). The limit
// leaves room for that variation and for the little other goroutines allocate meanwhile.
func TestMemoryAdapterMemoryPerSocket(t *testing.T) {
	const n, limit = 10000, 250
	if got := retainedPerSocket(n); got > limit {
		t.Errorf("the adapter keeps %.0f bytes per socket in its own room and a shared one, want at most %d", got, limit)
	} else {
		t.Logf("%.0f bytes per socket", got)
	}
}

// BenchmarkMemoryAdapterMatch selects the recipients of a broadcast to a shared room of 100 sockets
// except the sender, as Socket.To does, and of a broadcast to one socket's room.
func BenchmarkMemoryAdapterMatch(b *testing.B) {
	a := newTestAdapter()
	var ids []string
	for i := range 100 {
		sid := fmt.Sprint("socket-", i)
		a.AddAll(sid, []string{sid, "group"})
		ids = append(ids, sid)
	}
	for _, bc := range []struct {
		name string
		opts BroadcastOptions
	}{
		{"room except sender", BroadcastOptions{Rooms: []string{"group"}, Except: ids[:1]}},
		{"socket", BroadcastOptions{Rooms: ids[1:2]}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				a.mu.RLock()
				a.matchLocked(bc.opts, func(string) { n++ })
				a.mu.RUnlock()
			}
		})
	}
	b.Run("retained", func(b *testing.B) {
		var per float64
		for b.Loop() {
			per = retainedPerSocket(1000)
		}
		b.ReportMetric(per, "B/socket")
	})
}
