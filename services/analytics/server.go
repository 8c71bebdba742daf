package analytics

import (
	"context"
	"fmt"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/protobuf/encoding/protojson"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
	"github.com/classwaves/classwaves/pkg/auditlog"
)

// server is the gRPC port: requests arrive validated (protovalidate) and authorized by role (the
// access policy); it checks what the caller may see and calls the domain.
type server struct {
	analyticsv1.UnimplementedAnalyticsServiceServer
	svc *Service
}

var _ analyticsv1.AnalyticsServiceServer = (*server)(nil)

func (x *server) GetSessionAnalytics(ctx context.Context, req *analyticsv1.GetSessionAnalyticsRequest) (*analyticsv1.GetSessionAnalyticsResponse, error) {
	_, acc, err := x.svc.access(ctx, req.GetSessionId())
	if err != nil {
		return nil, err
	}
	a, err := x.svc.sessionAnalytics(ctx, req.GetSessionId(), acc)
	if err != nil {
		return nil, err
	}
	return &analyticsv1.GetSessionAnalyticsResponse{Analytics: a}, nil
}

func (x *server) ExportSessionAnalytics(ctx context.Context, req *analyticsv1.ExportSessionAnalyticsRequest) (*analyticsv1.ExportSessionAnalyticsResponse, error) {
	p, acc, err := x.svc.access(ctx, req.GetSessionId())
	if err != nil {
		return nil, err
	}
	a, err := x.svc.sessionAnalytics(ctx, req.GetSessionId(), acc)
	if err != nil {
		return nil, err
	}
	data, err := exportCSV(a)
	if err != nil {
		return nil, err
	}
	x.svc.auditAccess(ctx, p, acc, req.GetSessionId(), "analytics.export", auditlog.CategoryDataAccess,
		fmt.Sprintf("exported session analytics as CSV (%d groups)", len(a.GetGroups())))
	return &analyticsv1.ExportSessionAnalyticsResponse{File: &httpbody.HttpBody{ContentType: csvContentType, Data: data}}, nil
}

func (x *server) GetSessionSummaries(ctx context.Context, req *analyticsv1.GetSessionSummariesRequest) (*analyticsv1.GetSessionSummariesResponse, error) {
	s := x.svc
	if !s.cfg.SummariesEnabled {
		return nil, ErrSummariesOff
	}
	p, acc, err := s.access(ctx, req.GetSessionId())
	if err != nil {
		return nil, err
	}
	set, err := s.summaries(ctx, req.GetSessionId(), acc)
	if err != nil {
		return nil, err
	}
	resp := &analyticsv1.GetSessionSummariesResponse{}
	for _, r := range set.Rows {
		if r.GroupID == "" {
			continue
		}
		resp.Groups = append(resp.Groups, &analyticsv1.GroupSummaryMeta{GroupId: r.GroupID, GroupName: r.GroupName, Status: r.Status})
	}
	if set.Status != summaryReady {
		resp.Pending, resp.RetryAfterSeconds = true, int32(s.cfg.SummaryRetryAfter)
		return resp, nil
	}
	for _, r := range set.Rows {
		if r.GroupID == "" && len(r.JSON) > 0 {
			resp.Summary = &analyticsv1.SessionSummary{}
			if err := protojson.Unmarshal(r.JSON, resp.Summary); err != nil {
				return nil, fmt.Errorf("analytics: decoding the session summary of %s: %w", req.GetSessionId(), err)
			}
		}
	}
	s.auditAccess(ctx, p, acc, req.GetSessionId(), "analytics.summaries_read", auditlog.CategoryDataAccessRead, "read session summaries")
	return resp, nil
}

func (x *server) GetGroupSummary(ctx context.Context, req *analyticsv1.GetGroupSummaryRequest) (*analyticsv1.GetGroupSummaryResponse, error) {
	s := x.svc
	if !s.cfg.SummariesEnabled {
		return nil, ErrSummariesOff
	}
	p, acc, err := s.access(ctx, req.GetSessionId())
	if err != nil {
		return nil, err
	}
	if ok, err := s.groupOfSession(ctx, req.GetSessionId(), req.GetGroupId(), acc); err != nil {
		return nil, err
	} else if !ok {
		return nil, ErrGroupNotFound.WithMetadata("groupId", req.GetGroupId())
	}
	set, err := s.summaries(ctx, req.GetSessionId(), acc)
	if err != nil {
		return nil, err
	}
	pending := &analyticsv1.GetGroupSummaryResponse{Pending: true, RetryAfterSeconds: int32(s.cfg.SummaryRetryAfter)}
	if set.Status != summaryReady {
		return pending, nil
	}
	for _, r := range set.Rows {
		if r.GroupID != req.GetGroupId() {
			continue
		}
		if r.Status != summaryReady || len(r.JSON) == 0 {
			return pending, nil
		}
		g := &analyticsv1.GroupSummary{}
		if err := protojson.Unmarshal(r.JSON, g); err != nil {
			return nil, fmt.Errorf("analytics: decoding the group summary of %s: %w", req.GetGroupId(), err)
		}
		s.auditAccess(ctx, p, acc, req.GetSessionId(), "analytics.group_summary_read", auditlog.CategoryDataAccessRead, "read a group summary")
		return &analyticsv1.GetGroupSummaryResponse{Summary: g}, nil
	}
	// The group joined the session after its summaries were built: it has none.
	return nil, ErrGroupNotFound.WithMetadata("groupId", req.GetGroupId())
}

