package edge_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/redisbus"
	"github.com/classwaves/classwaves/pkg/testenv"
	"github.com/classwaves/classwaves/services/realtime/edge"
	eiot "github.com/classwaves/classwaves/services/realtime/engineio/engineiotest"
)

// offsetOf returns the recovery offset (last argument) of an event frame.
func offsetOf(t *testing.T, frame, prefix string) string {
	t.Helper()
	var arr []any
	if err := json.Unmarshal([]byte(strings.TrimPrefix(frame, prefix)), &arr); err != nil || len(arr) < 2 {
		t.Fatalf("frame %q: %v", frame, err)
	}
	off, ok := arr[len(arr)-1].(string)
	if !ok {
		t.Fatalf("frame %q has no offset", frame)
	}
	return off
}

func transcriptEvent(id, text string) *eventsv1.Event {
	return &eventsv1.Event{Id: id, Type: edge.EventTranscript, SessionId: sessionID, GroupId: groupID,
		OccurredAt: timestamppb.New(occurred), Payload: &eventsv1.Event_TranscriptReady{
			TranscriptReady: &eventsv1.TranscriptReady{TranscriptId: id, Text: text}}}
}

// teacherInGroup connects a teacher to /sessions on v, joins the session and the group, and returns the
// client, its CONNECT payload and the offset of the last event it received.
func teacherInGroup(t *testing.T, v *env) (*eiot.WS, map[string]string, string) {
	t.Helper()
	ws, answer := v.connect(t, "/sessions", map[string]any{"token": v.teacherToken(t)})
	var hs map[string]string
	if err := json.Unmarshal([]byte(strings.TrimPrefix(answer, "40/sessions,")), &hs); err != nil || hs["pid"] == "" {
		t.Fatalf("CONNECT answer %q: want sid and pid", answer)
	}
	readUntil(t, ws, `42/sessions,["ws:connected"`)
	join(t, ws, "/sessions")
	ws.Send(`42/sessions,2["group:join",{"groupId":"` + groupID + `","sessionId":"` + sessionID + `"}]`)
	f := readUntil(t, ws, `42/sessions,["group:joined"`)
	readUntil(t, ws, "43/sessions,2")
	return ws, hs, offsetOf(t, f, "42/sessions,")
}

// recoverOn reconnects to v with the session's pid and offset and the given token.
func recoverOn(t *testing.T, v *env, token string, hs map[string]string, offset string) (*eiot.WS, string) {
	t.Helper()
	return v.connect(t, "/sessions", map[string]any{"token": token, "pid": hs["pid"], "offset": offset})
}

// expectRecovered checks a recovery: same socket id, the missed transcripts in order, ws:connected with
// recovered true, then the group status update works without joining again (the connection state came
// back) and a live transcript arrives once.
func expectRecovered(t *testing.T, ws *eiot.WS, answer string, hs map[string]string, live func(), missed ...string) {
	t.Helper()
	var hs2 map[string]string
	if err := json.Unmarshal([]byte(strings.TrimPrefix(answer, "40/sessions,")), &hs2); err != nil || hs2["sid"] != hs["sid"] {
		t.Fatalf("recovery CONNECT answer %q, want sid %s", answer, hs["sid"])
	}
	got := collect(t, ws, "/sessions", func(e event) bool { return e.Name == "ws:connected" })
	var texts []string
	for _, e := range got {
		if e.Name == "transcription:group:new" {
			texts = append(texts, e.Payload["text"].(string))
		}
	}
	if strings.Join(texts, "|") != strings.Join(missed, "|") {
		t.Errorf("missed transcripts = %q, want %q", texts, missed)
	}
	ws.Send(`42/sessions,9["group:status_update",{"groupId":"` + groupID + `","status":"ready"}]`)
	if a := decodeAck(t, readUntil(t, ws, "43/sessions,9"), "43/sessions,9"); a["ok"] != true {
		t.Errorf("group:status_update after recovery = %v, want ok (joined state restored)", a)
	}
	live()
	f := readUntil(t, ws, `42/sessions,["transcription:group:new"`)
	if _, p := decodeEvent(t, f, "42/sessions,"); p["text"] != "live" {
		t.Errorf("live transcript = %v", p)
	}
}

