package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	"github.com/classwaves/classwaves/pkg/bus"
	busevents "github.com/classwaves/classwaves/pkg/events"
	"github.com/classwaves/classwaves/pkg/traceid"
)

// BenchmarkTranscriptToInsightAtClient measures, in the real process, the time from a transcript
// event published on the bus (what stt does when a window is transcribed) to the teacher's
// ai:tier1:insight on /guidance: guidance stores the turn, runs the built-in Tier 1 analysis, stores
// and publishes the insight, and the edge emits it over a WebSocket. Every transcript covers a full
// Tier 1 interval, so each one is analysed at once.
//
//	go test ./cmd/classwaves/app -run '^$' -bench TranscriptToInsight -benchtime 300x
func BenchmarkTranscriptToInsightAtClient(b *testing.B) {
	const groups = 10
	a, _, _ := start(b, map[string]string{"LOG_LEVEL": "warn"})
	root := "http://" + a.Addrs().HTTP
	base := root + "/api/v1"
	token := devSignIn(b, root)
	var spec []string
	for i := range groups {
		spec = append(spec, fmt.Sprintf(`{"name":"G%d","maxSize":4}`, i+1))
	}
	code, body := do(b, "POST", base+"/sessions", `{"title":"Photosynthesis","learningObjectives":
		["explain how plants use light energy to make glucose","describe the role of chlorophyll"],
		"groups":[`+strings.Join(spec, ",")+`]}`, token)
	sess := field(body, "data", "session")
	sessionID, _ := sess["id"].(string)
	schoolID, _ := sess["schoolId"].(string)
	if code != 200 || sessionID == "" {
		b.Fatalf("create = %d %v", code, body)
	}
	var groupIDs []string
	for _, g := range sess["groups"].([]any) {
		groupIDs = append(groupIDs, g.(map[string]any)["id"].(string))
	}
	if code, body := do(b, "POST", base+"/sessions/"+sessionID+"/start", `{"force":true}`, token); code != 200 {
		b.Fatalf("start = %d %v", code, body)
	}
	insights := make(chan string, 16)
	c := dialGuidance(b, "ws"+strings.TrimPrefix(root, "http")+"/socket.io/?EIO=4&transport=websocket", token, sessionID, insights)
	defer c.Close()

	texts := []string{
		"I think plants use light energy from the sun to make glucose in their leaves.",
		"Chlorophyll absorbs the light, so why do you think the leaves are green and not black?",
		"Because the green light is reflected, and the plant also needs water and carbon dioxide.",
	}
	windowEnd := make([]time.Time, groups)
	for i := range windowEnd {
		windowEnd[i] = time.Now().Add(-time.Hour)
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		g := i % groups
		startAt, end := windowEnd[g], windowEnd[g].Add(30*time.Second)
		windowEnd[g] = end
		ev := &eventsv1.Event{Id: traceid.New(), Type: busevents.Transcript, Key: groupIDs[g], OccurredAt: timestamppb.Now(),
			TraceId: traceid.New(), SchoolId: schoolID, SessionId: sessionID, GroupId: groupIDs[g], SchemaVersion: "1.0",
			Payload: &eventsv1.Event_TranscriptReady{TranscriptReady: &eventsv1.TranscriptReady{
				TranscriptId: traceid.New(), Text: texts[i%len(texts)], Confidence: 0.9,
				WindowStart: timestamppb.New(startAt), WindowEnd: timestamppb.New(end), WordCount: int32(len(strings.Fields(texts[i%len(texts)]))),
			}}}
		payload, err := proto.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := a.bus.Publish(context.Background(), a.cfg.STT.EventsTopic, bus.Outgoing{Key: groupIDs[g], Payload: payload}); err != nil {
			b.Fatal(err)
		}
		select {
		case got := <-insights:
			if got != groupIDs[g] {
				b.Fatalf("insight for group %s, want %s", got, groupIDs[g])
			}
		case <-time.After(30 * time.Second):
			b.Fatalf("no ai:tier1:insight for transcript %d", i)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(percentileMS(lat, 50), "p50-ms")
	b.ReportMetric(percentileMS(lat, 99), "p99-ms")
}

// dialGuidance connects a teacher to /guidance over a raw Engine.IO WebSocket, joins the session
// room, and sends the group id of every ai:tier1:insight to out.
func dialGuidance(b *testing.B, url, token, sessionID string, out chan<- string) *websocket.Conn {
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	read := func() string {
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				b.Fatal(err)
			}
			if string(msg) == "2" { // ping
				_ = c.WriteMessage(websocket.TextMessage, []byte("3"))
				continue
			}
			return string(msg)
		}
	}
	if open := read(); !strings.HasPrefix(open, "0{") {
		b.Fatalf("open packet %q", open)
	}
	auth, _ := json.Marshal(map[string]string{"token": token})
	_ = c.WriteMessage(websocket.TextMessage, []byte("40/guidance,"+string(auth)))
	for msg := read(); !strings.HasPrefix(msg, "40/guidance,"); msg = read() {
		if strings.HasPrefix(msg, "44") {
			b.Fatalf("connect refused: %s", msg)
		}
	}
	join, _ := json.Marshal([]any{"session:join", map[string]string{"sessionId": sessionID}})
	_ = c.WriteMessage(websocket.TextMessage, append([]byte("42/guidance,1"), join...))
	for msg := read(); !strings.HasPrefix(msg, "43/guidance,1"); msg = read() {
	}
	go func() {
		prefix := []byte(`42/guidance,["ai:tier1:insight",`)
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			switch {
			case string(msg) == "2":
				_ = c.WriteMessage(websocket.TextMessage, []byte("3"))
			case bytes.HasPrefix(msg, prefix):
				var args []json.RawMessage
				if json.Unmarshal(msg[len("42/guidance,"):], &args) != nil || len(args) < 2 {
					continue
				}
				var p struct {
					GroupID string `json:"groupId"`
				}
				_ = json.Unmarshal(args[1], &p)
				out <- p.GroupID
			}
		}
	}()
	return c
}
