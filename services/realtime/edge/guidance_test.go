package edge_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/config"
	"github.com/classwaves/classwaves/services/realtime/edge"
	eiot "github.com/classwaves/classwaves/services/realtime/engineio/engineiotest"
)

var occurred = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (v *env) studentToken(t *testing.T) string {
	t.Helper()
	iss, err := v.keys.Issue(context.Background(), authn.Principal{Subject: "student-1", Role: authn.RoleStudent,
		SchoolID: schoolID, SessionID: sessionID, GroupID: groupID}, "")
	if err != nil {
		t.Fatal(err)
	}
	return iss.Token
}

// join sends session:join for sessionID on nsp and fails unless it is acknowledged ok.
func join(t *testing.T, ws *eiot.WS, nsp string) {
	t.Helper()
	ws.Send(`42` + nsp + `,77["session:join",{"sessionId":"` + sessionID + `"}]`)
	if a := decodeAck(t, readUntil(t, ws, "43"+nsp+",77"), "43"+nsp+",77"); a["ok"] != true {
		t.Fatalf("session:join on %s = %v", nsp, a)
	}
}

// event is a received server event without its recovery offset.
type event struct {
	Name    string
	Payload map[string]any
}

// collect reads the events of nsp until one for which stop is true (not included); other frames (acks)
// are skipped.
func collect(t *testing.T, ws *eiot.WS, nsp string, stop func(event) bool) []event {
	t.Helper()
	var out []event
	for range 50 {
		f := ws.ReadText()
		if !strings.HasPrefix(f, "42"+nsp+",") {
			continue
		}
		name, p := decodeEvent(t, f, "42"+nsp+",")
		ev := event{name, p}
		if stop(ev) {
			return out
		}
		out = append(out, ev)
	}
	t.Fatalf("no stop event on %s after %v", nsp, out)
	return nil
}

func named(name string, field, value string) func(event) bool {
	return func(e event) bool { return e.Name == name && e.Payload[field] == value }
}

// Sentinels: a teacher:alert to /guidance (guidance topic), summaries:ready to /sessions staff
// (analytics topic), session:status_changed to every /sessions socket of the session (session topic).
func alertSentinel(id string) *eventsv1.Event {
	return &eventsv1.Event{Type: edge.EventPromptRaised, SessionId: sessionID,
		Payload: &eventsv1.Event_PromptRaised{PromptRaised: &eventsv1.PromptRaised{PromptId: id, Kind: "alert"}}}
}

func summariesSentinel() *eventsv1.Event {
	return &eventsv1.Event{Type: edge.EventSummariesReady, SessionId: sessionID,
		Payload: &eventsv1.Event_SummariesReady{SummariesReady: &eventsv1.SummariesReady{GroupIds: []string{"witness"}}}}
}

func statusSentinel() *eventsv1.Event {
	return &eventsv1.Event{Type: edge.EventSessionStatusChanged, SessionId: sessionID,
		Payload: &eventsv1.Event_SessionStatusChanged{SessionStatusChanged: &eventsv1.SessionStatusChanged{Status: "final"}}}
}

func isWitness(e event) bool {
	return e.Name == "summaries:ready" && cmp.Equal(e.Payload["groupIds"], []any{"witness"})
}

// guidanceClients are a teacher on /sessions and /guidance and a student on /sessions, all in the
// session room.
type guidanceClients struct {
	teacherSessions, teacherGuidance, student *eiot.WS
}

func newGuidanceClients(t *testing.T, v *env) guidanceClients {
	t.Helper()
	c := guidanceClients{teacherSessions: v.connected(t, "/sessions"), teacherGuidance: v.connected(t, "/guidance")}
	ws, got := v.connect(t, "/sessions", map[string]any{"token": v.studentToken(t)})
	if !strings.HasPrefix(got, `40/sessions,{"sid"`) {
		t.Fatalf("student CONNECT answer = %q", got)
	}
	readUntil(t, ws, `42/sessions,["ws:connected"`)
	c.student = ws
	join(t, c.teacherSessions, "/sessions")
	join(t, c.teacherGuidance, "/guidance")
	join(t, c.student, "/sessions")
	return c
}