func TestRecoveryKeepsConnectionState(t *testing.T) {
	v := newEnv(t)
	ws, hs, offset := teacherInGroup(t, v)
	ws.Drop()
	// The edge notices the drop before the events are published (else they would go to the old socket).
	waitDisconnected(t, v)
	publish(t, v.bus, edge.DefaultSTTEventsTopic, transcriptEvent("t1", "one"))
	publish(t, v.bus, edge.DefaultSTTEventsTopic, transcriptEvent("t2", "two"))
	ws2, answer := recoverOn(t, v, v.teacherToken(t), hs, offset)
	expectRecovered(t, ws2, answer, hs, func() {
		publish(t, v.bus, edge.DefaultSTTEventsTopic, transcriptEvent("t3", "live"))
	}, "one", "two")
	expectOnce(t, v.bus, ws2)
}

// expectOnce publishes a sentinel and checks that no transcript arrives before it.
func expectOnce(t *testing.T, b bus.Bus, ws *eiot.WS) {
	t.Helper()
	publish(t, b, edge.DefaultSTTEventsTopic, transcriptEvent("sentinel", "sentinel"))
	evs := collect(t, ws, "/sessions", func(e event) bool { return e.Payload["text"] == "sentinel" })
	if len(evs) != 0 {
		t.Errorf("events before the sentinel: %v", names(evs))
	}
}

// waitDisconnected waits until v's edge has no /sessions socket left.
func waitDisconnected(t *testing.T, v *env) {
	t.Helper()
	deadline := time.Now().Add(eiot.Timeout)
	for time.Now().Before(deadline) {
		n := v.edge.ActiveConnections()
		if n.GetTotal() == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the edge did not notice the disconnection")
}

func TestRecoveryRefusesAnotherPrincipal(t *testing.T) {
	v := newEnv(t)
	ws, hs, offset := teacherInGroup(t, v)
	ws.Drop()
	waitDisconnected(t, v)
	iss, err := v.keys.Issue(context.Background(), authn.Principal{Subject: "teacher-2", Role: authn.RoleTeacher, SchoolID: schoolID}, "")
	if err != nil {
		t.Fatal(err)
	}
	_, answer := recoverOn(t, v, iss.Token, hs, offset)
	if want := `44/sessions,{"message":"unauthorized","data":{"code":"UNAUTHORIZED"}}`; answer != want {
		t.Errorf("recovery with another teacher's token: got %q, want %q", answer, want)
	}
}

func TestRecoveryOff(t *testing.T) {
	v := newEnvWith(t, func(c *edge.Config) { c.RecoveryWindow = 0 })
	_, answer := v.connect(t, "/sessions", map[string]any{"token": v.teacherToken(t)})
	if strings.Contains(answer, `"pid"`) {
		t.Errorf("CONNECT answer %q carries a pid with recovery off", answer)
	}
}

// TestRecoveryAcrossReplicas runs two edges on one Redis (bus and recovery store): a teacher recovers on
// replica B the session it had on replica A, with the events it missed once each.
func TestRecoveryAcrossReplicas(t *testing.T) {
	renv := testenv.Redis(t)
	rdb := renv.Client(t)
	d := newDeps(t)
	replica := func() *env {
		b, err := redisbus.New(redisbus.Options{Prefix: renv.Prefix, ReadBlock: 100 * time.Millisecond}, rdb)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return d.edge(t, b, nil, edge.WithRedis(rdb, renv.Prefix))
	}
	a, b := replica(), replica()
	ws, hs, offset := teacherInGroup(t, a)
	other := b.connected(t, "/sessions") // a teacher on B sees every event once too
	join(t, other, "/sessions")

	ws.Drop()
	waitDisconnected(t, a)
	publish(t, a.bus, edge.DefaultSTTEventsTopic, transcriptEvent("t1", "one"))
	publish(t, b.bus, edge.DefaultSTTEventsTopic, transcriptEvent("t2", "two"))
	for _, want := range []string{"one", "two"} {
		f := readUntil(t, other, `42/sessions,["transcription:group:new"`)
		if _, p := decodeEvent(t, f, "42/sessions,"); p["text"] != want {
			t.Fatalf("teacher on B got %v, want %q", p, want)
		}
	}
	ws2, answer := recoverOn(t, b, b.teacherToken(t), hs, offset)
	expectRecovered(t, ws2, answer, hs, func() {
		publish(t, a.bus, edge.DefaultSTTEventsTopic, transcriptEvent("t3", "live"))
	}, "one", "two")
	expectOnce(t, b.bus, ws2)
}
