package analytics

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
)

// Summary failure reasons (kept with the summaries phase, for the log and the admin).
const (
	reasonSummaryInput = "summary input could not be loaded"
	reasonSummaryStore = "summaries could not be stored"
)

// buildSummaries builds, stores and announces a session's summaries while owner holds the
// summaries claim. sess is the session context when the caller has it (nil: fetched, best
// effort: without it an LLM summarizer is not used, since student names could not be redacted).
func (s *Service) buildSummaries(ctx context.Context, sessionID, owner string, sess *sessionv1.Session) {
	logger := s.logger.With("sessionId", sessionID)
	in, err := s.summaryInput(ctx, sessionID, sess)
	if err != nil {
		logger.Warn("analytics: loading the summary input", "err", err)
		s.failSummaries(ctx, sessionID, owner, reasonSummaryInput)
		return
	}
	sum, groups := s.summarize(ctx, in)
	at := s.now()
	sum.SessionId, sum.CreatedAt = sessionID, timestamppb.New(at)
	js, err := protojson.Marshal(sum)
	if err != nil {
		logger.Error("analytics: encoding the session summary", "err", err)
		s.failSummaries(ctx, sessionID, owner, reasonSummaryStore)
		return
	}
	rows := []SummaryRow{{GroupID: "", Status: summaryReady, JSON: js, Summarizer: sum.Summarizer}}
	ids := make([]string, 0, len(groups))
	for i, g := range groups {
		g.SessionId, g.GroupId, g.CreatedAt = sessionID, in.Groups[i].GroupID, timestamppb.New(at)
		gjs, err := protojson.Marshal(g)
		if err != nil {
			logger.Error("analytics: encoding a group summary", "err", err)
			s.failSummaries(ctx, sessionID, owner, reasonSummaryStore)
			return
		}
		rows = append(rows, SummaryRow{GroupID: g.GroupId, GroupName: in.Groups[i].Name, Status: summaryReady, JSON: gjs, Summarizer: g.Summarizer})
		ids = append(ids, g.GroupId)
	}
	eventID := uuid.NewString()
	if err := s.store.SaveSummaries(ctx, sessionID, owner, rows, eventID, at); err != nil {
		if errors.Is(err, errLostClaim) {
			logger.Warn("analytics: summaries claim lost to another replica before the write")
			return
		}
		logger.Warn("analytics: storing summaries", "err", err)
		s.failSummaries(ctx, sessionID, owner, reasonSummaryStore)
		return
	}
	s.m.summaries.WithLabelValues(summaryReady).Inc()
	logger.Info("analytics: summaries stored", "groups", len(groups), "summarizer", sum.Summarizer)
	if s.publish(ctx, summariesEvent(eventID, sessionID, in.SchoolID, ids, at)) {
		if err := s.store.MarkPublished(ctx, sessionID, eventID); err != nil {
			logger.Warn("analytics: marking the summaries event published", "err", err)
		}
	}
}

func (s *Service) failSummaries(ctx context.Context, sessionID, owner, reason string) {
	s.m.summaries.WithLabelValues(summaryFailed).Inc()
	if err := s.store.FailSummaries(ctx, sessionID, owner, reason, s.now()); err != nil && !errors.Is(err, errLostClaim) {
		s.logger.Warn("analytics: recording failed summaries", "err", err, "sessionId", sessionID)
	}
}

