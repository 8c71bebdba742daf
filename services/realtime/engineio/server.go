package engineio

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/gorilla/websocket"
)

// Transport names, as in the transport query parameter.
const (
	TransportPolling   = "polling"
	TransportWebSocket = "websocket"
)

// Close reasons passed to Handler.HandleClose. They are the reference server's reasons, so that a
// Socket.IO layer can pass them on as disconnect reasons.
const (
	ReasonTransportClose    = "transport close"     // the client closed the session or its connection
	ReasonTransportError    = "transport error"     // I/O error, protocol violation, or a client too slow to read
	ReasonPingTimeout       = "ping timeout"        // no pong within PingTimeout
	ReasonParseError        = "parse error"         // undecodable packet
	ReasonForcedClose       = "forced close"        // Conn.Close
	ReasonForcedServerClose = "forced server close" // Server.Close
)

// Error codes of the JSON body {"code":N,"message":"..."} that refused requests carry (the reference
// server's codes and messages).
const (
	CodeUnknownTransport    = 0
	CodeUnknownSID          = 1
	CodeBadHandshakeMethod  = 2
	CodeBadRequest          = 3
	CodeForbidden           = 4
	CodeUnsupportedProtocol = 5
)

var errorMessages = map[int]string{
	CodeUnknownTransport:    "Transport unknown",
	CodeUnknownSID:          "Session ID unknown",
	CodeBadHandshakeMethod:  "Bad handshake method",
	CodeBadRequest:          "Bad request",
	CodeForbidden:           "Forbidden",
	CodeUnsupportedProtocol: "Unsupported protocol version",
}

// Message is application data carried by a message packet: UTF-8 text, or binary when Binary is set.
// The server never modifies Data: a sender may pass the same Data to many sessions.
type Message struct {
	Data   []byte
	Binary bool
	// Borrowed is set on a received message whose Data the server only lends to the Handler: a binary
	// message read from a WebSocket, handed to a BorrowingHandler. Such Data is valid only until
	// HandleMessage returns; then the server zeroes it and reads later messages into it. Send ignores
	// the field, and must not be given borrowed Data, which it would write after the handler returned.
	Borrowed bool
}

// Handler receives the events of one session. HandleMessage is called from one goroutine at a time, in
// the order the client sent the messages; it should not block for long, since the session's transport
// reads nothing else meanwhile. HandleClose is called once, when the session has closed, from the
// goroutine that noticed the end (a transport, a timer, or Server.Close); it may overlap a HandleMessage
// call that is still running. Conn.Send, Conn.SendVolatile and Conn.Close never call the Handler.
//
// The messages a Handler receives are its own: it may keep their Data for as long as it likes.
type Handler interface {
	HandleMessage(m Message)
	HandleClose(reason string)
}

// BorrowingHandler is a Handler that may take binary messages borrowed (Message.Borrowed) rather than
// owned. A binary WebSocket message is read into a pooled buffer; a Handler gets a copy of it, one
// allocation of the message's size, while a BorrowingHandler that reports true gets the buffer itself,
// valid only until its HandleMessage returns: it must copy whatever it keeps, and must not hand the
// data to anything that keeps it (Conn.Send included). For a stream of binary messages (audio chunks
// ten times a second per client) the copies are most of the garbage the server makes, and what sets
// how often the collector runs.
//
// Text messages, and every message that arrives over HTTP long-polling (decoded into a buffer of its
// own anyway), are never borrowed. BorrowsBinary is asked once, when the session starts.
type BorrowingHandler interface {
	Handler
	BorrowsBinary() bool
}

// Server is an Engine.IO server: an http.Handler to mount at the Engine.IO path (for example /engine.io/).
// It is safe for concurrent use.
type Server struct {
	cfg      Config
	onConn   func(*Conn) Handler
	upgrader websocket.Upgrader
	log      *slog.Logger
	poller   *poller // parks idle WebSocket connections; nil: a reading goroutine per connection
	hb       *heartbeats
	// readBuffers holds the read buffers of parked connections (*bufio.Reader of cfg.ReadBufferSize bytes).
	readBuffers sync.Pool

	mu     sync.Mutex
	conns  map[string]*Conn
	closed bool           // written under both mu and trackMu; read under either
	wg     sync.WaitGroup // WebSocket readers and writers
	// trackMu orders wg.Add before wg.Wait: track holds it shared, Close exclusively to set closed. Writers
	// start on every burst of sends, so their start must not contend on mu.
	trackMu sync.RWMutex
}

// NewServer returns a server that calls onConnection for every new session, before the session's first
// packet is read; the Handler it returns receives the session's messages.
func NewServer(cfg Config, onConnection func(c *Conn) Handler) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:    cfg,
		onConn: onConnection,
		log:    cfg.Logger,
		conns:  make(map[string]*Conn),
		hb:     newHeartbeats(),
	}
	if !cfg.GoroutinePerConnection {
		if p, err := newPoller(); err == nil {
			s.poller = p
		} else {
			s.log.Debug("engineio: no idle-connection poller; a goroutine reads each WebSocket", "err", err)
		}
	}
	s.upgrader = websocket.Upgrader{
		// 0: the upgrader keeps the read buffer of the hijacked connection, which serveWebSocket sizes to
		// cfg.ReadBufferSize.
		ReadBufferSize:  0,
		WriteBufferSize: cfg.WriteBufferSize,
		WriteBufferPool: &sync.Pool{},
		// The origin was checked by ServeHTTP before the upgrade.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, _ *http.Request, _ int, _ error) {
			writeError(w, CodeBadRequest)
		},
	}
	return s, nil
}

