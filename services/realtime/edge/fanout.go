package edge

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	"github.com/classwaves/classwaves/pkg/bus"
	busevents "github.com/classwaves/classwaves/pkg/events"
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
)

// handleBusMessage emits one bus event to the rooms it concerns. Unknown or malformed events are
// dropped with a log line: fan-out is best effort, REST stays the source of truth.
func (e *Edge) handleBusMessage(_ context.Context, msg bus.Message) {
	ev := &eventsv1.Event{}
	if err := proto.Unmarshal(msg.Payload, ev); err != nil {
		e.logger.Warn("ws: undecodable bus event", "topic", msg.Topic, "id", msg.ID, "err", err)
		return
	}
	switch ev.GetType() {
	case EventSessionStatusChanged:
		p := ev.GetSessionStatusChanged()
		if ev.GetSessionId() == "" || p == nil {
			return
		}
		e.broadcast(e.sessNS, "session:status_changed", map[string]any{
			"sessionId": ev.GetSessionId(), "status": p.GetStatus(), "previousStatus": p.GetPreviousStatus(),
			"reason": p.GetReason(), "traceId": ev.GetTraceId(), "schemaVersion": SchemaVersion,
		}, sessionRoom(ev.GetSessionId()))
	case EventGroupStatusChanged:
		p := ev.GetGroupStatusChanged()
		if ev.GetGroupId() == "" || p == nil {
			return
		}
		rooms := []string{groupRoom(ev.GetGroupId())}
		if ev.GetSessionId() != "" {
			rooms = append(rooms, sessionRoom(ev.GetSessionId()))
		}
		e.broadcast(e.sessNS, "group:status_changed", map[string]any{
			"groupId": ev.GetGroupId(), "sessionId": ev.GetSessionId(), "status": p.GetStatus(),
			"isReady": p.GetIsReady(), "traceId": ev.GetTraceId(), "schemaVersion": SchemaVersion,
		}, rooms...)
	case EventTranscript:
		p := ev.GetTranscriptReady()
		if ev.GetSessionId() == "" || ev.GetGroupId() == "" || p == nil {
			return
		}
		ts := ev.GetOccurredAt().AsTime()
		if p.GetWindowEnd() != nil {
			ts = p.GetWindowEnd().AsTime()
		}
		if ts.IsZero() || ts.Unix() == 0 {
			ts = now()
		}
		id := p.GetTranscriptId()
		if id == "" {
			id = ev.GetId()
		}
		e.broadcast(e.sessNS, "transcription:group:new", map[string]any{
			"id": id, "groupId": ev.GetGroupId(), "sessionId": ev.GetSessionId(), "text": p.GetText(),
			"timestamp": ts.UTC().Format(time.RFC3339Nano), "confidence": p.GetConfidence(),
			"traceId": ev.GetTraceId(), "schemaVersion": SchemaVersion,
		}, sessionRoom(ev.GetSessionId()), groupRoom(ev.GetGroupId()))
	default:
		// Other types (member joined, speech activity, budget alerts) have no client event yet.
	}
}

func (e *Edge) broadcast(ns *socketio.Namespace, event string, payload map[string]any, rooms ...string) {
	if err := ns.To(rooms...).Emit(event, payload); err != nil {
		e.logger.Warn("ws: broadcast failed", "event", event, "rooms", rooms, "err", err)
		return
	}
	e.metrics.emitted.WithLabelValues(event).Inc()
}
