package redisadapter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/classwaves/classwaves/pkg/testenv"
	eiot "github.com/classwaves/classwaves/services/realtime/engineio/engineiotest"
	"github.com/classwaves/classwaves/services/realtime/socketio"
	"github.com/classwaves/classwaves/services/realtime/socketio/redisadapter"
)

// identity is the socket data of the test namespace: it must survive a recovery on another replica.
type identity struct {
	User string `json:"user"`
	Role string `json:"role"`
}

func encodeIdentity(v any) ([]byte, error) {
	id, ok := v.(*identity)
	if !ok {
		return nil, fmt.Errorf("unexpected socket data %T", v)
	}
	return json.Marshal(id)
}

func decodeIdentity(b []byte) (any, error) {
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		return nil, err
	}
	return &id, nil
}

// replica is one Socket.IO server with a Store on the shared Redis prefix. Its namespace /class puts
// every new socket in room "class" (and in the room named by auth.room, if any), takes auth.user as its
// data and greets it with a "welcome" event, which gives the client a first offset.
type replica struct {
	srv          *socketio.Server
	store        *redisadapter.Store
	ns           *socketio.Namespace
	ws           string
	connected    chan *socketio.Socket
	disconnected chan string
}

func newReplica(t testing.TB, rdb redis.UniversalClient, prefix string, recovery socketio.RecoveryConfig) *replica {
	t.Helper()
	store, err := redisadapter.New(rdb, redisadapter.Options{
		Prefix: prefix, ReadBlock: 100 * time.Millisecond, OpTimeout: time.Second, DeliveryWait: 2 * time.Second,
		EncodeData: encodeIdentity, DecodeData: decodeIdentity,
	})
	if err != nil {
		t.Fatal(err)
	}
	recovery.Enabled = true
	srv, err := socketio.NewServer(socketio.Config{
		Recovery: recovery, NewAdapter: store.NewAdapter, OrderedEmits: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{srv: srv, store: store, ns: srv.Of("/class"),
		connected: make(chan *socketio.Socket, 8), disconnected: make(chan string, 8)}
	r.ns.Use(func(_ context.Context, s *socketio.Socket) error {
		if s.Recovered() {
			return nil
		}
		user, _ := s.Handshake().Auth()["user"].(string)
		s.SetData(&identity{User: user, Role: "teacher"})
		return nil
	})
	r.ns.OnConnection(func(s *socketio.Socket) {
		if !s.Recovered() {
			s.Join("class")
			if room, _ := s.Handshake().Auth()["room"].(string); room != "" {
				s.Join(room)
			}
			_ = s.Emit("welcome", s.ID())
		}
		s.OnDisconnect(func(reason string) { r.disconnected <- reason })
		r.connected <- s
	})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("server Close: %v", err)
		}
		if err := store.Close(); err != nil {
			t.Errorf("store Close: %v", err)
		}
		hs.Close()
	})
	r.ws = "ws" + strings.TrimPrefix(hs.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	return r
}

// emit broadcasts event n to room on every replica given, as replicas fanning out one bus event do.
func emitAll(t testing.TB, room string, key string, n int, replicas ...*replica) {
	t.Helper()
	for _, r := range replicas {
		if err := r.ns.To(room).Key(key).Emit("news", n); err != nil {
			t.Fatal(err)
		}
	}
}

type frame struct {
	name   string
	args   []any
	offset string
}

// readEvent reads the next EVENT of /class and splits off its offset.
func readEvent(t testing.TB, ws *eiot.WS) frame {
	t.Helper()
	text := ws.ReadText()
	data, ok := strings.CutPrefix(text, "42/class,")
	if !ok {
		t.Fatalf("got %q, want an event of /class", text)
	}
	var arr []any
	if err := json.Unmarshal([]byte(data), &arr); err != nil || len(arr) < 2 {
		t.Fatalf("event %q: %v", text, err)
	}
	off, ok := arr[len(arr)-1].(string)
	if !ok {
		t.Fatalf("event %q has no offset", text)
	}
	name, _ := arr[0].(string)
	return frame{name: name, args: arr[1 : len(arr)-1], offset: off}
}

