package engineio_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/services/realtime/engineio"
	eiot "github.com/classwaves/classwaves/services/realtime/engineio/engineiotest"
)

// recorder is a Handler that records a session's messages and close reason. With borrow set it borrows
// binary messages: it records a copy of a borrowed message, and keeps the Data it was lent in lent.
type recorder struct {
	conn     *engineio.Conn
	borrow   bool
	mu       sync.Mutex
	messages []engineio.Message
	lent     [][]byte
	closed   chan string
}

var _ engineio.BorrowingHandler = (*recorder)(nil)

func (r *recorder) HandleMessage(m engineio.Message) {
	r.mu.Lock()
	if m.Borrowed {
		r.lent = append(r.lent, m.Data)
		m.Data = bytes.Clone(m.Data)
	}
	r.messages = append(r.messages, m)
	r.mu.Unlock()
}

func (r *recorder) HandleClose(reason string) { r.closed <- reason }

func (r *recorder) BorrowsBinary() bool { return r.borrow }

// testServer is an Engine.IO server on a loopback port whose sessions are recorded.
type testServer struct {
	srv   *engineio.Server
	url   string // http://.../engine.io/
	ws    string // ws://.../engine.io/
	conns chan *recorder
	// borrow makes the recorders of the sessions that start from then on borrow binary messages.
	borrow atomic.Bool
}

func newTestServer(t *testing.T, cfg engineio.Config) *testServer {
	t.Helper()
	if cfg.PingInterval == 0 {
		cfg.PingInterval, cfg.PingTimeout = time.Minute, time.Minute
	}
	ts := &testServer{conns: make(chan *recorder, 16)}
	srv, err := engineio.NewServer(cfg, func(c *engineio.Conn) engineio.Handler {
		r := &recorder{conn: c, borrow: ts.borrow.Load(), closed: make(chan string, 1)}
		ts.conns <- r
		return r
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.srv = srv
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		hs.Close()
	})
	ts.url = hs.URL + "/engine.io/"
	ts.ws = "ws" + strings.TrimPrefix(hs.URL, "http") + "/engine.io/?EIO=4&transport=websocket"
	return ts
}

