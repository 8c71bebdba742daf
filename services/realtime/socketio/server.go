package socketio

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/classwaves/classwaves/services/realtime/engineio"
)

// Disconnect reasons of the Socket.IO layer. Reasons of the Engine.IO layer (engineio.Reason*) are passed
// on as they are.
const (
	ReasonServerNamespaceDisconnect = "server namespace disconnect" // Socket.Disconnect
	ReasonClientNamespaceDisconnect = "client namespace disconnect" // the client left the namespace
	ReasonServerShuttingDown        = "server shutting down"        // Server.Close
)

// recoverableReasons are the disconnect reasons after which a session may be recovered (as in the
// reference server).
var recoverableReasons = map[string]bool{
	engineio.ReasonTransportError:    true,
	engineio.ReasonTransportClose:    true,
	engineio.ReasonForcedClose:       true,
	engineio.ReasonPingTimeout:       true,
	engineio.ReasonForcedServerClose: true,
	ReasonServerShuttingDown:         true,
}

// Errors of the Socket.IO layer.
var (
	// ErrDisconnected reports an emit on a disconnected socket, or an acknowledgement that will never come
	// because the socket disconnected.
	ErrDisconnected = errors.New("socketio: socket disconnected")
	// ErrAckTimeout reports an acknowledgement that did not arrive in time.
	ErrAckTimeout = errors.New("socketio: acknowledgement timed out")
	// ErrReservedEvent reports an emit of a reserved event name (connect, connect_error, disconnect,
	// disconnecting, newListener, removeListener).
	ErrReservedEvent = errors.New("socketio: reserved event name")
	// ErrAlreadyAcked reports a second acknowledgement of the same event.
	ErrAlreadyAcked = errors.New("socketio: event already acknowledged")
)

// ConnectError refuses a namespace connection: a middleware returns it to send the client a
// CONNECT_ERROR packet with {message, data}. A middleware returning any other error sends {message:
// err.Error()} (as the reference server does): keep internal details out of such errors.
type ConnectError struct {
	Message string
	Data    any // optional; sent as the "data" field when not nil
}

func (e *ConnectError) Error() string { return e.Message }

// RecoveryConfig configures connection state recovery.
type RecoveryConfig struct {
	// Enabled turns recovery on.
	Enabled bool
	// MaxDisconnectionDuration is how long a disconnected session, and a broadcast packet, is kept
	// (default 2m, as the reference server).
	MaxDisconnectionDuration time.Duration
	// MaxPackets bounds the packets kept per namespace for recovery (default 10000); a client whose offset
	// fell out of the buffer gets a new session.
	MaxPackets int
	// SkipMiddlewares skips the namespace's middlewares when a session is recovered (the reference server
	// skips them by default; here they run unless this is set).
	SkipMiddlewares bool
}

// Config configures a Server. Zero values select the defaults shown.
type Config struct {
	// Engine configures the Engine.IO layer (ping interval and timeout, max payload, origin check, queues).
	Engine engineio.Config
	// ConnectTimeout closes a connection that has not joined a namespace in time (default 45s).
	ConnectTimeout time.Duration
	// MaxAttachments caps the binary attachments of one received packet (default 10).
	MaxAttachments int
	// MaxPendingPackets caps the packets a socket buffers while its connection handlers run (default 256);
	// a client sending more is disconnected.
	MaxPendingPackets int
	// OrderedEmits makes broadcasts to the same room go out in one order to every recipient, even when
	// emitted from concurrent goroutines (the seed's WS_ORDERED_EMITS=1). Without it, concurrent
	// broadcasts to one room may interleave differently for different recipients.
	OrderedEmits bool
	// Recovery configures connection state recovery.
	Recovery RecoveryConfig
	// NewAdapter returns the adapter of a namespace (default: NewMemoryAdapter, local only).
	NewAdapter func(ns *Namespace) Adapter
	// Logger receives debug logs about refused packets and handler panics (default: discard).
	Logger *slog.Logger
}

