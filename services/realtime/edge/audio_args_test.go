package edge

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	eiot "github.com/classwaves/classwaves/services/realtime/engineio/engineiotest"
	"github.com/classwaves/classwaves/services/realtime/socketio"
)

// audioChunkArgsJSON is audioChunkArgs as onAudioChunk read its argument before Args.UnmarshalFields,
// with encoding/json: audioChunkArgs must agree with it on every argument.
func audioChunkArgsJSON(args socketio.Args) (groupID string, audio []byte, refusal string) {
	var p struct {
		GroupID   string          `json:"groupId"`
		Audio     json.RawMessage `json:"audioData"`
		AudioData []byte          `json:"-"`
	}
	if args.Len() < 1 || json.Unmarshal(args.Raw(0), &p) != nil || p.GroupID == "" {
		return p.GroupID, nil, "groupId and audioData are required"
	}
	if data, ok := args.Attachment(p.Audio); ok {
		p.AudioData = data
	} else if len(p.Audio) > 0 && json.Unmarshal(p.Audio, &p.AudioData) != nil {
		return p.GroupID, nil, "audioData must be binary (a Buffer) or base64"
	}
	return p.GroupID, p.AudioData, ""
}

// receivedArgs returns the arguments of audio:chunk events received by a real Socket.IO server over a
// WebSocket connection: one event per packet of packets (a text packet, for the default namespace, or a
// binary one followed by attachment), handled with On so that the arguments are the test's to keep.
func receivedArgs(t testing.TB, attachment []byte, packets ...string) []socketio.Args {
	t.Helper()
	srv, err := socketio.NewServer(socketio.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		_ = srv.Close()
		hs.Close()
	})
	got := make(chan socketio.Args, len(packets))
	srv.Of("/").OnConnection(func(s *socketio.Socket) {
		s.On("audio:chunk", func(ev *socketio.Event) { got <- ev.Args })
	})
	ws := eiot.DialWS(t, "ws"+strings.TrimPrefix(hs.URL, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	ws.ReadOpen()
	ws.Send("40")
	if open := ws.ReadText(); !strings.HasPrefix(open, "40{") {
		t.Fatalf("CONNECT answer = %q", open)
	}
	args := make([]socketio.Args, len(packets))
	for i, p := range packets {
		ws.Send(p)
		if strings.HasPrefix(p, "451-") {
			ws.SendBinary(attachment)
		}
		select {
		case args[i] = <-got:
		case <-time.After(eiot.Timeout):
			t.Fatalf("packet %q: no audio:chunk event", p)
		}
	}
	return args
}

// audioChunkCases are audio:chunk arguments, valid and not, including encoding/json's quirks.
var audioChunkCases = []string{
	`{"groupId":"` + groupIDForArgs + `","audioData":{"_placeholder":true,"num":0}}`,
	`{"audioData":{"_placeholder":true,"num":0},"groupId":"g"}`,
	` { "groupId" : "g" , "audioData" : { "num" : 0 , "_placeholder" : true } } `,
	`{"GROUPID":"g","AUDIODATA":{"_placeholder":true,"num":0}}`,
	`{"groupId":"a","groupid":"b","audioData":{"_placeholder":true,"num":0},"audioData":"AQID"}`,
	`{"group\u0049d":"g\u00e9","\u0061udioData":{"_placeholder":true,"num":0}}`,
	"{\"groupId\":\"g\xff\",\"audioData\":\"AQID\"}",
	`{"groupId":"g","audioData":"AQID"}`,
	`{"groupId":"g","audioData":"not base64!"}`,
	`{"groupId":"g","audioData":null}`,
	`{"groupId":"g","audioData":[1,2]}`,
	`{"groupId":"g","audioData":3}`,
	`{"groupId":"g"}`,
	`{"groupId":"g","audioData":{"_PLACEHOLDER":true,"num":0}}`,
	`{"groupId":"g","audioData":{"_placeholder":false,"num":0}}`,
	`{"groupId":"","audioData":{"_placeholder":true,"num":0}}`,
	`{"groupId":null,"audioData":{"_placeholder":true,"num":0}}`,
	`{"groupId":"g","groupId":null,"audioData":"AQID"}`,
	`{"groupId":7,"audioData":{"_placeholder":true,"num":0}}`,
	`{"groupId":"g","groupId":7,"audioData":"AQID"}`,
	`{"groupId":["g"],"groupId":"h","audioData":"AQID"}`,
	`{"audioData":{"_placeholder":true,"num":0}}`,
	`{}`, `null`, `0`, `"g"`, `true`, `[{"groupId":"g"}]`,
}

const groupIDForArgs = "0b8f7d52-3c57-4c1e-9d0a-6f1e2a3b4c5d"

// TestAudioChunkArgs checks that audioChunkArgs reads every argument as the encoding/json version did
// (the same groupId, audio and refusal), received as a binary event with an attachment and as a text
// event without, and an event without arguments.
func TestAudioChunkArgs(t *testing.T) {
	packets := []string{`42["audio:chunk"]`}
	for _, c := range audioChunkCases {
		packets = append(packets, `451-["audio:chunk",`+c+`]`, `42["audio:chunk",`+c+`]`)
	}
	for i, args := range receivedArgs(t, []byte{1, 2, 3, 4}, packets...) {
		id, audio, refusal := audioChunkArgs(args)
		wantID, wantAudio, wantRefusal := audioChunkArgsJSON(args)
		if id != wantID || !bytes.Equal(audio, wantAudio) || refusal != wantRefusal {
			t.Errorf("%s: audioChunkArgs = %q, %v, %q; with encoding/json %q, %v, %q", packets[i], id, audio, refusal,
				wantID, wantAudio, wantRefusal)
		}
	}
}

// BenchmarkAudioChunkArgs reads the argument of an audio:chunk as received, with encoding/json as
// onAudioChunk did and with audioChunkArgs.
func BenchmarkAudioChunkArgs(b *testing.B) {
	args := receivedArgs(b, make([]byte, 3200),
		`451-["audio:chunk",{"groupId":"`+groupIDForArgs+`","audioData":{"_placeholder":true,"num":0}}]`)[0]
	for _, bb := range []struct {
		name string
		read func(socketio.Args) (string, []byte, string)
	}{
		{"encoding-json", audioChunkArgsJSON},
		{"UnmarshalFields", audioChunkArgs},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if id, audio, refusal := bb.read(args); id != groupIDForArgs || len(audio) != 3200 || refusal != "" {
					b.Fatalf("read %q, %d bytes, refusal %q", id, len(audio), refusal)
				}
			}
		})
	}
}
