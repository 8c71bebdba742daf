package engineio_test

import (
	"bytes"
	"fmt"
	"runtime"
	"slices"
	"testing"

	"github.com/classwaves/classwaves/pkg/testenv"
	"github.com/classwaves/classwaves/services/realtime/engineio"
	eiot "github.com/classwaves/classwaves/services/realtime/engineio/engineiotest"
)

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.messages)
}

// TestIdleConnectionsParked checks that idle WebSocket connections hold no goroutine on the server (they
// park on the poller), and that a parked connection is resumed by its next message, by the client going
// away, and by Server.Close; with the default linger (readers wait a little before parking) and without.
// GoroutinePerConnection is the control: one reading goroutine per connection.
func TestIdleConnectionsParked(t *testing.T) {
	const n = 200
	for _, cfg := range []engineio.Config{{}, {ReadLinger: -1}, {GoroutinePerConnection: true}} {
		perConn := cfg.GoroutinePerConnection
		t.Run(fmt.Sprintf("GoroutinePerConnection=%v,ReadLinger=%v", perConn, cfg.ReadLinger), func(t *testing.T) {
			ts := newTestServer(t, cfg)
			base := runtime.NumGoroutine()
			clients := make([]*eiot.WS, n)
			recs := make([]*recorder, n)
			for i := range clients {
				clients[i] = eiot.DialWS(t, ts.ws, nil)
				clients[i].ReadOpen()
				recs[i] = <-ts.conns
				clients[i].Send("4hello")
			}
			testenv.Eventually(t, "first messages", func() bool {
				for _, r := range recs {
					if r.count() != 1 {
						return false
					}
				}
				return true
			})
			// The clients (gorilla connections nobody reads) hold no goroutines either: the growth is the
			// server's.
			var grown int
			if perConn {
				testenv.Eventually(t, "a reading goroutine per connection", func() bool {
					grown = runtime.NumGoroutine() - base
					return grown >= n/2 // with a margin for goroutines of earlier tests still exiting
				})
			} else {
				testenv.Eventually(t, "readers to park", func() bool {
					grown = runtime.NumGoroutine() - base
					return grown < n/10
				})
			}
			t.Logf("%d idle connections: %d more goroutines", n, grown)

			// Messages after a park arrive, in order, on every connection.
			for round := range 3 {
				for _, c := range clients {
					c.Send(fmt.Sprintf("4m%d", round))
				}
				testenv.Eventually(t, fmt.Sprintf("round %d", round), func() bool {
					for _, r := range recs {
						if r.count() != round+2 {
							return false
						}
					}
					return true
				})
			}
			for i, r := range recs {
				r.mu.Lock()
				got := fmt.Sprint(r.messages)
				r.mu.Unlock()
				want := fmt.Sprint([]engineio.Message{text("hello"), text("m0"), text("m1"), text("m2")})
				if got != want {
					t.Fatalf("connection %d: messages %s, want %s", i, got, want)
				}
			}

			// A client that goes away while its connection is parked ends its session.
			for i := range n / 2 {
				clients[i].Drop()
				if got := <-recs[i].closed; got != engineio.ReasonTransportClose {
					t.Fatalf("connection %d: close reason %q, want %q", i, got, engineio.ReasonTransportClose)
				}
			}
			// Server.Close ends the parked rest and returns.
			if err := ts.srv.Close(); err != nil {
				t.Fatal(err)
			}
			for i := n / 2; i < n; i++ {
				if got := <-recs[i].closed; got != engineio.ReasonForcedServerClose {
					t.Fatalf("connection %d: close reason %q, want %q", i, got, engineio.ReasonForcedServerClose)
				}
				clients[i].ExpectClosed()
			}
		})
	}
}

// TestOversizedFrameWhileParked checks that the read limit still applies to a frame that arrives on a
// parked connection.
func TestOversizedFrameWhileParked(t *testing.T) {
	ts := newTestServer(t, engineio.Config{MaxPayload: 1000})
	ws := eiot.DialWS(t, ts.ws, nil)
	ws.ReadOpen()
	r := <-ts.conns
	ws.Send("4small")
	testenv.Eventually(t, "the first message", func() bool { return r.count() == 1 })
	ws.SendBinary(make([]byte, 1001))
	if got := <-r.closed; got != engineio.ReasonTransportError {
		t.Errorf("close reason = %q, want %q", got, engineio.ReasonTransportError)
	}
	ws.ExpectClosed()
}

