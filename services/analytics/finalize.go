package analytics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
)

// Failure reasons of a finalization (AnalyticsFinalized.failure_reason, SessionAnalytics
// .failure_reason): short, stable, safe to show a teacher.
const (
	reasonSessionUnavailable = "session service unreachable"
	reasonSessionNotFound    = "session not found"
)

// finalizeResult is what a finalization attempt did.
type finalizeResult struct {
	Outcome ClaimOutcome
	// Analytics are set when this attempt finalized the session.
	Analytics *analyticsv1.SessionAnalytics
	// FailureReason is set when this attempt (or, for AlreadyFailed, an earlier one) failed.
	FailureReason string
}

// owner returns a new claim owner: the replica's name and a nonce, so two attempts of one replica
// are told apart too.
func (s *Service) owner() string { return s.name + "/" + uuid.NewString() }

// finalize claims and finalizes a session. retry also takes over a failed finalization
// (RetryFinalization). It returns an error only when the store failed; the claim then runs out
// and a redelivery, the sweeper or a retry takes the session over.
//
// Exactly once: Claim admits one owner at a time; Complete and Fail write only while the caller
// still owns the claim (a takeover after an expired lease makes the slow owner's write fail), and
// the outcome and its event id commit together; only the owner whose write committed publishes.
func (s *Service) finalize(ctx context.Context, sessionID string, retry bool) (finalizeResult, error) {
	now := s.now()
	owner := s.owner()
	outcome, f, err := s.store.Claim(ctx, ClaimRequest{SessionID: sessionID, Owner: owner, Now: now, Lease: s.cfg.FinalizeLease, RetryFailed: retry})
	if err != nil {
		return finalizeResult{}, err
	}
	switch outcome {
	case AlreadyFinalized:
		s.m.finalizations.WithLabelValues(finalDuplicate).Inc()
		return finalizeResult{Outcome: outcome}, nil
	case InProgress:
		s.m.finalizations.WithLabelValues(finalInProgress).Inc()
		return finalizeResult{Outcome: outcome}, nil
	case AlreadyFailed:
		return finalizeResult{Outcome: outcome, FailureReason: f.FailureReason}, nil
	}
	start := time.Now()
	defer func() { s.m.finalizeLatency.Observe(float64(time.Since(start)) / float64(time.Millisecond)) }()
	logger := s.logger.With("sessionId", sessionID, "attempt", f.Attempts)

	sess, ctxErr := s.sessionContext(ctx, sessionID)
	if ctxErr != nil && ctx.Err() != nil {
		// Stopping (or the caller gave up): not the session service's failure. The claim runs out
		// and another attempt takes the session over.
		return finalizeResult{}, ctx.Err()
	}
	if ctxErr != nil {
		reason := reasonSessionUnavailable
		if status.Code(ctxErr) == codes.NotFound {
			reason = reasonSessionNotFound
		}
		logger.Warn("analytics: finalization failed", "reason", reason, "err", ctxErr)
		return s.fail(ctx, sessionID, owner, reason)
	}
	if err := s.store.RecordContext(ctx, contextRecord(sess), now); err != nil {
		return finalizeResult{}, err
	}
	state, _, err := s.store.Session(ctx, sessionID)
	if err != nil {
		return finalizeResult{}, err
	}
	groups, err := s.store.Groups(ctx, sessionID)
	if err != nil {
		return finalizeResult{}, err
	}
	members, err := s.store.Members(ctx, sessionID)
	if err != nil {
		return finalizeResult{}, err
	}
	at := s.now()
	a := computeAnalytics(computeInput{SessionID: sessionID, Context: sess, State: state, Groups: groups, Members: members, Now: at})
	a.Status = statusFinalized
	a.FinalizedAt = timestamppb.New(at)
	js, err := protojson.Marshal(a)
	if err != nil {
		return finalizeResult{}, fmt.Errorf("analytics: encoding analytics: %w", err)
	}
	r := FinalResult{
		SessionID: sessionID, SchoolID: sess.GetSchoolId(), TeacherID: sess.GetTeacherId(),
		ParticipationRate: a.ParticipationRate, EngagementScore: a.EngagementScore, DurationSeconds: a.DurationSeconds,
		GroupCount: int(a.GroupCount), StudentCount: int(a.StudentCount), JoinedStudentCount: int(a.JoinedStudentCount),
		InsightCount: int(a.InsightCount), PromptCount: int(a.PromptCount), PromptsAcknowledged: int(a.PromptsAcknowledged),
		SpeakingSeconds: a.SpeakingSeconds, WordCount: a.WordCount, EndedAt: tsPtr(sess.GetActualEnd()),
		FinalizedAt: at, JSON: js, EventID: uuid.NewString(),
	}
	if r.EndedAt == nil {
		r.EndedAt = state.EndedAt
	}
	if s.cfg.SummariesEnabled {
		r.Summaries = groupNames(a)
		r.SummaryLeaseUntil = at.Add(s.cfg.FinalizeLease)
	}
	if err := s.store.Complete(ctx, owner, r); err != nil {
		if errors.Is(err, errLostClaim) {
			s.m.finalizations.WithLabelValues(finalLost).Inc()
			logger.Warn("analytics: finalization claim lost to another replica before the write")
			return finalizeResult{Outcome: InProgress}, nil
		}
		return finalizeResult{}, err
	}
	s.m.finalizations.WithLabelValues(finalFinalized).Inc()
	logger.Info("analytics: session finalized", "engagementScore", a.EngagementScore, "participationRate", a.ParticipationRate,
		"groups", a.GroupCount, "durationSeconds", a.DurationSeconds)
	if s.publish(ctx, finalizedEvent(r.EventID, sessionID, r.SchoolID, true, "", at)) {
		if err := s.store.MarkPublished(ctx, sessionID, r.EventID); err != nil {
			logger.Warn("analytics: marking the finalized event published", "err", err)
		}
	}
	if s.cfg.SummariesEnabled {
		s.spawn(func(ctx context.Context) { s.buildSummaries(ctx, sessionID, owner, sess) })
	}
	return finalizeResult{Outcome: Claimed, Analytics: a}, nil
}

