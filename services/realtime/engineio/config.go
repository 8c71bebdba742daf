package engineio

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config configures a Server. The zero value of every field selects the default shown beside it; the
// defaults match the reference JavaScript server (engine.io v6) where it has the same setting.
type Config struct {
	// PingInterval is the time between two server pings (default 25s).
	PingInterval time.Duration
	// PingTimeout is how long the server waits for the pong before it closes the session (default 20s).
	PingTimeout time.Duration
	// MaxPayload is the largest message, polling POST body or WebSocket frame accepted, in bytes (the
	// reference server's maxHttpBufferSize; default 1,000,000). A larger POST is answered 413 and a larger
	// frame closes the connection; either way the session is closed.
	MaxPayload int
	// UpgradeTimeout bounds an upgrade from polling to WebSocket, from the WebSocket handshake to the
	// upgrade packet (default 10s).
	UpgradeTimeout time.Duration
	// WriteTimeout bounds one WebSocket write and the writing of one polling response (default 10s).
	WriteTimeout time.Duration
	// WriteQueueSoftLimit is the number of queued packets at which volatile sends are dropped (default 256).
	WriteQueueSoftLimit int
	// WriteQueueHardLimit is the number of queued packets past which a session is closed: its client reads
	// too slowly (default 4096).
	WriteQueueHardLimit int
	// WriteQueueMaxBytes is the size of queued packet data past which a session is closed (default 32 MiB).
	WriteQueueMaxBytes int
	// CheckOrigin reports whether a request may be served, given its Origin header. Requests that fail it
	// are answered 403 with error code 4 (Forbidden). When nil, requests without an Origin header and
	// requests whose Origin host equals the request's Host are allowed (the gorilla/websocket default).
	// AllowOrigins builds a CheckOrigin from an allowlist.
	CheckOrigin func(r *http.Request) bool
	// DisableCORS stops the server from answering CORS preflight requests and from adding the
	// Access-Control-Allow-* headers for allowed origins (set it when a proxy in front does CORS).
	DisableCORS bool
	// ReadBufferSize sizes each WebSocket connection's read buffer (default 4096, minimum 512; larger
	// messages are read past it). A connection holds it while it reads: a parked connection gives it back
	// to a pool (with GoroutinePerConnection, a connection holds it for its whole life). WriteBufferSize
	// sizes the frame buffer of a write (default 4096); write buffers are pooled and held only while a
	// connection writes.
	ReadBufferSize, WriteBufferSize int
	// GoroutinePerConnection keeps a goroutine reading each WebSocket connection for its whole life. By
	// default (on Linux) a connection with nothing to read parks on an epoll instance the server shares
	// between its connections, and holds no goroutine until its next message arrives.
	GoroutinePerConnection bool
	// ReadLinger is how long the reader of a WebSocket connection that streams waits for the next message
	// before it parks (default 250ms; negative: park at once). A connection streams when its last three
	// messages each came less than ReadLinger after the one before; others park at once. Connections that
	// stream keep their reader.
	ReadLinger time.Duration
	// Logger receives debug logs about refused requests and closed sessions (default: discard).
	Logger *slog.Logger
}

// Validate reports what is wrong with c, if anything. Zero values are valid: they select defaults.
func (c *Config) Validate() error {
	var errs []error
	neg := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("engineio: %s must not be negative, got %d", name, v))
		}
	}
	neg("PingInterval", int64(c.PingInterval))
	neg("PingTimeout", int64(c.PingTimeout))
	neg("MaxPayload", int64(c.MaxPayload))
	neg("UpgradeTimeout", int64(c.UpgradeTimeout))
	neg("WriteTimeout", int64(c.WriteTimeout))
	neg("WriteQueueSoftLimit", int64(c.WriteQueueSoftLimit))
	neg("WriteQueueHardLimit", int64(c.WriteQueueHardLimit))
	neg("WriteQueueMaxBytes", int64(c.WriteQueueMaxBytes))
	neg("ReadBufferSize", int64(c.ReadBufferSize))
	neg("WriteBufferSize", int64(c.WriteBufferSize))
	d := c.withDefaults()
	if d.WriteQueueSoftLimit > d.WriteQueueHardLimit {
		errs = append(errs, fmt.Errorf("engineio: WriteQueueSoftLimit (%d) must not exceed WriteQueueHardLimit (%d)",
			d.WriteQueueSoftLimit, d.WriteQueueHardLimit))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defDur(&c.PingInterval, 25*time.Second)
	defDur(&c.PingTimeout, 20*time.Second)
	def(&c.MaxPayload, 1_000_000)
	defDur(&c.UpgradeTimeout, 10*time.Second)
	defDur(&c.WriteTimeout, 10*time.Second)
	def(&c.WriteQueueSoftLimit, 256)
	def(&c.WriteQueueHardLimit, 4096)
	def(&c.WriteQueueMaxBytes, 32<<20)
	defDur(&c.ReadLinger, 250*time.Millisecond)
	def(&c.ReadBufferSize, 4096)
	c.ReadBufferSize = max(c.ReadBufferSize, 512) // the upgrader reuses a hijacked reader only past 256 bytes
	def(&c.WriteBufferSize, 4096)
	if c.CheckOrigin == nil {
		c.CheckOrigin = sameOrigin
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// sameOrigin allows requests without an Origin header and requests whose Origin host is the Host.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// AllowOrigins returns a CheckOrigin that allows requests without an Origin header and requests whose
// Origin is one of origins (scheme://host[:port], compared without a trailing slash and case-insensitively).
// An entry "*" allows every origin.
func AllowOrigins(origins ...string) func(r *http.Request) bool {
	allowed := make(map[string]bool, len(origins))
	all := false
	for _, o := range origins {
		o = strings.ToLower(strings.TrimRight(strings.TrimSpace(o), "/"))
		if o == "*" {
			all = true
		}
		if o != "" {
			allowed[o] = true
		}
	}
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		return origin == "" || all || allowed[strings.ToLower(strings.TrimRight(origin, "/"))]
	}
}
