package edge_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	realtimev1 "github.com/classwaves/classwaves/pkg/api/classwaves/realtime/v1"
	"github.com/classwaves/classwaves/pkg/config"
	"github.com/classwaves/classwaves/services/realtime/edge"
	eiot "github.com/classwaves/classwaves/services/realtime/engineio/engineiotest"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const otherGroupID = "0193a5c0-0000-7000-8000-0000000000a2"

// startAudio joins group on ws (a /sessions socket) and starts its audio stream.
func startAudio(t *testing.T, v *env, ws *eiot.WS, group string) {
	t.Helper()
	ws.Send(`42/sessions,901["group:join",{"groupId":"` + group + `","sessionId":"` + sessionID + `"}]`)
	if a := decodeAck(t, readUntil(t, ws, "43/sessions,901"), "43/sessions,901"); a["ok"] != true {
		t.Fatalf("group:join = %v", a)
	}
	ws.Send(`42/sessions,902["audio:start",{"groupId":"` + group + `","format":"audio/webm"}]`)
	if a := decodeAck(t, readUntil(t, ws, "43/sessions,902"), "43/sessions,902"); a["ok"] != true {
		t.Fatalf("audio:start = %v", a)
	}
	if m := recvSTT(t, v.stt); m.GetStart().GetGroupId() != group {
		t.Fatalf("stt got %v, want start", m)
	}
}

// sendChunk sends an audio:chunk of n bytes with ack id, and returns the ack with the audio:error
// events received before it.
func sendChunk(t *testing.T, ws *eiot.WS, id int, group string, n int) (ack map[string]any, hints []map[string]any) {
	t.Helper()
	ids := strconv.Itoa(id)
	ws.Send(`451-/sessions,` + ids + `["audio:chunk",{"groupId":"` + group + `","audioData":{"_placeholder":true,"num":0}}]`)
	ws.SendBinary(make([]byte, n))
	for range 20 {
		f := ws.ReadText()
		switch {
		case strings.HasPrefix(f, "43/sessions,"+ids+"["):
			return decodeAck(t, f, "43/sessions,"+ids), hints
		case strings.HasPrefix(f, `42/sessions,["audio:error"`):
			_, p := decodeEvent(t, f, "42/sessions,")
			hints = append(hints, p)
		}
	}
	t.Fatalf("no ack %d", id)
	return nil, nil
}

func expectChunk(t *testing.T, ws *eiot.WS, id int, group string, n int, accepted bool, wantHint bool) {
	t.Helper()
	a, hints := sendChunk(t, ws, id, group, n)
	if accepted {
		if a["ok"] != true {
			t.Fatalf("chunk %d: ack %v, want accepted", id, a)
		}
	} else if a["ok"] != false || a["dropped"] != true || a["code"] != edge.CodeAudioBackpressure {
		t.Fatalf("chunk %d: ack %v, want dropped", id, a)
	}
	if got := len(hints) == 1; got != wantHint || len(hints) > 1 {
		t.Fatalf("chunk %d: hints %v, want hint=%v", id, hints, wantHint)
	}
	if wantHint {
		h := hints[0]
		if h["groupId"] != group || h["code"] != "AUDIO_BACKPRESSURE" || h["schemaVersion"] != "1.0" ||
			h["traceId"] != "trace-abc" || h["message"] == "" {
			t.Fatalf("hint = %v", h)
		}
		if ms, _ := h["retryAfterMs"].(float64); ms <= 0 {
			t.Fatalf("hint retryAfterMs = %v", h["retryAfterMs"])
		}
	}
}

// stopAndCountChunks stops group's audio and returns the chunk seqs stt received before the stop.
func stopAndCountChunks(t *testing.T, v *env, ws *eiot.WS, group string) []int64 {
	t.Helper()
	ws.Send(`42/sessions,999["audio:stop",{"groupId":"` + group + `"}]`)
	readUntil(t, ws, "43/sessions,999")
	var seqs []int64
	for {
		m := recvSTT(t, v.stt)
		if m.GetStop() != nil {
			return seqs
		}
		seqs = append(seqs, m.GetChunk().GetSeq())
	}
}

