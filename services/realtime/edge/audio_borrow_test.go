package edge_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/classwaves/classwaves/services/realtime/edge"
)

// TestAudioChunksReachSTTWhole streams audio:chunk events of different sizes and contents back to back,
// without acknowledgements, so that the edge reads every chunk into the buffer it lent the handler for
// the one before (audio:chunk borrows its attachment): stt receives every chunk whole and in order,
// which holds only because the gRPC stream's Send copies the audio before it returns.
func TestAudioChunksReachSTTWhole(t *testing.T) {
	v := newEnvWith(t, func(c *edge.Config) {
		c.MaxAudioChunkBytes = 8 << 10
		c.MaxAudioEventsPerSec, c.MaxAudioBytesPerSec = 1<<20, 1<<30
		c.SchoolAudioLimit, c.SessionAudioLimit = 1<<30, 1<<30
	})
	ws := v.connected(t, "/sessions")
	startAudio(t, v, ws, groupID)
	const chunks = 200 // fewer than the fake stt buffers
	sizes := []int{3200, 1, 640, 8 << 10, 3199, 4096}
	sent := make([][]byte, chunks)
	for i := range sent {
		b := make([]byte, sizes[i%len(sizes)])
		for j := range b {
			b[j] = byte(1 + (i*13+j)%251)
		}
		sent[i] = b
		ws.Send(`451-/sessions,["audio:chunk",{"groupId":"` + groupID + `","audioData":{"_placeholder":true,"num":0}}]`)
		ws.SendBinary(b)
	}
	for i, want := range sent {
		m := recvSTT(t, v.stt)
		c := m.GetChunk()
		if c == nil {
			t.Fatalf("stt got %v, want chunk %d", m, i)
		}
		if got := c.GetData(); c.GetSeq() != int64(i+1) || !bytes.Equal(got, want) {
			t.Fatalf("stt got chunk seq %d of %d bytes, want seq %d of %d bytes%s", c.GetSeq(), len(got), i+1, len(want),
				diffNote(got, want))
		}
	}
}

func diffNote(got, want []byte) string {
	if len(got) != len(want) {
		return ""
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf(" (same size, byte %d differs: %#x, want %#x)", i, got[i], want[i])
		}
	}
	return ""
}