// connect joins /class on r with auth and returns the client, the CONNECT payload and the welcome offset.
func connect(t testing.TB, r *replica, auth map[string]any) (*eiot.WS, map[string]string, string) {
	t.Helper()
	ws := eiot.DialWS(t, r.ws, nil)
	ws.ReadOpen()
	a, _ := json.Marshal(auth)
	ws.Send("40/class," + string(a))
	text := ws.ReadText()
	var hs map[string]string
	if err := json.Unmarshal([]byte(strings.TrimPrefix(text, "40/class,")), &hs); err != nil || hs["sid"] == "" {
		t.Fatalf("CONNECT answer %q: %v", text, err)
	}
	var offset string
	if !isRecovery(auth) {
		f := readEvent(t, ws)
		if f.name != "welcome" {
			t.Fatalf("first event %v, want welcome", f)
		}
		offset = f.offset
	}
	return ws, hs, offset
}

func isRecovery(auth map[string]any) bool { _, ok := auth["pid"]; return ok }

func waitSocket(t testing.TB, ch chan *socketio.Socket) *socketio.Socket {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(eiot.Timeout):
		t.Fatal("no connection")
		return nil
	}
}

func waitReason(t testing.TB, ch chan string) string {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(eiot.Timeout):
		t.Fatal("no disconnection")
		return ""
	}
}

func TestEveryReplicaDeliversKeyedBroadcastsOnceWithOneOffset(t *testing.T) {
	env := testenv.Redis(t)
	rdb := env.Client(t)
	a := newReplica(t, rdb, env.Prefix, socketio.RecoveryConfig{})
	b := newReplica(t, rdb, env.Prefix, socketio.RecoveryConfig{})
	wa, _, _ := connect(t, a, map[string]any{"user": "u1"})
	wb, _, _ := connect(t, b, map[string]any{"user": "u2"})

	// The same three bus events reach the replicas in different orders.
	emitAll(t, "class", "ev-1", 1, a, b)
	emitAll(t, "class", "ev-2", 2, b, a)
	emitAll(t, "class", "ev-3", 3, a)
	emitAll(t, "class", "ev-3", 3, b)
	var offsets [2][]string
	for i, ws := range []*eiot.WS{wa, wb} {
		for n := 1; n <= 3; n++ {
			f := readEvent(t, ws)
			if f.name != "news" || len(f.args) != 1 || f.args[0] != float64(n) {
				t.Fatalf("client %d: event %v, want news %d", i, f, n)
			}
			offsets[i] = append(offsets[i], f.offset)
		}
	}
	if diff := cmp.Diff(offsets[0], offsets[1]); diff != "" {
		t.Errorf("offsets differ between replicas (-A +B):\n%s", diff)
	}
	// Each keyed broadcast was stored once: 2 welcomes + 3 events.
	if n, err := rdb.XLen(context.Background(), env.Prefix+"{sio}:/class:packets").Result(); err != nil || n != 5 {
		t.Errorf("stream length = %d (%v), want 5", n, err)
	}
	// Nothing else arrives: the next frame is the next event.
	emitAll(t, "class", "ev-4", 4, b, a)
	for _, ws := range []*eiot.WS{wa, wb} {
		if f := readEvent(t, ws); f.args[0] != float64(4) {
			t.Fatalf("event %v, want news 4", f)
		}
	}
}

