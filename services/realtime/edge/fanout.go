package edge

import (
	"context"
	"encoding/json"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	"github.com/classwaves/classwaves/pkg/bus"
	busevents "github.com/classwaves/classwaves/pkg/events"
	"github.com/classwaves/classwaves/pkg/traceid"
	"github.com/classwaves/classwaves/services/realtime/socketio"
)

// Bus event types fanned out to sockets.
const (
	EventSessionStatusChanged = busevents.SessionStatusChanged
	EventGroupStatusChanged   = busevents.GroupStatusChanged
	EventGroupMemberJoined    = busevents.GroupMemberJoined
	EventTranscript           = busevents.Transcript
	EventSpeechActivity       = busevents.SpeechActivity
	EventBudgetAlert          = busevents.BudgetAlert
	EventInsightProduced      = busevents.InsightProduced
	EventPromptRaised         = busevents.PromptRaised
	EventPromptActed          = busevents.PromptActed
	EventAnalyticsFinalized   = busevents.AnalyticsFinalized
	EventSummariesReady       = busevents.SummariesReady
)

// Kinds of PromptRaised.
const (
	PromptKindAlert          = "alert"
	PromptKindRecommendation = "recommendation"
)

// insightJSON decodes InsightProduced.insight_json; unknown fields are tolerated so that the guidance
// service can add some before the edge knows them.
var insightJSON = protojson.UnmarshalOptions{DiscardUnknown: true}

// handleBusMessage emits one bus event to the rooms it concerns. Unknown or malformed events are
// dropped with a log line: fan-out is best effort, REST stays the source of truth.
//
// Every replica receives every bus event and emits it to its own sockets. Each broadcast carries a key
// naming the bus event and the client event (the event id, or the topic and bus id when it has none),
// so that with the Redis recovery store the replicas keep it once under one recovery offset.
func (e *Edge) handleBusMessage(_ context.Context, msg bus.Message) {
	ev := &eventsv1.Event{}
	if err := proto.Unmarshal(msg.Payload, ev); err != nil {
		e.logger.Warn("ws: undecodable bus event", "topic", msg.Topic, "id", msg.ID, "err", err)
		return
	}
	f := fanOut{e: e, ev: ev, key: ev.GetId()}
	if f.key == "" {
		f.key = msg.Topic + "@" + msg.ID
	}
	switch ev.GetType() {
	case EventSessionStatusChanged:
		f.sessionStatusChanged()
	case EventGroupStatusChanged:
		f.groupStatusChanged()
	case EventTranscript:
		f.transcript()
	case EventInsightProduced:
		f.insight()
	case EventPromptRaised:
		f.prompt()
	case EventAnalyticsFinalized:
		f.analyticsFinalized()
	case EventSummariesReady:
		f.summariesReady()
	default:
		// Other types have no client event: member joined, speech activity and budget alerts feed other
		// services; prompt acted is the teacher's own action, answered over REST (see the package doc).
	}
}

// fanOut maps one bus event to client events.
type fanOut struct {
	e   *Edge
	ev  *eventsv1.Event
	key string
}

// drop logs a malformed event.
func (f fanOut) drop(why string, args ...any) {
	args = append([]any{"type", f.ev.GetType(), "eventId", f.ev.GetId(), "sessionId", f.ev.GetSessionId(),
		"traceId", f.ev.GetTraceId(), "reason", why}, args...)
	f.e.logger.Warn("ws: dropped malformed bus event", args...)
}

// payload returns m with the fields every server-emitted payload carries.
func (f fanOut) payload(m map[string]any) map[string]any {
	m["traceId"] = traceid.Pick(f.ev.GetTraceId()) // a fresh one for an event that carries none
	m["schemaVersion"] = SchemaVersion
	return m
}

// occurred returns the event's time, or now when it has none, in RFC 3339.
func (f fanOut) occurred() string {
	return timestamp(f.ev.GetOccurredAt().AsTime(), f.ev.GetOccurredAt() != nil)
}

