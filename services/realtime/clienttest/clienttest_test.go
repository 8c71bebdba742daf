package clienttest

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/classwaves/classwaves/services/realtime/conformance/testserver"
	"github.com/classwaves/classwaves/services/realtime/socketio"
)

// TestOfficialClient runs client.test.mjs with Node's test runner against two servers: the conformance
// configuration, and the same with connection state recovery on. Both also serve the test namespaces
// /rooms and /private set up below.
func TestOfficialClient(t *testing.T) {
	node := requireNode(t)
	// Heartbeats slower than the reference 300/200 ms, so that a loaded machine cannot time the client out.
	base := testserver.Options{PingInterval: time.Second, PingTimeout: 5 * time.Second, ConnectTimeout: 10 * time.Second}
	recovering := base
	recovering.Recovery = socketio.RecoveryConfig{Enabled: true, SkipMiddlewares: true}
	plainURL, recoveryURL := serve(t, base), serve(t, recovering)

	runNode(t, node, "client.test.mjs", "PLAIN_URL="+plainURL, "RECOVERY_URL="+recoveryURL)
}

// serve starts the conformance handler with the test namespaces on a loopback port and returns its URL.
func serve(t *testing.T, opts testserver.Options) string {
	t.Helper()
	srv, err := testserver.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	addTestNamespaces(srv.SocketIO)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		hs.Close()
	})
	return hs.URL
}

// addTestNamespaces sets up /rooms (welcome event, join/leave/say with rooms, a server-to-client ack
// round trip) and /private (a middleware that wants auth.token "secret").
func addTestNamespaces(srv *socketio.Server) {
	rooms := srv.Of("/rooms")
	rooms.OnConnection(func(s *socketio.Socket) {
		_ = s.Emit("welcome", s.ID(), s.Recovered())
		s.On("join", func(e *socketio.Event) {
			var room string
			_ = e.Args.Decode(0, &room)
			s.Join(room)
			_ = e.Ack(s.Rooms())
		})
		s.On("leave", func(e *socketio.Event) {
			var room string
			_ = e.Args.Decode(0, &room)
			s.Leave(room)
			_ = e.Ack()
		})
		s.On("say", func(e *socketio.Event) {
			var room string
			_ = e.Args.Decode(0, &room)
			_ = s.To(room).Emit("said", e.Args.Value(1))
			_ = e.Ack()
		})
		s.On("rooms", func(e *socketio.Event) { _ = e.Ack(s.Rooms()) })
		// Asks the client a question with an acknowledgement and acknowledges with the client's answer.
		// The answer arrives on this connection's reading goroutine: wait for it with a callback.
		s.On("ask-me", func(e *socketio.Event) {
			err := s.EmitAck("question", 10*time.Second, func(answer socketio.Args, err error) {
				if err != nil {
					_ = e.Ack("error: " + err.Error())
					return
				}
				_ = e.Ack(answer.Values()...)
			}, e.Args.Values()...)
			if err != nil {
				_ = e.Ack("error: " + err.Error())
			}
		})
	})
	private := srv.Of("/private")
	private.Use(func(_ context.Context, s *socketio.Socket) error {
		if s.Handshake().Auth()["token"] != "secret" {
			return &socketio.ConnectError{Message: "not authorized", Data: map[string]any{"code": "AUTH_REQUIRED"}}
		}
		s.SetData("authorized")
		return nil
	})
	private.OnConnection(func(s *socketio.Socket) {
		s.On("whoami", func(e *socketio.Event) { _ = e.Ack(s.Data()) })
	})
}