// summaryInput loads what the summarizer needs: the finalized analytics, the session's title and
// objectives, each group's kept transcript, and the students' names (for redaction).
func (s *Service) summaryInput(ctx context.Context, sessionID string, sess *sessionv1.Session) (SummaryInput, error) {
	js, found, err := s.store.FinalAnalytics(ctx, sessionID)
	if err != nil {
		return SummaryInput{}, err
	}
	if !found {
		return SummaryInput{}, fmt.Errorf("session %s is not finalized", sessionID)
	}
	a := &analyticsv1.SessionAnalytics{}
	if err := protojson.Unmarshal(js, a); err != nil {
		return SummaryInput{}, fmt.Errorf("decoding the finalized analytics: %w", err)
	}
	state, _, err := s.store.Session(ctx, sessionID)
	if err != nil {
		return SummaryInput{}, err
	}
	texts, err := s.store.TranscriptTexts(ctx, sessionID)
	if err != nil {
		return SummaryInput{}, err
	}
	if sess == nil {
		sess, _ = s.sessionContext(ctx, sessionID) // names are best effort
	}
	in := SummaryInput{SessionID: sessionID, SchoolID: state.SchoolID, Title: state.Title, Objectives: state.Objectives, Analytics: a}
	byGroup := map[string][]string{}
	for _, t := range texts {
		byGroup[t.GroupID] = append(byGroup[t.GroupID], t.Text)
	}
	for _, g := range a.GetGroups() {
		in.Groups = append(in.Groups, GroupSummaryInput{GroupID: g.GetGroupId(), Name: g.GetGroupName(), Transcript: byGroup[g.GetGroupId()], Metrics: g})
	}
	if sess != nil {
		in.Names = []string{}
		if in.Title == "" {
			in.Title = sess.GetTitle()
		}
		if len(in.Objectives) == 0 {
			in.Objectives = sess.GetLearningObjectives()
		}
		for _, g := range sess.GetGroups() {
			for _, m := range g.GetMembers() {
				if n := strings.TrimSpace(m.GetDisplayName()); n != "" {
					in.Names = append(in.Names, n)
				}
			}
		}
	}
	return in, nil
}

// summarize runs the configured summarizer and falls back to the built-in one when it fails, when
// its answer does not fit (checkSummaries), or when the students' names are unknown (in.Names nil:
// an LLM summarizer could not redact them). The built-in summarizer never fails.
func (s *Service) summarize(ctx context.Context, in SummaryInput) (*analyticsv1.SessionSummary, []*analyticsv1.GroupSummary) {
	if s.summarizer != nil && s.summarizer.Name() != BuiltinName {
		if in.Names != nil {
			sum, groups, err := s.summarizer.Summarize(ctx, in)
			if err == nil {
				err = checkSummaries(in, sum, groups)
			}
			if err == nil {
				return sum, groups
			}
			s.logger.Warn("analytics: summarizer failed; using the built-in one", "summarizer", s.summarizer.Name(), "err", err, "sessionId", in.SessionID)
		} else {
			s.logger.Warn("analytics: student names unknown; using the built-in summarizer", "sessionId", in.SessionID)
		}
		s.m.summaries.WithLabelValues("fallback").Inc()
	}
	sum, groups, _ := BuiltinSummarizer{}.Summarize(ctx, in)
	return sum, groups
}

// checkSummaries checks a summarizer's answer covers the input: a session summary with text, and
// one group summary per input group, in order.
func checkSummaries(in SummaryInput, sum *analyticsv1.SessionSummary, groups []*analyticsv1.GroupSummary) error {
	if sum == nil || strings.TrimSpace(sum.GetText()) == "" {
		return errors.New("no session summary text")
	}
	if len(groups) != len(in.Groups) {
		return fmt.Errorf("%d group summaries for %d groups", len(groups), len(in.Groups))
	}
	for i, g := range groups {
		if g == nil || g.GetGroupId() != in.Groups[i].GroupID || strings.TrimSpace(g.GetText()) == "" {
			return fmt.Errorf("group summary %d does not match group %s", i, in.Groups[i].GroupID)
		}
	}
	return nil
}

// readyGroupIDs are the groups with a ready summary.
func readyGroupIDs(set SummarySet) []string {
	var out []string
	for _, r := range set.Rows {
		if r.GroupID != "" && r.Status == summaryReady {
			out = append(out, r.GroupID)
		}
	}
	return out
}
