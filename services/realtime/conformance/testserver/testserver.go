// Package testserver builds the server that the socketio/engine.io-protocol and
// socketio/socket.io-protocol test suites expect (their reference configuration), on packages engineio
// and socketio: Socket.IO at /socket.io/ and a raw Engine.IO echo at /engine.io/, pingInterval 300 ms,
// pingTimeout 200 ms, maxPayload 1,000,000, connectTimeout 1 s, any origin. The namespaces / and /custom
// emit "auth" with the handshake auth object on connect; on /, "message" is answered by "message-back"
// with the same arguments and "message-with-ack" is acknowledged with them (both namespaces answer them
// here, which the suites allow); any other namespace is refused with "Invalid namespace".
//
// The conformance command serves it; the Go protocol tests and the official-client tests run against it.
package testserver

import (
	"cmp"
	"errors"
	"net/http"
	"time"

	"github.com/classwaves/classwaves/services/realtime/engineio"
	"github.com/classwaves/classwaves/services/realtime/socketio"
)

// Options adjust the reference configuration for tests. The zero value is the reference configuration.
type Options struct {
	// PingInterval, PingTimeout and ConnectTimeout replace the reference 300 ms, 200 ms and 1 s (tests
	// that are not about heartbeats use longer ones, so that a loaded machine cannot make them flaky).
	PingInterval, PingTimeout, ConnectTimeout time.Duration
	// Recovery enables connection state recovery on the Socket.IO server (the suites run without it: with
	// it, CONNECT carries a pid and events an offset).
	Recovery socketio.RecoveryConfig
	// CheckOrigin replaces the allow-all origin check.
	CheckOrigin func(r *http.Request) bool
	// OrderedEmits sets socketio.Config.OrderedEmits.
	OrderedEmits bool
}

// Server is the conformance server: an http.Handler serving /socket.io/ and /engine.io/.
type Server struct {
	// SocketIO serves /socket.io/; tests may add namespaces to it.
	SocketIO *socketio.Server
	// EngineIO serves the echo at /engine.io/.
	EngineIO *engineio.Server

	mux *http.ServeMux
}

// EngineConfig returns the Engine.IO settings of the reference configuration.
func EngineConfig(opts Options) engineio.Config {
	check := opts.CheckOrigin
	if check == nil {
		check = engineio.AllowOrigins("*")
	}
	return engineio.Config{
		PingInterval: cmp.Or(opts.PingInterval, 300*time.Millisecond),
		PingTimeout:  cmp.Or(opts.PingTimeout, 200*time.Millisecond),
		MaxPayload:   1_000_000,
		CheckOrigin:  check,
	}
}

// New returns the conformance server.
func New(opts Options) (*Server, error) {
	sio, err := socketio.NewServer(socketio.Config{
		Engine:         EngineConfig(opts),
		ConnectTimeout: cmp.Or(opts.ConnectTimeout, time.Second),
		Recovery:       opts.Recovery,
		OrderedEmits:   opts.OrderedEmits,
	})
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"/", "/custom"} {
		sio.Of(name).OnConnection(onConnection)
	}
	eio, err := engineio.NewServer(EngineConfig(opts), func(c *engineio.Conn) engineio.Handler {
		return echo{c}
	})
	if err != nil {
		return nil, errors.Join(err, sio.Close())
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", sio)
	mux.Handle("/engine.io/", eio)
	return &Server{SocketIO: sio, EngineIO: eio, mux: mux}, nil
}

func onConnection(s *socketio.Socket) {
	_ = s.Emit("auth", s.Handshake().RawAuth)
	s.On("message", func(e *socketio.Event) {
		_ = s.Emit("message-back", e.Args.Values()...)
	})
	s.On("message-with-ack", func(e *socketio.Event) {
		_ = e.Ack(e.Args.Values()...)
	})
}

// echo sends every message of an Engine.IO session back unchanged.
type echo struct{ c *engineio.Conn }

func (e echo) HandleMessage(m engineio.Message) { _ = e.c.Send(m) }
func (e echo) HandleClose(string)               {}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close closes both servers.
func (s *Server) Close() error { return errors.Join(s.SocketIO.Close(), s.EngineIO.Close()) }
