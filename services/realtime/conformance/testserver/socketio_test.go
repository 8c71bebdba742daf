package testserver

// Protocol tests of the Socket.IO server at /socket.io/, written from the Socket.IO v5 specification
// (and covering the cases of the socketio/socket.io-protocol test suite).

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

func (e *env) sio() string { return e.http + "/socket.io/" }

// dialSIO opens a WebSocket session at /socket.io/ and reads its open packet.
func dialSIO(t *testing.T, e *env) *eiot.WS {
	t.Helper()
	ws := eiot.DialWS(t, e.ws+"/socket.io/?EIO=4&transport=websocket", nil)
	ws.ReadOpen()
	return ws
}

// connectSIO joins the main namespace and reads the CONNECT answer and the auth event.
func connectSIO(t *testing.T, e *env) *eiot.WS {
	t.Helper()
	ws := dialSIO(t, e)
	ws.Send("40")
	if got := ws.ReadText(); !strings.HasPrefix(got, "40{") {
		t.Fatalf("CONNECT answer = %q", got)
	}
	if got := ws.ReadText(); got != `42["auth",{}]` {
		t.Fatalf("auth event = %q", got)
	}
	return ws
}

// connectPayload decodes the payload of a CONNECT answer (after prefix).
func connectPayload(t *testing.T, packet, prefix string) map[string]string {
	t.Helper()
	data, ok := strings.CutPrefix(packet, prefix)
	if !ok {
		t.Fatalf("got %q, want a CONNECT packet starting with %q", packet, prefix)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		t.Fatalf("CONNECT payload %q: %v", data, err)
	}
	return m
}

func TestConnect(t *testing.T) {
	tests := []struct {
		name, send, wantPrefix, wantAuth string
	}{
		{"main namespace", "40", "40", `42["auth",{}]`},
		{"main namespace with payload", `40{"token":"123"}`, "40", `42["auth",{"token":"123"}]`},
		{"custom namespace", "40/custom,", "40/custom,", `42/custom,["auth",{}]`},
		{"custom namespace without comma", "40/custom", "40/custom,", `42/custom,["auth",{}]`},
		{"custom namespace with payload", `40/custom,{"token":"abc"}`, "40/custom,", `42/custom,["auth",{"token":"abc"}]`},
		{"payload with unicode and nesting", `40{"a":{"b":[1,2.5,"é"]}}`, "40", `42["auth",{"a":{"b":[1,2.5,"é"]}}]`},
	}
	e := newEnv(t, relaxed)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := dialSIO(t, e)
			ws.Send(tt.send)
			hs := connectPayload(t, ws.ReadText(), tt.wantPrefix)
			if keys := slices.Sorted(func(yield func(string) bool) {
				for k := range hs {
					if !yield(k) {
						return
					}
				}
			}); !cmp.Equal(keys, []string{"sid"}) || hs["sid"] == "" {
				t.Errorf("handshake = %v, want only a non-empty sid", hs)
			}
			if got := ws.ReadText(); got != tt.wantAuth {
				t.Errorf("auth event = %s, want %s", got, tt.wantAuth)
			}
		})
	}
}

