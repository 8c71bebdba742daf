package socketio_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/classwaves/classwaves/pkg/testenv"
	eiot "github.com/classwaves/classwaves/services/realtime/engineio/engineiotest"
	"github.com/classwaves/classwaves/services/realtime/socketio"
)

// chunkSizes are the attachment sizes the tests below send, in turn: an audio chunk's, and sizes around
// the engine's read buffers (16 KiB) and the largest it keeps for reuse (64 KiB).
var chunkSizes = []int{3200, 1, 3200, 640, 16<<10 - 1, 16<<10 + 1, 3200, 70 << 10, 0, 3200, 5000}

// chunk returns the attachment of the n-th chunk: its size from chunkSizes, and contents that differ
// from every other chunk's and hold no zero byte.
func chunk(n int) []byte {
	b := make([]byte, chunkSizes[n%len(chunkSizes)])
	for i := range b {
		b[i] = byte(1 + (n*7+i)%251)
	}
	return b
}

// sendChunk sends event with two arguments: n and the n-th chunk as an attachment.
func sendChunk(ws *eiot.WS, nsp, event string, n int) {
	ws.Send(fmt.Sprintf(`451-%s["%s",%d,{"_placeholder":true,"num":0}]`, prefix(nsp), event, n))
	ws.SendBinary(chunk(n))
}

// chunkOf checks that e is the event sendChunk sent, and returns its number and attachment.
func chunkOf(t testing.TB, e *socketio.Event) (int, []byte) {
	var n int
	if err := e.Args.Decode(0, &n); err != nil {
		t.Errorf("%s: argument 0: %v", e.Name, err)
		return -1, nil
	}
	data, ok := e.Args.Bytes(1)
	if !ok {
		t.Errorf("%s %d: argument 1 is not an attachment", e.Name, n)
	}
	return n, data
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool { return !slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) }

// kept records attachments that event handlers kept, by chunk number.
type kept struct {
	mu sync.Mutex
	m  map[int][]byte
}

func (k *kept) put(n int, b []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = make(map[int][]byte)
	}
	k.m[n] = b
}

func (k *kept) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

// check fails t unless k holds exactly the chunks of numbers, unchanged.
func (k *kept) check(t testing.TB, what string, numbers []int) {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.m) != len(numbers) {
		t.Errorf("%s: %d attachments kept, want %d", what, len(k.m), len(numbers))
	}
	for _, n := range numbers {
		if got, want := k.m[n], chunk(n); !bytes.Equal(got, want) {
			t.Errorf("%s: the attachment of chunk %d (%d bytes) changed after it was received: %d bytes, %d different",
				what, n, len(want), len(got), countDiffs(got, want))
		}
	}
}