func TestAudioEventBucketDropsAndHints(t *testing.T) {
	clk := newFakeClock()
	v := newEnvWith(t, func(c *edge.Config) {
		c.Clock = clk.Now
		c.MaxAudioEventsPerSec = 2
		c.BackpressureHintThreshold = 3
		c.BackpressureHintCooldown = 5 * time.Second
	})
	ws := v.connected(t, "/sessions")
	startAudio(t, v, ws, groupID)

	id := 0
	next := func() int { id++; return id }
	// Two events fit the bucket; the next ones are dropped, the third consecutive drop hints.
	expectChunk(t, ws, next(), groupID, 10, true, false)
	expectChunk(t, ws, next(), groupID, 10, true, false)
	expectChunk(t, ws, next(), groupID, 10, false, false)
	expectChunk(t, ws, next(), groupID, 10, false, false)
	expectChunk(t, ws, next(), groupID, 10, false, true)
	// Within the cooldown: more drops, no hint.
	for range 4 {
		expectChunk(t, ws, next(), groupID, 10, false, false)
	}
	// One second later the bucket is full again; still within the cooldown after exhausting it.
	clk.Advance(time.Second)
	expectChunk(t, ws, next(), groupID, 10, true, false)
	expectChunk(t, ws, next(), groupID, 10, true, false)
	for range 4 {
		expectChunk(t, ws, next(), groupID, 10, false, false)
	}
	// Five seconds after the first hint: a hint again after the threshold.
	clk.Advance(4 * time.Second)
	expectChunk(t, ws, next(), groupID, 10, true, false)
	expectChunk(t, ws, next(), groupID, 10, true, false)
	expectChunk(t, ws, next(), groupID, 10, false, false)
	expectChunk(t, ws, next(), groupID, 10, false, false)
	expectChunk(t, ws, next(), groupID, 10, false, true)

	if got := stopAndCountChunks(t, v, ws, groupID); len(got) != 6 || got[5] != 6 {
		t.Fatalf("stt chunk seqs = %v, want 1..6", got)
	}
	if n := schoolCounter(t, v, "ws_backpressure_drops_total"); n != 14 {
		t.Errorf("drops = %v, want 14", n)
	}
	if n := schoolCounter(t, v, "ws_backpressure_hints_total"); n != 2 {
		t.Errorf("hints = %v, want 2", n)
	}
	if n := schoolCounter(t, v, "ws_audio_bytes_total"); n != 60 {
		t.Errorf("audio bytes = %v, want 60", n)
	}
}

