// Package engineiotest provides raw Engine.IO clients for protocol tests: a WebSocket client on
// gorilla/websocket and an HTTP long-polling client on net/http. They speak the wire format directly,
// so tests can send exactly the frames and payloads the specifications describe, including invalid ones.
// Every wait is bounded by Timeout so that a broken server fails a test instead of hanging it.
package engineiotest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/classwaves/classwaves/services/realtime/engineio"
)

// Timeout bounds every wait of the clients (a guard against hangs, not a performance assertion).
const Timeout = 10 * time.Second

// Open is the handshake data of an open packet.
type Open struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

// ParseOpen decodes an open packet ("0{...}").
func ParseOpen(t testing.TB, packet string) Open {
	t.Helper()
	if !strings.HasPrefix(packet, "0") {
		t.Fatalf("got %q, want an open packet", packet)
	}
	var o Open
	if err := json.Unmarshal([]byte(packet[1:]), &o); err != nil {
		t.Fatalf("open packet %q: %v", packet, err)
	}
	return o
}

// Frame is one WebSocket message.
type Frame struct {
	Binary bool
	Data   []byte
}

func (f Frame) String() string {
	if f.Binary {
		return fmt.Sprintf("binary[% x]", f.Data)
	}
	return string(f.Data)
}

// WS is a raw Engine.IO WebSocket client.
type WS struct {
	t    testing.TB
	Conn *websocket.Conn
}

// DialWS dials url (ws://...) and fails the test if the handshake fails.
func DialWS(t testing.TB, url string, header http.Header) *WS {
	t.Helper()
	w, resp, err := TryDialWS(url, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", url, err, status)
	}
	w.t = t
	t.Cleanup(func() { _ = w.Conn.Close() })
	return w
}

// TryDialWS dials url and returns the handshake response on failure. The returned client has no test
// attached: use it only through Conn, or dial with DialWS.
func TryDialWS(url string, header http.Header) (*WS, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: Timeout}
	c, resp, err := d.Dial(url, header)
	if err != nil {
		return nil, resp, err
	}
	return &WS{Conn: c}, resp, nil
}

// Send sends a text frame.
func (w *WS) Send(text string) {
	w.t.Helper()
	if err := w.Conn.WriteMessage(websocket.TextMessage, []byte(text)); err != nil {
		w.t.Fatalf("send %q: %v", text, err)
	}
}

// SendBinary sends a binary frame.
func (w *WS) SendBinary(b []byte) {
	w.t.Helper()
	if err := w.Conn.WriteMessage(websocket.BinaryMessage, b); err != nil {
		w.t.Fatalf("send binary: %v", err)
	}
}

// ReadRaw returns the next frame, pings included.
func (w *WS) ReadRaw() Frame {
	w.t.Helper()
	_ = w.Conn.SetReadDeadline(time.Now().Add(Timeout))
	typ, data, err := w.Conn.ReadMessage()
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	return Frame{Binary: typ == websocket.BinaryMessage, Data: data}
}

// Read returns the next frame that is not a ping, answering pings with pongs.
func (w *WS) Read() Frame {
	w.t.Helper()
	for {
		f := w.ReadRaw()
		if !f.Binary && string(f.Data) == "2" {
			w.Send("3")
			continue
		}
		return f
	}
}

// ReadText returns the next non-ping frame, which must be text.
func (w *WS) ReadText() string {
	w.t.Helper()
	f := w.Read()
	if f.Binary {
		w.t.Fatalf("got a binary frame % x, want text", f.Data)
	}
	return string(f.Data)
}

// ReadOpen reads the open packet of a WebSocket-only session.
func (w *WS) ReadOpen() Open {
	w.t.Helper()
	return ParseOpen(w.t, w.ReadText())
}

// ExpectClosed reads until the server closes the connection; frames received meanwhile are ignored (pings
// are not answered). It fails the test if the connection is still open after Timeout.
func (w *WS) ExpectClosed() {
	w.t.Helper()
	_ = w.Conn.SetReadDeadline(time.Now().Add(Timeout))
	for {
		if _, _, err := w.Conn.ReadMessage(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				w.t.Fatalf("connection still open after %v", Timeout)
			}
			return
		}
	}
}

// Drop closes the TCP connection without a close frame, like a network failure.
func (w *WS) Drop() { _ = w.Conn.NetConn().Close() }

// Polling is a raw Engine.IO HTTP long-polling client for one session.
type Polling struct {
	t      testing.TB
	URL    string // the Engine.IO endpoint, http://host/path/
	SID    string
	Client *http.Client
}

// NewPolling returns a client for the endpoint url (http://host/path/) without a session.
func NewPolling(t testing.TB, url string) *Polling {
	return &Polling{t: t, URL: url, Client: &http.Client{Timeout: Timeout}}
}

// Handshake opens a polling session at url and returns the client and the handshake data.
func Handshake(t testing.TB, url string) (*Polling, Open) {
	t.Helper()
	p := NewPolling(t, url)
	status, body := p.Do(http.MethodGet, "EIO=4&transport=polling", "")
	if status != http.StatusOK {
		t.Fatalf("handshake: HTTP %d %s", status, body)
	}
	o := ParseOpen(t, body)
	p.SID = o.SID
	return p, o
}

// Do sends a request with the query (without "?") and body, and returns the status and body.
func (p *Polling) Do(method, query, body string) (int, string) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.URL+"?"+query, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, query, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("%s %s: reading body: %v", method, query, err)
	}
	return resp.StatusCode, string(b)
}

func (p *Polling) query() string { return "EIO=4&transport=polling&sid=" + p.SID }

// Get polls once and returns the status and body.
func (p *Polling) Get() (int, string) {
	p.t.Helper()
	return p.Do(http.MethodGet, p.query(), "")
}

// Post sends a payload and returns the status and body.
func (p *Polling) Post(payload string) (int, string) {
	p.t.Helper()
	return p.Do(http.MethodPost, p.query(), payload)
}

// Packets polls until it gets packets other than pings (which it answers with pongs) and returns those
// packets in text form.
func (p *Polling) Packets() []string {
	p.t.Helper()
	for {
		status, body := p.Get()
		if status != http.StatusOK {
			p.t.Fatalf("poll: HTTP %d %s", status, body)
		}
		var out []string
		pinged := false
		for _, pkt := range strings.Split(body, "\x1e") {
			if pkt == "2" {
				pinged = true
				continue
			}
			out = append(out, pkt)
		}
		if pinged {
			if status, body := p.Post("3"); status != http.StatusOK {
				p.t.Fatalf("pong: HTTP %d %s", status, body)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
}

// DecodeBinary decodes a polling packet "b<base64>".
func DecodeBinary(t testing.TB, pkt string) []byte {
	t.Helper()
	p, err := engineio.DecodePacket([]byte(pkt))
	if err != nil || !p.Binary {
		t.Fatalf("got %q, want a binary packet (%v)", pkt, err)
	}
	return p.Data
}
