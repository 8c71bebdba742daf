package engineio

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsTransport is one WebSocket connection. Only the session's writer goroutine writes data frames (the
// reader answers the upgrade probe before the writer starts); close may be called from anywhere.
type wsTransport struct {
	conn      *websocket.Conn
	closeOnce sync.Once
}

// close sends a normal-closure frame, without waiting long for it, and closes the connection.
func (t *wsTransport) close() {
	t.closeOnce.Do(func() {
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		_ = t.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(100*time.Millisecond))
		_ = t.conn.Close()
	})
}

// serveWebSocket upgrades r and serves the connection: a new WebSocket session when c is nil, otherwise an
// upgrade of session c from polling. It returns when the connection is closed.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, c *Conn) {
	if !s.track() {
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered the request
	}
	conn.SetReadLimit(int64(s.cfg.MaxPayload))
	t := &wsTransport{conn: conn}

	if c == nil {
		c = s.start(r, TransportWebSocket, t)
		if c == nil {
			t.close()
			return
		}
		c.mu.Lock()
		c.queue = append([]Packet{s.openPacket(c.id, []string{})}, c.queue...)
		c.schedulePingLocked()
		started := c.startWriterLocked(t)
		c.mu.Unlock()
		if !started {
			t.close()
			return
		}
		c.readLoop(t, false)
		return
	}

	// An upgrade: the reference server accepts the WebSocket and closes it at once when the session
	// cannot be upgraded (already upgraded, upgrading, or closing).
	c.mu.Lock()
	if c.state != stateOpen || c.transport != TransportPolling || c.probe != nil {
		c.mu.Unlock()
		t.close()
		return
	}
	c.probe = t
	c.probeTimer = time.AfterFunc(s.cfg.UpgradeTimeout, func() { c.dropProbe(t) })
	c.mu.Unlock()
	c.readLoop(t, true)
}

// startWriterLocked starts the writer goroutine of transport t, unless the server is closing.
func (c *Conn) startWriterLocked(t *wsTransport) bool {
	if !c.srv.track() {
		return false
	}
	go c.writeLoop(t)
	c.signal()
	return true
}

// dropProbe abandons the upgrade to t, if it is still in progress, and closes t.
func (c *Conn) dropProbe(t *wsTransport) {
	c.mu.Lock()
	if c.probe == t {
		c.probe = nil
		c.probed = false
		stopTimer(&c.probeTimer)
	}
	c.mu.Unlock()
	t.close()
}

// completeUpgrade makes t the session's transport. It reports false when the upgrade no longer applies.
func (c *Conn) completeUpgrade(t *wsTransport) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen || c.probe != t {
		return false
	}
	stopTimer(&c.probeTimer)
	c.probe = nil
	c.probed = false
	c.transport = TransportWebSocket
	c.ws = t
	if !c.startWriterLocked(t) {
		c.ws = nil
		return false
	}
	return true
}

// readLoop reads t until it fails. While probing, t is a WebSocket being upgraded to: only the probe
// ping and the upgrade packet are allowed on it.
func (c *Conn) readLoop(t *wsTransport, probing bool) {
	for {
		typ, data, err := t.conn.ReadMessage()
		if err != nil {
			if probing {
				c.dropProbe(t)
				return
			}
			reason := ReasonTransportClose
			if errors.Is(err, websocket.ErrReadLimit) {
				reason = ReasonTransportError
			}
			c.finalize(reason)
			return
		}
		var p Packet
		if typ == websocket.BinaryMessage {
			p = Packet{Type: PacketMessage, Data: data, Binary: true}
		} else if p, err = DecodePacket(data); err != nil {
			if probing {
				c.dropProbe(t)
			} else {
				c.finalize(ReasonParseError)
			}
			return
		}
		if !probing {
			if !c.onPacket(p) {
				return
			}
			continue
		}
		switch {
		case p.Type == PacketPing && string(p.Data) == "probe":
			// The writer goroutine is not running yet for t: this goroutine is its only writer.
			_ = t.conn.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
			if err := t.conn.WriteMessage(websocket.TextMessage, []byte("3probe")); err != nil {
				c.dropProbe(t)
				return
			}
			c.mu.Lock()
			if c.probe == t {
				c.probed = true
				c.signal() // release a pending poll with a noop
			}
			c.mu.Unlock()
		case p.Type == PacketUpgrade:
			if !c.completeUpgrade(t) {
				c.dropProbe(t)
				return
			}
			probing = false
		default:
			c.dropProbe(t)
			return
		}
	}
}

// writeLoop drains the session's queue to t until the session or t ends.
func (c *Conn) writeLoop(t *wsTransport) {
	defer c.srv.wg.Done()
	var batch []Packet
	for {
		c.mu.Lock()
		if c.ws != t && c.state != stateClosed {
			// Not (or no longer) this transport's turn; cannot happen today, but never write out of turn.
			c.mu.Unlock()
			return
		}
		batch, c.queue = c.queue, batch[:0]
		c.queueBytes = 0
		state := c.state
		c.mu.Unlock()

		if len(batch) == 0 {
			switch state {
			case stateClosed:
				return
			case stateClosing:
				t.close()
				c.finalize(ReasonForcedClose)
				return
			}
			select {
			case <-c.notify:
			case <-c.done:
			}
			continue
		}
		for i, p := range batch {
			if err := c.writePacket(t, p); err != nil {
				c.finalize(ReasonTransportError)
				return
			}
			batch[i] = Packet{}
		}
	}
}

func (c *Conn) writePacket(t *wsTransport, p Packet) error {
	if err := t.conn.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout)); err != nil {
		return err
	}
	if p.Binary {
		return t.conn.WriteMessage(websocket.BinaryMessage, p.Data)
	}
	w, err := t.conn.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte{'0' + byte(p.Type)}); err != nil {
		return err
	}
	if _, err := w.Write(p.Data); err != nil {
		return err
	}
	return w.Close()
}
