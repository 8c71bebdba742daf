package socketio_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	eiot "github.com/classwaves/classwaves/services/realtime/engineio/engineiotest"
	"github.com/classwaves/classwaves/services/realtime/socketio"
)

// TestMemoryAdapterBroadcastToSocketID broadcasts, through real connections, to a socket's id and
// except it, where the id rooms are kept apart from the other rooms.
func TestMemoryAdapterBroadcastToSocketID(t *testing.T) {
	ts := newTestServer(t, socketio.Config{})
	ns := ts.srv.Of("/")
	socks := connected(ns)
	var wss []*eiot.WS
	var sockets []*socketio.Socket
	for range 3 {
		wss = append(wss, ts.join(t, "/", ""))
		sockets = append(sockets, <-socks)
	}
	a, b, c := sockets[0].ID(), sockets[1].ID(), sockets[2].ID()
	if got, want := ns.Adapter().Rooms(a), []string{a}; !cmp.Equal(got, want) {
		t.Errorf("Rooms(%s) = %q, want %q", a, got, want)
	}
	sockets[2].Join(b) // c joins b's room: it gets what is sent to b

	emit := func(op socketio.BroadcastOperator, event string) {
		t.Helper()
		if err := op.Emit(event); err != nil {
			t.Fatal(err)
		}
	}
	emit(ns.To(a), "to-a")
	emit(ns.Except(a), "except-a")
	emit(ns.To(b), "to-b")
	emit(ns.To(b).Except(c), "to-b-except-c")
	emit(ns.Except(b), "except-b")
	emit(ns.To(a, b), "to-a-b")
	emit(sockets[2].Broadcast(), "from-c")
	if err := ns.Emit("all"); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"to-a", "except-b", "to-a-b", "from-c", "all"},
		{"except-a", "to-b", "to-b-except-c", "to-a-b", "from-c", "all"},
		{"except-a", "to-b", "to-a-b", "all"},
	}
	for i, ws := range wss {
		var got []string
		for range want[i] {
			event, _ := strings.CutPrefix(ws.ReadText(), `42["`)
			got = append(got, strings.TrimSuffix(event, `"]`))
		}
		if diff := cmp.Diff(want[i], got); diff != "" {
			t.Errorf("socket %c received (-want +got):\n%s", 'a'+i, diff)
		}
	}
}
