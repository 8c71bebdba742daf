package analytics

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	"github.com/classwaves/classwaves/pkg/bus"
	busevents "github.com/classwaves/classwaves/pkg/events"
)

// Event types the service publishes on Config.EventsTopic (Event.type).
const (
	EventFinalized      = busevents.AnalyticsFinalized
	EventSummariesReady = busevents.SummariesReady
)

// Headers of every published message (the convention of the other services).
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

// finalizedEvent is the AnalyticsFinalized event of a finalization's outcome. Its id was stored
// with the outcome, so a republished event (after a crash between the write and the publish) has
// the same id and consumers can tell it is the same.
func finalizedEvent(eventID, sessionID, schoolID string, ok bool, reason string, at time.Time) *eventsv1.Event {
	return &eventsv1.Event{
		Id: eventID, Type: EventFinalized, Key: sessionID, SessionId: sessionID, SchoolId: schoolID,
		OccurredAt: timestamppb.New(at),
		Payload: &eventsv1.Event_AnalyticsFinalized{AnalyticsFinalized: &eventsv1.AnalyticsFinalized{
			Ok: ok, FailureReason: reason,
		}},
	}
}

// summariesEvent is the SummariesReady event of a session.
func summariesEvent(eventID, sessionID, schoolID string, groupIDs []string, at time.Time) *eventsv1.Event {
	return &eventsv1.Event{
		Id: eventID, Type: EventSummariesReady, Key: sessionID, SessionId: sessionID, SchoolId: schoolID,
		OccurredAt: timestamppb.New(at),
		Payload:    &eventsv1.Event_SummariesReady{SummariesReady: &eventsv1.SummariesReady{GroupIds: groupIDs}},
	}
}

// publish sends ev to the events topic and reports whether it went out. A failure is logged and
// counted; the outcome stays unpublished in the store and the sweeper sends it later.
func (s *Service) publish(ctx context.Context, ev *eventsv1.Event) bool {
	ev.SchemaVersion = schemaVersion
	payload, err := proto.Marshal(ev)
	if err != nil { // cannot happen for these messages
		s.logger.Error("analytics: encoding event", "err", err, "type", ev.Type)
		s.m.publishFailures.WithLabelValues(ev.Type).Inc()
		return false
	}
	headers := map[string]string{HeaderContentType: ContentTypeProto, HeaderSchema: Schema, HeaderEventType: ev.Type}
	if ev.TraceId != "" {
		headers[HeaderTraceID] = ev.TraceId
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if _, err := s.bus.Publish(pctx, s.cfg.EventsTopic, bus.Outgoing{Key: ev.Key, Payload: payload, Headers: headers}); err != nil {
		s.logger.Warn("analytics: publishing event", "err", err, "type", ev.Type, "sessionId", ev.SessionId)
		s.m.publishFailures.WithLabelValues(ev.Type).Inc()
		return false
	}
	return true
}