func countDiffs(a, b []byte) int {
	n := max(len(a), len(b)) - min(len(a), len(b))
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// TestBorrowedAndKeptAttachments streams binary events of many sizes and contents on one connection,
// alternating between an event whose handler borrows its attachment (OnBorrowed) and one whose handler
// keeps every attachment (On). The borrowing handler sees the right bytes; the attachments kept by the
// other are unchanged after every later read (they would be zeroed or overwritten if the socket
// handed it the connection's read buffer); and the attachments the borrowing handler was lent were the
// connection's buffer indeed, zeroed once it returned.
func TestBorrowedAndKeptAttachments(t *testing.T) {
	ts := newTestServer(t, socketio.Config{})
	var borrowed, lent, plain kept
	ts.srv.Of("/").OnConnection(func(s *socketio.Socket) {
		s.OnBorrowed("stream", func(e *socketio.Event) {
			n, data := chunkOf(t, e)
			if !bytes.Equal(data, chunk(n)) {
				t.Errorf("borrowing handler: chunk %d: got %d bytes, %d different from what was sent",
					n, len(data), countDiffs(data, chunk(n)))
			}
			borrowed.put(n, bytes.Clone(data))
			lent.put(n, data) // read only once the server closed, to check that it was zeroed
		})
		s.On("keep", func(e *socketio.Event) {
			n, data := chunkOf(t, e)
			plain.put(n, data)
		})
	})
	ws := ts.join(t, "/", "")
	const total = 200
	var streamed, keptNumbers []int
	for n := range total {
		if n%2 == 0 {
			sendChunk(ws, "/", "stream", n)
			streamed = append(streamed, n)
		} else {
			sendChunk(ws, "/", "keep", n)
			keptNumbers = append(keptNumbers, n)
		}
	}
	testenv.Eventually(t, "every event", func() bool { return borrowed.len()+plain.len() == total })
	plain.check(t, "On handler", keptNumbers)
	borrowed.check(t, "OnBorrowed handler (its copies)", streamed)

	// Close waits for the connection's reader, which zeroes every buffer it lent.
	if err := ts.srv.Close(); err != nil {
		t.Fatal(err)
	}
	plain.check(t, "On handler, after the close", keptNumbers)
	for _, n := range streamed {
		if data := lent.m[n]; len(data) > 0 && !allZero(data) {
			t.Errorf("the attachment lent for chunk %d is not zeroed after the handler returned: it was a copy", n)
		}
	}
}

// TestTwoAttachments sends events with two attachments to a handler that keeps them (On) and to one
// that borrows them (OnBorrowed): both see the right bytes; the first attachment, which must wait for
// the second, is a copy even for the borrowing handler, and only the second is lent.
func TestTwoAttachments(t *testing.T) {
	ts := newTestServer(t, socketio.Config{})
	type pair struct{ first, second []byte }
	var mu sync.Mutex
	got := map[string][]pair{}
	ts.srv.Of("/").OnConnection(func(s *socketio.Socket) {
		record := func(e *socketio.Event) {
			mu.Lock()
			defer mu.Unlock()
			i := len(got[e.Name])
			a, ok1 := e.Args.Bytes(0)
			b, ok2 := e.Args.Bytes(1)
			if !ok1 || !ok2 {
				t.Errorf("%s %d: arguments are not attachments", e.Name, i)
			}
			if !bytes.Equal(a, chunk(2*i)) || !bytes.Equal(b, chunk(2*i+1)) {
				t.Errorf("%s %d: wrong attachments", e.Name, i)
			}
			got[e.Name] = append(got[e.Name], pair{a, b})
		}
		s.On("keep", record)
		s.OnBorrowed("borrow", record)
	})
	ws := ts.join(t, "/", "")
	const events = 20
	for i := range events {
		for _, event := range []string{"keep", "borrow"} {
			ws.Send(fmt.Sprintf(`452-["%s",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, event))
			ws.SendBinary(chunk(2 * i))
			ws.SendBinary(chunk(2*i + 1))
		}
	}
	testenv.Eventually(t, "every event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got["keep"]) == events && len(got["borrow"]) == events
	})
	if err := ts.srv.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range events {
		k, b := got["keep"][i], got["borrow"][i]
		if !bytes.Equal(k.first, chunk(2*i)) || !bytes.Equal(k.second, chunk(2*i+1)) {
			t.Errorf("On handler, event %d: the attachments it kept changed", i)
		}
		if !bytes.Equal(b.first, chunk(2*i)) {
			t.Errorf("OnBorrowed handler, event %d: the first attachment, which waited for the second, was not a copy", i)
		}
		if len(b.second) > 0 && !allZero(b.second) {
			t.Errorf("OnBorrowed handler, event %d: the last attachment was not lent (it is not zeroed after the handler)", i)
		}
	}
}

// TestBinaryAckKeepsItsBytes answers a server's EmitWithAck with a BINARY_ACK, then streams binary
// events (read into the buffer the acknowledgement's attachment was read into): the Args that
// EmitWithAck returned keep their bytes.
func TestBinaryAckKeepsItsBytes(t *testing.T) {
	ts := newTestServer(t, socketio.Config{})
	socks := connected(ts.srv.Of("/"))
	var streamed kept
	ts.srv.Of("/").OnConnection(func(s *socketio.Socket) {
		s.OnBorrowed("stream", func(e *socketio.Event) {
			n, data := chunkOf(t, e)
			streamed.put(n, bytes.Clone(data))
		})
	})
	ws := ts.join(t, "/", "")
	s := <-socks
	results := emitWithAck(s, "question")
	if got := ws.ReadText(); got != `420["question"]` {
		t.Fatalf("emitted %s", got)
	}
	ws.Send(`461-0["answer",{"_placeholder":true,"num":0}]`)
	ws.SendBinary(chunk(0))
	r := <-results
	if r.err != nil {
		t.Fatal(r.err)
	}
	const total = 50
	for n := 1; n <= total; n++ {
		sendChunk(ws, "/", "stream", n)
	}
	testenv.Eventually(t, "every chunk", func() bool { return streamed.len() == total })
	if got, ok := r.args.Bytes(1); !ok || !bytes.Equal(got, chunk(0)) {
		t.Errorf("the acknowledgement's attachment changed after it was received: %d bytes, %d different",
			len(got), countDiffs(got, chunk(0)))
	}
}

// TestEarlyBinaryEventsKeepTheirBytes sends binary events while the namespace's connection handler still
// runs: the socket holds them until the handler has registered the event handlers, while the connection
// reads more messages, so it must hold copies. A borrowing handler sees them whole.
func TestEarlyBinaryEventsKeepTheirBytes(t *testing.T) {
	ts := newTestServer(t, socketio.Config{})
	slow := ts.srv.Of("/slow")
	slow.Use(func(context.Context, *socketio.Socket) error { return nil }) // connect on a goroutine
	release := make(chan struct{})
	var early kept
	slow.OnConnection(func(s *socketio.Socket) {
		<-release
		s.OnBorrowed("stream", func(e *socketio.Event) {
			n, data := chunkOf(t, e)
			early.put(n, bytes.Clone(data))
		})
	})
	ts.srv.Of("/").OnConnection(func(s *socketio.Socket) {
		s.On("sync", func(e *socketio.Event) { _ = e.Ack() })
	})
	ws := ts.join(t, "/", "")
	joinOn(t, ws, "/slow", "")
	const total = 20
	var numbers []int
	for n := range total {
		sendChunk(ws, "/slow", "stream", n)
		numbers = append(numbers, n)
	}
	// The answer to this event, read after the chunks, means that they were all read and held.
	ws.Send(`421["sync"]`)
	if got := ws.ReadText(); got != `431[]` {
		t.Fatalf("sync answer = %s", got)
	}
	close(release)
	testenv.Eventually(t, "every early chunk", func() bool { return early.len() == total })
	early.check(t, "events held while the connection handler ran", numbers)
}

// BenchmarkBinaryEvent is the edge's audio ingest over a real WebSocket connection: per event, the text
// packet of an audio:chunk and its attachment (100 ms of 16 kHz PCM16), which the handler reads and
// drops. The allocations are the whole process's, the test client's writes included.
func BenchmarkBinaryEvent(b *testing.B) {
	const chunk = 3200
	text := []byte(`451-["audio:chunk",{"groupId":"0b8f7d52-3c57-4c1e-9d0a-6f1e2a3b4c5d","audioData":{"_placeholder":true,"num":0}}]`)
	audio := make([]byte, chunk)
	for i := range audio {
		audio[i] = byte(i)
	}
	for _, tt := range []struct {
		name     string
		register func(s *socketio.Socket, event string, h socketio.EventHandler)
	}{
		{"On", (*socketio.Socket).On},
		{"OnBorrowed", (*socketio.Socket).OnBorrowed},
	} {
		b.Run(tt.name, func(b *testing.B) {
			ts := newTestServer(b, socketio.Config{})
			var n atomic.Int64
			done := make(chan struct{})
			ts.srv.Of("/").OnConnection(func(s *socketio.Socket) {
				tt.register(s, "audio:chunk", func(e *socketio.Event) {
					var p struct {
						Audio json.RawMessage `json:"audioData"`
					}
					if err := json.Unmarshal(e.Args.Raw(0), &p); err != nil {
						b.Error(err)
					}
					if data, ok := e.Args.Attachment(p.Audio); !ok || len(data) != chunk {
						b.Errorf("attachment of %d bytes (%v), want %d", len(data), ok, chunk)
					}
					if n.Add(1) == int64(b.N) {
						close(done)
					}
				})
			})
			ws := ts.join(b, "/", "")
			b.SetBytes(chunk)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := ws.Conn.WriteMessage(websocket.TextMessage, text); err != nil {
					b.Fatal(err)
				}
				if err := ws.Conn.WriteMessage(websocket.BinaryMessage, audio); err != nil {
					b.Fatal(err)
				}
			}
			<-done
		})
	}
}
