package engineio

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// writePayload answers a poll with a payload.
func writePayload(w http.ResponseWriter, cfg Config, payload []byte) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(payload)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(payload)
}

// takeBatchLocked removes from the queue the packets of the next poll response: at least one packet, and
// no more than MaxPayload bytes unless the first packet alone is larger.
func (c *Conn) takeBatchLocked() []Packet {
	n, size := 0, 0
	for n < len(c.queue) {
		l := encodedLen(c.queue[n]) + 1
		if n > 0 && size+l > c.srv.cfg.MaxPayload {
			break
		}
		size += l
		n++
	}
	batch := make([]Packet, n)
	copy(batch, c.queue)
	for _, p := range batch {
		if p.Type == PacketMessage {
			c.queueBytes -= len(p.Data)
		}
	}
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
	return batch
}

// servePoll answers a GET of the polling transport: it waits until packets are queued (or the session
// closes, or an upgrade needs the poll released) and sends them.
func (c *Conn) servePoll(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.transport != TransportPolling {
		c.mu.Unlock()
		c.srv.refuse(w, r, CodeBadRequest)
		return
	}
	if c.pollActive {
		// The specification: a second concurrent GET gets a 400 and closes the session.
		c.mu.Unlock()
		c.srv.refuse(w, r, CodeBadRequest)
		c.finalize(ReasonTransportError)
		return
	}
	c.pollActive = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.pollActive = false
		c.mu.Unlock()
	}()

	for {
		c.mu.Lock()
		var payload []byte
		endAfter := false
		switch {
		case len(c.queue) > 0:
			batch := c.takeBatchLocked()
			payload = AppendPayload(nil, batch)
			endAfter = batch[len(batch)-1].Type == PacketClose
		case c.state == stateClosed:
			// Closed while the poll waited: a client's own close gets a noop, any other end a close packet
			// (as in the reference server).
			if c.closeReason == ReasonTransportClose {
				payload = []byte{'0' + byte(PacketNoop)}
			} else {
				payload = []byte{'0' + byte(PacketClose)}
			}
		case c.probed || c.transport != TransportPolling:
			// Release the poll so that the client can pause polling and complete the upgrade.
			payload = []byte{'0' + byte(PacketNoop)}
		}
		handOver := len(c.queue) > 0 || c.transport != TransportPolling
		c.mu.Unlock()
		if payload != nil {
			if handOver {
				c.signal() // the wake-up this poll may have taken belongs to the queue's next consumer
			}
			writePayload(w, c.srv.cfg, payload)
			if endAfter {
				c.finalize(ReasonForcedClose)
			}
			return
		}
		select {
		case <-c.notify:
		case <-c.done.Chan():
		case <-r.Context().Done():
			// The client went away while polling, as the reference server treats it.
			c.finalize(ReasonTransportError)
			return
		}
	}
}

// servePost handles a POST of the polling transport: a payload of packets from the client.
func (c *Conn) servePost(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.transport != TransportPolling {
		c.mu.Unlock()
		c.srv.refuse(w, r, CodeBadRequest)
		return
	}
	if c.postActive {
		// The specification: a second concurrent POST gets a 400 and closes the session.
		c.mu.Unlock()
		c.srv.refuse(w, r, CodeBadRequest)
		c.finalize(ReasonTransportError)
		return
	}
	c.postActive = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.postActive = false
		c.mu.Unlock()
	}()

	// Protocol v4 sends binary over polling as base64 text; a binary body is refused, as by the reference.
	if r.Header.Get("Content-Type") == "application/octet-stream" {
		c.srv.refuse(w, r, CodeBadRequest)
		c.finalize(ReasonTransportError)
		return
	}
	limit := int64(c.srv.cfg.MaxPayload)
	if r.ContentLength > limit {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		c.finalize(ReasonTransportError)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
		} else {
			c.srv.refuse(w, r, CodeBadRequest)
		}
		c.finalize(ReasonTransportError)
		return
	}
	pkts, err := DecodePayload(body)
	if err != nil {
		c.srv.refuse(w, r, CodeBadRequest)
		c.finalize(ReasonParseError)
		return
	}
	for _, p := range pkts {
		if !c.onPacket(p, false) {
			break
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok")
}
