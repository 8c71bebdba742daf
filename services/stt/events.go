package stt

import (
	"context"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	"github.com/classwaves/classwaves/pkg/bus"
	busevents "github.com/classwaves/classwaves/pkg/events"
)

// Event types the service publishes on Config.EventsTopic (Event.type).
const (
	EventTranscript     = busevents.Transcript
	EventSpeechActivity = busevents.SpeechActivity
	EventBudgetAlert    = busevents.BudgetAlert
)

// Headers of every published message.
const (
	HeaderContentType = "content-type"
	ContentTypeProto  = "application/x-protobuf"
	HeaderSchema      = "schema"
	Schema            = "classwaves.events.v1.Event"
	HeaderEventType   = "event-type"
	HeaderTraceID     = "trace-id"
	schemaVersion     = "1.0"
	publishTimeout    = 5 * time.Second
)

// publish sends ev (its id, time and schema version filled in) to the events topic. Transcript
// and speech activity events are keyed by group id, so a group's events keep their order; budget
// alerts by school id. A failure is logged and counted, never returned: a window's transcript is
// already stored, and the live view must not stall on the bus.
func (s *Service) publish(ctx context.Context, ev *eventsv1.Event) {
	if ev.Id == "" {
		ev.Id = uuid.Must(uuid.NewV7()).String()
	}
	if ev.OccurredAt == nil {
		ev.OccurredAt = timestamppb.New(s.now())
	}
	ev.SchemaVersion = schemaVersion
	payload, err := proto.Marshal(ev)
	if err != nil { // cannot happen for these messages
		s.logger.Error("stt: encoding event", "err", err, "type", ev.Type)
		s.m.publishFailures.WithLabelValues(ev.Type).Inc()
		return
	}
	headers := map[string]string{HeaderContentType: ContentTypeProto, HeaderSchema: Schema, HeaderEventType: ev.Type}
	if ev.TraceId != "" {
		headers[HeaderTraceID] = ev.TraceId
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if _, err := s.bus.Publish(pctx, s.cfg.EventsTopic, bus.Outgoing{Key: ev.Key, Payload: payload, Headers: headers}); err != nil {
		s.logger.Warn("stt: publishing event", "err", err, "type", ev.Type, "sessionId", ev.SessionId, "groupId", ev.GroupId)
		s.m.publishFailures.WithLabelValues(ev.Type).Inc()
	}
}
