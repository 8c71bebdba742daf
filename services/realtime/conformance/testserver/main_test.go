package testserver

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/classwaves/classwaves/pkg/testenv"
	"github.com/classwaves/classwaves/services/realtime/engineio"
)

// relaxed is the reference configuration with heartbeats and the connect timeout too slow to matter:
// for tests that are not about them, so that a loaded machine cannot make them flaky.
var relaxed = Options{PingInterval: time.Minute, PingTimeout: time.Minute, ConnectTimeout: time.Minute}

// env is a conformance server on a loopback port.
type env struct {
	srv  *Server
	http string // http://127.0.0.1:port
	ws   string // ws://127.0.0.1:port
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		hs.Close()
	})
	return &env{srv: srv, http: hs.URL, ws: "ws" + strings.TrimPrefix(hs.URL, "http")}
}

// waitPolling waits until session sid has a pending poll.
func waitPolling(t *testing.T, srv *engineio.Server, sid string) {
	t.Helper()
	testenv.Eventually(t, "a pending poll", func() bool {
		c := srv.Conn(sid)
		return c != nil && c.PollPending()
	})
}

// waitGone waits until session sid is closed.
func waitGone(t *testing.T, srv *engineio.Server, sid string) {
	t.Helper()
	testenv.Eventually(t, "the session to close", func() bool { return srv.Conn(sid) == nil })
}