// deliver publishes events on topic, waits until the edge has handled them (a later sentinel of the same
// topic reached its witness socket), then returns what each client received before its final sentinel.
func (c guidanceClients) deliver(t *testing.T, b bus.Bus, topic string, events ...*eventsv1.Event) map[string][]event {
	t.Helper()
	for _, ev := range events {
		publish(t, b, topic, ev)
	}
	got := map[string][]event{}
	switch topic {
	case edge.DefaultGuidanceEventsTopic:
		publish(t, b, topic, alertSentinel("witness"))
		got["teacherGuidance"] = collect(t, c.teacherGuidance, "/guidance", named("teacher:alert", "id", "witness"))
	case edge.DefaultAnalyticsEventsTopic:
		publish(t, b, topic, summariesSentinel())
		got["teacherSessions"] = collect(t, c.teacherSessions, "/sessions", isWitness)
	default:
		t.Fatalf("no witness for topic %s", topic)
	}
	publish(t, b, edge.DefaultSessionEventsTopic, statusSentinel())
	publish(t, b, edge.DefaultGuidanceEventsTopic, alertSentinel("final"))
	final := named("session:status_changed", "status", "final")
	got["teacherSessions"] = append(got["teacherSessions"], collect(t, c.teacherSessions, "/sessions", final)...)
	got["student"] = collect(t, c.student, "/sessions", final)
	got["teacherGuidance"] = append(got["teacherGuidance"], collect(t, c.teacherGuidance, "/guidance", named("teacher:alert", "id", "final"))...)
	for k, evs := range got {
		var keep []event
		for _, e := range evs {
			if !isWitness(e) && !(e.Name == "teacher:alert" && (e.Payload["id"] == "witness" || e.Payload["id"] == "final")) {
				keep = append(keep, e)
			}
		}
		got[k] = keep
	}
	return got
}

