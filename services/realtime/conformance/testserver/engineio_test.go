package testserver

// Protocol tests of the Engine.IO echo at /engine.io/, written from the Engine.IO v4 specification (and
// covering the cases of the socketio/engine.io-protocol test suite).

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/services/realtime/engineio"
	eiot "github.com/classwaves/classwaves/services/realtime/engineio/engineiotest"
)

func (e *env) eio() string   { return e.http + "/engine.io/" }
func (e *env) eiows() string { return e.ws + "/engine.io/" }

type errorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func parseError(t *testing.T, body string) errorBody {
	t.Helper()
	var b errorBody
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return b
}

func TestHandshakePolling(t *testing.T) {
	e := newEnv(t, Options{})
	_, open := eiot.Handshake(t, e.eio())
	if open.SID == "" {
		t.Error("empty sid")
	}
	open.SID = ""
	want := eiot.Open{Upgrades: []string{"websocket"}, PingInterval: 300, PingTimeout: 200, MaxPayload: 1000000}
	if diff := cmp.Diff(want, open); diff != "" {
		t.Errorf("handshake (-want +got):\n%s", diff)
	}
}

func TestHandshakeWebSocket(t *testing.T) {
	e := newEnv(t, Options{})
	ws := eiot.DialWS(t, e.eiows()+"?EIO=4&transport=websocket", nil)
	open := ws.ReadOpen()
	if open.SID == "" {
		t.Error("empty sid")
	}
	open.SID = ""
	want := eiot.Open{Upgrades: []string{}, PingInterval: 300, PingTimeout: 200, MaxPayload: 1000000}
	if diff := cmp.Diff(want, open); diff != "" {
		t.Errorf("handshake (-want +got):\n%s", diff)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, relaxed)
	p, _ := eiot.Handshake(t, e.eio())
	tests := []struct {
		name       string
		method     string
		query      string
		wantStatus int
		wantCode   int
	}{
		{"missing EIO", http.MethodGet, "transport=polling", 400, engineio.CodeUnsupportedProtocol},
		{"invalid EIO", http.MethodGet, "EIO=abc&transport=polling", 400, engineio.CodeUnsupportedProtocol},
		{"EIO=3 refused", http.MethodGet, "EIO=3&transport=polling", 400, engineio.CodeUnsupportedProtocol},
		{"missing transport", http.MethodGet, "EIO=4", 400, engineio.CodeUnknownTransport},
		{"unknown transport", http.MethodGet, "EIO=4&transport=abc", 400, engineio.CodeUnknownTransport},
		{"handshake by POST", http.MethodPost, "EIO=4&transport=polling", 400, engineio.CodeBadHandshakeMethod},
		{"handshake by PUT", http.MethodPut, "EIO=4&transport=polling", 400, engineio.CodeBadHandshakeMethod},
		{"unknown sid (GET)", http.MethodGet, "EIO=4&transport=polling&sid=nope", 400, engineio.CodeUnknownSID},
		{"unknown sid (POST)", http.MethodPost, "EIO=4&transport=polling&sid=nope", 400, engineio.CodeUnknownSID},
		{"websocket without upgrade", http.MethodGet, "EIO=4&transport=websocket", 400, engineio.CodeBadRequest},
		{"websocket transport for a polling session", http.MethodGet, "EIO=4&transport=websocket&sid=" + p.SID, 400, engineio.CodeBadRequest},
		{"PUT on a session", http.MethodPut, "EIO=4&transport=polling&sid=" + p.SID, 400, engineio.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := eiot.NewPolling(t, e.eio()).Do(tt.method, tt.query, "")
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d (body %s)", status, tt.wantStatus, body)
			}
			got := parseError(t, body)
			want := errorBody{Code: tt.wantCode, Message: map[int]string{
				0: "Transport unknown", 1: "Session ID unknown", 2: "Bad handshake method", 3: "Bad request",
				4: "Forbidden", 5: "Unsupported protocol version",
			}[tt.wantCode]}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("error body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWebSocketBadHandshake(t *testing.T) {
	e := newEnv(t, relaxed)
	for _, q := range []string{"transport=websocket", "EIO=abc&transport=websocket", "EIO=4", "EIO=4&transport=abc", "EIO=3&transport=websocket"} {
		t.Run(q, func(t *testing.T) {
			_, resp, err := eiot.TryDialWS(e.eiows()+"?"+q, nil)
			if err == nil {
				t.Fatal("dial succeeded, want a refused handshake")
			}
			if resp == nil || resp.StatusCode != http.StatusBadRequest {
				t.Errorf("response %v, want HTTP 400", resp)
			}
		})
	}
}

func TestOriginCheck(t *testing.T) {
	opts := relaxed
	opts.CheckOrigin = engineio.AllowOrigins("https://teacher.example", "https://student.example")
	e := newEnv(t, opts)
	tests := []struct {
		name, method, origin string
		wantStatus           int
		wantACAO             string
	}{
		{"allowed origin", http.MethodGet, "https://teacher.example", 200, "https://teacher.example"},
		{"second allowed origin", http.MethodGet, "https://student.example", 200, "https://student.example"},
		{"no origin", http.MethodGet, "", 200, ""},
		{"other origin", http.MethodGet, "https://evil.example", 403, ""},
		{"preflight allowed", http.MethodOptions, "https://teacher.example", 204, "https://teacher.example"},
		{"preflight refused", http.MethodOptions, "https://evil.example", 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, e.eio()+"?EIO=4&transport=polling", nil)
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.method == http.MethodOptions {
				req.Header.Set("Access-Control-Request-Method", "POST")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.wantACAO {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.wantACAO)
			}
		})
	}
	t.Run("websocket from other origin", func(t *testing.T) {
		_, resp, err := eiot.TryDialWS(e.eiows()+"?EIO=4&transport=websocket", http.Header{"Origin": {"https://evil.example"}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("dial: err %v, response %v; want HTTP 403", err, resp)
		}
	})
}

func TestHeartbeatPolling(t *testing.T) {
	e := newEnv(t, Options{PingTimeout: time.Minute})
	p, _ := eiot.Handshake(t, e.eio())
	for i := range 3 {
		if status, body := p.Get(); status != 200 || body != "2" {
			t.Fatalf("poll %d = %d %q, want 200 \"2\"", i, status, body)
		}
		if status, body := p.Post("3"); status != 200 || body != "ok" {
			t.Fatalf("pong %d = %d %q, want 200 \"ok\"", i, status, body)
		}
	}
}

func TestPingTimeoutPolling(t *testing.T) {
	e := newEnv(t, Options{})
	p, _ := eiot.Handshake(t, e.eio())
	// Poll without ever answering the ping: the session times out. A poll pending at that moment is
	// released with a close packet; later ones are refused.
	for {
		status, body := p.Get()
		if status == 400 {
			if code := parseError(t, body).Code; code != engineio.CodeUnknownSID {
				t.Errorf("poll after timeout: code %d, want 1", code)
			}
			break
		}
		if status != 200 || (body != "2" && body != "1") {
			t.Fatalf("poll = %d %q, want a ping or a close packet", status, body)
		}
	}
	waitGone(t, e.srv.EngineIO, p.SID)
}

func TestHeartbeatWebSocket(t *testing.T) {
	e := newEnv(t, Options{PingTimeout: time.Minute})
	ws := eiot.DialWS(t, e.eiows()+"?EIO=4&transport=websocket", nil)
	ws.ReadOpen()
	for i := range 3 {
		if got := ws.ReadRaw(); string(got.Data) != "2" {
			t.Fatalf("frame %d = %v, want ping", i, got)
		}
		ws.Send("3")
	}
}

func TestPingTimeoutWebSocket(t *testing.T) {
	e := newEnv(t, Options{})
	ws := eiot.DialWS(t, e.eiows()+"?EIO=4&transport=websocket", nil)
	ws.ReadOpen()
	ws.ExpectClosed() // never answers the ping
}

func TestClosePolling(t *testing.T) {
	e := newEnv(t, relaxed)
	p, _ := eiot.Handshake(t, e.eio())
	type result struct {
		status int
		body   string
	}
	pending := make(chan result, 1)
	go func() {
		status, body := p.Get()
		pending <- result{status, body}
	}()
	waitPolling(t, e.srv.EngineIO, p.SID)
	if status, body := p.Post("1"); status != 200 || body != "ok" {
		t.Fatalf("close = %d %q, want 200 ok", status, body)
	}
	if got := <-pending; got != (result{200, "6"}) {
		t.Errorf("pending poll = %+v, want 200 \"6\"", got)
	}
	if status, _ := p.Get(); status != 400 {
		t.Errorf("poll after close = %d, want 400", status)
	}
}

func TestCloseWebSocket(t *testing.T) {
	e := newEnv(t, relaxed)
	ws := eiot.DialWS(t, e.eiows()+"?EIO=4&transport=websocket", nil)
	ws.ReadOpen()
	ws.Send("1")
	ws.ExpectClosed()
}

func TestUpgrade(t *testing.T) {
	e := newEnv(t, relaxed)
	p, _ := eiot.Handshake(t, e.eio())
	polled := make(chan string, 1)
	go func() {
		_, body := p.Get()
		polled <- body
	}()
	waitPolling(t, e.srv.EngineIO, p.SID)

	ws := eiot.DialWS(t, e.eiows()+"?EIO=4&transport=websocket&sid="+p.SID, nil)
	ws.Send("2probe")
	if got := ws.ReadText(); got != "3probe" {
		t.Fatalf("probe answer = %q, want 3probe", got)
	}
	// The pending poll is released with a noop so that the client can pause polling.
	if got := <-polled; got != "6" {
		t.Fatalf("pending poll = %q, want 6 (noop)", got)
	}
	ws.Send("5")
	ws.Send("4hello")
	if got := ws.ReadText(); got != "4hello" {
		t.Errorf("echo over WebSocket = %q, want 4hello", got)
	}

	t.Run("polling after upgrade", func(t *testing.T) {
		status, body := p.Get()
		if status != 400 || parseError(t, body).Code != engineio.CodeBadRequest {
			t.Errorf("poll = %d %s, want 400 code 3", status, body)
		}
	})
	t.Run("second WebSocket after upgrade", func(t *testing.T) {
		ws2 := eiot.DialWS(t, e.eiows()+"?EIO=4&transport=websocket&sid="+p.SID, nil)
		ws2.ExpectClosed()
	})
	// The session still works.
	ws.Send("4again")
	if got := ws.ReadText(); got != "4again" {
		t.Errorf("echo = %q, want 4again", got)
	}
}

func TestUpgradeBadProbe(t *testing.T) {
	e := newEnv(t, relaxed)
	p, _ := eiot.Handshake(t, e.eio())
	ws := eiot.DialWS(t, e.eiows()+"?EIO=4&transport=websocket&sid="+p.SID, nil)
	ws.Send("4hello") // not a probe: the upgrade is abandoned, the polling session goes on
	ws.ExpectClosed()
	if status, _ := p.Post("4still"); status != 200 {
		t.Fatalf("post = %d, want 200", status)
	}
	if got := p.Packets(); !cmp.Equal(got, []string{"4still"}) {
		t.Errorf("poll = %q, want [4still]", got)
	}
}

func TestMessagesPolling(t *testing.T) {
	tests := []struct{ name, payload string }{
		{"text", "4hello"},
		{"binary", "bAQIDBA=="},
		{"utf-8", "4€世界"},
		{"several", "4hello\x1e4world\x1ebAQIDBA=="},
		{"empty message", "4"},
	}
	e := newEnv(t, relaxed)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := eiot.Handshake(t, e.eio())
			if status, body := p.Post(tt.payload); status != 200 || body != "ok" {
				t.Fatalf("post = %d %q, want 200 ok", status, body)
			}
			got := strings.Join(p.Packets(), "\x1e")
			if got != tt.payload {
				t.Errorf("echo = %q, want %q", got, tt.payload)
			}
		})
	}
}

