package socketio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/services/realtime/engineio"
	eiot "github.com/classwaves/classwaves/services/realtime/engineio/engineiotest"
	"github.com/classwaves/classwaves/services/realtime/socketio"
)

// testServer is a Socket.IO server on a loopback port.
type testServer struct {
	srv  *socketio.Server
	http string
	ws   string
}

func newTestServer(t testing.TB, cfg socketio.Config) *testServer {
	t.Helper()
	if cfg.Engine.PingInterval == 0 {
		cfg.Engine.PingInterval, cfg.Engine.PingTimeout = time.Minute, time.Minute
	}
	srv, err := socketio.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		hs.Close()
	})
	return &testServer{srv: srv, http: hs.URL + "/socket.io/", ws: "ws" + strings.TrimPrefix(hs.URL, "http") + "/socket.io/?EIO=4&transport=websocket"}
}

// join opens a WebSocket connection and joins namespace nsp ("/x") with the auth payload (may be "").
func (ts *testServer) join(t testing.TB, nsp, auth string) *eiot.WS {
	t.Helper()
	ws := eiot.DialWS(t, ts.ws, nil)
	ws.ReadOpen()
	joinOn(t, ws, nsp, auth)
	return ws
}

func prefix(nsp string) string {
	if nsp == "/" {
		return ""
	}
	return nsp + ","
}

func joinOn(t testing.TB, ws *eiot.WS, nsp, auth string) {
	t.Helper()
	ws.Send("40" + prefix(nsp) + auth)
	if got := ws.ReadText(); !strings.HasPrefix(got, "40"+prefix(nsp)+"{") {
		t.Fatalf("CONNECT answer = %q", got)
	}
}

// connected returns a channel receiving the sockets that join ns.
func connected(ns *socketio.Namespace) chan *socketio.Socket {
	ch := make(chan *socketio.Socket, 16)
	ns.OnConnection(func(s *socketio.Socket) { ch <- s })
	return ch
}

// ackResult is what EmitWithAck returned.
type ackResult struct {
	args socketio.Args
	err  error
}

// emitWithAck emits event from s and waits for its acknowledgement in a goroutine of its own, so that
// the test can answer it; the result arrives on the channel.
func emitWithAck(s *socketio.Socket, event string, args ...any) <-chan ackResult {
	results := make(chan ackResult, 1)
	go func() {
		a, err := s.EmitWithAck(context.Background(), event, args...)
		results <- ackResult{a, err}
	}()
	return results
}

func TestServerEmitWithAck(t *testing.T) {
	ts := newTestServer(t, socketio.Config{})
	socks := connected(ts.srv.Of("/acks"))
	ws := ts.join(t, "/acks", "")
	s := <-socks

	results := emitWithAck(s, "question", "why", []byte{7})
	want := []eiot.Frame{
		{Data: []byte(`451-/acks,0["question","why",{"_placeholder":true,"num":0}]`)},
		{Binary: true, Data: []byte{7}},
	}
	got := []eiot.Frame{ws.Read(), ws.Read()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("emitted frames (-want +got):\n%s", diff)
	}
	ws.Send(`43/acks,0["because",42]`)
	r := <-results
	if r.err != nil {
		t.Fatal(r.err)
	}
	var reason string
	var n int
	if err := r.args.Decode(0, &reason); err != nil || reason != "because" {
		t.Errorf("ack arg 0 = %q, %v", reason, err)
	}
	if err := r.args.Decode(1, &n); err != nil || n != 42 {
		t.Errorf("ack arg 1 = %d, %v", n, err)
	}

	t.Run("binary ack", func(t *testing.T) {
		acks := make(chan socketio.Args, 1)
		if err := s.EmitAck("binary-please", 0, func(a socketio.Args, err error) {
			if err != nil {
				t.Errorf("ack error: %v", err)
			}
			acks <- a
		}); err != nil {
			t.Fatal(err)
		}
		if got := ws.ReadText(); got != `42/acks,1["binary-please"]` {
			t.Fatalf("emitted %s", got)
		}
		ws.Send(`461-/acks,1["here",{"_placeholder":true,"num":0}]`)
		ws.SendBinary([]byte{1, 2, 3})
		a := <-acks
		if b, ok := a.Bytes(1); !ok || !cmp.Equal(b, []byte{1, 2, 3}) {
			t.Errorf("binary ack arg = %v, %v", b, ok)
		}
	})

	t.Run("unknown ack id ignored", func(t *testing.T) {
		ws.Send(`43/acks,99["nobody"]`)
		ws.Send(`43/acks,["no id"]`)
		if !s.Connected() {
			t.Error("socket disconnected")
		}
	})
}

