package edge_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/inproc"
	"github.com/classwaves/classwaves/pkg/traceid"
	"github.com/classwaves/classwaves/services/auth/token"
	"github.com/classwaves/classwaves/services/realtime/edge"
	eiot "github.com/classwaves/classwaves/services/realtime/engineio/engineiotest"
)

const (
	sessionID      = "0193a5c0-0000-7000-8000-000000000001"
	otherSessionID = "0193a5c0-0000-7000-8000-000000000002"
	groupID        = "0193a5c0-0000-7000-8000-0000000000a1"
	teacherID      = "teacher-1"
	schoolID       = "school-1"
)

// fakeSessions allows teacher-1 into sessionID (and its groups) only.
type fakeSessions struct {
	sessionv1.UnimplementedSessionServiceServer
	mu      sync.Mutex
	updates []*sessionv1.UpdateGroupStatusRequest
}

func (f *fakeSessions) AuthorizeRealtimeJoin(_ context.Context, r *sessionv1.AuthorizeRealtimeJoinRequest) (*sessionv1.AuthorizeRealtimeJoinResponse, error) {
	if r.GetSessionId() != sessionID {
		return &sessionv1.AuthorizeRealtimeJoinResponse{Allowed: false, Reason: "SESSION_FORBIDDEN"}, nil
	}
	return &sessionv1.AuthorizeRealtimeJoinResponse{Allowed: true, SessionStatus: "active", SchoolId: schoolID, TeacherId: teacherID}, nil
}

func (f *fakeSessions) UpdateGroupStatus(_ context.Context, r *sessionv1.UpdateGroupStatusRequest) (*sessionv1.UpdateGroupStatusResponse, error) {
	f.mu.Lock()
	f.updates = append(f.updates, r)
	f.mu.Unlock()
	return &sessionv1.UpdateGroupStatusResponse{Group: &sessionv1.Group{Id: r.GetGroupId(), Status: r.GetStatus(), IsReady: r.GetIsReady()}}, nil
}

// fakeSTT records the audio it receives.
type fakeSTT struct {
	sttv1.UnimplementedSttServiceServer
	got chan *sttv1.StreamAudioRequest
}

func (f *fakeSTT) StreamAudio(s grpc.BidiStreamingServer[sttv1.StreamAudioRequest, sttv1.StreamAudioResponse]) error {
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		f.got <- m
		if c := m.GetChunk(); c != nil {
			if err := s.Send(&sttv1.StreamAudioResponse{Message: &sttv1.StreamAudioResponse_Accepted{
				Accepted: &sttv1.ChunkAccepted{Seq: c.GetSeq()}}}); err != nil {
				return err
			}
		}
	}
}

type env struct {
	ws       string
	edge     *edge.Edge
	reg      *prometheus.Registry
	keys     *token.KeySet
	bus      bus.Bus
	sessions *fakeSessions
	stt      *fakeSTT
}

func newEnv(t *testing.T) *env { t.Helper(); return newEnvWith(t, nil) }

