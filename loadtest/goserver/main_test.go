package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/classwaves/classwaves/loadtest/internal/wire"
	"github.com/classwaves/classwaves/services/realtime/socketio"
)

func newTestServer(t *testing.T) (*bench, *httptest.Server) {
	t.Helper()
	b, err := newBench(socketio.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(b.handler())
	t.Cleanup(func() {
		_ = b.sio.Close()
		hs.Close()
	})
	return b, hs
}

// wsClient is a minimal Socket.IO client for these tests.
type wsClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func connect(t *testing.T, hs *httptest.Server) *wsClient {
	t.Helper()
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = ws.Close() })
	c := &wsClient{t, ws}
	if m := c.read(); !strings.HasPrefix(m, "0{") {
		t.Fatalf("open packet = %q", m)
	}
	c.send(websocket.TextMessage, "40/bench,")
	if m := c.read(); !strings.HasPrefix(m, "40/bench,{") {
		t.Fatalf("connect = %q", m)
	}
	return c
}

func (c *wsClient) send(typ int, msg string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(typ, []byte(msg)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *wsClient) read() string {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, m, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatal(err)
	}
	return string(m)
}

func TestJoinChunkBroadcast(t *testing.T) {
	b, hs := newTestServer(t)
	c := connect(t, hs)

	c.send(websocket.TextMessage, `42/bench,1["join",{"room":""}]`)
	if m := c.read(); m != `43/bench,1[{"ok":false,"error":"ROOM_REQUIRED"}]` {
		t.Errorf("join without room: %q", m)
	}
	c.send(websocket.TextMessage, `42/bench,2["join",{"room":"r1"}]`)
	if m := c.read(); m != `43/bench,2[{"ok":true,"room":"r1"}]` {
		t.Errorf("join: %q", m)
	}

	c.send(websocket.TextMessage, `42/bench,3["chunk",{"groupId":"g","audioData":"not binary"}]`)
	if m := c.read(); m != `43/bench,3[{"ok":false,"error":"AUDIO_DATA_REQUIRED"}]` {
		t.Errorf("chunk without binary: %q", m)
	}
	c.send(websocket.TextMessage, `451-/bench,4["chunk",{"groupId":"g","audioData":{"_placeholder":true,"num":0}}]`)
	c.send(websocket.BinaryMessage, "abcdef")
	if m := c.read(); m != `43/bench,4[]` {
		t.Errorf("chunk ack: %q", m)
	}
	if b.chunks.Load() != 1 || b.chunkBytes.Load() != 6 || b.badChunks.Load() != 1 || b.joins.Load() != 1 {
		t.Errorf("counters: chunks %d bytes %d bad %d joins %d", b.chunks.Load(), b.chunkBytes.Load(), b.badChunks.Load(), b.joins.Load())
	}

	resp, err := http.Post(hs.URL+"/broadcast?room=r1&count=2&size=3&from=7", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"emitted":2`) {
		t.Fatalf("broadcast: %s %s", resp.Status, body)
	}
	for _, want := range []string{`42/bench,["tick",{"seq":7,"payload":"xxx"}]`, `42/bench,["tick",{"seq":8,"payload":"xxx"}]`} {
		if m := c.read(); m != want {
			t.Errorf("tick = %q, want %q", m, want)
		}
	}

	resp, err = http.Get(hs.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st wire.Stats
	err = json.NewDecoder(resp.Body).Decode(&st)
	_ = resp.Body.Close()
	if err != nil || st.Server != "go" || st.Sockets != 1 || st.Chunks != 1 || st.Broadcasts != 2 || st.Memory["rss"] <= 0 {
		t.Errorf("stats: %v %+v", err, st)
	}
}

func TestChunkDecodeValue(t *testing.T) {
	b, hs := newTestServer(t)
	b.decodeValue = true
	c := connect(t, hs)
	c.send(websocket.TextMessage, `42/bench,1["chunk",{"groupId":"g","audioData":"not binary"}]`)
	if m := c.read(); m != `43/bench,1[{"ok":false,"error":"AUDIO_DATA_REQUIRED"}]` {
		t.Errorf("chunk without binary: %q", m)
	}
	c.send(websocket.TextMessage, `451-/bench,2["chunk",{"groupId":"g","audioData":{"_placeholder":true,"num":0}}]`)
	c.send(websocket.BinaryMessage, "abcd")
	if m := c.read(); m != `43/bench,2[]` {
		t.Errorf("chunk ack: %q", m)
	}
	if b.chunks.Load() != 1 || b.chunkBytes.Load() != 4 {
		t.Errorf("counters: chunks %d bytes %d", b.chunks.Load(), b.chunkBytes.Load())
	}
}

func TestBroadcastBadParameters(t *testing.T) {
	_, hs := newTestServer(t)
	for _, q := range []string{
		"count=1", "room=r", "room=r&count=-1", "room=r&count=x", "room=r&count=1000001",
		"room=r&count=1&size=2000000", "room=r&count=1&from=-2", "room=" + strings.Repeat("a", 129) + "&count=1",
	} {
		resp, err := http.Post(hs.URL+"/broadcast?"+q, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"BAD_PARAMETER"`) {
			t.Errorf("%s: %s %s", q, resp.Status, body)
		}
	}
	resp, err := http.Get(hs.URL + "/broadcast?room=r&count=1")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /broadcast: %s", resp.Status)
	}
}

func TestRunBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-ping-interval", "0s"}, {"-nope"}, {"-chunk-decode", "gob"}, {"-addr", "256.0.0.1:x"}} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