func TestAckTimeoutAndDisconnect(t *testing.T) {
	ts := newTestServer(t, socketio.Config{})
	socks := connected(ts.srv.Of("/"))
	ws := ts.join(t, "/", "")
	s := <-socks

	timedOut := make(chan error, 1)
	if err := s.EmitAck("slow", time.Millisecond, func(_ socketio.Args, err error) { timedOut <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-timedOut; !errors.Is(err, socketio.ErrAckTimeout) {
		t.Errorf("ack error = %v, want ErrAckTimeout", err)
	}
	ws.ReadText() // the event
	ws.Send(`430["too late"]`)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.EmitWithAck(ctx, "canceled"); !errors.Is(err, context.Canceled) {
		t.Errorf("EmitWithAck with a canceled context = %v", err)
	}

	pending := make(chan error, 1)
	go func() {
		_, err := s.EmitWithAck(context.Background(), "never-answered")
		pending <- err
	}()
	ws.ReadText()
	ws.ReadText()
	ws.Drop()
	if err := <-pending; !errors.Is(err, socketio.ErrDisconnected) {
		t.Errorf("pending ack error = %v, want ErrDisconnected", err)
	}
	if err := s.Emit("after"); !errors.Is(err, socketio.ErrDisconnected) {
		t.Errorf("Emit after disconnect = %v, want ErrDisconnected", err)
	}
}

func TestMiddleware(t *testing.T) {
	ts := newTestServer(t, socketio.Config{})
	ns := ts.srv.Of("private")
	ns.Use(func(ctx context.Context, s *socketio.Socket) error {
		switch s.Handshake().Auth()["token"] {
		case "secret":
			s.SetData("teacher-1")
			return nil
		case "boom":
			return errors.New("plain failure")
		}
		return &socketio.ConnectError{Message: "not authorized", Data: map[string]any{"code": "AUTH_REQUIRED"}}
	})
	socks := connected(ns)
	tests := []struct {
		name, auth, want string
	}{
		{"refused with data", `{"token":"wrong"}`, `44/private,{"message":"not authorized","data":{"code":"AUTH_REQUIRED"}}`},
		{"refused without auth", ``, `44/private,{"message":"not authorized","data":{"code":"AUTH_REQUIRED"}}`},
		{"plain error", `{"token":"boom"}`, `44/private,{"message":"plain failure"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := eiot.DialWS(t, ts.ws, nil)
			ws.ReadOpen()
			ws.Send("40/private," + tt.auth)
			if got := ws.ReadText(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			// The connection stays open and may try again.
			joinOn(t, ws, "/private", `{"token":"secret"}`)
			if s := <-socks; s.Data() != "teacher-1" {
				t.Errorf("Data() = %v", s.Data())
			}
		})
	}
}

func TestHandlersSeeEarlyPackets(t *testing.T) {
	ts := newTestServer(t, socketio.Config{})
	ns := ts.srv.Of("/slow")
	release := make(chan struct{})
	got := make(chan string, 1)
	ns.Use(func(context.Context, *socketio.Socket) error { return nil }) // connect on a goroutine
	ns.OnConnection(func(s *socketio.Socket) {
		<-release // the client's first event arrives while the handler still runs
		s.On("hello", func(e *socketio.Event) {
			var who string
			_ = e.Args.Decode(0, &who)
			got <- who
		})
	})
	ws := ts.join(t, "/slow", "")
	ws.Send(`42/slow,["hello","early"]`)
	close(release)
	if who := <-got; who != "early" {
		t.Errorf("handler got %q", who)
	}
}

// TestEarlyPacketsBothWays pins the buffering of a socket that is still connecting: what a middleware
// emits goes out after the CONNECT packet, the client's events that arrive while the connection handler
// runs are handled in order once it has registered their handler, and a client that sends more than
// MaxPendingPackets meanwhile is disconnected.
func TestEarlyPacketsBothWays(t *testing.T) {
	ts := newTestServer(t, socketio.Config{MaxPendingPackets: 3})
	ns := ts.srv.Of("/early")
	release := make(chan struct{})
	got := make(chan string, 8)
	ns.Use(func(_ context.Context, s *socketio.Socket) error {
		return s.Emit("welcome", 1) // before the CONNECT packet is queued
	})
	ns.OnConnection(func(s *socketio.Socket) {
		<-release
		s.On("n", func(e *socketio.Event) {
			var n string
			_ = e.Args.Decode(0, &n)
			got <- n
		})
	})

	ws := ts.join(t, "/early", "")
	if welcome := ws.ReadText(); welcome != `42/early,["welcome",1]` {
		t.Errorf("after CONNECT: %q, want the welcome event", welcome)
	}
	for _, n := range []string{"a", "b", "c"} {
		ws.Send(`42/early,["n","` + n + `"]`)
	}
	release <- struct{}{}
	for _, want := range []string{"a", "b", "c"} {
		if n := <-got; n != want {
			t.Errorf("handled %q, want %q", n, want)
		}
	}
	ws.Send(`42/early,["n","d"]`) // once open, straight to the handler
	if n := <-got; n != "d" {
		t.Errorf("handled %q, want d", n)
	}

	flood := ts.join(t, "/early", "")
	_ = flood.ReadText() // welcome
	for range 4 {
		flood.Send(`42/early,["n","x"]`)
	}
	flood.ExpectClosed()
	close(release)
}

// TestConnectWhileConnecting sends a second CONNECT for a namespace whose middleware still runs: as a
// CONNECT for a namespace already joined, it closes the connection. Another namespace connects meanwhile.
func TestConnectWhileConnecting(t *testing.T) {
	ts := newTestServer(t, socketio.Config{})
	release := make(chan struct{})
	defer close(release)
	ts.srv.Of("/slow").Use(func(context.Context, *socketio.Socket) error { <-release; return nil })
	ws := eiot.DialWS(t, ts.ws, nil)
	ws.ReadOpen()
	ws.Send("40/slow,")
	joinOn(t, ws, "/", "") // the connection keeps reading while /slow connects
	ws.Send("40/slow,")
	ws.ExpectClosed()
}

func TestRooms(t *testing.T) {
	ts := newTestServer(t, socketio.Config{})
	ns := ts.srv.Of("/rooms")
	ns.OnConnection(func(s *socketio.Socket) {
		s.On("join", func(e *socketio.Event) {
			var room string
			_ = e.Args.Decode(0, &room)
			s.Join(room)
			_ = e.Ack()
		})
		s.On("leave", func(e *socketio.Event) {
			var room string
			_ = e.Args.Decode(0, &room)
			s.Leave(room)
			_ = e.Ack()
		})
		s.On("say", func(e *socketio.Event) {
			var room, msg string
			_ = e.Args.Decode(0, &room)
			_ = e.Args.Decode(1, &msg)
			_ = s.To(room).Emit("said", msg)
			_ = e.Ack()
		})
	})
	a, b, c := ts.join(t, "/rooms", ""), ts.join(t, "/rooms", ""), ts.join(t, "/rooms", "")
	call := func(ws *eiot.WS, id int, payload string) {
		t.Helper()
		ws.Send(fmt.Sprintf("42/rooms,%d%s", id, payload))
		if got, want := ws.ReadText(), fmt.Sprintf("43/rooms,%d[]", id); got != want {
			t.Fatalf("ack = %s, want %s", got, want)
		}
	}
	call(a, 1, `["join","r1"]`)
	call(b, 1, `["join","r1"]`)
	call(c, 1, `["join","r2"]`)

	call(a, 2, `["say","r1","hi r1"]`) // b gets it; a (the sender) and c do not
	if got := b.ReadText(); got != `42/rooms,["said","hi r1"]` {
		t.Errorf("b got %s", got)
	}
	call(c, 2, `["say","r1","from outside"]`) // a and b get it
	for _, ws := range []*eiot.WS{a, b} {
		if got := ws.ReadText(); got != `42/rooms,["said","from outside"]` {
			t.Errorf("got %s", got)
		}
	}
	call(b, 3, `["leave","r1"]`)
	if err := ns.To("r1", "r2").Emit("both"); err != nil { // a (r1) and c (r2), once each
		t.Fatal(err)
	}
	if err := ns.Except("r2").Emit("not-r2"); err != nil { // a and b
		t.Fatal(err)
	}
	if err := ns.Emit("all"); err != nil {
		t.Fatal(err)
	}
	wantA := []string{`42/rooms,["both"]`, `42/rooms,["not-r2"]`, `42/rooms,["all"]`}
	wantB := []string{`42/rooms,["not-r2"]`, `42/rooms,["all"]`}
	wantC := []string{`42/rooms,["both"]`, `42/rooms,["all"]`}
	for name, tc := range map[string]struct {
		ws   *eiot.WS
		want []string
	}{"a": {a, wantA}, "b": {b, wantB}, "c": {c, wantC}} {
		var got []string
		for range tc.want {
			got = append(got, tc.ws.ReadText())
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s received (-want +got):\n%s", name, diff)
		}
	}
	if got := ns.Adapter().SocketIDs([]string{"r1"}); len(got) != 1 {
		t.Errorf("SocketIDs(r1) = %v, want one socket", got)
	}
}

func TestVolatile(t *testing.T) {
	ts := newTestServer(t, socketio.Config{Engine: engineio.Config{WriteQueueSoftLimit: 4, WriteQueueHardLimit: 100}})
	socks := connected(ts.srv.Of("/"))
	p, _ := eiot.Handshake(t, ts.http)
	p.Post("40")
	s := <-socks
	// The client does not poll: the queue holds CONNECT, then fills up.
	for i := range 10 {
		_ = s.EmitVolatile("v", i)
		_ = ts.srv.Of("/").To(s.ID()).Volatile().Emit("bv", i)
	}
	if err := s.Emit("reliable"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) == 0 || got[len(got)-1] != `42["reliable"]` {
		got = append(got, p.Packets()...)
	}
	if len(got) != 5 || !strings.HasPrefix(got[0], "40") {
		t.Errorf("packets = %q, want CONNECT, three volatile events, then the reliable one", got)
	}
}

func TestOrderedEmits(t *testing.T) {
	ts := newTestServer(t, socketio.Config{OrderedEmits: true, Engine: engineio.Config{WriteQueueHardLimit: 100000, WriteQueueSoftLimit: 100000}})
	ns := ts.srv.Of("/")
	socks := connected(ns)
	var clients []*eiot.WS
	for range 3 {
		ws := ts.join(t, "/", "")
		(<-socks).Join("room")
		clients = append(clients, ws)
	}
	const goroutines, each = 8, 100
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if err := ns.To("room").Emit("e", g, i); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	var first []string
	for n, ws := range clients {
		var seq []string
		for range goroutines * each {
			seq = append(seq, ws.ReadText())
		}
		if n == 0 {
			first = seq
			continue
		}
		if diff := cmp.Diff(first, seq); diff != "" {
			t.Fatalf("client %d saw another order (-client 0 +client %d):\n%s", n, n, diff)
		}
	}
}

func TestServerDisconnect(t *testing.T) {
	ts := newTestServer(t, socketio.Config{})
	reasons := make(chan string, 4)
	main, custom := connected(ts.srv.Of("/")), connected(ts.srv.Of("/custom"))
	for _, ns := range []*socketio.Namespace{ts.srv.Of("/"), ts.srv.Of("/custom")} {
		ns.OnConnection(func(s *socketio.Socket) { s.OnDisconnect(func(r string) { reasons <- r }) })
	}
	ws := ts.join(t, "/", "")
	joinOn(t, ws, "/custom", "")
	sm, sc := <-main, <-custom

	sc.Disconnect(false)
	if got := ws.ReadText(); got != "41/custom," {
		t.Errorf("got %s, want 41/custom,", got)
	}
	if got := <-reasons; got != socketio.ReasonServerNamespaceDisconnect {
		t.Errorf("reason = %q", got)
	}
	// The main namespace still works; then a disconnect with close ends the connection.
	if err := sm.Emit("still-here"); err != nil {
		t.Fatal(err)
	}
	if got := ws.ReadText(); got != `42["still-here"]` {
		t.Errorf("got %s", got)
	}
	sm.Disconnect(true)
	if got := ws.ReadText(); got != "41" {
		t.Errorf("got %s, want 41", got)
	}
	ws.ExpectClosed()
}

func TestEventHandlerPanicIsContained(t *testing.T) {
	ts := newTestServer(t, socketio.Config{})
	ts.srv.Of("/").OnConnection(func(s *socketio.Socket) {
		s.On("boom", func(*socketio.Event) { panic("handler bug") })
		s.On("ping", func(e *socketio.Event) { _ = e.Ack("pong") })
	})
	ws := ts.join(t, "/", "")
	ws.Send(`42["boom"]`)
	ws.Send(`421["ping"]`)
	if got := ws.ReadText(); got != `431["pong"]` {
		t.Errorf("got %s", got)
	}
}

// TestEventNames sends events named in every form a client may use: each goes to the handler of the name
// it decodes to, and is named so. An event without a handler is dropped.
func TestEventNames(t *testing.T) {
	ts := newTestServer(t, socketio.Config{})
	ts.srv.Of("/").OnConnection(func(s *socketio.Socket) {
		for _, name := range []string{"café", `a"b`, "42", "-1.5e3", ""} {
			s.OnBorrowed(name, func(e *socketio.Event) { _ = e.Ack(e.Name) })
		}
	})
	ws := ts.join(t, "/", "")
	for i, c := range []struct{ payload, want string }{
		{`["café"]`, `"café"`},
		{`["caf\u00e9",1]`, `"café"`},
		{`["a\"b"]`, `"a\"b"`},
		{`["other"]`, ""},
		{` [ 42 , {} ] `, `"42"`},
		{`[-1.5e3]`, `"-1.5e3"`},
		{`[""]`, `""`},
	} {
		ws.Send(fmt.Sprintf("42%d%s", i, c.payload))
		if c.want == "" {
			continue // no handler: no acknowledgement
		}
		if got, want := ws.ReadText(), fmt.Sprintf("43%d[%s]", i, c.want); got != want {
			t.Errorf("event %s: got %s, want %s", c.payload, got, want)
		}
	}
}

func TestReservedAndDoubleAck(t *testing.T) {
	ts := newTestServer(t, socketio.Config{})
	acked := make(chan error, 1)
	socks := connected(ts.srv.Of("/"))
	ts.srv.Of("/").OnConnection(func(s *socketio.Socket) {
		s.On("once", func(e *socketio.Event) {
			_ = e.Ack(1)
			acked <- e.Ack(2)
		})
	})
	ws := ts.join(t, "/", "")
	s := <-socks
	for _, ev := range []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"} {
		if err := s.Emit(ev); !errors.Is(err, socketio.ErrReservedEvent) {
			t.Errorf("Emit(%q) = %v, want ErrReservedEvent", ev, err)
		}
	}
	ws.Send(`425["once"]`)
	if err := <-acked; !errors.Is(err, socketio.ErrAlreadyAcked) {
		t.Errorf("second Ack = %v, want ErrAlreadyAcked", err)
	}
	if got := ws.ReadText(); got != `435[1]` {
		t.Errorf("ack = %s", got)
	}
}