func timestamp(t time.Time, set bool) string {
	if !set || t.IsZero() || t.Unix() == 0 {
		t = now()
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// emit broadcasts event to rooms of ns, skipping the sockets in except.
func (f fanOut) emit(ns *socketio.Namespace, event string, payload map[string]any, except []string, rooms ...string) {
	f.e.broadcast(ns.To(rooms...).Except(except...).Key(f.key+"|"+event), event, payload, rooms)
}

// staffOnly excludes student sockets from teacher-facing broadcasts on /sessions.
var staffOnly = []string{studentsRoom}

func (f fanOut) sessionStatusChanged() {
	p := f.ev.GetSessionStatusChanged()
	if f.ev.GetSessionId() == "" || p == nil {
		f.drop("session id or payload missing")
		return
	}
	f.emit(f.e.sessNS, "session:status_changed", f.payload(map[string]any{
		"sessionId": f.ev.GetSessionId(), "status": p.GetStatus(), "previousStatus": p.GetPreviousStatus(),
		"reason": p.GetReason(),
	}), nil, sessionRoom(f.ev.GetSessionId()))
}

func (f fanOut) groupStatusChanged() {
	p := f.ev.GetGroupStatusChanged()
	if f.ev.GetGroupId() == "" || p == nil {
		f.drop("group id or payload missing")
		return
	}
	rooms := []string{groupRoom(f.ev.GetGroupId())}
	if f.ev.GetSessionId() != "" {
		rooms = append(rooms, sessionRoom(f.ev.GetSessionId()))
	}
	f.emit(f.e.sessNS, "group:status_changed", f.payload(map[string]any{
		"groupId": f.ev.GetGroupId(), "sessionId": f.ev.GetSessionId(), "status": p.GetStatus(),
		"isReady": p.GetIsReady(),
	}), nil, rooms...)
}

func (f fanOut) transcript() {
	p := f.ev.GetTranscriptReady()
	if f.ev.GetSessionId() == "" || f.ev.GetGroupId() == "" || p == nil {
		f.drop("session id, group id or payload missing")
		return
	}
	ts := f.occurred()
	if p.GetWindowEnd() != nil {
		ts = timestamp(p.GetWindowEnd().AsTime(), true)
	}
	id := p.GetTranscriptId()
	if id == "" {
		id = f.ev.GetId()
	}
	f.emit(f.e.sessNS, "transcription:group:new", f.payload(map[string]any{
		"id": id, "groupId": f.ev.GetGroupId(), "sessionId": f.ev.GetSessionId(), "text": p.GetText(),
		"timestamp": ts, "confidence": p.GetConfidence(),
	}), nil, sessionRoom(f.ev.GetSessionId()), groupRoom(f.ev.GetGroupId()))
}

// insight emits ai:tier1:insight or ai:tier2:insight to the session's staff: on /guidance, and also on
// /sessions (students left out) unless GuidanceCanonical.
func (f fanOut) insight() {
	p := f.ev.GetInsightProduced()
	if p == nil {
		f.drop("payload missing")
		return
	}
	raw := []byte(p.GetInsightJson())
	sessionID, groupID := f.ev.GetSessionId(), f.ev.GetGroupId()
	var event string
	switch p.GetTier() {
	case 1:
		var ins guidancev1.Tier1Insight
		if err := insightJSON.Unmarshal(raw, &ins); err != nil {
			f.drop("insight_json is not a Tier1Insight", "err", err)
			return
		}
		sessionID, groupID = first(sessionID, ins.GetSessionId()), first(groupID, ins.GetGroupId())
		if groupID == "" {
			f.drop("group id missing")
			return
		}
		event = "ai:tier1:insight"
	case 2:
		var ins guidancev1.Tier2Insight
		if err := insightJSON.Unmarshal(raw, &ins); err != nil {
			f.drop("insight_json is not a Tier2Insight", "err", err)
			return
		}
		sessionID = first(sessionID, ins.GetSessionId())
		event = "ai:tier2:insight"
	default:
		f.drop("unknown tier", "tier", p.GetTier())
		return
	}
	if sessionID == "" {
		f.drop("session id missing")
		return
	}
	payload := f.payload(map[string]any{
		"sessionId": sessionID, "insights": json.RawMessage(raw), "timestamp": f.occurred(),
	})
	if event == "ai:tier1:insight" {
		payload["groupId"] = groupID
	}
	f.emit(f.e.guideNS, event, payload, nil, sessionRoom(sessionID))
	if !f.e.cfg.GuidanceCanonical {
		f.emit(f.e.sessNS, event, payload, staffOnly, sessionRoom(sessionID))
	}
}

// prompt emits teacher:alert or teacher:recommendations to the session room on /guidance (staff only).
func (f fanOut) prompt() {
	p := f.ev.GetPromptRaised()
	if p == nil || f.ev.GetSessionId() == "" || p.GetPromptId() == "" {
		f.drop("payload, session id or prompt id missing")
		return
	}
	sessionID := f.ev.GetSessionId()
	item := map[string]any{
		"id": p.GetPromptId(), "category": p.GetCategory(), "priority": p.GetPriority(), "message": p.GetMessage(),
		"reason": p.GetReason(), "tier": p.GetTier(),
	}
	if p.GetExpiresAt() != nil {
		item["expiresAt"] = timestamp(p.GetExpiresAt().AsTime(), true)
	}
	switch p.GetKind() {
	case PromptKindAlert:
		payload := f.payload(item)
		payload["alertId"] = p.GetPromptId()
		payload["sessionId"] = sessionID
		payload["groupId"] = f.ev.GetGroupId()
		payload["timestamp"] = f.occurred()
		f.emit(f.e.guideNS, "teacher:alert", payload, nil, sessionRoom(sessionID))
	case PromptKindRecommendation:
		f.emit(f.e.guideNS, "teacher:recommendations", f.payload(map[string]any{
			"sessionId": sessionID, "groupId": f.ev.GetGroupId(), "recommendations": []any{item},
			"timestamp": f.occurred(),
		}), nil, sessionRoom(sessionID))
	default:
		f.drop("unknown prompt kind", "kind", p.GetKind())
	}
}

// analyticsFinalized emits analytics:finalized or analytics:failed to the session's staff on /sessions,
// and also on /guidance unless AnalyticsUseNamespaced.
func (f fanOut) analyticsFinalized() {
	p := f.ev.GetAnalyticsFinalized()
	if p == nil || f.ev.GetSessionId() == "" {
		f.drop("payload or session id missing")
		return
	}
	sessionID := f.ev.GetSessionId()
	event := "analytics:finalized"
	payload := f.payload(map[string]any{"sessionId": sessionID, "timestamp": f.occurred()})
	if !p.GetOk() {
		event = "analytics:failed"
		reason := p.GetFailureReason()
		if reason == "" {
			reason = "ANALYTICS_FAILED"
		}
		payload["error"] = reason
	}
	f.emit(f.e.sessNS, event, payload, staffOnly, sessionRoom(sessionID))
	if !f.e.cfg.AnalyticsUseNamespaced {
		f.emit(f.e.guideNS, event, payload, nil, sessionRoom(sessionID))
	}
}

// summariesReady emits summaries:ready to the session's staff on /sessions.
func (f fanOut) summariesReady() {
	p := f.ev.GetSummariesReady()
	if p == nil || f.ev.GetSessionId() == "" {
		f.drop("payload or session id missing")
		return
	}
	groups := p.GetGroupIds()
	if groups == nil {
		groups = []string{}
	}
	f.emit(f.e.sessNS, "summaries:ready", f.payload(map[string]any{
		"sessionId": f.ev.GetSessionId(), "groupIds": groups, "timestamp": f.occurred(),
	}), staffOnly, sessionRoom(f.ev.GetSessionId()))
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// broadcast emits payload with op, counting it in ws_messages_emitted_total.
func (e *Edge) broadcast(op socketio.BroadcastOperator, event string, payload map[string]any, rooms []string) {
	if err := op.Emit(event, payload); err != nil {
		e.logger.Warn("ws: broadcast failed", "event", event, "rooms", rooms, "err", err)
		return
	}
	e.metrics.emitted.WithLabelValues(event).Inc()
}
