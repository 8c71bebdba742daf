package httpserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classwaves/classwaves/pkg/logging"
	"github.com/classwaves/classwaves/pkg/telemetry"
	"github.com/classwaves/classwaves/pkg/traceid"
	"github.com/gorilla/websocket"
)

type lockedBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func TestHandler(t *testing.T) {
	logs := &lockedBuffer{}
	logger, err := logging.New(logs, "info")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/items/", func(w http.ResponseWriter, r *http.Request) {
		telemetry.SetRoute(r.Context(), "/items/{id}")
		_, _ = w.Write([]byte(traceid.FromContext(r.Context())))
	})
	mux.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	h := Handler(logger, telemetry.NewHTTPMetrics(telemetry.NewRegistry(telemetry.Config{DefaultMetricsDisabled: true})), mux)

	t.Run("trace id reaches the handler and the response", func(t *testing.T) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/items/42", nil)
		r.Header.Set("X-Request-Id", "req-7")
		h.ServeHTTP(w, r)
		if got, want := w.Header().Get("X-Trace-Id"), "req-7"; got != want {
			t.Errorf("X-Trace-Id = %q, want %q", got, want)
		}
		if got, want := w.Body.String(), "req-7"; got != want {
			t.Errorf("handler saw trace id %q, want %q", got, want)
		}
	})
	t.Run("panic becomes a 500 envelope", func(t *testing.T) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/panic", nil))
		var body map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		if w.Code != 500 || body["success"] != false || strings.Contains(w.Body.String(), "kaboom") {
			t.Errorf("got %d %s, want a 500 envelope without the panic text", w.Code, w.Body.String())
		}
	})
	t.Run("access log has the seed's fields", func(t *testing.T) {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		var found bool
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("log line %q is not JSON", line)
			}
			if m["msg"] == "http request" && m["requestId"] == "req-7" {
				found = true
				if m["route"] != "/items/{id}" || m["statusCode"] != float64(200) || m["durationMs"] == nil {
					t.Errorf("access log line %v lacks route template, statusCode or durationMs", m)
				}
			}
		}
		if !found {
			t.Errorf("no access log line for req-7 in:\n%s", logs.String())
		}
	})
}

// TestWebSocketUpgradeThroughTheChain: every wrapper on the way hands the connection over, so a
// WebSocket upgrade (the Socket.IO edge) works behind the access log and metrics (regression: the
// access log's recorder hid http.Hijacker and every upgrade answered 400).
func TestWebSocketUpgradeThroughTheChain(t *testing.T) {
	logs := &lockedBuffer{}
	logger, err := logging.New(logs, "info")
	if err != nil {
		t.Fatal(err)
	}
	upgrader := websocket.Upgrader{}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("the handler's ResponseWriter is not an http.Flusher")
		}
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return // the upgrader has answered the error
		}
		defer c.Close()
		typ, msg, err := c.ReadMessage()
		if err == nil {
			_ = c.WriteMessage(typ, msg)
		}
	})
	srv := httptest.NewServer(Handler(logger, telemetry.NewHTTPMetrics(telemetry.NewRegistry(telemetry.Config{DefaultMetricsDisabled: true})), echo))
	defer srv.Close()
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatalf("upgrade through the handler chain: %v (HTTP %v)", err, resp.Status)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "ping" {
		t.Fatalf("echo = %q, %v", msg, err)
	}
	c.Close()
	// The access log records the upgrade as 101.
	deadline := time.Now().Add(5 * time.Second)
	logged := func() string {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		return logs.String()
	}
	for !strings.Contains(logged(), `"statusCode":101`) {
		if time.Now().After(deadline) {
			t.Fatalf("no 101 access log line in:\n%s", logged())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
