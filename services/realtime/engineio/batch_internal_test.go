package engineio

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/classwaves/classwaves/pkg/testenv"
)

type nopHandler struct{}

func (nopHandler) HandleMessage(Message) {}
func (nopHandler) HandleClose(string)    {}

// wsSession starts a server, dials a WebSocket session and returns the server side's Conn and the
// client, once the open packet was read and the writer went idle.
func wsSession(t *testing.T, cfg Config) (*Conn, *websocket.Conn) {
	t.Helper()
	cfg.PingInterval, cfg.PingTimeout = time.Minute, time.Minute
	conns := make(chan *Conn, 1)
	srv, err := NewServer(cfg, func(c *Conn) Handler { conns <- c; return nopHandler{} })
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { _ = srv.Close(); hs.Close() })
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, open, err := ws.ReadMessage(); err != nil || open[0] != '0' {
		t.Fatalf("open packet: %q, %v", open, err)
	}
	c := <-conns
	testenv.Eventually(t, "the writer is idle", func() bool { return !c.writerRunning() })
	return c, ws
}

func (c *Conn) writerRunning() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writerOn
}

func (c *Conn) flushes() int {
	c.mu.Lock()
	bc := &c.ws.bc
	c.mu.Unlock()
	return bc.batchFlushes()
}

func readTexts(t *testing.T, ws *websocket.Conn, n int) []string {
	t.Helper()
	got := make([]string, 0, n)
	for range n {
		typ, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d frames: %v", len(got), err)
		}
		if typ != websocket.TextMessage {
			t.Fatalf("frame %d: type %d", len(got), typ)
		}
		got = append(got, string(data))
	}
	return got
}

func TestQueuedPacketsAreWrittenInOneBatch(t *testing.T) {
	c, ws := wsSession(t, Config{WriteQueueHardLimit: 10000, WriteQueueSoftLimit: 10000})
	before := c.flushes()
	// 400 messages of ~100 bytes queued at once: about 42 KB, under batchMax, so one write.
	const n = 400
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{Data: fmt.Appendf(nil, "m%04d-%s", i, strings.Repeat("x", 94))}
	}
	if err := c.Send(msgs...); err != nil {
		t.Fatal(err)
	}
	got := readTexts(t, ws, n)
	for i, g := range got {
		if want := "4" + string(msgs[i].Data); g != want {
			t.Fatalf("frame %d = %.20q..., want %.20q...", i, g, want)
		}
	}
	testenv.Eventually(t, "the writer is idle", func() bool { return !c.writerRunning() })
	if d := c.flushes() - before; d != 1 {
		t.Errorf("%d packets were written with %d writes, want 1", n, d)
	}
}

func TestLargeBatchIsWrittenInPieces(t *testing.T) {
	c, ws := wsSession(t, Config{WriteQueueHardLimit: 10000, WriteQueueSoftLimit: 10000})
	before := c.flushes()
	// 3,000 messages of 100 bytes (about 306 KB with the frame headers), binary and text mixed: written in
	// pieces of at most batchMax bytes, all intact and in order.
	const n = 3000
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{Data: fmt.Appendf(nil, "%05d%s", i, bytes.Repeat([]byte{byte('a' + i%26)}, 95)), Binary: i%3 == 0}
	}
	if err := c.Send(msgs...); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		typ, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		want, wantType := "4"+string(msgs[i].Data), websocket.TextMessage
		if msgs[i].Binary {
			want, wantType = string(msgs[i].Data), websocket.BinaryMessage
		}
		if typ != wantType || string(data) != want {
			t.Fatalf("frame %d = type %d %.20q..., want type %d %.20q...", i, typ, data, wantType, want)
		}
	}
	testenv.Eventually(t, "the writer is idle", func() bool { return !c.writerRunning() })
	total := n * (100 + 2 + 1) // data, frame header, packet type of the text ones (an upper bound)
	if d, maxWrites := c.flushes()-before, total/batchMax+1; d < 2 || d > maxWrites {
		t.Errorf("about %d bytes were written with %d writes, want 2 to %d", total, d, maxWrites)
	}
}

func TestWriterExitsWhenIdleAndRestarts(t *testing.T) {
	c, ws := wsSession(t, Config{})
	for i := range 5 {
		if c.writerRunning() {
			t.Fatalf("round %d: writer running with an empty queue", i)
		}
		if err := c.Send(Message{Data: fmt.Appendf(nil, "round %d", i)}); err != nil {
			t.Fatal(err)
		}
		if got := readTexts(t, ws, 1)[0]; got != fmt.Sprintf("4round %d", i) {
			t.Fatalf("round %d: got %q", i, got)
		}
		testenv.Eventually(t, "the writer exits", func() bool { return !c.writerRunning() })
	}
	// A ping is queued the same way; a Close with nothing queued starts a writer that closes the transport.
	c.mu.Lock()
	gen := c.hbGen // the deadline of the next ping, a minute away: as if it passed
	c.mu.Unlock()
	c.heartbeat(gen)
	if got := readTexts(t, ws, 1)[0]; got != "2" {
		t.Fatalf("got %q, want a ping", got)
	}
	testenv.Eventually(t, "the writer exits", func() bool { return !c.writerRunning() })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, err := ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("read after Close: %v, want a normal closure", err)
	}
	<-c.Done()
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return a, b
}