// TestMessagesKeepTheirBytes checks the WebSocket reader's copying: messages of every size (empty,
// around the reused read buffer's size, larger than the buffers it keeps) arrive whole, and a message a
// handler kept is not changed by the messages read after it.
func TestMessagesKeepTheirBytes(t *testing.T) {
	ts := newTestServer(t, engineio.Config{MaxPayload: 1 << 20})
	c := eiot.DialWS(t, ts.ws, nil)
	c.ReadOpen()
	rec := <-ts.conns
	sizes := []int{0, 1, 511, 512, 4096, 16<<10 - 1, 16 << 10, 16<<10 + 1, 64<<10 + 1, 300 << 10, 7}
	var want []engineio.Message
	for i, n := range sizes {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(i*31 + j)
		}
		c.SendBinary(b)
		want = append(want, engineio.Message{Data: bytes.Clone(b), Binary: true})
	}
	testenv.Eventually(t, "every message", func() bool { return rec.count() == len(sizes) })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, m := range rec.messages {
		if !m.Binary || !bytes.Equal(m.Data, want[i].Data) {
			t.Errorf("message %d (%d bytes): got %d bytes (binary %v), not what was sent", i, sizes[i], len(m.Data), m.Binary)
		}
	}
}

// TestBorrowedMessages checks the lending of binary messages, on two sessions that read the same
// messages at once (their readers share the pool of buffers): the session whose handler borrows gets
// every binary message's bytes as Borrowed, and never a text message; every buffer it was lent is zeroed
// once its HandleMessage has returned; the other session gets owned messages, which the reads of both
// sessions after them never change.
func TestBorrowedMessages(t *testing.T) {
	ts := newTestServer(t, engineio.Config{MaxPayload: 1 << 20})
	owner := eiot.DialWS(t, ts.ws, nil)
	owner.ReadOpen()
	ownerRec := <-ts.conns
	ts.borrow.Store(true)
	borrower := eiot.DialWS(t, ts.ws, nil)
	borrower.ReadOpen()
	borrowerRec := <-ts.conns

	sizes := []int{0, 1, 3200, 3200, 512, 16<<10 - 1, 16 << 10, 16<<10 + 1, 64 << 10, 64<<10 + 1, 300 << 10, 7}
	for range 20 {
		sizes = append(sizes, 3200) // an audio stream
	}
	var want []engineio.Message
	for i, n := range sizes {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(i*31 + j + 1)
		}
		for _, c := range []*eiot.WS{owner, borrower} {
			c.SendBinary(b)
		}
		want = append(want, engineio.Message{Data: b, Binary: true})
		if i%3 == 0 {
			for _, c := range []*eiot.WS{owner, borrower} {
				c.Send(fmt.Sprint("4text ", i))
			}
			want = append(want, text(fmt.Sprint("text ", i)))
		}
	}
	testenv.Eventually(t, "every message", func() bool {
		return ownerRec.count() == len(want) && borrowerRec.count() == len(want)
	})
	// Close waits for the readers, which have given back every buffer they lent.
	if err := ts.srv.Close(); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		rec  *recorder
	}{{"owner", ownerRec}, {"borrower", borrowerRec}} {
		for i, m := range tc.rec.messages {
			if m.Binary != want[i].Binary || !bytes.Equal(m.Data, want[i].Data) {
				t.Errorf("%s: message %d (%d bytes, binary %v): got %d bytes (binary %v), not what was sent",
					tc.name, i, len(want[i].Data), want[i].Binary, len(m.Data), m.Binary)
			}
			if wantBorrowed := tc.rec.borrow && m.Binary; m.Borrowed != wantBorrowed {
				t.Errorf("%s: message %d (binary %v): Borrowed = %v, want %v", tc.name, i, m.Binary, m.Borrowed, wantBorrowed)
			}
		}
	}
	if got, want := len(borrowerRec.lent), len(sizes); got != want {
		t.Fatalf("the borrower was lent %d messages, want %d", got, want)
	}
	for i, data := range borrowerRec.lent {
		if len(data) != sizes[i] {
			t.Errorf("lent message %d: %d bytes, want %d", i, len(data), sizes[i])
		}
		if j := slices.IndexFunc(data, func(b byte) bool { return b != 0 }); j >= 0 {
			t.Errorf("lent message %d (%d bytes): byte %d is not zero after the handler returned", i, len(data), j)
		}
	}
}
