package testserver

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	eiot "github.com/classwaves/classwaves/services/realtime/engineio/engineiotest"
	"github.com/classwaves/classwaves/services/realtime/socketio"
)

// eventArgs decodes an EVENT packet of the main namespace ("42[...]") into its elements.
func eventArgs(t *testing.T, packet string) []any {
	t.Helper()
	data, ok := strings.CutPrefix(packet, "42")
	if !ok {
		t.Fatalf("got %q, want an EVENT of the main namespace", packet)
	}
	var args []any
	if err := json.Unmarshal([]byte(data), &args); err != nil {
		t.Fatalf("event %q: %v", packet, err)
	}
	return args
}

// lastOffset returns the offset that the server appended to an event.
func lastOffset(t *testing.T, args []any) string {
	t.Helper()
	off, ok := args[len(args)-1].(string)
	if !ok {
		t.Fatalf("event %v has no offset", args)
	}
	return off
}

// recoveryEnv is a conformance server with recovery on, whose main namespace puts every new socket in
// room "class" and reports connections and disconnections.
type recoveryEnv struct {
	*env
	connected    chan *socketio.Socket
	disconnected chan string
}

func newRecoveryEnv(t *testing.T) *recoveryEnv {
	opts := relaxed
	opts.Recovery = socketio.RecoveryConfig{Enabled: true}
	r := &recoveryEnv{env: newEnv(t, opts), connected: make(chan *socketio.Socket, 4), disconnected: make(chan string, 4)}
	r.srv.SocketIO.Of("/").OnConnection(func(s *socketio.Socket) {
		if !s.Recovered() {
			s.Join("class")
		}
		s.OnDisconnect(func(reason string) { r.disconnected <- reason })
		r.connected <- s
	})
	return r
}

func TestRecovery(t *testing.T) {
	r := newRecoveryEnv(t)
	ns := r.srv.SocketIO.Of("/")

	ws := dialSIO(t, r.env)
	ws.Send(`40{"token":"abc"}`)
	hs := connectPayload(t, ws.ReadText(), "40")
	if hs["sid"] == "" || hs["pid"] == "" {
		t.Fatalf("CONNECT payload %v, want sid and pid", hs)
	}
	auth := eventArgs(t, ws.ReadText())
	offset := lastOffset(t, auth)
	first := <-r.connected
	if first.Recovered() {
		t.Error("first connection reported as recovered")
	}

	// The transport drops; meanwhile the server emits to the socket's room and to the socket itself.
	ws.Drop()
	if got := <-r.disconnected; got != "transport close" {
		t.Errorf("disconnect reason = %q, want transport close", got)
	}
	if err := ns.To("class").Emit("missed", 1); err != nil {
		t.Fatal(err)
	}
	if err := ns.To("other-room").Emit("not-for-you", 2); err != nil {
		t.Fatal(err)
	}
	if err := ns.Emit("to-everyone", 3); err != nil {
		t.Fatal(err)
	}

	ws2 := dialSIO(t, r.env)
	ws2.Send(`40{"token":"abc","pid":"` + hs["pid"] + `","offset":"` + offset + `"}`)
	hs2 := connectPayload(t, ws2.ReadText(), "40")
	if diff := cmp.Diff(hs, hs2); diff != "" {
		t.Errorf("recovered CONNECT payload (-first +second):\n%s", diff)
	}
	var got []any
	for range 2 {
		args := eventArgs(t, ws2.ReadText())
		got = append(got, args[:len(args)-1]) // without the offset
	}
	want := []any{[]any{"missed", 1.0}, []any{"to-everyone", 3.0}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("missed packets (-want +got):\n%s", diff)
	}
	second := <-r.connected
	if !second.Recovered() || second.ID() != first.ID() {
		t.Errorf("second socket: recovered %v, id %q; want recovered, id %q", second.Recovered(), second.ID(), first.ID())
	}
	if diff := cmp.Diff(slices.Sorted(slices.Values([]string{"class", first.ID()})), second.Rooms()); diff != "" {
		t.Errorf("rooms (-want +got):\n%s", diff)
	}
	// Live packets follow.
	if err := ns.To("class").Emit("live", 4); err != nil {
		t.Fatal(err)
	}
	// The connection handler's auth event comes first (it ran on recovery too), then the live event.
	if args := eventArgs(t, ws2.ReadText()); args[0] != "auth" {
		t.Errorf("event = %v, want auth", args)
	}
	if args := eventArgs(t, ws2.ReadText()); args[0] != "live" {
		t.Errorf("event = %v, want live", args)
	}
}

func TestRecoveryRefused(t *testing.T) {
	tests := []struct {
		name string
		auth func(pid, offset string) string
	}{
		{"unknown pid", func(_, offset string) string { return `{"pid":"nope","offset":"` + offset + `"}` }},
		{"unknown offset", func(pid, _ string) string { return `{"pid":"` + pid + `","offset":"nope"}` }},
		{"no offset", func(pid, _ string) string { return `{"pid":"` + pid + `"}` }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecoveryEnv(t)
			ws := dialSIO(t, r.env)
			ws.Send("40")
			hs := connectPayload(t, ws.ReadText(), "40")
			offset := lastOffset(t, eventArgs(t, ws.ReadText()))
			<-r.connected
			ws.Drop()
			<-r.disconnected

			ws2 := dialSIO(t, r.env)
			ws2.Send("40" + tt.auth(hs["pid"], offset))
			hs2 := connectPayload(t, ws2.ReadText(), "40")
			if hs2["sid"] == hs["sid"] || hs2["pid"] == hs["pid"] {
				t.Errorf("session reused: %v then %v", hs, hs2)
			}
			if s := <-r.connected; s.Recovered() {
				t.Error("socket reported as recovered")
			}
		})
	}
}

func TestRecoveryNotAfterNamespaceDisconnect(t *testing.T) {
	r := newRecoveryEnv(t)
	ws := dialSIO(t, r.env)
	ws.Send("40")
	hs := connectPayload(t, ws.ReadText(), "40")
	offset := lastOffset(t, eventArgs(t, ws.ReadText()))
	<-r.connected
	ws.Send("41") // leaving on purpose is not recoverable
	<-r.disconnected
	ws.Send(`40{"pid":"` + hs["pid"] + `","offset":"` + offset + `"}`)
	if hs2 := connectPayload(t, ws.ReadText(), "40"); hs2["sid"] == hs["sid"] {
		t.Errorf("session recovered after a namespace disconnect")
	}
}

func TestRecoveryWindowExpires(t *testing.T) {
	opts := relaxed
	opts.Recovery = socketio.RecoveryConfig{Enabled: true, MaxDisconnectionDuration: time.Nanosecond}
	e := newEnv(t, opts)
	disconnected := make(chan struct{}, 1)
	e.srv.SocketIO.Of("/").OnConnection(func(s *socketio.Socket) {
		s.OnDisconnect(func(string) { disconnected <- struct{}{} })
	})
	ws := dialSIO(t, e)
	ws.Send("40")
	hs := connectPayload(t, ws.ReadText(), "40")
	offset := lastOffset(t, eventArgs(t, ws.ReadText()))
	ws.Drop()
	<-disconnected
	ws2 := eiot.DialWS(t, e.ws+"/socket.io/?EIO=4&transport=websocket", nil)
	ws2.ReadOpen()
	ws2.Send(`40{"pid":"` + hs["pid"] + `","offset":"` + offset + `"}`)
	if hs2 := connectPayload(t, ws2.ReadText(), "40"); hs2["sid"] == hs["sid"] {
		t.Errorf("session recovered after its window")
	}
}