func TestMessagesWebSocket(t *testing.T) {
	tests := []struct {
		name string
		in   eiot.Frame
	}{
		{"text", eiot.Frame{Data: []byte("4hello")}},
		{"binary", eiot.Frame{Binary: true, Data: []byte{1, 2, 3, 4}}},
		{"utf-8", eiot.Frame{Data: []byte("4€世界")}},
	}
	e := newEnv(t, relaxed)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := eiot.DialWS(t, e.eiows()+"?EIO=4&transport=websocket", nil)
			ws.ReadOpen()
			if tt.in.Binary {
				ws.SendBinary(tt.in.Data)
			} else {
				ws.Send(string(tt.in.Data))
			}
			if diff := cmp.Diff(tt.in, ws.Read()); diff != "" {
				t.Errorf("echo (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMaxPayloadPolling(t *testing.T) {
	e := newEnv(t, relaxed)
	p, _ := eiot.Handshake(t, e.eio())
	status, _ := p.Post("4" + strings.Repeat("a", 1_000_000))
	if status != http.StatusRequestEntityTooLarge {
		t.Fatalf("post = %d, want 413", status)
	}
	status, body := p.Get()
	if status != 400 || parseError(t, body).Code != engineio.CodeUnknownSID {
		t.Errorf("poll after 413 = %d %s, want 400 code 1 (session closed)", status, body)
	}
}

func TestPayloadAtLimitPolling(t *testing.T) {
	e := newEnv(t, relaxed)
	p, _ := eiot.Handshake(t, e.eio())
	msg := "4" + strings.Repeat("a", 999_999)
	if status, _ := p.Post(msg); status != 200 {
		t.Fatalf("post of exactly maxPayload bytes = %d, want 200", status)
	}
	if got := p.Packets(); len(got) != 1 || got[0] != msg {
		t.Errorf("echo of %d bytes lost", len(msg))
	}
}

func TestMaxPayloadWebSocket(t *testing.T) {
	e := newEnv(t, relaxed)
	ws := eiot.DialWS(t, e.eiows()+"?EIO=4&transport=websocket", nil)
	open := ws.ReadOpen()
	ws.Send("4" + strings.Repeat("a", 1_000_000))
	ws.ExpectClosed()
	waitGone(t, e.srv.EngineIO, open.SID)
}

func TestConcurrentPollsCloseSession(t *testing.T) {
	e := newEnv(t, relaxed)
	p, _ := eiot.Handshake(t, e.eio())
	first := make(chan string, 1)
	go func() {
		_, body := p.Get()
		first <- body
	}()
	waitPolling(t, e.srv.EngineIO, p.SID)
	status, body := p.Get()
	if status != 400 || parseError(t, body).Code != engineio.CodeBadRequest {
		t.Errorf("second poll = %d %s, want 400 code 3", status, body)
	}
	if got := <-first; got != "1" {
		t.Errorf("first poll = %q, want 1 (close)", got)
	}
	waitGone(t, e.srv.EngineIO, p.SID)
}

func TestInvalidPayloadClosesSession(t *testing.T) {
	for _, payload := range []string{"", "x", "4a\x1e", "bnot base64!"} {
		t.Run(payload, func(t *testing.T) {
			e := newEnv(t, relaxed)
			p, _ := eiot.Handshake(t, e.eio())
			if status, _ := p.Post(payload); status != 400 {
				t.Errorf("post %q = %d, want 400", payload, status)
			}
			waitGone(t, e.srv.EngineIO, p.SID)
		})
	}
}
