package analytics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	"github.com/classwaves/classwaves/pkg/bus"
	busevents "github.com/classwaves/classwaves/pkg/events"
)

// Bounds on what an event may say; beyond them it is refused as invalid (it can only be a bug or
// forged, and would distort every figure it touched).
const (
	maxWindowSeconds = 3600.0 // one audio window
	maxWordsPerEvent = 100000
	maxQuestions     = 10000
	maxIDLen         = 128
	// maxKeptText bounds the transcript text kept for summaries, per window.
	maxKeptText = 20000
)

// errInvalid marks an event that can never be applied: it is acknowledged and dropped.
var errInvalid = errors.New("invalid event")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInvalid, fmt.Sprintf(format, args...))
}

// errIgnored marks an event of a type analytics does not use.
var errIgnored = errors.New("ignored event type")

// decodeChange turns a bus message into the Change it makes. It answers errInvalid (wrapped) for
// a payload that is not an Event or says something impossible, and errIgnored for the types
// analytics does not consume. keepText keeps transcript text (summaries on). now stands in for a
// missing occurrence time.
func decodeChange(msg bus.Message, keepText bool, now time.Time) (Change, *eventsv1.Event, error) {
	ev := &eventsv1.Event{}
	if err := proto.Unmarshal(msg.Payload, ev); err != nil {
		return Change{}, nil, invalid("not a classwaves.events.v1.Event: %v", err)
	}
	c := Change{EventID: ev.GetId(), Type: ev.GetType(), SessionID: ev.GetSessionId(), GroupID: ev.GetGroupId(), SchoolID: ev.GetSchoolId(), At: now}
	switch c.Type {
	case busevents.SessionStatusChanged, busevents.GroupStatusChanged, busevents.GroupMemberJoined,
		busevents.Transcript, busevents.SpeechActivity, busevents.InsightProduced, busevents.PromptRaised, busevents.PromptActed:
	default:
		return Change{}, ev, errIgnored
	}
	if c.EventID == "" || len(c.EventID) > maxIDLen || !utf8.ValidString(c.EventID) {
		return Change{}, ev, invalid("event id %q", truncate(c.EventID, 40))
	}
	if !isUUID(c.SessionID) {
		return Change{}, ev, invalid("session id %q is not a UUID", truncate(c.SessionID, 40))
	}
	if c.GroupID != "" && !isUUID(c.GroupID) {
		return Change{}, ev, invalid("group id %q is not a UUID", truncate(c.GroupID, 40))
	}
	if c.SchoolID != "" && (len(c.SchoolID) > maxIDLen || !utf8.ValidString(c.SchoolID)) {
		return Change{}, ev, invalid("school id")
	}
	if t := ev.GetOccurredAt(); t != nil && t.IsValid() {
		c.At = t.AsTime().UTC()
	}
	needGroup := func() error {
		if c.GroupID == "" {
			return invalid("%s without a group id", c.Type)
		}
		return nil
	}
	switch c.Type {
	case busevents.SessionStatusChanged:
		p := ev.GetSessionStatusChanged()
		if p == nil {
			return Change{}, ev, invalid("%s without its payload", c.Type)
		}
		switch p.GetStatus() {
		case "created", "active", "paused", "ended":
		default:
			return Change{}, ev, invalid("session status %q", truncate(p.GetStatus(), 20))
		}
		if len(p.GetTeacherId()) > maxIDLen || !utf8.ValidString(p.GetTeacherId()) {
			return Change{}, ev, invalid("teacher id")
		}
		c.Kind, c.Status, c.TeacherID = kindSessionStatus, p.GetStatus(), p.GetTeacherId()
	case busevents.GroupStatusChanged:
		p := ev.GetGroupStatusChanged()
		if p == nil {
			return Change{}, ev, invalid("%s without its payload", c.Type)
		}
		if err := needGroup(); err != nil {
			return Change{}, ev, err
		}
		c.Kind, c.Ready = kindGroupStatus, p.GetIsReady()
	case busevents.GroupMemberJoined:
		p := ev.GetGroupMemberJoined()
		if p == nil {
			return Change{}, ev, invalid("%s without its payload", c.Type)
		}
		if err := needGroup(); err != nil {
			return Change{}, ev, err
		}
		if !isUUID(p.GetStudentId()) {
			return Change{}, ev, invalid("student id %q is not a UUID", truncate(p.GetStudentId(), 40))
		}
		c.Kind, c.StudentID = kindMemberJoined, p.GetStudentId()
	case busevents.Transcript:
		p := ev.GetTranscriptReady()
		if p == nil {
			return Change{}, ev, invalid("%s without its payload", c.Type)
		}
		if err := needGroup(); err != nil {
			return Change{}, ev, err
		}
		words := int64(p.GetWordCount())
		if words <= 0 {
			words = int64(len(strings.Fields(p.GetText())))
		}
		if words > maxWordsPerEvent {
			return Change{}, ev, invalid("word count %d", words)
		}
		c.Kind, c.Words, c.TranscriptID = kindTranscript, words, p.GetTranscriptId()
		if len(c.TranscriptID) > maxIDLen {
			return Change{}, ev, invalid("transcript id")
		}
		if c.TranscriptID == "" {
			c.TranscriptID = c.EventID
		}
		if st, en := p.GetWindowStart(), p.GetWindowEnd(); st != nil && en != nil && st.IsValid() && en.IsValid() {
			c.WindowStart = st.AsTime().UTC()
			d := en.AsTime().Sub(st.AsTime()).Seconds()
			if d < 0 || d > maxWindowSeconds {
				return Change{}, ev, invalid("window of %.1f s", d)
			}
			c.Seconds = d
		} else {
			c.WindowStart = c.At
		}
		if keepText {
			c.Text = truncate(strings.ToValidUTF8(strings.TrimSpace(p.GetText()), ""), maxKeptText)
		}
	case busevents.SpeechActivity:
		p := ev.GetSpeechActivity()
		if p == nil {
			return Change{}, ev, invalid("%s without its payload", c.Type)
		}
		if err := needGroup(); err != nil {
			return Change{}, ev, err
		}
		for _, v := range []float64{p.GetSpeechSeconds(), p.GetSilenceSeconds(), p.GetLongestSilenceSeconds()} {
			if math.IsNaN(v) || v < 0 || v > maxWindowSeconds {
				return Change{}, ev, invalid("speech activity seconds %v", v)
			}
		}
		if p.GetLongestSilenceSeconds() > p.GetSilenceSeconds()+1e-6 {
			return Change{}, ev, invalid("longest silence %.3f s above the window's silence %.3f s", p.GetLongestSilenceSeconds(), p.GetSilenceSeconds())
		}
		c.Kind, c.Speech, c.Silence, c.LongestSilence = kindSpeech, p.GetSpeechSeconds(), p.GetSilenceSeconds(), p.GetLongestSilenceSeconds()
	case busevents.InsightProduced:
		p := ev.GetInsightProduced()
		if p == nil {
			return Change{}, ev, invalid("%s without its payload", c.Type)
		}
		if p.GetTier() != 1 && p.GetTier() != 2 {
			return Change{}, ev, invalid("insight tier %d", p.GetTier())
		}
		if p.GetQuestionCount() < 0 || p.GetQuestionCount() > maxQuestions {
			return Change{}, ev, invalid("question count %d", p.GetQuestionCount())
		}
		c.Kind, c.Tier, c.OnTopic, c.Questions = kindInsight, int(p.GetTier()), p.GetOnTopic(), int64(p.GetQuestionCount())
	case busevents.PromptRaised:
		p := ev.GetPromptRaised()
		if p == nil {
			return Change{}, ev, invalid("%s without its payload", c.Type)
		}
		if p.GetPromptId() == "" || len(p.GetPromptId()) > maxIDLen || !utf8.ValidString(p.GetPromptId()) {
			return Change{}, ev, invalid("prompt id")
		}
		c.Kind, c.PromptID = kindPromptRaised, p.GetPromptId()
	case busevents.PromptActed:
		p := ev.GetPromptActed()
		if p == nil {
			return Change{}, ev, invalid("%s without its payload", c.Type)
		}
		if p.GetPromptId() == "" || len(p.GetPromptId()) > maxIDLen || !utf8.ValidString(p.GetPromptId()) {
			return Change{}, ev, invalid("prompt id")
		}
		if p.GetStatus() != "acknowledged" && p.GetStatus() != "dismissed" {
			return Change{}, ev, invalid("prompt status %q", truncate(p.GetStatus(), 20))
		}
		c.Kind, c.PromptID, c.PromptState = kindPromptActed, p.GetPromptId(), p.GetStatus()
	}
	return c, ev, nil
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// handleBatch is the bus.BatchHandler of the three consumed topics. Each message is applied on
// its own; those the store could not take are reported failed (delivered again), the others are
// acknowledged, including invalid ones, which could never succeed.
func (s *Service) handleBatch(ctx context.Context, msgs []bus.Message) error {
	var (
		failed   []string
		firstErr error
	)
	for _, m := range msgs {
		if err := s.handleMessage(ctx, m); err != nil {
			failed = append(failed, m.ID)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if len(failed) > 0 {
		return &bus.BatchError{Failed: failed, Err: firstErr}
	}
	return nil
}

// handleMessage applies one message. A session-ended event then finalizes the session, also when
// the event is a redelivery (its change was applied before): the claim makes that idempotent, and
// a redelivery may be exactly what finishes a finalization whose replica died.
func (s *Service) handleMessage(ctx context.Context, m bus.Message) error {
	defer s.eventsHandled.Add(1)
	now := s.now()
	c, ev, err := decodeChange(m, s.cfg.SummariesEnabled, now)
	typ := "unknown"
	if ev != nil && ev.GetType() != "" && len(ev.GetType()) <= 64 {
		typ = ev.GetType()
	}
	switch {
	case errors.Is(err, errIgnored):
		s.m.events.WithLabelValues(typ, eventIgnored).Inc()
		return nil
	case err != nil:
		s.m.events.WithLabelValues(typ, eventInvalid).Inc()
		s.logger.Warn("analytics: dropping invalid event", "err", err, "topic", m.Topic, "messageId", m.ID, "type", typ)
		return nil
	}
	applied, err := s.store.Apply(ctx, c)
	if err != nil {
		s.m.events.WithLabelValues(typ, eventFailed).Inc()
		s.logger.Warn("analytics: applying event", "err", err, "type", typ, "sessionId", c.SessionID, "eventId", c.EventID)
		return err
	}
	if applied {
		s.m.events.WithLabelValues(typ, eventApplied).Inc()
		s.eventsApplied.Add(1)
		lag := max(0, now.Sub(c.At).Seconds())
		s.m.eventLag.Set(lag)
		s.lastLag.Store(math.Float64bits(lag))
	} else {
		s.m.events.WithLabelValues(typ, eventDuplicate).Inc()
	}
	if c.Kind == kindSessionStatus && c.Status == "ended" {
		if _, err := s.finalize(ctx, c.SessionID, false); err != nil {
			return err
		}
	}
	return nil
}