func text(s string) engineio.Message { return engineio.Message{Data: []byte(s)} }

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     engineio.Config
		wantErr string
	}{
		{"zero value", engineio.Config{}, ""},
		{"negative ping interval", engineio.Config{PingInterval: -1}, "PingInterval"},
		{"negative max payload", engineio.Config{MaxPayload: -1}, "MaxPayload"},
		{"soft limit above hard limit", engineio.Config{WriteQueueSoftLimit: 10, WriteQueueHardLimit: 5}, "WriteQueueSoftLimit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestVolatileDroppedPastSoftLimit(t *testing.T) {
	ts := newTestServer(t, engineio.Config{WriteQueueSoftLimit: 3, WriteQueueHardLimit: 10})
	p, _ := eiot.Handshake(t, ts.url)
	c := (<-ts.conns).conn
	for i := range 3 {
		if !c.SendVolatile(text(fmt.Sprint("v", i))) {
			t.Fatalf("volatile send %d dropped below the soft limit", i)
		}
	}
	if c.SendVolatile(text("dropped")) {
		t.Error("volatile send accepted at the soft limit")
	}
	if err := c.Send(text("reliable")); err != nil {
		t.Errorf("reliable send at the soft limit: %v", err)
	}
	want := []string{"4v0", "4v1", "4v2", "4reliable"}
	if diff := cmp.Diff(want, p.Packets()); diff != "" {
		t.Errorf("poll (-want +got):\n%s", diff)
	}
	if !c.SendVolatile(text("after")) {
		t.Error("volatile send dropped once the queue drained")
	}
}

func TestHardLimitClosesSession(t *testing.T) {
	ts := newTestServer(t, engineio.Config{WriteQueueSoftLimit: 2, WriteQueueHardLimit: 4})
	eiot.Handshake(t, ts.url)
	r := <-ts.conns
	for i := range 4 {
		if err := r.conn.Send(text(fmt.Sprint(i))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := r.conn.Send(text("overflow")); !errors.Is(err, engineio.ErrQueueFull) {
		t.Fatalf("send past the hard limit = %v, want ErrQueueFull", err)
	}
	if err := r.conn.Send(text("late")); !errors.Is(err, engineio.ErrClosed) {
		t.Errorf("send after overflow = %v, want ErrClosed", err)
	}
	if got := <-r.closed; got != engineio.ReasonTransportError {
		t.Errorf("close reason = %q, want %q", got, engineio.ReasonTransportError)
	}
}

func TestQueueMaxBytesClosesSession(t *testing.T) {
	ts := newTestServer(t, engineio.Config{WriteQueueMaxBytes: 10})
	eiot.Handshake(t, ts.url)
	r := <-ts.conns
	if err := r.conn.Send(text("0123456789")); err != nil {
		t.Fatal(err)
	}
	if err := r.conn.Send(text("x")); !errors.Is(err, engineio.ErrQueueFull) {
		t.Fatalf("send past the byte limit = %v, want ErrQueueFull", err)
	}
	<-r.closed
}

func TestGracefulClosePolling(t *testing.T) {
	ts := newTestServer(t, engineio.Config{})
	p, _ := eiot.Handshake(t, ts.url)
	r := <-ts.conns
	if err := r.conn.Send(text("bye")); err != nil {
		t.Fatal(err)
	}
	if err := r.conn.Close(); err != nil {
		t.Fatal(err)
	}
	if status, body := p.Get(); status != 200 || body != "4bye\x1e1" {
		t.Errorf("poll = %d %q, want the queued message then a close packet", status, body)
	}
	if got := <-r.closed; got != engineio.ReasonForcedClose {
		t.Errorf("close reason = %q, want %q", got, engineio.ReasonForcedClose)
	}
	if status, _ := p.Get(); status != 400 {
		t.Errorf("poll after close = %d, want 400", status)
	}
}

func TestGracefulCloseWebSocket(t *testing.T) {
	ts := newTestServer(t, engineio.Config{})
	ws := eiot.DialWS(t, ts.ws, nil)
	ws.ReadOpen()
	r := <-ts.conns
	if err := r.conn.Send(text("bye")); err != nil {
		t.Fatal(err)
	}
	if err := r.conn.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ws.ReadText(); got != "4bye" {
		t.Errorf("frame = %q, want 4bye", got)
	}
	ws.ExpectClosed()
	if got := <-r.closed; got != engineio.ReasonForcedClose {
		t.Errorf("close reason = %q, want %q", got, engineio.ReasonForcedClose)
	}
	if err := r.conn.Send(text("late")); !errors.Is(err, engineio.ErrClosed) {
		t.Errorf("send after close = %v, want ErrClosed", err)
	}
}

func TestServerClose(t *testing.T) {
	ts := newTestServer(t, engineio.Config{})
	ws := eiot.DialWS(t, ts.ws, nil)
	ws.ReadOpen()
	wsRec := <-ts.conns
	eiot.Handshake(t, ts.url)
	pollRec := <-ts.conns
	if err := ts.srv.Close(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*recorder{wsRec, pollRec} {
		if got := <-r.closed; got != engineio.ReasonForcedServerClose {
			t.Errorf("close reason = %q, want %q", got, engineio.ReasonForcedServerClose)
		}
	}
	ws.ExpectClosed()
	status, _ := eiot.NewPolling(t, ts.url).Do(http.MethodGet, "EIO=4&transport=polling", "")
	if status != http.StatusServiceUnavailable {
		t.Errorf("handshake after Close = %d, want 503", status)
	}
	if n := ts.srv.Count(); n != 0 {
		t.Errorf("Count() = %d after Close", n)
	}
}

func TestMessagesReachHandlerInOrder(t *testing.T) {
	ts := newTestServer(t, engineio.Config{})
	ws := eiot.DialWS(t, ts.ws, nil)
	ws.ReadOpen()
	r := <-ts.conns
	var want []engineio.Message
	for i := range 50 {
		if i%5 == 0 {
			ws.SendBinary([]byte{byte(i)})
			want = append(want, engineio.Message{Data: []byte{byte(i)}, Binary: true})
		} else {
			ws.Send(fmt.Sprint("4m", i))
			want = append(want, text(fmt.Sprint("m", i)))
		}
	}
	ws.Send("1")
	<-r.closed
	r.mu.Lock()
	defer r.mu.Unlock()
	if diff := cmp.Diff(want, r.messages); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestConcurrentSends(t *testing.T) {
	ts := newTestServer(t, engineio.Config{WriteQueueHardLimit: 100000, WriteQueueSoftLimit: 100000})
	ws := eiot.DialWS(t, ts.ws, nil)
	ws.ReadOpen()
	c := (<-ts.conns).conn
	const senders, each = 8, 200
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				// A two-message group must arrive contiguously.
				if err := c.Send(text(fmt.Sprintf("%d-%d-a", g, i)), text(fmt.Sprintf("%d-%d-b", g, i))); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		})
	}
	next := make([]int, senders)
	for range senders * each {
		a, b := ws.ReadText(), ws.ReadText()
		var g, i int
		if _, err := fmt.Sscanf(a, "4%d-%d-a", &g, &i); err != nil {
			t.Fatalf("frame %q: %v", a, err)
		}
		if want := fmt.Sprintf("4%d-%d-b", g, i); b != want {
			t.Fatalf("frame after %q = %q, want %q", a, b, want)
		}
		if i != next[g] {
			t.Fatalf("sender %d: got message %d, want %d", g, i, next[g])
		}
		next[g]++
	}
	wg.Wait()
}

// TestSlowClientDoesNotBlockOthers sends to a client that never reads and to one that does: sends never
// block, the fast client gets everything, and the slow one is closed once its queue passes the limit.
func TestSlowClientDoesNotBlockOthers(t *testing.T) {
	ts := newTestServer(t, engineio.Config{WriteQueueHardLimit: 64, WriteQueueSoftLimit: 32})
	slow := eiot.DialWS(t, ts.ws, nil)
	slow.ReadOpen()
	slowRec := <-ts.conns
	fast := eiot.DialWS(t, ts.ws, nil)
	fast.ReadOpen()
	fastRec := <-ts.conns

	payload := bytes.Repeat([]byte("x"), 64<<10)
	// Send one message at a time to both; the fast client reads each before the next is sent. The slow
	// client's socket buffers fill (a few MiB on loopback), then its queue passes the hard limit. The cap
	// (128 MiB) only guards against a server that never closes it.
	const maxMessages = 2048
	sent := 0
	for ; sent < maxMessages; sent++ {
		if err := slowRec.conn.Send(engineio.Message{Data: payload}); err != nil {
			break
		}
		if err := fastRec.conn.Send(engineio.Message{Data: payload}); err != nil {
			t.Fatalf("send to the fast client: %v", err)
		}
		if f := fast.Read(); len(f.Data) != len(payload)+1 {
			t.Fatalf("fast client got %d bytes, want %d", len(f.Data), len(payload)+1)
		}
	}
	if sent == maxMessages {
		t.Fatalf("the slow client was not closed after %d messages", sent)
	}
	if got := <-slowRec.closed; got != engineio.ReasonTransportError {
		t.Errorf("slow client close reason = %q, want %q", got, engineio.ReasonTransportError)
	}
}