func (x *server) GetSystemAnalytics(ctx context.Context, req *analyticsv1.GetSystemAnalyticsRequest) (*analyticsv1.GetSystemAnalyticsResponse, error) {
	return x.svc.systemAnalytics(ctx, req)
}

func (x *server) GetPlatformAnalytics(ctx context.Context, req *analyticsv1.GetPlatformAnalyticsRequest) (*analyticsv1.GetPlatformAnalyticsResponse, error) {
	return x.svc.platformAnalytics(ctx, req)
}

func (x *server) GetComponentsHealth(ctx context.Context, _ *analyticsv1.GetComponentsHealthRequest) (*analyticsv1.GetComponentsHealthResponse, error) {
	return x.svc.componentsHealth(ctx), nil
}

func (x *server) RetryFinalization(ctx context.Context, req *analyticsv1.RetryFinalizationRequest) (*analyticsv1.RetryFinalizationResponse, error) {
	a, err := x.svc.retryFinalization(ctx, req.GetSessionId())
	if err != nil {
		return nil, err
	}
	return &analyticsv1.RetryFinalizationResponse{Analytics: a}, nil
}

// sessionAnalytics answers a session's analytics: the stored ones once finalized, else computed
// from the live measures (status live, finalizing or failed).
func (s *Service) sessionAnalytics(ctx context.Context, sessionID string, acc sessionAccess) (*analyticsv1.SessionAnalytics, error) {
	f, found, err := s.store.Finalization(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	if found && f.Status == statusFinalized {
		js, ok, err := s.store.FinalAnalytics(ctx, sessionID)
		if err != nil {
			return nil, err
		}
		if ok {
			a := &analyticsv1.SessionAnalytics{}
			if err := protojson.Unmarshal(js, a); err != nil {
				return nil, fmt.Errorf("analytics: decoding the finalized analytics of %s: %w", sessionID, err)
			}
			return a, nil
		}
	}
	groups, err := s.store.Groups(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	members, err := s.store.Members(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	a := computeAnalytics(computeInput{SessionID: sessionID, Context: acc.sess, State: acc.state, Groups: groups, Members: members, Now: s.now()})
	a.Status = statusLive
	if found {
		a.Status, a.FailureReason = f.Status, f.FailureReason
	}
	return a, nil
}

// summaries returns a session's summaries phase. A finalized session whose summaries were never
// built (summaries were off when it ended) gets them built now; a session whose finalization failed
// gets FINALIZATION_FAILED, its summaries being blocked on an admin's retry; a failed phase
// SUMMARIES_FAILED.
func (s *Service) summaries(ctx context.Context, sessionID string, acc sessionAccess) (SummarySet, error) {
	f, found, err := s.store.Finalization(ctx, sessionID)
	if err != nil {
		return SummarySet{}, err
	}
	switch {
	case !found || f.Status == statusFinalizing:
		return SummarySet{Status: summaryPending}, nil
	case f.Status == statusFailed:
		return SummarySet{}, ErrAnalyticsFailed
	case f.SummaryStatus == "":
		if err := s.restartSummaries(ctx, sessionID, acc); err != nil {
			return SummarySet{}, err
		}
	case f.SummaryStatus == summaryFailed:
		return SummarySet{}, ErrSummariesFailed
	}
	set, err := s.store.Summaries(ctx, sessionID)
	if err != nil {
		return SummarySet{}, err
	}
	if set.Status == "" {
		set.Status = summaryPending
	}
	return set, nil
}

// restartSummaries starts building a finalized session's summaries (again).
func (s *Service) restartSummaries(ctx context.Context, sessionID string, acc sessionAccess) error {
	js, found, err := s.store.FinalAnalytics(ctx, sessionID)
	if err != nil || !found {
		return err
	}
	a := &analyticsv1.SessionAnalytics{}
	if err := protojson.Unmarshal(js, a); err != nil {
		return fmt.Errorf("analytics: decoding the finalized analytics of %s: %w", sessionID, err)
	}
	now, owner := s.now(), s.owner()
	ok, err := s.store.RestartSummaries(ctx, sessionID, owner, groupNames(a), now, now.Add(s.cfg.FinalizeLease))
	if err != nil || !ok {
		return err
	}
	sess := acc.sess
	s.spawn(func(ctx context.Context) { s.buildSummaries(ctx, sessionID, owner, sess) })
	return nil
}

// groupOfSession reports whether groupID is a group of the session.
func (s *Service) groupOfSession(ctx context.Context, sessionID, groupID string, acc sessionAccess) (bool, error) {
	if acc.sess != nil {
		for _, g := range acc.sess.GetGroups() {
			if g.GetId() == groupID {
				return true, nil
			}
		}
	}
	groups, err := s.store.Groups(ctx, sessionID)
	if err != nil {
		return false, err
	}
	for _, g := range groups {
		if g.GroupID == groupID {
			return true, nil
		}
	}
	return false, nil
}