// newEnvWith is newEnv with the edge's configuration adjusted by tune (when not nil).
func newEnvWith(t *testing.T, tune func(*edge.Config)) *env {
	t.Helper()
	b, err := inproc.New(inproc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return newDeps(t).edge(t, b, tune)
}

// deps are what edges under test share: token keys and the fake session and stt services.
type deps struct {
	keys     *token.KeySet
	cc       *grpc.ClientConn
	sessions *fakeSessions
	stt      *fakeSTT
}

func newDeps(t *testing.T) *deps {
	t.Helper()
	keys, err := token.NewKeySet(context.Background(), token.DefaultConfig(), authn.DefaultConfig(), token.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	fs, fstt := &fakeSessions{}, &fakeSTT{got: make(chan *sttv1.StreamAudioRequest, 256)}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	sessionv1.RegisterSessionServiceServer(gs, fs)
	sttv1.RegisterSttServiceServer(gs, fstt)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return &deps{keys: keys, cc: cc, sessions: fs, stt: fstt}
}

// edge starts an edge on b with d's services, its configuration adjusted by tune (when not nil).
func (d *deps) edge(t *testing.T, b bus.Bus, tune func(*edge.Config), opts ...edge.Option) *env {
	t.Helper()
	cfg := edge.DefaultConfig()
	cfg.MaxAudioChunkBytes = 1024
	if tune != nil {
		tune(&cfg)
	}
	reg := prometheus.NewRegistry()
	e, err := edge.New(cfg, d.keys.Verifier(), sessionv1.NewSessionServiceClient(d.cc), sttv1.NewSttServiceClient(d.cc), b, nil, reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(e.Handler())
	t.Cleanup(func() {
		if err := e.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
		hs.Close()
	})
	return &env{ws: "ws" + strings.TrimPrefix(hs.URL, "http") + "/socket.io/?EIO=4&transport=websocket",
		edge: e, reg: reg, keys: d.keys, bus: b, sessions: d.sessions, stt: d.stt}
}

func (v *env) teacherToken(t *testing.T) string {
	t.Helper()
	iss, err := v.keys.Issue(context.Background(), authn.Principal{Subject: teacherID, Role: authn.RoleTeacher, SchoolID: schoolID}, "t@example.com")
	if err != nil {
		t.Fatal(err)
	}
	return iss.Token
}

// connect opens a socket on nsp with auth and returns it with the CONNECT answer.
func (v *env) connect(t *testing.T, nsp string, auth any) (*eiot.WS, string) {
	t.Helper()
	ws := eiot.DialWS(t, v.ws, nil)
	ws.ReadOpen()
	a, _ := json.Marshal(auth)
	ws.Send("40" + nsp + "," + string(a))
	return ws, ws.ReadText()
}

// readUntil reads frames until one starts with prefix.
func readUntil(t *testing.T, ws *eiot.WS, prefix string) string {
	t.Helper()
	for range 20 {
		if f := ws.ReadText(); strings.HasPrefix(f, prefix) {
			return f
		}
	}
	t.Fatalf("no frame starting with %q", prefix)
	return ""
}

// decodeEvent decodes `<prefix>[name, payload]`.
func decodeEvent(t *testing.T, frame, prefix string) (string, map[string]any) {
	t.Helper()
	var arr []json.RawMessage
	if err := json.Unmarshal([]byte(strings.TrimPrefix(frame, prefix)), &arr); err != nil || len(arr) < 1 {
		t.Fatalf("frame %q: %v", frame, err)
	}
	var name string
	_ = json.Unmarshal(arr[0], &name)
	var payload map[string]any
	if len(arr) > 1 {
		_ = json.Unmarshal(arr[1], &payload)
	}
	return name, payload
}

func decodeAck(t *testing.T, frame, prefix string) map[string]any {
	t.Helper()
	var arr []map[string]any
	if err := json.Unmarshal([]byte(strings.TrimPrefix(frame, prefix)), &arr); err != nil || len(arr) != 1 {
		t.Fatalf("ack %q: %v", frame, err)
	}
	return arr[0]
}

func (v *env) connected(t *testing.T, nsp string) *eiot.WS {
	t.Helper()
	ws, got := v.connect(t, nsp, map[string]any{"token": v.teacherToken(t), "traceId": "trace-abc"})
	if !strings.HasPrefix(got, "40"+nsp+",{\"sid\"") {
		t.Fatalf("CONNECT answer = %q", got)
	}
	name, p := decodeEvent(t, readUntil(t, ws, "42"+nsp+","), "42"+nsp+",")
	if name != "ws:connected" || p["traceId"] != "trace-abc" || p["schemaVersion"] != "1.0" {
		t.Fatalf("first event = %s %v", name, p)
	}
	return ws
}

func TestRefusedWithoutToken(t *testing.T) {
	v := newEnv(t)
	for _, auth := range []any{map[string]any{}, map[string]any{"token": "not-a-jwt"}} {
		_, got := v.connect(t, "/sessions", auth)
		want := `44/sessions,{"message":"unauthorized","data":{"code":"UNAUTHORIZED"}}`
		if got != want {
			t.Errorf("auth %v: got %q, want %q", auth, got, want)
		}
	}
}

func TestConnectBothNamespaces(t *testing.T) {
	v := newEnv(t)
	v.connected(t, "/sessions")
	v.connected(t, "/guidance")
	// A trace id is generated when the client sends none.
	ws, _ := v.connect(t, "/sessions", map[string]any{"token": v.teacherToken(t)})
	_, p := decodeEvent(t, readUntil(t, ws, "42/sessions,"), "42/sessions,")
	if id, _ := p["traceId"].(string); id == "" {
		t.Fatalf("ws:connected without traceId: %v", p)
	}
}

// TestHeaderCredentials connects with the token and trace id in the handshake's headers rather than in
// auth, as a client that sets extraHeaders does.
func TestHeaderCredentials(t *testing.T) {
	v := newEnv(t)
	ws := eiot.DialWS(t, v.ws, map[string][]string{
		"Authorization": {"Bearer " + v.teacherToken(t)}, "X-Trace-Id": {"trace-from-header"},
	})
	ws.ReadOpen()
	ws.Send("40/sessions,")
	if got := ws.ReadText(); !strings.HasPrefix(got, `40/sessions,{"sid"`) {
		t.Fatalf("CONNECT answer = %q", got)
	}
	if _, p := decodeEvent(t, readUntil(t, ws, "42/sessions,"), "42/sessions,"); p["traceId"] != "trace-from-header" {
		t.Errorf("ws:connected = %v, want the header's trace id", p)
	}
	bad := eiot.DialWS(t, v.ws, map[string][]string{"Authorization": {"Bearer not-a-jwt"}})
	bad.ReadOpen()
	bad.Send("40/sessions,")
	if got, want := bad.ReadText(), `44/sessions,{"message":"unauthorized","data":{"code":"UNAUTHORIZED"}}`; got != want {
		t.Errorf("bad header token: got %q, want %q", got, want)
	}
}

func TestSessionJoin(t *testing.T) {
	v := newEnv(t)
	ws := v.connected(t, "/sessions")
	ws.Send(`42/sessions,1["session:join",{"sessionId":"` + sessionID + `"}]`)
	if a := decodeAck(t, readUntil(t, ws, "43/sessions,1"), "43/sessions,1"); a["ok"] != true {
		t.Fatalf("join ack = %v", a)
	}
	ws.Send(`42/sessions,2["session:join",{"sessionId":"` + otherSessionID + `"}]`)
	if a := decodeAck(t, readUntil(t, ws, "43/sessions,2"), "43/sessions,2"); a["ok"] != false || a["code"] != "SESSION_FORBIDDEN" {
		t.Fatalf("refused join ack = %v", a)
	}
	// Without an ack the refusal comes as an error event.
	ws.Send(`42/sessions,["session:join",{"sessionId":"` + otherSessionID + `"}]`)
	if _, p := decodeEvent(t, readUntil(t, ws, `42/sessions,["error"`), "42/sessions,"); p["code"] != "SESSION_FORBIDDEN" {
		t.Fatalf("error event = %v", p)
	}
	for i, bad := range []string{`["session:join"]`, `["session:join",42]`, `["session:join",{"sessionId":"x"}]`, `["session:join",[1,2]]`} {
		id := string(rune('3' + i))
		ws.Send(`42/sessions,` + id + bad)
		if a := decodeAck(t, readUntil(t, ws, "43/sessions,"+id), "43/sessions,"+id); a["code"] != "INVALID_PAYLOAD" {
			t.Fatalf("%s: ack = %v", bad, a)
		}
	}
}

func TestUpdateStatusUnsupported(t *testing.T) {
	v := newEnv(t)
	ws := v.connected(t, "/sessions")
	ws.Send(`42/sessions,7["session:update_status",{"sessionId":"` + sessionID + `","status":"ended"}]`)
	if a := decodeAck(t, readUntil(t, ws, "43/sessions,7"), "43/sessions,7"); a["ok"] != false || a["code"] != "UNSUPPORTED_OPERATION" {
		t.Fatalf("ack = %v", a)
	}
}

func publish(t *testing.T, b bus.Bus, topic string, ev *eventsv1.Event) {
	t.Helper()
	data, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(context.Background(), topic, bus.Outgoing{Key: ev.GetKey(), Payload: data}); err != nil {
		t.Fatal(err)
	}
}

func TestFanOut(t *testing.T) {
	v := newEnv(t)
	ws := v.connected(t, "/sessions")
	ws.Send(`42/sessions,1["session:join",{"sessionId":"` + sessionID + `"}]`)
	readUntil(t, ws, "43/sessions,1")
	end := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	publish(t, v.bus, edge.DefaultSTTEventsTopic, &eventsv1.Event{
		Id: "ev-1", Type: edge.EventTranscript, SessionId: sessionID, GroupId: groupID, TraceId: "trace-t",
		Payload: &eventsv1.Event_TranscriptReady{TranscriptReady: &eventsv1.TranscriptReady{
			TranscriptId: "tr-1", Text: "hello class", Confidence: 0.9, WindowEnd: timestamppb.New(end)}},
	})
	name, p := decodeEvent(t, readUntil(t, ws, `42/sessions,["transcription:group:new"`), "42/sessions,")
	want := map[string]any{"id": "tr-1", "groupId": groupID, "sessionId": sessionID, "text": "hello class",
		"timestamp": "2026-01-02T03:04:05Z", "confidence": 0.9, "traceId": "trace-t", "schemaVersion": "1.0"}
	for k, w := range want {
		if p[k] != w {
			t.Errorf("%s.%s = %v, want %v", name, k, p[k], w)
		}
	}
	publish(t, v.bus, edge.DefaultSessionEventsTopic, &eventsv1.Event{
		Type: edge.EventSessionStatusChanged, SessionId: sessionID, TraceId: "trace-s",
		Payload: &eventsv1.Event_SessionStatusChanged{SessionStatusChanged: &eventsv1.SessionStatusChanged{
			PreviousStatus: "active", Status: "paused"}},
	})
	_, p = decodeEvent(t, readUntil(t, ws, `42/sessions,["session:status_changed"`), "42/sessions,")
	if p["status"] != "paused" || p["previousStatus"] != "active" || p["sessionId"] != sessionID || p["traceId"] != "trace-s" {
		t.Fatalf("session:status_changed = %v", p)
	}
	// An event without a trace id still reaches clients with one.
	publish(t, v.bus, edge.DefaultSTTEventsTopic, &eventsv1.Event{
		Id: "ev-2", Type: edge.EventTranscript, SessionId: sessionID, GroupId: groupID,
		Payload: &eventsv1.Event_TranscriptReady{TranscriptReady: &eventsv1.TranscriptReady{TranscriptId: "tr-2", Text: "again"}},
	})
	_, p = decodeEvent(t, readUntil(t, ws, `42/sessions,["transcription:group:new"`), "42/sessions,")
	if id, _ := p["traceId"].(string); p["id"] != "tr-2" || !traceid.Valid(id) {
		t.Fatalf("transcript without a trace id: %v", p)
	}
}

func TestGroupJoinStatusAndAudio(t *testing.T) {
	v := newEnv(t)
	ws := v.connected(t, "/sessions")
	// Audio before joining the group is refused.
	ws.Send(`42/sessions,1["audio:start",{"groupId":"` + groupID + `","format":"audio/webm"}]`)
	if a := decodeAck(t, readUntil(t, ws, "43/sessions,1"), "43/sessions,1"); a["code"] != "NOT_JOINED" {
		t.Fatalf("audio:start before join = %v", a)
	}
	ws.Send(`42/sessions,2["group:join",{"groupId":"` + groupID + `","sessionId":"` + sessionID + `"}]`)
	name, p := decodeEvent(t, readUntil(t, ws, `42/sessions,["group:joined"`), "42/sessions,")
	if p["groupId"] != groupID || p["sessionId"] != sessionID || p["schemaVersion"] != "1.0" {
		t.Fatalf("%s = %v", name, p)
	}
	readUntil(t, ws, "43/sessions,2")

	ws.Send(`42/sessions,3["group:status_update",{"groupId":"` + groupID + `","status":"ready","isReady":true}]`)
	if a := decodeAck(t, readUntil(t, ws, "43/sessions,3"), "43/sessions,3"); a["ok"] != true || a["status"] != "ready" {
		t.Fatalf("status ack = %v", a)
	}

	ws.Send(`42/sessions,4["audio:start",{"groupId":"` + groupID + `","format":"audio/webm;codecs=opus"}]`)
	if a := decodeAck(t, readUntil(t, ws, "43/sessions,4"), "43/sessions,4"); a["ok"] != true {
		t.Fatalf("audio:start = %v", a)
	}
	if m := recvSTT(t, v.stt); m.GetStart().GetGroupId() != groupID || m.GetStart().GetSchoolId() != schoolID ||
		!traceid.Valid(m.GetStart().GetTraceId()) {
		t.Fatalf("stt got %v (want the group, its school and the socket's trace id)", m)
	}
	ws.Send(`451-/sessions,5["audio:chunk",{"groupId":"` + groupID + `","audioData":{"_placeholder":true,"num":0}}]`)
	ws.SendBinary([]byte{1, 2, 3})
	if a := decodeAck(t, readUntil(t, ws, "43/sessions,5"), "43/sessions,5"); a["ok"] != true {
		t.Fatalf("audio:chunk = %v", a)
	}
	if m := recvSTT(t, v.stt); string(m.GetChunk().GetData()) != "\x01\x02\x03" || m.GetChunk().GetSeq() != 1 {
		t.Fatalf("stt got %v", m)
	}
	ws.Send(`451-/sessions,6["audio:chunk",{"groupId":"` + groupID + `","audioData":{"_placeholder":true,"num":0}}]`)
	ws.SendBinary(make([]byte, 2048))
	if a := decodeAck(t, readUntil(t, ws, "43/sessions,6"), "43/sessions,6"); a["code"] != "AUDIO_CHUNK_TOO_LARGE" {
		t.Fatalf("big chunk = %v", a)
	}
	ws.Send(`42/sessions,7["audio:stop",{"groupId":"` + groupID + `"}]`)
	readUntil(t, ws, "43/sessions,7")
	if m := recvSTT(t, v.stt); m.GetStop() == nil {
		t.Fatalf("stt got %v, want stop", m)
	}
}

func recvSTT(t *testing.T, f *fakeSTT) *sttv1.StreamAudioRequest {
	t.Helper()
	select {
	case m := <-f.got:
		return m
	case <-time.After(eiot.Timeout):
		t.Fatal("stt received nothing")
		return nil
	}
}

func TestStudentScopeAndGroupFanOut(t *testing.T) {
	v := newEnv(t)
	iss, err := v.keys.Issue(context.Background(), authn.Principal{Subject: "student-1", Role: authn.RoleStudent,
		SchoolID: schoolID, SessionID: sessionID, GroupID: groupID}, "")
	if err != nil {
		t.Fatal(err)
	}
	ws, got := v.connect(t, "/sessions", map[string]any{"token": iss.Token})
	if !strings.HasPrefix(got, `40/sessions,{"sid"`) {
		t.Fatalf("CONNECT answer = %q", got)
	}
	// A student token scoped to another group is refused before any RPC.
	other := "0193a5c0-0000-7000-8000-0000000000b2"
	ws.Send(`42/sessions,1["group:join",{"groupId":"` + other + `","sessionId":"` + sessionID + `"}]`)
	if a := decodeAck(t, readUntil(t, ws, "43/sessions,1"), "43/sessions,1"); a["code"] != "GROUP_FORBIDDEN" {
		t.Fatalf("other group = %v", a)
	}
	ws.Send(`42/sessions,2["group:join",{"groupId":"` + groupID + `","sessionId":"` + sessionID + `"}]`)
	readUntil(t, ws, "43/sessions,2")
	publish(t, v.bus, edge.DefaultSessionEventsTopic, &eventsv1.Event{
		Type: edge.EventGroupStatusChanged, SessionId: sessionID, GroupId: groupID, TraceId: "trace-g",
		Payload: &eventsv1.Event_GroupStatusChanged{GroupStatusChanged: &eventsv1.GroupStatusChanged{Status: "ready", IsReady: true}},
	})
	_, p := decodeEvent(t, readUntil(t, ws, `42/sessions,["group:status_changed"`), "42/sessions,")
	if p["groupId"] != groupID || p["status"] != "ready" || p["isReady"] != true || p["traceId"] != "trace-g" {
		t.Fatalf("group:status_changed = %v", p)
	}
}

func TestOriginAllowlist(t *testing.T) {
	v := newEnv(t) // AllowedOrigins empty: only same-origin or no Origin
	_, resp, err := eiot.TryDialWS(v.ws, http.Header{"Origin": {"https://evil.example"}})
	if err == nil {
		t.Fatal("dial from a foreign origin succeeded")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("response = %v", resp)
	}
}
