package session

import (
	"context"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/events"
	"github.com/classwaves/classwaves/pkg/traceid"
)

// TopicEvents is the default bus topic of session and group events (SESSION_EVENTS_TOPIC).
const TopicEvents = events.SessionTopic

// Event types the service publishes (Event.type). Session events are keyed by session id,
// group events by group id, so each keeps its order.
const (
	EventSessionStatusChanged = events.SessionStatusChanged
	EventGroupStatusChanged   = events.GroupStatusChanged
	EventGroupMemberJoined    = events.GroupMemberJoined
)

// Headers of every published message.
const (
	HeaderContentType = "content-type"
	ContentTypeProto  = "application/x-protobuf"
	HeaderSchema      = "schema"
	Schema            = "classwaves.events.v1.Event"
	HeaderEventType   = "event-type"
	HeaderTraceID     = "trace-id"
	SchemaVersion     = "1.0"
	publishTimeout    = 5 * time.Second
)

// publish sends ev with its id, time, trace id and schema version filled in. A failure is logged,
// never returned: the change is already stored, and REST is the source of truth.
func (s *Service) publish(ctx context.Context, ev *eventsv1.Event) {
	ev.Id = uuid.Must(uuid.NewV7()).String()
	ev.OccurredAt = timestamppb.New(s.now())
	ev.SchemaVersion = SchemaVersion
	if ev.TraceId == "" {
		ev.TraceId = traceid.FromContext(ctx)
	}
	payload, err := proto.Marshal(ev)
	if err != nil {
		s.logger.Error("session: encoding event", "err", err, "type", ev.Type)
		return
	}
	headers := map[string]string{HeaderContentType: ContentTypeProto, HeaderSchema: Schema, HeaderEventType: ev.Type}
	if ev.TraceId != "" {
		headers[HeaderTraceID] = ev.TraceId
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if _, err := s.bus.Publish(pctx, s.cfg.EventsTopic, bus.Outgoing{Key: ev.Key, Payload: payload, Headers: headers}); err != nil {
		s.logger.Warn("session: publishing event", "err", err, "type", ev.Type, "sessionId", ev.SessionId, "groupId", ev.GroupId)
	}
}