// fail records owner's finalization as failed and publishes AnalyticsFinalized{ok: false}.
func (s *Service) fail(ctx context.Context, sessionID, owner, reason string) (finalizeResult, error) {
	eventID, at := uuid.NewString(), s.now()
	if err := s.store.Fail(ctx, sessionID, owner, reason, eventID, at); err != nil {
		if errors.Is(err, errLostClaim) {
			s.m.finalizations.WithLabelValues(finalLost).Inc()
			return finalizeResult{Outcome: InProgress}, nil
		}
		return finalizeResult{}, err
	}
	s.m.finalizations.WithLabelValues(finalFailed).Inc()
	school := ""
	if st, found, err := s.store.Session(ctx, sessionID); err == nil && found {
		school = st.SchoolID
	}
	if s.publish(ctx, finalizedEvent(eventID, sessionID, school, false, reason, at)) {
		if err := s.store.MarkPublished(ctx, sessionID, eventID); err != nil {
			s.logger.Warn("analytics: marking the failed event published", "err", err, "sessionId", sessionID)
		}
	}
	return finalizeResult{Outcome: Claimed, FailureReason: reason}, nil
}

// republish sends an outcome's event that its owner did not get out (it died, or the bus was
// down), once: the store lets one replica take each.
func (s *Service) republish(ctx context.Context, f Finalization, now time.Time) {
	stale := now.Add(-s.cfg.FinalizeLease)
	school := ""
	if st, found, err := s.store.Session(ctx, f.SessionID); err == nil && found {
		school = st.SchoolID
	}
	if f.EventID != "" && !f.Published && (f.Status == statusFinalized || f.Status == statusFailed) {
		if ok, err := s.store.ClaimRepublish(ctx, f.SessionID, f.EventID, stale, now); err == nil && ok {
			ev := finalizedEvent(f.EventID, f.SessionID, school, f.Status == statusFinalized, f.FailureReason, now)
			if s.publish(ctx, ev) {
				_ = s.store.MarkPublished(ctx, f.SessionID, f.EventID)
			}
		}
	}
	if f.SummaryEventID != "" && !f.SummaryPublished && f.SummaryStatus == summaryReady {
		if ok, err := s.store.ClaimRepublish(ctx, f.SessionID, f.SummaryEventID, stale, now); err == nil && ok {
			set, err := s.store.Summaries(ctx, f.SessionID)
			if err != nil {
				return
			}
			if s.publish(ctx, summariesEvent(f.SummaryEventID, f.SessionID, school, readyGroupIDs(set), now)) {
				_ = s.store.MarkPublished(ctx, f.SessionID, f.SummaryEventID)
			}
		}
	}
}

// sessionContext calls GetSessionContext with the configured timeout.
func (s *Service) sessionContext(ctx context.Context, sessionID string) (*sessionv1.Session, error) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.SessionRPCTimeout)
	defer cancel()
	resp, err := s.sessions.GetSessionContext(cctx, &sessionv1.GetSessionContextRequest{SessionId: sessionID})
	if err != nil {
		return nil, err
	}
	if resp.GetSession() == nil || resp.GetSession().GetId() != sessionID {
		return nil, status.Error(codes.Internal, "session context for another session")
	}
	return resp.GetSession(), nil
}

// contextRecord is what the store keeps of a session context.
func contextRecord(sess *sessionv1.Session) ContextRecord {
	r := ContextRecord{
		SessionID: sess.GetId(), SchoolID: sess.GetSchoolId(), TeacherID: sess.GetTeacherId(), Title: sess.GetTitle(),
		Objectives: sess.GetLearningObjectives(), GroupCount: len(sess.GetGroups()), StudentCount: int(sess.GetStudentCount()),
	}
	if r.GroupCount == 0 {
		r.GroupCount = int(sess.GetGroupCount())
	}
	members := 0
	for _, g := range sess.GetGroups() {
		r.Groups = append(r.Groups, GroupName{GroupID: g.GetId(), Name: g.GetName()})
		members += len(g.GetMembers())
	}
	if members > 0 {
		r.StudentCount = members
	}
	return r
}

// groupNames are the groups of a, for the summaries' rows (never nil: an empty session still gets
// its session summary).
func groupNames(a *analyticsv1.SessionAnalytics) []GroupName {
	out := make([]GroupName, 0, len(a.GetGroups()))
	for _, g := range a.GetGroups() {
		out = append(out, GroupName{GroupID: g.GetGroupId(), Name: g.GetGroupName()})
	}
	return out
}