// Config returns the server's configuration, with defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Count returns the number of open sessions.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close closes every session (reason "forced server close") and waits for the goroutines the server
// started. Requests served afterwards are answered 503. Close must not be called from a Handler.
func (s *Server) Close() error {
	s.trackMu.Lock()
	s.mu.Lock()
	s.closed = true
	s.trackMu.Unlock()
	conns := make([]*Conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.finalize(ReasonForcedServerClose)
	}
	s.wg.Wait()
	s.hb.stop()
	if s.poller != nil {
		s.poller.close()
	}
	return nil
}

// track registers a goroutine with the server's wait group, unless the server is closed.
func (s *Server) track() bool {
	s.trackMu.RLock()
	defer s.trackMu.RUnlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// Conn returns the open session sid, or nil.
func (s *Server) Conn(sid string) *Conn { return s.lookup(sid) }

func (s *Server) lookup(sid string) *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[sid]
}

// register adds c to the sessions, unless the server is closed.
func (s *Server) register(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c.id] = c
	return true
}

func (s *Server) remove(c *Conn) {
	s.mu.Lock()
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
	}
	s.mu.Unlock()
}

// ServeHTTP serves the Engine.IO protocol: handshakes, polling requests and WebSocket connections.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	allowed := s.cfg.CheckOrigin(r)
	if allowed && !s.cfg.DisableCORS {
		if origin := r.Header.Get("Origin"); origin != "" {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Add("Vary", "Origin")
		}
	}
	if r.Method == http.MethodOptions && !s.cfg.DisableCORS && r.Header.Get("Access-Control-Request-Method") != "" {
		if !allowed {
			s.refuse(w, r, CodeForbidden)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
			h.Set("Access-Control-Allow-Headers", rh)
		}
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	}

	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}

	// The checks and their order follow the reference server: transport, origin, session, method, version.
	query := r.URL.RawQuery
	transport := queryValue(query, "transport")
	if transport != TransportPolling && transport != TransportWebSocket {
		s.refuse(w, r, CodeUnknownTransport)
		return
	}
	if !allowed {
		s.refuse(w, r, CodeForbidden)
		return
	}
	isUpgrade := transport == TransportWebSocket && websocket.IsWebSocketUpgrade(r)
	sid := queryValue(query, "sid")
	var c *Conn
	if sid != "" {
		if c = s.lookup(sid); c == nil {
			s.refuse(w, r, CodeUnknownSID)
			return
		}
		if !isUpgrade && transport != c.currentTransport() {
			s.refuse(w, r, CodeBadRequest)
			return
		}
	} else {
		if r.Method != http.MethodGet {
			s.refuse(w, r, CodeBadHandshakeMethod)
			return
		}
		if transport == TransportWebSocket && !isUpgrade {
			s.refuse(w, r, CodeBadRequest)
			return
		}
	}
	if queryValue(query, "EIO") != "4" {
		s.refuse(w, r, CodeUnsupportedProtocol)
		return
	}

	switch {
	case c == nil && transport == TransportPolling:
		s.handshakePolling(w, r)
	case c == nil:
		s.serveWebSocket(w, r, nil)
	case transport == TransportWebSocket:
		s.serveWebSocket(w, r, c)
	case r.Method == http.MethodGet:
		c.servePoll(w, r)
	case r.Method == http.MethodPost:
		c.servePost(w, r)
	default:
		s.refuse(w, r, CodeBadRequest)
	}
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int) {
	s.log.Debug("engineio: request refused", "code", code, "message", errorMessages[code],
		"method", r.Method, "path", r.URL.Path)
	writeError(w, code)
}

// writeError answers a refused request as the reference server does: 400 (403 for Forbidden) with the
// JSON body {"code":N,"message":"..."}.
func writeError(w http.ResponseWriter, code int) {
	status := http.StatusBadRequest
	if code == CodeForbidden {
		status = http.StatusForbidden
	}
	body, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, errorMessages[code]})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// handshake is the JSON payload of the open packet.
type handshake struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"`
	PingTimeout  int64    `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

func (s *Server) openPacket(sid string, upgrades []string) Packet {
	data, _ := json.Marshal(handshake{
		SID:          sid,
		Upgrades:     upgrades,
		PingInterval: s.cfg.PingInterval.Milliseconds(),
		PingTimeout:  s.cfg.PingTimeout.Milliseconds(),
		MaxPayload:   s.cfg.MaxPayload,
	})
	return Packet{Type: PacketOpen, Data: data}
}

// newSID returns a random session id: 20 URL-safe base64 characters, as the reference server's.
func newSID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// start creates the session, asks the connection callback for its handler and registers it. It returns
// nil when the server is closed.
func (s *Server) start(r *http.Request, transport string, ws *wsTransport) *Conn {
	c := newConn(s, r, transport, ws)
	h := s.onConn(c)
	if bh, ok := h.(BorrowingHandler); ok && bh.BorrowsBinary() {
		c.borrowBinary = true
	}
	c.mu.Lock()
	c.handler = h
	c.mu.Unlock()
	if !s.register(c) {
		c.finalize(ReasonForcedServerClose)
		return nil
	}
	return c
}

func (s *Server) handshakePolling(w http.ResponseWriter, r *http.Request) {
	c := s.start(r, TransportPolling, nil)
	if c == nil {
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	c.mu.Lock()
	c.schedulePingLocked()
	c.mu.Unlock()
	writePayload(w, s.cfg, AppendPacket(nil, s.openPacket(c.id, []string{TransportWebSocket})))
}