// Validate reports what is wrong with c, if anything.
func (c *Config) Validate() error {
	errs := []error{c.Engine.Validate()}
	if c.ConnectTimeout < 0 {
		errs = append(errs, fmt.Errorf("socketio: ConnectTimeout must not be negative, got %v", c.ConnectTimeout))
	}
	if c.MaxAttachments < 0 {
		errs = append(errs, fmt.Errorf("socketio: MaxAttachments must not be negative, got %d", c.MaxAttachments))
	}
	if c.MaxPendingPackets < 0 {
		errs = append(errs, fmt.Errorf("socketio: MaxPendingPackets must not be negative, got %d", c.MaxPendingPackets))
	}
	if c.Recovery.MaxDisconnectionDuration < 0 {
		errs = append(errs, fmt.Errorf("socketio: Recovery.MaxDisconnectionDuration must not be negative, got %v",
			c.Recovery.MaxDisconnectionDuration))
	}
	if c.Recovery.MaxPackets < 0 {
		errs = append(errs, fmt.Errorf("socketio: Recovery.MaxPackets must not be negative, got %d", c.Recovery.MaxPackets))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 45 * time.Second
	}
	if c.MaxAttachments == 0 {
		c.MaxAttachments = 10
	}
	if c.MaxPendingPackets == 0 {
		c.MaxPendingPackets = 256
	}
	if c.Recovery.MaxDisconnectionDuration == 0 {
		c.Recovery.MaxDisconnectionDuration = 2 * time.Minute
	}
	if c.Recovery.MaxPackets == 0 {
		c.Recovery.MaxPackets = 10000
	}
	if c.NewAdapter == nil {
		c.NewAdapter = func(ns *Namespace) Adapter { return NewMemoryAdapter(ns) }
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Engine.Logger == nil {
		c.Engine.Logger = c.Logger
	}
	return c
}

// Server is a Socket.IO server: an http.Handler to mount at the Socket.IO path (usually /socket.io/).
// The main namespace "/" always exists.
type Server struct {
	cfg    Config
	engine *engineio.Server
	log    *slog.Logger

	mu         sync.Mutex
	namespaces map[string]*Namespace
	closed     bool
	wg         sync.WaitGroup // connect middleware goroutines
}

// NewServer returns a server.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, log: cfg.Logger, namespaces: make(map[string]*Namespace)}
	engine, err := engineio.NewServer(cfg.Engine, s.onConnection)
	if err != nil {
		return nil, err
	}
	s.engine = engine
	s.Of("/")
	return s, nil
}

// ServeHTTP serves the Engine.IO transports that carry Socket.IO.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// Recovery returns the connection state recovery settings, defaults applied.
func (s *Server) Recovery() RecoveryConfig { return s.cfg.Recovery }

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// Engine returns the underlying Engine.IO server.
func (s *Server) Engine() *engineio.Server { return s.engine }

// Of returns the namespace name (with a leading "/" added if missing), creating it if needed.
func (s *Server) Of(name string) *Namespace {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ns, ok := s.namespaces[name]; ok {
		return ns
	}
	ns := newNamespace(s, name)
	s.namespaces[name] = ns
	return ns
}

// namespace returns an existing namespace, or nil.
func (s *Server) namespace(name string) *Namespace {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.namespaces[name]
}

// track registers a goroutine with the server's wait group, unless the server is closed.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// Close disconnects every socket (reason "server shutting down", which is recoverable), closes the
// Engine.IO server and the adapters, and waits for the goroutines the server started. Connect middlewares
// must return once their context is canceled. Close must not be called from a handler.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	nss := make([]*Namespace, 0, len(s.namespaces))
	for _, ns := range s.namespaces {
		nss = append(nss, ns)
	}
	s.mu.Unlock()
	for _, ns := range nss {
		for _, sock := range ns.Sockets() {
			sock.onClose(ReasonServerShuttingDown)
		}
	}
	errs := []error{s.engine.Close()}
	s.wg.Wait()
	for _, ns := range nss {
		errs = append(errs, ns.adapter.Close())
	}
	return errors.Join(errs...)
}

// newID returns a random id of 20 URL-safe base64 characters (socket ids and private session ids).
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