func insightJSON(t *testing.T, tier int) (string, map[string]any) {
	t.Helper()
	var raw []byte
	var err error
	if tier == 1 {
		raw, err = protojson.Marshal(&guidancev1.Tier1Insight{
			Id: "ins-1", SessionId: sessionID, GroupId: groupID, Observations: []string{"on topic"}, Confidence: 0.8,
			Metrics: &guidancev1.Tier1Metrics{TopicalFocus: 0.7, QuestionCount: 3}, Analyzer: "builtin",
			WindowEnd: timestamppb.New(occurred),
		})
	} else {
		raw, err = protojson.Marshal(&guidancev1.Tier2Insight{
			Id: "ins-2", SessionId: sessionID, Summary: "groups build on ideas",
			Recommendations: []*guidancev1.Recommendation{{GroupId: groupID, Text: "ask why", Priority: "high", Category: "deepen"}},
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	return string(raw), obj
}

func insightEvent(tier int32, body string) *eventsv1.Event {
	ev := &eventsv1.Event{Id: "ev-ins", Type: edge.EventInsightProduced, SessionId: sessionID, SchoolId: schoolID,
		TraceId: "trace-i", OccurredAt: timestamppb.New(occurred),
		Payload: &eventsv1.Event_InsightProduced{InsightProduced: &eventsv1.InsightProduced{
			InsightId: "ins", Tier: tier, InsightJson: body}}}
	if tier == 1 {
		ev.GroupId = groupID
	}
	return ev
}

func names(evs []event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.Name)
	}
	return out
}

func TestInsightFanOut(t *testing.T) {
	tier1, tier1Obj := insightJSON(t, 1)
	tier2, tier2Obj := insightJSON(t, 2)
	wantTier1 := map[string]any{"groupId": groupID, "sessionId": sessionID, "insights": tier1Obj,
		"timestamp": "2026-01-02T03:04:05Z", "traceId": "trace-i", "schemaVersion": "1.0"}
	wantTier2 := map[string]any{"sessionId": sessionID, "insights": tier2Obj,
		"timestamp": "2026-01-02T03:04:05Z", "traceId": "trace-i", "schemaVersion": "1.0"}
	tests := []struct {
		name      string
		canonical bool
		ev        *eventsv1.Event
		want      map[string][]event
	}{
		{"tier 1 dual emit", false, insightEvent(1, tier1), map[string][]event{
			"teacherGuidance": {{"ai:tier1:insight", wantTier1}},
			"teacherSessions": {{"ai:tier1:insight", wantTier1}},
		}},
		{"tier 1 canonical", true, insightEvent(1, tier1), map[string][]event{
			"teacherGuidance": {{"ai:tier1:insight", wantTier1}},
		}},
		{"tier 2 dual emit", false, insightEvent(2, tier2), map[string][]event{
			"teacherGuidance": {{"ai:tier2:insight", wantTier2}},
			"teacherSessions": {{"ai:tier2:insight", wantTier2}},
		}},
		{"tier 2 canonical", true, insightEvent(2, tier2), map[string][]event{
			"teacherGuidance": {{"ai:tier2:insight", wantTier2}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnvWith(t, func(c *edge.Config) { c.GuidanceCanonical = tt.canonical })
			c := newGuidanceClients(t, v)
			got := c.deliver(t, v.bus, edge.DefaultGuidanceEventsTopic, tt.ev)
			for _, who := range []string{"teacherGuidance", "teacherSessions", "student"} {
				if diff := cmp.Diff(tt.want[who], got[who]); diff != "" {
					t.Errorf("%s received (-want +got):\n%s", who, diff)
				}
			}
			wantCount := 1.0
			if !tt.canonical {
				wantCount = 2
			}
			if n := emitted(t, v, tt.want["teacherGuidance"][0].Name); n != wantCount {
				t.Errorf("ws_messages_emitted_total = %v, want %v", n, wantCount)
			}
		})
	}
}

func TestPromptFanOut(t *testing.T) {
	expires := occurred.Add(10 * time.Minute)
	prompt := func(kind string, exp bool) *eventsv1.Event {
		p := &eventsv1.PromptRaised{PromptId: "p-1", Kind: kind, Category: "off_task", Priority: "high",
			Message: "Group 1 drifted", Reason: "low topical focus", TeacherId: teacherID, Tier: 1}
		if exp {
			p.ExpiresAt = timestamppb.New(expires)
		}
		return &eventsv1.Event{Id: "ev-p", Type: edge.EventPromptRaised, SessionId: sessionID, GroupId: groupID,
			TraceId: "trace-p", OccurredAt: timestamppb.New(occurred), Payload: &eventsv1.Event_PromptRaised{PromptRaised: p}}
	}
	tests := []struct {
		name string
		ev   *eventsv1.Event
		want event
	}{
		{"alert", prompt("alert", true), event{"teacher:alert", map[string]any{
			"id": "p-1", "alertId": "p-1", "sessionId": sessionID, "groupId": groupID, "category": "off_task",
			"priority": "high", "message": "Group 1 drifted", "reason": "low topical focus", "tier": 1.0,
			"expiresAt": "2026-01-02T03:14:05Z", "timestamp": "2026-01-02T03:04:05Z", "traceId": "trace-p", "schemaVersion": "1.0",
		}}},
		{"recommendation without expiry", prompt("recommendation", false), event{"teacher:recommendations", map[string]any{
			"sessionId": sessionID, "groupId": groupID, "timestamp": "2026-01-02T03:04:05Z", "traceId": "trace-p",
			"schemaVersion": "1.0", "recommendations": []any{map[string]any{
				"id": "p-1", "category": "off_task", "priority": "high", "message": "Group 1 drifted",
				"reason": "low topical focus", "tier": 1.0,
			}},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t)
			c := newGuidanceClients(t, v)
			got := c.deliver(t, v.bus, edge.DefaultGuidanceEventsTopic, tt.ev)
			if diff := cmp.Diff([]event{tt.want}, got["teacherGuidance"]); diff != "" {
				t.Errorf("/guidance received (-want +got):\n%s", diff)
			}
			if len(got["teacherSessions"])+len(got["student"]) != 0 {
				t.Errorf("/sessions received %v and %v, want nothing", names(got["teacherSessions"]), names(got["student"]))
			}
		})
	}
}

func TestAnalyticsFanOut(t *testing.T) {
	finalized := func(ok bool, reason string) *eventsv1.Event {
		return &eventsv1.Event{Id: "ev-a", Type: edge.EventAnalyticsFinalized, SessionId: sessionID, TraceId: "trace-a",
			OccurredAt: timestamppb.New(occurred), Payload: &eventsv1.Event_AnalyticsFinalized{
				AnalyticsFinalized: &eventsv1.AnalyticsFinalized{Ok: ok, FailureReason: reason}}}
	}
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"sessionId": sessionID, "timestamp": "2026-01-02T03:04:05Z", "traceId": "trace-a", "schemaVersion": "1.0"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	ok := event{"analytics:finalized", base(nil)}
	failed := event{"analytics:failed", base(map[string]any{"error": "STORE_UNAVAILABLE"})}
	summaries := event{"summaries:ready", base(map[string]any{"groupIds": []any{groupID}})}
	tests := []struct {
		name       string
		namespaced bool
		ev         *eventsv1.Event
		want       map[string][]event
	}{
		{"finalized", true, finalized(true, ""), map[string][]event{"teacherSessions": {ok}}},
		{"failed", true, finalized(false, "STORE_UNAVAILABLE"), map[string][]event{"teacherSessions": {failed}}},
		{"failed without reason", true, finalized(false, ""), map[string][]event{"teacherSessions": {
			{"analytics:failed", base(map[string]any{"error": "ANALYTICS_FAILED"})}}}},
		{"finalized not namespaced", false, finalized(true, ""), map[string][]event{
			"teacherSessions": {ok}, "teacherGuidance": {ok}}},
		{"summaries ready", true, &eventsv1.Event{Id: "ev-s", Type: edge.EventSummariesReady, SessionId: sessionID,
			TraceId: "trace-a", OccurredAt: timestamppb.New(occurred), Payload: &eventsv1.Event_SummariesReady{
				SummariesReady: &eventsv1.SummariesReady{GroupIds: []string{groupID}}}},
			map[string][]event{"teacherSessions": {summaries}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnvWith(t, func(c *edge.Config) { c.AnalyticsUseNamespaced = tt.namespaced })
			c := newGuidanceClients(t, v)
			got := c.deliver(t, v.bus, edge.DefaultAnalyticsEventsTopic, tt.ev)
			for _, who := range []string{"teacherGuidance", "teacherSessions", "student"} {
				if diff := cmp.Diff(tt.want[who], got[who]); diff != "" {
					t.Errorf("%s received (-want +got):\n%s", who, diff)
				}
			}
		})
	}
}

// TestMalformedEventsDropped publishes broken events of every new type: none reaches a client, none
// panics the edge, and the next valid event still goes through.
func TestMalformedEventsDropped(t *testing.T) {
	tier1, _ := insightJSON(t, 1)
	v := newEnv(t)
	c := newGuidanceClients(t, v)
	ins := func(tier int32, body string, mutate func(*eventsv1.Event)) *eventsv1.Event {
		ev := insightEvent(tier, body)
		if mutate != nil {
			mutate(ev)
		}
		return ev
	}
	guidance := []*eventsv1.Event{
		{Type: edge.EventInsightProduced, SessionId: sessionID}, // no payload
		ins(1, `not json`, nil),                                 // undecodable insight
		ins(1, `"a string"`, nil),                               // not an object
		ins(1, `{"groupId": 7}`, nil),                           // wrong field type
		ins(3, tier1, nil),                                      // unknown tier
		ins(1, `{}`, func(e *eventsv1.Event) { e.SessionId, e.GroupId = "", "" }), // no ids anywhere
		ins(2, `{}`, func(e *eventsv1.Event) { e.SessionId = "" }),                // no session
		{Type: edge.EventPromptRaised, SessionId: sessionID},                      // no payload
		{Type: edge.EventPromptRaised, SessionId: sessionID, Payload: &eventsv1.Event_PromptRaised{
			PromptRaised: &eventsv1.PromptRaised{PromptId: "p", Kind: "shout"}}}, // unknown kind
		{Type: edge.EventPromptRaised, Payload: &eventsv1.Event_PromptRaised{
			PromptRaised: &eventsv1.PromptRaised{PromptId: "p", Kind: "alert"}}}, // no session
		{Type: edge.EventPromptActed, SessionId: sessionID, Payload: &eventsv1.Event_PromptActed{
			PromptActed: &eventsv1.PromptActed{PromptId: "p", Status: "dismissed"}}}, // no client event
	}
	for _, ev := range guidance {
		publish(t, v.bus, edge.DefaultGuidanceEventsTopic, ev)
	}
	// Not a protobuf Event at all.
	if _, err := v.bus.Publish(context.Background(), edge.DefaultGuidanceEventsTopic, bus.Outgoing{Payload: []byte{0xff, 0x01}}); err != nil {
		t.Fatal(err)
	}
	got := c.deliver(t, v.bus, edge.DefaultGuidanceEventsTopic)
	analytics := c.deliver(t, v.bus, edge.DefaultAnalyticsEventsTopic,
		&eventsv1.Event{Type: edge.EventAnalyticsFinalized, SessionId: sessionID},
		&eventsv1.Event{Type: edge.EventAnalyticsFinalized, Payload: &eventsv1.Event_AnalyticsFinalized{AnalyticsFinalized: &eventsv1.AnalyticsFinalized{Ok: true}}},
		&eventsv1.Event{Type: edge.EventSummariesReady, SessionId: sessionID},
		&eventsv1.Event{Type: "analytics.unknown", SessionId: sessionID},
	)
	for _, m := range []map[string][]event{got, analytics} {
		for who, evs := range m {
			if len(evs) != 0 {
				t.Errorf("%s received %v from malformed events", who, names(evs))
			}
		}
	}
	// Still working.
	publish(t, v.bus, edge.DefaultGuidanceEventsTopic, insightEvent(1, tier1))
	readUntil(t, c.teacherGuidance, `42/guidance,["ai:tier1:insight"`)
}

// emitted returns ws_messages_emitted_total{event}.
func emitted(t *testing.T, v *env, event string) float64 {
	t.Helper()
	mfs, err := v.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ws_messages_emitted_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "event" && l.GetValue() == event {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestGuidanceIsForStaff(t *testing.T) {
	v := newEnv(t)
	_, got := v.connect(t, "/guidance", map[string]any{"token": v.studentToken(t)})
	if want := `44/guidance,{"message":"forbidden","data":{"code":"FORBIDDEN"}}`; got != want {
		t.Errorf("student on /guidance: got %q, want %q", got, want)
	}
	// A teacher joins a session room on /guidance, authorized by the session service.
	ws := v.connected(t, "/guidance")
	join(t, ws, "/guidance")
	ws.Send(`42/guidance,2["session:join",{"sessionId":"` + otherSessionID + `"}]`)
	if a := decodeAck(t, readUntil(t, ws, "43/guidance,2"), "43/guidance,2"); a["code"] != "SESSION_FORBIDDEN" {
		t.Errorf("join of another session = %v", a)
	}
	// /guidance has no group or audio events.
	ws.Send(`42/guidance,3["group:join",{"groupId":"` + groupID + `","sessionId":"` + sessionID + `"}]`)
	ws.Send(`42/guidance,4["session:leave",{"sessionId":"` + sessionID + `"}]`)
	if f := readUntil(t, ws, "43/guidance,"); !strings.HasPrefix(f, "43/guidance,4") {
		t.Errorf("first ack = %q, want the session:leave ack (group:join is not served on /guidance)", f)
	}
}

func TestNewConfig(t *testing.T) {
	var c edge.Config
	f := config.NewFlagSet("t", config.MapEnv(map[string]string{
		"ANALYTICS_USE_NAMESPACED": "0", "GUIDANCE_CANONICAL": "1", "REALTIME_GUIDANCE_EVENTS_TOPIC": "g",
		"REALTIME_ANALYTICS_EVENTS_TOPIC": "a", "WS_RECOVERY_WINDOW": "30s", "WS_RECOVERY_MAX_PACKETS": "50",
	}))
	c.RegisterFlags(f)
	if err := f.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if c.AnalyticsUseNamespaced || !c.GuidanceCanonical || c.GuidanceEventsTopic != "g" || c.AnalyticsEventsTopic != "a" ||
		c.RecoveryWindow != 30*time.Second || c.RecoveryMaxPackets != 50 {
		t.Fatalf("config from env = %+v", c)
	}
	d := edge.DefaultConfig()
	if !d.AnalyticsUseNamespaced || d.GuidanceCanonical || d.GuidanceEventsTopic != "guidance:events" ||
		d.AnalyticsEventsTopic != "analytics:events" || d.RecoveryWindow != 2*time.Minute || d.RecoveryMaxPackets != 10000 {
		t.Fatalf("defaults = %+v", d)
	}
	d.GuidanceEventsTopic, d.RecoveryWindow = "", -time.Second
	err := d.Validate()
	for _, want := range []string{"event topics must be set", "WS_RECOVERY_WINDOW must not be negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to contain %q", err, want)
		}
	}
	d = edge.DefaultConfig()
	d.RecoveryMaxPackets = 0
	if err := d.Validate(); err == nil || !strings.Contains(err.Error(), "WS_RECOVERY_MAX_PACKETS") {
		t.Errorf("Validate() = %v, want WS_RECOVERY_MAX_PACKETS", err)
	}
	d.RecoveryWindow = 0 // recovery off: the packet cap does not matter
	if err := d.Validate(); err != nil {
		t.Errorf("Validate() with recovery off = %v", err)
	}
}