func TestUnknownNamespace(t *testing.T) {
	e := newEnv(t, relaxed)
	ws := dialSIO(t, e)
	ws.Send("40/random")
	if got, want := ws.ReadText(), `44/random,{"message":"Invalid namespace"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	// The connection stays usable.
	ws.Send("40")
	connectPayload(t, ws.ReadText(), "40")
}

func TestConnectWithoutHandshakeCloses(t *testing.T) {
	e := newEnv(t, Options{PingInterval: time.Minute, PingTimeout: time.Minute}) // connect timeout 1 s
	ws := dialSIO(t, e)
	ws.ExpectClosed()
}

func TestInvalidPacketsClose(t *testing.T) {
	tests := []struct {
		name      string
		connected bool // join the main namespace first
		send      []string
		binary    [][]byte
	}{
		{"invalid handshake", false, []string{"4abc"}, nil},
		{"event before CONNECT", false, []string{`42["message"]`}, nil},
		{"CONNECT payload not an object", false, []string{`40"token"`}, nil},
		{"CONNECT payload not JSON", false, []string{`40{`}, nil},
		{"unknown packet type", true, []string{"4abc"}, nil},
		{"event payload not an array", true, []string{"42{}"}, nil},
		{"event without payload", true, []string{"42"}, nil},
		{"empty event array", true, []string{"42[]"}, nil},
		{"event name not a string", true, []string{`42[{}]`}, nil},
		{"reserved event name", true, []string{`42["disconnect"]`}, nil},
		{"invalid ack id", true, []string{`42abc["message-with-ack",1,"2",{"3":[false]}]`}, nil},
		{"ack id overflow", true, []string{`4299999999999999999999["message-with-ack"]`}, nil},
		{"second CONNECT", true, []string{"40"}, nil},
		{"DISCONNECT with payload", true, []string{"41{}"}, nil},
		{"event for a namespace not joined", true, []string{`42/custom,["message"]`}, nil},
		{"binary data without a packet", true, nil, [][]byte{{1}}},
		{"text while reassembling", true, []string{`451-["message",{"_placeholder":true,"num":0}]`, `42["message"]`}, nil},
		{"placeholder out of range", true, []string{`451-["message",{"_placeholder":true,"num":1}]`}, [][]byte{{1}}},
		{"too many attachments", true, []string{`4511-["message"]`}, nil},
		{"zero attachments", true, []string{`450-["message"]`}, nil},
	}
	e := newEnv(t, relaxed)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ws *eiot.WS
			if tt.connected {
				ws = connectSIO(t, e)
			} else {
				ws = dialSIO(t, e)
			}
			for _, s := range tt.send {
				ws.Send(s)
			}
			for _, b := range tt.binary {
				ws.SendBinary(b)
			}
			ws.ExpectClosed()
		})
	}
}

func TestDisconnectFromMainNamespace(t *testing.T) {
	e := newEnv(t, Options{PingTimeout: time.Minute, ConnectTimeout: time.Minute})
	reasons := make(chan string, 1)
	e.srv.SocketIO.Of("/").OnConnection(func(s *socketio.Socket) {
		s.OnDisconnect(func(reason string) { reasons <- reason })
	})
	ws := connectSIO(t, e)
	ws.Send("41")
	if got := <-reasons; got != socketio.ReasonClientNamespaceDisconnect {
		t.Errorf("disconnect reason = %q, want %q", got, socketio.ReasonClientNamespaceDisconnect)
	}
	// The Engine.IO connection stays open: the next frame is the server's ping.
	if got := ws.ReadRaw(); string(got.Data) != "2" {
		t.Errorf("next frame = %v, want ping", got)
	}
}

func TestConnectThenDisconnectCustomNamespace(t *testing.T) {
	e := newEnv(t, relaxed)
	ws := connectSIO(t, e)
	ws.Send("40/custom")
	connectPayload(t, ws.ReadText(), "40/custom,")
	if got := ws.ReadText(); got != `42/custom,["auth",{}]` {
		t.Fatalf("auth = %s", got)
	}
	ws.Send("41/custom")
	ws.Send(`42["message","message to main namespace"]`)
	if got, want := ws.ReadText(), `42["message-back","message to main namespace"]`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestMessages(t *testing.T) {
	tests := []struct {
		name       string
		send       []eiot.Frame
		want       []eiot.Frame
		namespaced bool // join /custom and talk there
	}{
		{
			name: "plain-text event",
			send: frames(`42["message",1,"2",{"3":[true]}]`),
			want: frames(`42["message-back",1,"2",{"3":[true]}]`),
		},
		{
			name: "event with binary attachments",
			send: append(frames(`452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`),
				bin(1, 2, 3), bin(4, 5, 6)),
			want: append(frames(`452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`),
				bin(1, 2, 3), bin(4, 5, 6)),
		},
		{
			name: "plain-text event with ack",
			send: frames(`42456["message-with-ack",1,"2",{"3":[false]}]`),
			want: frames(`43456[1,"2",{"3":[false]}]`),
		},
		{
			name: "binary event with ack",
			send: append(frames(`452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`),
				bin(1, 2, 3), bin(4, 5, 6)),
			want: append(frames(`462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`),
				bin(1, 2, 3), bin(4, 5, 6)),
		},
		{
			name: "ack without arguments",
			send: frames(`427["message-with-ack"]`),
			want: frames(`437[]`),
		},
		{
			name: "binary nested in an object",
			send: append(frames(`451-["message",{"audio":{"_placeholder":true,"num":0},"seq":7}]`), bin(9, 8)),
			want: append(frames(`451-["message-back",{"audio":{"_placeholder":true,"num":0},"seq":7}]`), bin(9, 8)),
		},
		{
			name: "utf-8 and large numbers kept exactly",
			send: frames(`42["message","€世界",12345678901234567890,1.5e300]`),
			want: frames(`42["message-back","€世界",12345678901234567890,1.5e300]`),
		},
		{
			name:       "event on a custom namespace",
			namespaced: true,
			send:       frames(`42/custom,["message","x"]`),
			want:       frames(`42/custom,["message-back","x"]`),
		},
		{
			name:       "ack on a custom namespace",
			namespaced: true,
			send:       frames(`42/custom,5["message-with-ack","x"]`),
			want:       frames(`43/custom,5["x"]`),
		},
		{
			name: "event without a handler is ignored",
			send: frames(`42["nobody-listens"]`, `42["message","after"]`),
			want: frames(`42["message-back","after"]`),
		},
	}
	e := newEnv(t, relaxed)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := connectSIO(t, e)
			if tt.namespaced {
				ws.Send("40/custom,")
				connectPayload(t, ws.ReadText(), "40/custom,")
				ws.ReadText() // auth
			}
			for _, f := range tt.send {
				if f.Binary {
					ws.SendBinary(f.Data)
				} else {
					ws.Send(string(f.Data))
				}
			}
			var got []eiot.Frame
			for range tt.want {
				got = append(got, ws.Read())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("frames (-want +got):\n%s", diff)
			}
		})
	}
}

func frames(texts ...string) []eiot.Frame {
	out := make([]eiot.Frame, len(texts))
	for i, s := range texts {
		out[i] = eiot.Frame{Data: []byte(s)}
	}
	return out
}

func bin(b ...byte) eiot.Frame { return eiot.Frame{Binary: true, Data: b} }

func TestMultiplexedNamespaces(t *testing.T) {
	e := newEnv(t, relaxed)
	ws := connectSIO(t, e)
	ws.Send(`40/custom,{"token":"t"}`)
	connectPayload(t, ws.ReadText(), "40/custom,")
	if got := ws.ReadText(); got != `42/custom,["auth",{"token":"t"}]` {
		t.Fatalf("auth = %s", got)
	}
	ws.Send(`42/custom,["message","to custom"]`)
	ws.Send(`42["message","to main"]`)
	got := []string{ws.ReadText(), ws.ReadText()}
	want := []string{`42/custom,["message-back","to custom"]`, `42["message-back","to main"]`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
}

// TestPollingSession replays the specification's sample session over HTTP long-polling.
func TestPollingSession(t *testing.T) {
	e := newEnv(t, relaxed)
	p, open := eiot.Handshake(t, e.sio())
	if !cmp.Equal(open.Upgrades, []string{"websocket"}) {
		t.Errorf("upgrades = %v", open.Upgrades)
	}
	if status, body := p.Post("40"); status != 200 || body != "ok" {
		t.Fatalf("CONNECT post = %d %q", status, body)
	}
	got := p.Packets()
	if len(got) < 1 {
		t.Fatal("no answer")
	}
	connectPayload(t, got[0], "40")
	if len(got) == 1 {
		got = append(got, p.Packets()...)
	}
	if got[1] != `42["auth",{}]` {
		t.Errorf("auth = %q", got[1])
	}
	if status, _ := p.Post("42[\"message\",\"hello\"]\x1e42[\"message\",\"world\"]"); status != 200 {
		t.Fatalf("post = %d", status)
	}
	var answers []string
	for len(answers) < 2 {
		answers = append(answers, p.Packets()...)
	}
	want := []string{`42["message-back","hello"]`, `42["message-back","world"]`}
	if diff := cmp.Diff(want, answers); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}

	// Binary attachments travel as base64 packets.
	if status, _ := p.Post("451-[\"message\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID"); status != 200 {
		t.Fatalf("post = %d", status)
	}
	answers = nil
	for len(answers) < 2 {
		answers = append(answers, p.Packets()...)
	}
	if answers[0] != `451-["message-back",{"_placeholder":true,"num":0}]` {
		t.Errorf("binary event = %q", answers[0])
	}
	if diff := cmp.Diff([]byte{1, 2, 3}, eiot.DecodeBinary(t, answers[1])); diff != "" {
		t.Errorf("attachment (-want +got):\n%s", diff)
	}
}

func TestUpgradeKeepsNamespaces(t *testing.T) {
	e := newEnv(t, relaxed)
	p, _ := eiot.Handshake(t, e.sio())
	p.Post("40")
	for n := 0; n < 2; n += len(p.Packets()) {
	}
	ws := eiot.DialWS(t, e.ws+"/socket.io/?EIO=4&transport=websocket&sid="+p.SID, nil)
	ws.Send("2probe")
	if got := ws.ReadText(); got != "3probe" {
		t.Fatalf("probe = %q", got)
	}
	ws.Send("5")
	ws.Send(`42["message","over websocket"]`)
	if got, want := ws.ReadText(), `42["message-back","over websocket"]`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
