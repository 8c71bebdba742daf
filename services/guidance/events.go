package guidance

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	"github.com/classwaves/classwaves/pkg/bus"
	busevents "github.com/classwaves/classwaves/pkg/events"
	"github.com/classwaves/classwaves/services/guidance/analyzer"
)

// Event types the service publishes on Config.EventsTopic (Event.type).
const (
	EventInsightProduced = busevents.InsightProduced
	EventPromptRaised    = busevents.PromptRaised
	EventPromptActed     = busevents.PromptActed
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

// onTopic says whether a Tier 1 span counts as on topic (InsightProduced.on_topic, for
// analytics): talk that raises neither the low-focus nor the off-task alert.
func onTopic(m *guidancev1.Tier1Metrics) bool {
	return m.GetTopicalFocus() >= analyzer.LowFocusThreshold && m.GetOffTaskRatio() < analyzer.OffTaskAlertRatio
}

// publish sends ev (id, time and schema version filled in) to the events topic. The caller
// counts the failure under its own type.
func (s *Service) publish(ctx context.Context, ev *eventsv1.Event) error {
	if ev.Id == "" {
		ev.Id = uuid.Must(uuid.NewV7()).String()
	}
	if ev.OccurredAt == nil {
		ev.OccurredAt = timestamppb.New(s.now())
	}
	ev.SchemaVersion = SchemaVersion
	payload, err := proto.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", ev.Type, err)
	}
	headers := map[string]string{HeaderContentType: ContentTypeProto, HeaderSchema: Schema, HeaderEventType: ev.Type}
	if ev.TraceId != "" {
		headers[HeaderTraceID] = ev.TraceId
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if _, err := s.bus.Publish(pctx, s.cfg.EventsTopic, bus.Outgoing{Key: ev.Key, Payload: payload, Headers: headers}); err != nil {
		return err
	}
	return nil
}

// publishTier1 publishes a stored Tier 1 insight (for ai:tier1:insight), keyed by its group.
func (s *Service) publishTier1(ctx context.Context, ins *guidancev1.Tier1Insight, schoolID, traceID string) {
	js, err := insightJSON.Marshal(ins)
	if err == nil {
		m := ins.GetMetrics()
		err = s.publish(ctx, &eventsv1.Event{
			Type: EventInsightProduced, Key: ins.GetGroupId(), TraceId: traceID, SchoolId: schoolID,
			SessionId: ins.GetSessionId(), GroupId: ins.GetGroupId(),
			Payload: &eventsv1.Event_InsightProduced{InsightProduced: &eventsv1.InsightProduced{
				InsightId: ins.GetId(), Tier: 1, InsightJson: string(js),
				TopicalFocus: m.GetTopicalFocus(), QuestionCount: m.GetQuestionCount(),
				OnTopic: onTopic(m),
			}},
		})
	}
	if err != nil {
		s.emitFailed(emitTier1)
		s.logger.Warn("guidance: publishing tier 1 insight", "err", err, "insightId", ins.GetId(),
			"sessionId", ins.GetSessionId(), "groupId", ins.GetGroupId())
		return
	}
	s.m.tier1Delivered.WithLabelValues(schoolID).Inc()
}

// publishTier2 publishes a stored Tier 2 insight (for ai:tier2:insight), keyed by its session.
func (s *Service) publishTier2(ctx context.Context, ins *guidancev1.Tier2Insight, schoolID, traceID string) {
	js, err := insightJSON.Marshal(ins)
	if err == nil {
		err = s.publish(ctx, &eventsv1.Event{
			Type: EventInsightProduced, Key: ins.GetSessionId(), TraceId: traceID, SchoolId: schoolID,
			SessionId: ins.GetSessionId(),
			Payload: &eventsv1.Event_InsightProduced{InsightProduced: &eventsv1.InsightProduced{
				InsightId: ins.GetId(), Tier: 2, InsightJson: string(js),
			}},
		})
	}
	if err != nil {
		s.emitFailed(emitTier2)
		s.logger.Warn("guidance: publishing tier 2 insight", "err", err, "insightId", ins.GetId(), "sessionId", ins.GetSessionId())
		return
	}
	s.m.tier2Delivered.WithLabelValues(schoolID).Inc()
}

// promptKey is the ordering key of a prompt's events: its group, or its session when session-wide.
func promptKey(p Prompt) string {
	if p.GroupID != "" {
		return p.GroupID
	}
	return p.SessionID
}

// publishPrompt publishes a new prompt (for teacher:alert or teacher:recommendations) and
// records its delivery; insightAt is the creation time of the insight it came from.
func (s *Service) publishPrompt(ctx context.Context, p Prompt, insightAt time.Time, traceID string) {
	err := s.publish(ctx, &eventsv1.Event{
		Type: EventPromptRaised, Key: promptKey(p), TraceId: traceID, SchoolId: p.SchoolID,
		SessionId: p.SessionID, GroupId: p.GroupID,
		Payload: &eventsv1.Event_PromptRaised{PromptRaised: &eventsv1.PromptRaised{
			PromptId: p.ID, Kind: p.Kind, Category: p.Category, Priority: p.Priority, Message: p.Message,
			Reason: p.Reason, ExpiresAt: timestamppb.New(p.ExpiresAt), TeacherId: p.TeacherID, Tier: int32(p.Tier),
		}},
	})
	tier := tierLabel(p.Tier)
	if err != nil {
		typ := emitAlerts
		if p.Kind == KindRecommendation {
			typ = emitRecommendations
		}
		s.emitFailed(typ)
		s.m.promptDelivered.WithLabelValues(tier, statusFailed, p.SchoolID).Inc()
		s.logger.Warn("guidance: publishing prompt", "err", err, "promptId", p.ID, "sessionId", p.SessionID, "groupId", p.GroupID)
		return
	}
	s.promptsDelivered.Add(1)
	s.m.promptDelivered.WithLabelValues(tier, statusOK, p.SchoolID).Inc()
	s.m.promptDelivLatency.WithLabelValues(tier).Observe(ms(s.now().Sub(insightAt)))
}

// publishActed publishes a teacher's acknowledgement or dismissal. A failure is logged: the
// action is stored, and the prompt's state is readable over REST.
func (s *Service) publishActed(ctx context.Context, p Prompt, traceID string) {
	err := s.publish(ctx, &eventsv1.Event{
		Type: EventPromptActed, Key: promptKey(p), TraceId: traceID, SchoolId: p.SchoolID,
		SessionId: p.SessionID, GroupId: p.GroupID,
		Payload: &eventsv1.Event_PromptActed{PromptActed: &eventsv1.PromptActed{PromptId: p.ID, Status: p.Status}},
	})
	if err != nil {
		s.logger.Warn("guidance: publishing prompt action", "err", err, "promptId", p.ID, "sessionId", p.SessionID)
	}
}

// emitFailed counts a failed publication of type typ (tier1, tier2, alerts, recommendations).
func (s *Service) emitFailed(typ string) {
	s.m.emitsFailed.WithLabelValues(typ).Inc()
	s.emitsFailedTotal.Add(1)
}
