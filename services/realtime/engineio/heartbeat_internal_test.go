package engineio

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/classwaves/classwaves/pkg/testenv"
)

// TestHeartbeatsManySessions runs the heartbeats of many sessions on their one timer: sessions whose
// client answers every ping stay open and get a ping each interval; the others end with a ping timeout;
// and no deadline is left behind once every session has ended.
func TestHeartbeatsManySessions(t *testing.T) {
	const interval, timeout = 40 * time.Millisecond, 60 * time.Millisecond
	var mu sync.Mutex
	reasons := map[*Conn]string{}
	srv, err := NewServer(Config{PingInterval: interval, PingTimeout: timeout}, func(c *Conn) Handler {
		return funcHandler{msg: func(Message) {}, close: func(r string) {
			mu.Lock()
			reasons[c] = r
			mu.Unlock()
		}}
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer func() { _ = srv.Close() }()
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/?EIO=4&transport=websocket"

	const answering, silent = 12, 12
	pings := make([]int, answering)
	var wg sync.WaitGroup
	var clients []*websocket.Conn
	for i := range answering + silent {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, ws)
		if i >= answering {
			continue // reads nothing, answers nothing
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, msg, err := ws.ReadMessage()
				if err != nil {
					return
				}
				if string(msg) == "2" {
					pings[i]++
					if ws.WriteMessage(websocket.TextMessage, []byte("3")) != nil {
						return
					}
				}
			}
		}()
	}

	// The silent sessions end after an interval and a timeout; the answering ones keep going.
	testenv.Eventually(t, "the silent sessions time out", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(reasons) >= silent
	})
	time.Sleep(8 * interval)
	mu.Lock()
	for c, r := range reasons {
		if r != ReasonPingTimeout {
			t.Errorf("session %s closed with %q, want %q", c.ID(), r, ReasonPingTimeout)
		}
	}
	ended := len(reasons)
	mu.Unlock()
	if ended != silent {
		t.Errorf("%d sessions ended, want the %d silent ones", ended, silent)
	}

	for _, ws := range clients {
		_ = ws.Close()
	}
	wg.Wait()
	for i, n := range pings {
		// About 10 intervals passed; a loaded machine may run late, but never early.
		if n < 4 || n > 11 {
			t.Errorf("answering client %d got %d pings in about 10 intervals", i, n)
		}
	}
	testenv.Eventually(t, "every session ends", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(reasons) == answering+silent
	})
	srv.hb.mu.Lock()
	left := len(srv.hb.due)
	srv.hb.mu.Unlock()
	if left != 0 {
		t.Errorf("%d heartbeat deadlines left after every session ended", left)
	}
}