func TestHandshake(t *testing.T) {
	ts := newTestServer(t, socketio.Config{})
	socks := connected(ts.srv.Of("/"))
	ws := eiot.DialWS(t, ts.ws+"&room=7&room=8", map[string][]string{"X-Test": {"yes", "again"}})
	ws.ReadOpen()
	joinOn(t, ws, "/", `{"token":"abc","n":3}`)
	hs := (<-socks).Handshake()
	if q := hs.Query(); !slices.Equal(q["room"], []string{"7", "8"}) || q.Get("EIO") != "4" {
		t.Errorf("query = %v", q)
	}
	// The headers that negotiated the WebSocket are not kept (engineio.Request).
	if h := hs.Header(); !slices.Equal(h["X-Test"], []string{"yes", "again"}) || h.Get("Upgrade") != "" || h.Get("Sec-WebSocket-Key") != "" {
		t.Errorf("header = %v", h)
	}
	if hs.HeaderValue("x-test") != "yes" || hs.HeaderValue("X-Missing") != "" || hs.Address != "127.0.0.1" {
		t.Errorf("header value = %q, address = %q", hs.HeaderValue("x-test"), hs.Address)
	}
	// Header and Query return new maps: changing one leaves the handshake as it was.
	hs.Header().Set("X-Test", "changed")
	hs.Query().Set("room", "9")
	if hs.HeaderValue("X-Test") != "yes" || hs.Query().Get("room") != "7" {
		t.Error("the handshake changed through a returned map")
	}
	if auth := hs.Auth(); auth["token"] != "abc" || auth["n"] != json.Number("3") || string(hs.RawAuth) != `{"token":"abc","n":3}` {
		t.Errorf("auth = %v (%s)", auth, hs.RawAuth)
	}
}

func TestServerClose(t *testing.T) {
	ts := newTestServer(t, socketio.Config{})
	reasons := make(chan string, 1)
	ts.srv.Of("/").OnConnection(func(s *socketio.Socket) { s.OnDisconnect(func(r string) { reasons <- r }) })
	ws := ts.join(t, "/", "")
	if err := ts.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if got := <-reasons; got != socketio.ReasonServerShuttingDown {
		t.Errorf("reason = %q, want %q", got, socketio.ReasonServerShuttingDown)
	}
	ws.ExpectClosed()
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []socketio.Config{
		{ConnectTimeout: -1},
		{MaxAttachments: -1},
		{Recovery: socketio.RecoveryConfig{MaxPackets: -1}},
		{Engine: engineio.Config{PingTimeout: -1}},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", cfg)
		}
	}
	if _, err := socketio.NewServer(socketio.Config{ConnectTimeout: -1}); err == nil {
		t.Error("NewServer accepted an invalid config")
	}
}