// schoolCounter returns the value of the {school="school-1"} series of a counter.
func schoolCounter(t *testing.T, v *env, name string) float64 {
	t.Helper()
	mfs, err := v.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "school" && l.GetValue() == schoolID {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestSessionQuotaAcrossSockets(t *testing.T) {
	clk := newFakeClock()
	v := newEnvWith(t, func(c *edge.Config) {
		c.Clock = clk.Now
		c.SessionAudioLimit = 1000
	})
	ws1 := v.connected(t, "/sessions")
	ws2 := v.connected(t, "/sessions")
	startAudio(t, v, ws1, groupID)
	startAudio(t, v, ws2, otherGroupID)

	expectChunk(t, ws1, 1, groupID, 600, true, false)
	// The session has 400 bytes left this second, whichever socket sends.
	expectChunk(t, ws2, 1, otherGroupID, 600, false, false)
	expectChunk(t, ws1, 2, groupID, 600, false, false)
	expectChunk(t, ws2, 2, otherGroupID, 400, true, false)
	expectChunk(t, ws1, 3, groupID, 1, false, false) // ws1's second consecutive drop
	clk.Advance(time.Second)
	expectChunk(t, ws2, 3, otherGroupID, 600, true, false)
	if n := schoolCounter(t, v, "ws_backpressure_drops_total"); n != 3 {
		t.Errorf("drops = %v, want 3", n)
	}
	if n := schoolCounter(t, v, "ws_audio_bytes_total"); n != 1600 {
		t.Errorf("audio bytes = %v, want 1600", n)
	}
}

func TestSchoolQuota(t *testing.T) {
	clk := newFakeClock()
	v := newEnvWith(t, func(c *edge.Config) {
		c.Clock = clk.Now
		c.SchoolAudioLimit = 500
		c.BackpressureHintThreshold = 1
	})
	ws1 := v.connected(t, "/sessions")
	ws2 := v.connected(t, "/sessions")
	startAudio(t, v, ws1, groupID)
	startAudio(t, v, ws2, otherGroupID)
	expectChunk(t, ws1, 1, groupID, 300, true, false)
	expectChunk(t, ws2, 1, otherGroupID, 300, false, true)
	clk.Advance(time.Second)
	expectChunk(t, ws2, 2, otherGroupID, 300, true, false)
}

func TestActiveConnections(t *testing.T) {
	v := newEnv(t)
	if r := v.edge.ActiveConnections(); r.GetTotal() != 0 || len(r.GetNamespaces()) != 2 {
		t.Fatalf("empty edge: %v", r)
	}
	ws1 := v.connected(t, "/sessions")
	ws2 := v.connected(t, "/sessions")
	v.connected(t, "/guidance")
	ws1.Send(`42/sessions,1["session:join",{"sessionId":"` + sessionID + `"}]`)
	readUntil(t, ws1, "43/sessions,1")
	ws2.Send(`42/sessions,1["session:join",{"sessionId":"` + sessionID + `"}]`)
	readUntil(t, ws2, "43/sessions,1")
	ws2.Send(`42/sessions,2["group:join",{"groupId":"` + groupID + `","sessionId":"` + sessionID + `"}]`)
	readUntil(t, ws2, "43/sessions,2")

	r := v.edge.ActiveConnections()
	got := map[string][2]int32{}
	for _, n := range r.GetNamespaces() {
		got[n.GetNamespace()] = [2]int32{n.GetSockets(), n.GetRooms()}
	}
	want := map[string][2]int32{"/sessions": {2, 2}, "/guidance": {1, 0}}
	if r.GetTotal() != 3 || len(got) != 2 || got["/sessions"] != want["/sessions"] || got["/guidance"] != want["/guidance"] {
		t.Fatalf("ActiveConnections = %v, want total 3 and %v", r, want)
	}
	// Through the gRPC server type, open without a token configured.
	resp, err := (&edge.RealtimeServer{Edge: v.edge}).GetActiveConnections(context.Background(), &realtimev1.GetActiveConnectionsRequest{})
	if err != nil || resp.GetTotal() != 3 {
		t.Fatalf("GetActiveConnections = %v, %v", resp, err)
	}
}

func TestActiveConnectionsTokenGate(t *testing.T) {
	v := newEnvWith(t, func(c *edge.Config) { c.DevObservabilityToken = "s3cret" })
	srv := &edge.RealtimeServer{Edge: v.edge}
	call := func(md metadata.MD) error {
		ctx := context.Background()
		if md != nil {
			ctx = metadata.NewIncomingContext(ctx, md)
		}
		_, err := srv.GetActiveConnections(ctx, &realtimev1.GetActiveConnectionsRequest{})
		return err
	}
	for name, md := range map[string]metadata.MD{
		"missing":  nil,
		"empty":    metadata.Pairs(),
		"wrong":    metadata.Pairs(edge.DevObservabilityTokenHeader, "nope"),
		"prefix":   metadata.Pairs(edge.DevObservabilityTokenHeader, "s3cre"),
		"repeated": metadata.Pairs(edge.DevObservabilityTokenHeader, "s3cret", edge.DevObservabilityTokenHeader, "s3cret"),
	} {
		if err := call(md); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s: err = %v, want PermissionDenied", name, err)
		}
	}
	if err := call(metadata.Pairs("x-dev-observability-token", "s3cret")); err != nil {
		t.Fatalf("right token: %v", err)
	}
}

func TestBackpressureConfig(t *testing.T) {
	var c edge.Config
	f := config.NewFlagSet("t", config.MapEnv(map[string]string{
		"WS_MAX_AUDIO_EVENTS_PER_SEC": "7", "WS_MAX_AUDIO_BYTES_PER_SEC": "1000", "WS_SCHOOL_AUDIO_LIMIT": "3000",
		"WS_SESSION_AUDIO_LIMIT": "2000", "WS_BACKPRESSURE_HINT_THRESHOLD": "4", "WS_BACKPRESSURE_HINT_COOLDOWN_MS": "250",
		"DEV_OBSERVABILITY_TOKEN": "tok",
	}))
	c.RegisterFlags(f)
	if err := f.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if c.MaxAudioEventsPerSec != 7 || c.MaxAudioBytesPerSec != 1000 || c.SchoolAudioLimit != 3000 ||
		c.SessionAudioLimit != 2000 || c.BackpressureHintThreshold != 4 ||
		c.BackpressureHintCooldown != 250*time.Millisecond || c.DevObservabilityToken != "tok" {
		t.Fatalf("config from env = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	d := edge.DefaultConfig()
	if d.MaxAudioEventsPerSec != 20 || d.MaxAudioBytesPerSec != 1<<20 || d.SchoolAudioLimit != 5<<20 ||
		d.SessionAudioLimit != 2<<20 || d.BackpressureHintThreshold != 3 || d.BackpressureHintCooldown != 5*time.Second ||
		d.DevObservabilityToken != "" {
		t.Fatalf("defaults = %+v", d)
	}
	d.MaxAudioEventsPerSec, d.MaxAudioBytesPerSec, d.SchoolAudioLimit, d.SessionAudioLimit = 0, -1, 0, 0
	d.BackpressureHintThreshold, d.BackpressureHintCooldown = 0, -time.Second
	err := d.Validate()
	for _, want := range []string{
		"WS_MAX_AUDIO_EVENTS_PER_SEC must be positive, got 0",
		"WS_MAX_AUDIO_BYTES_PER_SEC must be positive, got -1",
		"WS_SCHOOL_AUDIO_LIMIT must be positive, got 0",
		"WS_SESSION_AUDIO_LIMIT must be positive, got 0",
		"WS_BACKPRESSURE_HINT_THRESHOLD must be positive, got 0",
		"WS_BACKPRESSURE_HINT_COOLDOWN_MS must not be negative, got -1000",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to contain %q", err, want)
		}
	}
}

func TestChunkLargerThanByteBucket(t *testing.T) {
	clk := newFakeClock()
	v := newEnvWith(t, func(c *edge.Config) {
		c.Clock = clk.Now
		c.MaxAudioBytesPerSec = 100
	})
	ws := v.connected(t, "/sessions")
	startAudio(t, v, ws, groupID)
	// A chunk above the per-second byte budget passes once the bucket is full, then pays its debt.
	expectChunk(t, ws, 1, groupID, 300, true, false)
	clk.Advance(time.Second)
	expectChunk(t, ws, 2, groupID, 300, false, false)
	clk.Advance(2 * time.Second)
	expectChunk(t, ws, 3, groupID, 300, true, false)
}