func TestBatchConn(t *testing.T) {
	a, b := tcpPair(t)
	bc := &batchConn{Conn: a}
	read := func(n int) string {
		t.Helper()
		_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, n)
		if _, err := io.ReadFull(b, buf); err != nil {
			t.Fatal(err)
		}
		return string(buf)
	}

	// Outside a batch, writes go straight through.
	if _, err := bc.Write([]byte("direct")); err != nil {
		t.Fatal(err)
	}
	if got := read(6); got != "direct" {
		t.Fatalf("got %q", got)
	}

	// In a batch, writes are held until flush, and written once.
	bc.begin()
	_ = bc.SetWriteDeadline(time.Now().Add(time.Minute))
	for _, s := range []string{"one,", "two,", "three"} {
		if _, err := bc.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if bc.batchFlushes() != 0 {
		t.Fatal("a batch was written before flush")
	}
	if err := bc.flush(); err != nil {
		t.Fatal(err)
	}
	if got := read(13); got != "one,two,three" {
		t.Fatalf("got %q", got)
	}
	if n := bc.batchFlushes(); n != 1 {
		t.Fatalf("%d batch writes, want 1", n)
	}
	if err := bc.flush(); err != nil { // a flush outside a batch does nothing
		t.Fatal(err)
	}

	// A batch past batchMax is written before it grows further.
	bc.begin()
	big := bytes.Repeat([]byte("y"), batchMax-10)
	for _, p := range [][]byte{big, []byte("0123456789abcdef")} {
		if _, err := bc.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if n := bc.batchFlushes(); n != 2 {
		t.Fatalf("%d batch writes after passing batchMax, want 2", n)
	}
	if err := bc.flush(); err != nil {
		t.Fatal(err)
	}
	if got := read(len(big) + 16); got != string(big)+"0123456789abcdef" {
		t.Fatalf("got %d bytes, not the batch", len(got))
	}

	// Once abandoned, writes go straight through even in a batch, and a held batch is not written.
	bc.begin()
	if _, err := bc.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	bc.abandon(time.Now().Add(time.Second))
	if _, err := bc.Write([]byte("close")); err != nil {
		t.Fatal(err)
	}
	if got := read(5); got != "close" {
		t.Fatalf("got %q, want the abandoned write first", got)
	}
	if err := bc.flush(); err == nil {
		t.Error("flush after abandon succeeded, want an error")
	}
}

// TestHandlerReturnsAfterUpgrade checks that the HTTP handler returns once the WebSocket is upgraded,
// while the session keeps working, and that Server.Close still closes the connection and waits.
func TestHandlerReturnsAfterUpgrade(t *testing.T) {
	received := make(chan Message, 1)
	closed := make(chan string, 1)
	srv, err := NewServer(Config{PingInterval: time.Minute, PingTimeout: time.Minute}, func(c *Conn) Handler {
		return funcHandler{msg: func(m Message) { received <- m; _ = c.Send(m) }, close: func(r string) { closed <- r }}
	})
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{}, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(w, r)
		returned <- struct{}{}
	}))
	defer hs.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := ws.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not return after the upgrade")
	}
	for i := range 3 {
		if err := ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "4echo %d", i)); err != nil {
			t.Fatal(err)
		}
		if m := <-received; string(m.Data) != fmt.Sprintf("echo %d", i) {
			t.Fatalf("received %q", m.Data)
		}
		if got := readTexts(t, ws, 1)[0]; got != fmt.Sprintf("4echo %d", i) {
			t.Fatalf("echo %q", got)
		}
	}
	if err := srv.Close(); err != nil { // waits for the reader and any writer
		t.Fatal(err)
	}
	if got := <-closed; got != ReasonForcedServerClose {
		t.Errorf("close reason %q", got)
	}
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("read after Server.Close: %v, want a normal closure", err)
	}
}

type funcHandler struct {
	msg   func(Message)
	close func(string)
}

func (h funcHandler) HandleMessage(m Message) { h.msg(m) }
func (h funcHandler) HandleClose(r string)    { h.close(r) }

// TestCoalescingEndsUnderContinuousSends sends without pause while the client reads: the writer's
// coalescing is bounded, so packets keep flowing, intact and in order.
func TestCoalescingEndsUnderContinuousSends(t *testing.T) {
	c, ws := wsSession(t, Config{WriteQueueHardLimit: 1 << 20, WriteQueueSoftLimit: 1 << 20, WriteQueueMaxBytes: 1 << 30})
	stop := make(chan struct{})
	sent := make(chan int, 1)
	go func() {
		i := 0
		defer func() { sent <- i }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := c.Send(Message{Data: fmt.Appendf(nil, "%d", i)}); err != nil {
				return
			}
			i++
		}
	}()
	const n = 2000
	got := readTexts(t, ws, n)
	close(stop)
	total := <-sent
	if total < n {
		t.Fatalf("read %d packets, but only %d were sent", n, total)
	}
	for i, g := range got {
		if want := fmt.Sprintf("4%d", i); g != want {
			t.Fatalf("frame %d = %q, want %q", i, g, want)
		}
	}
}

func TestCoalesceReturnsForALonePacket(t *testing.T) {
	c, ws := wsSession(t, Config{})
	before := c.flushes()
	if err := c.Send(Message{Data: []byte("lone")}); err != nil {
		t.Fatal(err)
	}
	if got := readTexts(t, ws, 1)[0]; got != "4lone" {
		t.Fatalf("got %q", got)
	}
	testenv.Eventually(t, "the writer is idle", func() bool { return !c.writerRunning() })
	if d := c.flushes() - before; d != 1 {
		t.Errorf("a lone packet took %d writes, want 1", d)
	}
}
