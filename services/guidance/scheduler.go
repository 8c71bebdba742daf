package guidance

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	"github.com/classwaves/classwaves/pkg/bus"
	busevents "github.com/classwaves/classwaves/pkg/events"
	"github.com/classwaves/classwaves/pkg/traceid"
)

// Event outcomes (guidance_bus_events_total{outcome}).
const (
	outcomeHandled   = "handled"
	outcomeDuplicate = "duplicate"
	outcomeIgnored   = "ignored"
	outcomeMalformed = "malformed"
	outcomeRetry     = "retry"
)

// handleBatch is the consumer group's handler. Messages are grouped by key (a group id, or a
// session id): each key's messages are handled in order, and different keys at the same time (at
// most Workers). A key's transcripts and speech activity are stored first, then each group they
// belong to is scheduled once, so a batch is analysed as a whole. When storing a message fails,
// it and the rest of its key's messages are left unacknowledged, to be delivered again in order;
// when scheduling fails, every message of the key is (storing is idempotent).
func (s *Service) handleBatch(ctx context.Context, msgs []bus.Message) error {
	var (
		order []string
		byKey = map[string][]bus.Message{}
	)
	for _, m := range msgs {
		if _, ok := byKey[m.Key]; !ok {
			order = append(order, m.Key)
		}
		byKey[m.Key] = append(byKey[m.Key], m)
	}
	var (
		mu      sync.Mutex
		failed  []string
		lastErr error
		wg      sync.WaitGroup
		sem     = make(chan struct{}, s.cfg.Workers)
	)
	for _, k := range order {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			keyMsgs := byKey[k]
			if i, err := s.handleKey(ctx, keyMsgs); err != nil {
				mu.Lock()
				for _, r := range keyMsgs[i:] {
					failed = append(failed, r.ID)
				}
				lastErr = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		return &bus.BatchError{Failed: failed, Err: lastErr}
	}
	return nil
}

// groupRef names a group to schedule, with the trace of the event that asked.
type groupRef struct{ sessionID, groupID, traceID string }

// handleKey handles one key's messages in order, then schedules the groups they touched. On
// failure it answers the index of the first message to leave unacknowledged. Messages are
// counted (guidance_bus_events_total) once their handling, scheduling included, is done.
func (s *Service) handleKey(ctx context.Context, msgs []bus.Message) (int, error) {
	var (
		todo     []groupRef
		outcomes []string
		types    []string
	)
	count := func(n int, retry bool) {
		for i := range n {
			o := outcomes[i]
			if retry {
				o = outcomeRetry
			}
			s.m.eventsHandled.WithLabelValues(types[i], o).Inc()
		}
	}
	for i, m := range msgs {
		typ, outcome, ref, err := s.handleMessage(ctx, m)
		if err != nil {
			count(i, false)
			s.m.eventsHandled.WithLabelValues(typ, outcomeRetry).Inc()
			return i, err
		}
		types, outcomes = append(types, typ), append(outcomes, outcome)
		if ref != nil && !slices.ContainsFunc(todo, func(r groupRef) bool { return r.sessionID == ref.sessionID && r.groupID == ref.groupID }) {
			todo = append(todo, *ref)
		}
	}
	for _, r := range todo {
		if err := s.schedule(ctx, r.sessionID, r.groupID, r.traceID); err != nil {
			s.logger.Warn("guidance: scheduling a group; its events will be delivered again", "err", err,
				"sessionId", r.sessionID, "groupId", r.groupID)
			count(len(msgs), true)
			return 0, err
		}
	}
	if s.afterKey != nil {
		if err := s.afterKey(msgs); err != nil {
			count(len(msgs), true)
			return 0, err
		}
	}
	count(len(msgs), false)
	return 0, nil
}

// handleMessage handles one bus message: it stores a transcript or speech activity (answering
// the group to schedule) or applies a session status change, and answers the event's type and
// outcome. It returns an error only for what a later delivery may fix (the database or the
// session service unavailable); a malformed message is logged and acknowledged.
func (s *Service) handleMessage(ctx context.Context, m bus.Message) (typ, outcome string, ref *groupRef, err error) {
	typ = "unknown"
	defer func() {
		if r := recover(); r != nil { // no event may take the consumer down
			s.logger.Error("guidance: handling event panicked", "panic", r, "messageId", m.ID, "topic", m.Topic)
			outcome, ref, err = outcomeMalformed, nil, nil
		}
	}()
	ev := &eventsv1.Event{}
	if err := proto.Unmarshal(m.Payload, ev); err != nil {
		s.logger.Warn("guidance: malformed event", "err", err, "messageId", m.ID, "topic", m.Topic)
		return typ, outcomeMalformed, nil, nil
	}
	switch ev.GetType() {
	case busevents.Transcript, busevents.SpeechActivity, busevents.SessionStatusChanged:
		typ = ev.GetType()
	default:
		typ = "other" // a bounded label whatever the producers send
	}
	outcome, ref, err = s.handleEvent(ctx, ev)
	if err != nil {
		s.logger.Warn("guidance: handling event; it will be delivered again", "err", err, "type", typ,
			"eventId", ev.GetId(), "sessionId", ev.GetSessionId(), "groupId", ev.GetGroupId(), "deliveries", m.Deliveries)
		return typ, "", nil, err
	}
	if outcome == outcomeMalformed {
		s.logger.Warn("guidance: malformed event", "type", typ, "eventId", ev.GetId(), "messageId", m.ID)
	}
	return typ, outcome, ref, nil
}

func (s *Service) handleEvent(ctx context.Context, ev *eventsv1.Event) (string, *groupRef, error) {
	trace := ev.GetTraceId()
	if trace == "" {
		trace = traceid.New()
	}
	outcome := func(inserted bool) string {
		if inserted {
			return outcomeHandled
		}
		return outcomeDuplicate
	}
	switch ev.GetType() {
	case busevents.Transcript:
		t, ok := turnFromEvent(ev, ev.GetTranscriptReady())
		if !ok {
			return outcomeMalformed, nil, nil
		}
		inserted, err := s.store.InsertTurn(ctx, t)
		if err != nil {
			return "", nil, err
		}
		return outcome(inserted), &groupRef{t.SessionID, t.GroupID, trace}, nil
	case busevents.SpeechActivity:
		a, ok := activityFromEvent(ev, ev.GetSpeechActivity())
		if !ok {
			return outcomeMalformed, nil, nil
		}
		inserted, err := s.store.InsertActivity(ctx, a)
		if err != nil {
			return "", nil, err
		}
		return outcome(inserted), &groupRef{a.SessionID, a.GroupID, trace}, nil
	case busevents.SessionStatusChanged:
		sc := ev.GetSessionStatusChanged()
		if ev.GetSessionId() == "" || sc == nil {
			return outcomeMalformed, nil, nil
		}
		if err := s.sessionStatusChanged(ctx, ev.GetSessionId(), ev.GetSchoolId(), sc.GetTeacherId(), sc.GetStatus(), trace); err != nil {
			return "", nil, err
		}
		return outcomeHandled, nil, nil
	}
	return outcomeIgnored, nil, nil
}

// wordCount counts whitespace-separated words with a letter or digit.
func wordCount(text string) int {
	n := 0
	for _, w := range strings.Fields(text) {
		if strings.IndexFunc(w, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) >= 0 {
			n++
		}
	}
	return n
}

// validSpan says whether a window's times can be analysed.
func validSpan(start, end time.Time) bool {
	return !start.IsZero() && !end.IsZero() && !end.Before(start) && end.Sub(start) <= time.Hour
}

func turnFromEvent(ev *eventsv1.Event, tr *eventsv1.TranscriptReady) (Turn, bool) {
	if tr == nil || tr.GetTranscriptId() == "" || ev.GetSessionId() == "" || ev.GetGroupId() == "" ||
		tr.GetWindowStart() == nil || tr.GetWindowEnd() == nil {
		return Turn{}, false
	}
	t := Turn{
		ID: tr.GetTranscriptId(), SessionID: ev.GetSessionId(), GroupID: ev.GetGroupId(), SchoolID: ev.GetSchoolId(),
		Text: strings.ToValidUTF8(tr.GetText(), ""), WindowStart: tr.GetWindowStart().AsTime(), WindowEnd: tr.GetWindowEnd().AsTime(),
	}
	if !validSpan(t.WindowStart, t.WindowEnd) {
		return Turn{}, false
	}
	// A speaker-labelled transcript ("Maria: ...") names its speaker.
	t.Speaker, t.Text = splitSpeaker(t.Text)
	// The count is the service's own, so a producer's count cannot skew the min-words rule.
	t.WordCount = wordCount(t.Text)
	return t, true
}

func activityFromEvent(ev *eventsv1.Event, sa *eventsv1.SpeechActivity) (Activity, bool) {
	if sa == nil || sa.GetWindowId() == "" || ev.GetSessionId() == "" || ev.GetGroupId() == "" ||
		sa.GetWindowStart() == nil || sa.GetWindowEnd() == nil {
		return Activity{}, false
	}
	a := Activity{
		WindowID: sa.GetWindowId(), SessionID: ev.GetSessionId(), GroupID: ev.GetGroupId(), SchoolID: ev.GetSchoolId(),
		WindowStart: sa.GetWindowStart().AsTime(), WindowEnd: sa.GetWindowEnd().AsTime(),
		SpeechSeconds: sa.GetSpeechSeconds(), SilenceSeconds: sa.GetSilenceSeconds(), LongestSilenceSeconds: sa.GetLongestSilenceSeconds(),
	}
	if !validSpan(a.WindowStart, a.WindowEnd) {
		return Activity{}, false
	}
	for _, v := range []float64{a.SpeechSeconds, a.SilenceSeconds, a.LongestSilenceSeconds} {
		if v < 0 || v > 3600 || v != v { // negative, absurd or NaN
			return Activity{}, false
		}
	}
	return a, true
}

// schedule runs Tier 1 for a group when its unanalysed span (by window timestamps) reaches
// AI_TIER1_INTERVAL, for an active session with AI analysis on. A session the session service
// does not know is dropped; a failure to reach it or the database is returned (the event is
// delivered again). An analyzer failure is logged and counted, and leaves the cursor where it
// was: the group's next event retries over the longer span.
func (s *Service) schedule(ctx context.Context, sessionID, groupID, traceID string) error {
	unlock := s.locks.lock("g:" + sessionID + "/" + groupID)
	defer unlock()
	info, err := s.sessions.get(ctx, sessionID)
	if errors.Is(err, ErrSessionNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !info.AIEnabled || info.Status != sessionActive {
		return nil
	}
	cursor, err := s.store.Cursor(ctx, sessionID, groupID)
	if err != nil {
		return err
	}
	span, found, err := s.store.PendingSpan(ctx, sessionID, groupID, cursor)
	if err != nil || !found {
		return err
	}
	// The span starts at the cursor, or at its first window when talk resumes after a gap.
	start := cursor
	if span.Start.After(cursor) {
		start = span.Start
	}
	if span.End.Sub(start) < s.cfg.Tier1Interval {
		return nil
	}
	// Another replica may have seen the session end while this one's context is still cached.
	switch st, err := s.store.GetSession(ctx, sessionID); {
	case err == nil && st.Status == sessionEnded:
		return nil
	case err != nil && !errors.Is(err, errNotFound):
		return err
	}
	_, err = s.analyseSpan(ctx, info, spanRequest{groupID: groupID, from: cursor, start: start, to: span.End, moveCursor: true, traceID: traceID})
	switch {
	case err == nil, errors.Is(err, errNothingToAnalyse):
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case isAnalysisError(err):
		s.logger.Warn("guidance: tier 1 analysis failed; the group's next event retries", "err", err,
			"sessionId", sessionID, "groupId", groupID)
		return nil
	}
	return err
}

// isAnalysisError says whether err came from an analyzer (not the store).
func isAnalysisError(err error) bool {
	var ae *analysisError
	return errors.As(err, &ae)
}

// sessionStatusChanged records a session's new status. When it ended: pending prompts expire,
// scheduling stops (only active sessions are analysed), and one final Tier 2 runs (claimed in
// the database, so once across replicas).
func (s *Service) sessionStatusChanged(ctx context.Context, sessionID, schoolID, teacherID, status, traceID string) error {
	s.sessions.invalidate(sessionID)
	if err := s.store.UpsertSession(ctx, SessionState{SessionID: sessionID, SchoolID: schoolID, TeacherID: teacherID, Status: status},
		s.now().Add(s.cfg.Tier2Interval)); err != nil {
		return err
	}
	if status != sessionEnded {
		return nil
	}
	if _, err := s.store.ExpirePrompts(ctx, sessionID, s.now()); err != nil {
		return err
	}
	claimed, err := s.store.ClaimFinalTier2(ctx, sessionID, s.now())
	if err != nil || !claimed {
		return err
	}
	info, err := s.sessions.get(ctx, sessionID)
	switch {
	case errors.Is(err, ErrSessionNotFound):
		return nil
	case err != nil:
		s.logger.Warn("guidance: final tier 2 skipped: session unavailable", "err", err, "sessionId", sessionID)
		return nil
	case !info.AIEnabled:
		return nil
	}
	unlock := s.locks.lock("s:" + sessionID)
	defer unlock()
	if _, err := s.runTier2(ctx, info, nil, "comprehensive", traceID); err != nil && !errors.Is(err, errNothingToAnalyse) {
		s.logger.Warn("guidance: final tier 2 failed", "err", err, "sessionId", sessionID)
	}
	return nil
}

// scheduleTick is how often the schedule looks for sessions due for Tier 2 and sweeps expired
// prompts.
func (s *Service) scheduleTick() time.Duration {
	return min(max(s.cfg.Tier2Interval/6, time.Second), 15*time.Second)
}

// scheduleLoop runs Tier 2 for due sessions and sweeps expired prompts until Stop.
func (s *Service) scheduleLoop() {
	t := time.NewTicker(s.scheduleTick())
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		s.runDue(s.runCtx)
	}
}

// maxDuePerTick bounds the sessions one tick analyses.
const maxDuePerTick = 100

// runDue runs the scheduled Tier 2 of every session due (claimed in the database, so one
// replica runs each) and marks expired prompts. It returns how many Tier 2 analyses ran.
func (s *Service) runDue(ctx context.Context) int {
	now := s.now()
	if _, err := s.store.ExpirePrompts(ctx, "", now); err != nil {
		s.logger.Warn("guidance: expiring prompts", "err", err)
	}
	ids, err := s.store.DueTier2(ctx, now, maxDuePerTick)
	if err != nil {
		s.logger.Warn("guidance: listing sessions due for tier 2", "err", err)
		return 0
	}
	var (
		wg  sync.WaitGroup
		sem = make(chan struct{}, s.cfg.Workers)
		mu  sync.Mutex
		ran int
	)
	for _, id := range ids {
		claimed, err := s.store.ClaimTier2(ctx, id, now, now.Add(s.cfg.Tier2Interval))
		if err != nil {
			s.logger.Warn("guidance: claiming tier 2", "err", err, "sessionId", id)
			continue
		}
		if !claimed {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			info, err := s.sessions.get(ctx, id)
			if err != nil {
				s.logger.Warn("guidance: scheduled tier 2 skipped: session unavailable", "err", err, "sessionId", id)
				return
			}
			if !info.AIEnabled || info.Status != sessionActive {
				return
			}
			unlock := s.locks.lock("s:" + id)
			defer unlock()
			if _, err := s.runTier2(ctx, info, nil, "standard", traceid.New()); err != nil {
				if !errors.Is(err, errNothingToAnalyse) {
					s.logger.Warn("guidance: scheduled tier 2 failed", "err", err, "sessionId", id)
				}
				return
			}
			mu.Lock()
			ran++
			mu.Unlock()
		})
	}
	wg.Wait()
	return ran
}