func TestRecoveryOnAnotherReplica(t *testing.T) {
	env := testenv.Redis(t)
	rdb := env.Client(t)
	a := newReplica(t, rdb, env.Prefix, socketio.RecoveryConfig{})
	b := newReplica(t, rdb, env.Prefix, socketio.RecoveryConfig{})
	ws, hs, offset := connect(t, a, map[string]any{"user": "u1", "room": "group-1"})
	first := waitSocket(t, a.connected)

	ws.Drop()
	if got := waitReason(t, a.disconnected); got != "transport close" {
		t.Fatalf("disconnect reason = %q", got)
	}
	// While the client is away: events to its rooms, to a room it is not in, to everyone but its group,
	// to everyone, and one with a binary attachment.
	emitAll(t, "class", "k1", 1, a, b)
	emitAll(t, "other", "k2", 2, b, a)
	if err := b.ns.Except("group-1").Key("k3").Emit("news", 3); err != nil {
		t.Fatal(err)
	}
	if err := a.ns.To().Key("k4").Emit("news", 4); err != nil {
		t.Fatal(err)
	}
	if err := b.ns.To().Key("k4").Emit("news", 4); err != nil {
		t.Fatal(err)
	}
	if err := a.ns.To("group-1").Key("k5").Emit("audio", []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}

	ws2 := eiot.DialWS(t, b.ws, nil)
	ws2.ReadOpen()
	ws2.Send(`40/class,{"pid":"` + hs["pid"] + `","offset":"` + offset + `"}`)
	var hs2 map[string]string
	_ = json.Unmarshal([]byte(strings.TrimPrefix(ws2.ReadText(), "40/class,")), &hs2)
	if diff := cmp.Diff(hs, hs2); diff != "" {
		t.Errorf("recovered CONNECT payload (-first +second):\n%s", diff)
	}
	if f := readEvent(t, ws2); f.name != "news" || f.args[0] != float64(1) {
		t.Errorf("first missed = %v, want news 1", f)
	}
	if f := readEvent(t, ws2); f.name != "news" || f.args[0] != float64(4) {
		t.Errorf("second missed = %v, want news 4", f)
	}
	// The binary event: header then attachment.
	if text := ws2.ReadText(); !strings.HasPrefix(text, `451-/class,["audio",{"_placeholder":true,"num":0},"`) {
		t.Errorf("third missed = %q, want the binary event", text)
	}
	if fr := ws2.Read(); !fr.Binary || string(fr.Data) != "\x01\x02\x03" {
		t.Errorf("attachment = %v", fr)
	}
	second := waitSocket(t, b.connected)
	if !second.Recovered() || second.ID() != first.ID() {
		t.Fatalf("recovered %v id %q, want recovered id %q", second.Recovered(), second.ID(), first.ID())
	}
	if diff := cmp.Diff(&identity{User: "u1", Role: "teacher"}, second.Data()); diff != "" {
		t.Errorf("socket data (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(slices.Sorted(slices.Values([]string{first.ID(), "class", "group-1"})), second.Rooms()); diff != "" {
		t.Errorf("rooms (-want +got):\n%s", diff)
	}
	// Live broadcasts reach it on B, once.
	emitAll(t, "group-1", "k6", 6, a, b)
	emitAll(t, first.ID(), "k7", 7, a, b)
	for _, n := range []float64{6, 7} {
		if f := readEvent(t, ws2); f.args[0] != n {
			t.Errorf("live event = %v, want news %v", f, n)
		}
	}
}

func TestRecoveryRefused(t *testing.T) {
	tests := []struct {
		name     string
		recovery socketio.RecoveryConfig
		// away runs while the client is disconnected and returns the auth to reconnect with.
		away func(t *testing.T, r *replica, pid, offset string) map[string]any
	}{
		{"unknown pid", socketio.RecoveryConfig{}, func(_ *testing.T, _ *replica, _, offset string) map[string]any {
			return map[string]any{"pid": "nope", "offset": offset}
		}},
		{"malformed offset", socketio.RecoveryConfig{}, func(_ *testing.T, _ *replica, pid, _ string) map[string]any {
			return map[string]any{"pid": pid, "offset": "12-x"}
		}},
		{"offset never written", socketio.RecoveryConfig{}, func(_ *testing.T, _ *replica, pid, _ string) map[string]any {
			return map[string]any{"pid": pid, "offset": "1-0"}
		}},
		{"offset trimmed", socketio.RecoveryConfig{MaxPackets: 1}, func(t *testing.T, r *replica, pid, offset string) map[string]any {
			// XADD MAXLEN ~ trims whole nodes (100 entries by default): write well past one.
			for i := range 250 {
				emitAll(t, "other", "t"+strconv.Itoa(i), i, r)
			}
			return map[string]any{"pid": pid, "offset": offset}
		}},
		{"session expired", socketio.RecoveryConfig{MaxDisconnectionDuration: 200 * time.Millisecond},
			func(_ *testing.T, _ *replica, pid, offset string) map[string]any {
				time.Sleep(300 * time.Millisecond)
				return map[string]any{"pid": pid, "offset": offset}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testenv.Redis(t)
			r := newReplica(t, env.Client(t), env.Prefix, tt.recovery)
			ws, hs, offset := connect(t, r, map[string]any{"user": "u1"})
			first := waitSocket(t, r.connected)
			ws.Drop()
			waitReason(t, r.disconnected)
			auth := tt.away(t, r, hs["pid"], offset)
			auth["user"] = "u1"
			ws2 := eiot.DialWS(t, r.ws, nil)
			ws2.ReadOpen()
			a, _ := json.Marshal(auth)
			ws2.Send("40/class," + string(a))
			ws2.ReadText()
			second := waitSocket(t, r.connected)
			if second.Recovered() || second.ID() == first.ID() {
				t.Errorf("recovered %v with id %q (first %q), want a new session", second.Recovered(), second.ID(), first.ID())
			}
		})
	}
}

func TestSessionRecoveredOnce(t *testing.T) {
	env := testenv.Redis(t)
	rdb := env.Client(t)
	a := newReplica(t, rdb, env.Prefix, socketio.RecoveryConfig{})
	b := newReplica(t, rdb, env.Prefix, socketio.RecoveryConfig{})
	ws, hs, offset := connect(t, a, map[string]any{"user": "u1"})
	waitSocket(t, a.connected)
	ws.Drop()
	waitReason(t, a.disconnected)
	auth := map[string]any{"pid": hs["pid"], "offset": offset}
	var recovered int
	for _, r := range []*replica{b, a} {
		w := eiot.DialWS(t, r.ws, nil)
		w.ReadOpen()
		body, _ := json.Marshal(auth)
		w.Send("40/class," + string(body))
		w.ReadText()
		if waitSocket(t, r.connected).Recovered() {
			recovered++
		}
	}
	if recovered != 1 {
		t.Errorf("recovered %d times, want once", recovered)
	}
}

// TestRecoveryUnderLoad recovers a client on replica B while both replicas keep emitting numbered events
// to its room: the client must see every number after its offset exactly once, in order.
func TestRecoveryUnderLoad(t *testing.T) {
	env := testenv.Redis(t)
	rdb := env.Client(t)
	a := newReplica(t, rdb, env.Prefix, socketio.RecoveryConfig{})
	b := newReplica(t, rdb, env.Prefix, socketio.RecoveryConfig{})
	ws, hs, _ := connect(t, a, map[string]any{"user": "u1"})
	waitSocket(t, a.connected)

	const total = 300
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, r := range []*replica{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for n := 1; n <= total; n++ {
				if err := r.ns.To("class").Key("n"+strconv.Itoa(n)).Emit("news", n); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	close(start)
	// Read a few live events, then drop the transport mid-stream.
	last, offset := 0, ""
	for range 20 {
		f := readEvent(t, ws)
		n := int(f.args[0].(float64))
		if n != last+1 {
			t.Fatalf("live event %d after %d", n, last)
		}
		last, offset = n, f.offset
	}
	ws.Drop()
	waitReason(t, a.disconnected)
	ws2 := eiot.DialWS(t, b.ws, nil)
	ws2.ReadOpen()
	ws2.Send(`40/class,{"pid":"` + hs["pid"] + `","offset":"` + offset + `"}`)
	ws2.ReadText()
	for last < total {
		f := readEvent(t, ws2)
		n := int(f.args[0].(float64))
		if n != last+1 {
			t.Fatalf("after recovery: event %d after %d", n, last)
		}
		last = n
	}
	wg.Wait()
	if !waitSocket(t, b.connected).Recovered() {
		t.Error("not recovered")
	}
}

func TestRedisUnreachableDeliversLocally(t *testing.T) {
	env := testenv.Redis(t)
	proxy := testenv.NewProxy(t, env.Addr())
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	r := newReplica(t, rdb, env.Prefix, socketio.RecoveryConfig{})
	ws, _, _ := connect(t, r, map[string]any{"user": "u1"})
	// The welcome emit has returned (its answer from Redis is in): cutting now cannot lose it.
	waitSocket(t, r.connected)
	proxy.Cut()
	t.Cleanup(func() { _ = proxy.Restore() }) // before the replica's cleanup, which then is quick
	if err := r.ns.To("class").Key("k").Emit("news", 1); err != nil {
		t.Fatal(err)
	}
	// Delivered without an offset: it cannot be recovered.
	if got, want := ws.ReadText(), `42/class,["news",1]`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestOptionsValidate(t *testing.T) {
	bad := []redisadapter.Options{
		{ReadBlock: -time.Second},
		{ReadBlock: time.Microsecond},
		{KeyTTL: -1},
		{EncodeData: json.Marshal},
	}
	for _, o := range bad {
		if err := o.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", o)
		}
	}
	if err := (redisadapter.Options{}).Validate(); err != nil {
		t.Errorf("zero options: %v", err)
	}
	if _, err := redisadapter.New(nil, redisadapter.Options{}); err == nil {
		t.Error("New without a client succeeded")
	}
}

// BenchmarkBroadcast measures one broadcast to a room with one local socket, from the call to its
// delivery: in memory, and through the Redis stream (append, then delivery by the reader).
func BenchmarkBroadcast(b *testing.B) {
	env := testenv.Redis(b)
	rdb := env.Client(b)
	for _, mode := range []string{"memory", "redis"} {
		b.Run(mode, func(b *testing.B) {
			r := newReplica(b, rdb, env.Prefix+mode+":", socketio.RecoveryConfig{MaxPackets: 1000})
			if mode == "memory" {
				srv, err := socketio.NewServer(socketio.Config{Recovery: socketio.RecoveryConfig{Enabled: true, MaxPackets: 1000}})
				if err != nil {
					b.Fatal(err)
				}
				hs := httptest.NewServer(srv)
				b.Cleanup(func() { _ = srv.Close(); hs.Close() })
				r.srv, r.ns = srv, srv.Of("/class")
				r.ns.OnConnection(func(s *socketio.Socket) { s.Join("class"); _ = s.Emit("welcome", s.ID()); r.connected <- s })
				r.ws = "ws" + strings.TrimPrefix(hs.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
			}
			ws, _, _ := connect(b, r, map[string]any{"user": "u"})
			received := make(chan struct{}, 1024)
			go func() {
				for {
					if _, _, err := ws.Conn.ReadMessage(); err != nil {
						return
					}
					received <- struct{}{}
				}
			}()
			run := strconv.FormatInt(time.Now().UnixNano(), 36) // keys are remembered across runs: make them new
			b.ResetTimer()
			for i := range b.N {
				if err := r.ns.To("class").Key(run+"-"+strconv.Itoa(i)).Emit("news", i); err != nil {
					b.Fatal(err)
				}
				<-received
			}
		})
	}
}
