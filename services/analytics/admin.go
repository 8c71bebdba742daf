package analytics

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/authn"
)

// defaultPeriod is the period of the admin analytics when the request names no start.
const defaultPeriod = 30 * 24 * time.Hour

// healthTimeout bounds each component probe.
const healthTimeout = time.Second

// Component statuses (ComponentHealth.status).
const (
	healthHealthy   = "healthy"
	healthDegraded  = "degraded"
	healthUnhealthy = "unhealthy"
	healthUnknown   = "unknown"
)

// since resolves a request's period start: default 30 days ago; never in the future.
func (s *Service) since(ts *timestamppb.Timestamp) (time.Time, error) {
	now := s.now()
	if ts == nil {
		return now.Add(-defaultPeriod), nil
	}
	t := ts.AsTime()
	if t.After(now) {
		return time.Time{}, errSinceInFuture
	}
	return t, nil
}

func toSchool(st SchoolStats) *analyticsv1.SchoolAnalytics {
	return &analyticsv1.SchoolAnalytics{
		SchoolId: st.SchoolID, TeacherCount: int32(st.Teachers), SessionCount: int32(st.Sessions),
		ActiveSessionCount: int32(st.ActiveSessions), StudentCount: int32(st.Students),
		AverageEngagementScore: round2(st.AverageEngagement), AverageParticipationRate: round2(st.AverageParticipation),
		TranscriptionMinutes: round2(st.TranscribedSeconds / 60), InsightCount: int32(st.Insights),
	}
}

// systemAnalytics answers the caller's school's analytics (admins; a super admin's own school).
func (s *Service) systemAnalytics(ctx context.Context, req *analyticsv1.GetSystemAnalyticsRequest) (*analyticsv1.GetSystemAnalyticsResponse, error) {
	p, err := authn.Require(ctx, authn.RoleAdmin, authn.RoleSuperAdmin)
	if err != nil {
		return nil, err
	}
	if p.SchoolID == "" {
		return nil, ErrSchoolRequired
	}
	since, err := s.since(req.GetSince())
	if err != nil {
		return nil, err
	}
	stats, err := s.store.SchoolStats(ctx, since, p.SchoolID)
	if err != nil {
		return nil, err
	}
	school := &analyticsv1.SchoolAnalytics{SchoolId: p.SchoolID}
	if len(stats) == 1 {
		school = toSchool(stats[0])
	}
	return &analyticsv1.GetSystemAnalyticsResponse{School: school, Since: timestamppb.New(since)}, nil
}

// platformAnalytics answers every school's analytics (super admins). School names belong to the
// auth service and are left empty.
func (s *Service) platformAnalytics(ctx context.Context, req *analyticsv1.GetPlatformAnalyticsRequest) (*analyticsv1.GetPlatformAnalyticsResponse, error) {
	if _, err := authn.Require(ctx, authn.RoleSuperAdmin); err != nil {
		return nil, err
	}
	since, err := s.since(req.GetSince())
	if err != nil {
		return nil, err
	}
	stats, err := s.store.SchoolStats(ctx, since, "")
	if err != nil {
		return nil, err
	}
	resp := &analyticsv1.GetPlatformAnalyticsResponse{Since: timestamppb.New(since), SchoolCount: int32(len(stats))}
	for _, st := range stats {
		resp.Schools = append(resp.Schools, toSchool(st))
		resp.SessionCount += int32(st.Sessions)
		resp.ActiveSessionCount += int32(st.ActiveSessions)
		resp.StudentCount += int32(st.Students)
	}
	return resp, nil
}

// componentsHealth probes every component with the standard gRPC health check (at most a second
// each, in parallel) and reports the service's own figures, its database and its bus. The overall
// status is healthy when everything is, unhealthy when the database is not, degraded otherwise.
func (s *Service) componentsHealth(ctx context.Context) *analyticsv1.GetComponentsHealthResponse {
	out := make([]*analyticsv1.ComponentHealth, len(s.components))
	var wg sync.WaitGroup
	for i, c := range s.components {
		wg.Go(func() { out[i] = probe(ctx, c) })
	}

	own := &analyticsv1.ComponentHealth{Name: "analytics", Status: healthHealthy, Figures: map[string]float64{
		"events_processed":  float64(s.eventsApplied.Load()),
		"event_lag_seconds": math.Float64frombits(s.lastLag.Load()),
	}}
	db := &analyticsv1.ComponentHealth{Name: "database", Status: healthHealthy}
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, healthTimeout)
	err := s.store.Ping(pctx)
	db.LatencyMs = ms(time.Since(start))
	if err == nil {
		var f Figures
		if f, err = s.store.Figures(pctx); err == nil {
			own.Figures["active_sessions"] = float64(f.ActiveSessions)
			own.Figures["finalized_sessions"] = float64(f.Finalized)
			own.Figures["failed_finalizations"] = float64(f.Failed)
			own.Figures["finalizing_sessions"] = float64(f.Pending)
		}
	}
	cancel()
	if err != nil {
		db.Status, db.Message = healthUnhealthy, "database unreachable"
		own.Status, own.Message = healthDegraded, "figures unavailable: database unreachable"
	}

	b := &analyticsv1.ComponentHealth{Name: "bus", Status: healthHealthy, Figures: map[string]float64{}}
	start = time.Now()
	bctx, cancel := context.WithTimeout(ctx, healthTimeout)
	n, err := s.bus.Len(bctx, s.cfg.EventsTopic)
	cancel()
	b.LatencyMs = ms(time.Since(start))
	if err != nil {
		b.Status, b.Message = healthUnhealthy, "bus unreachable"
	} else {
		b.Figures["analytics_topic_length"] = float64(n)
	}
	wg.Wait()

	resp := &analyticsv1.GetComponentsHealthResponse{Status: healthHealthy, Timestamp: timestamppb.New(s.now())}
	resp.Components = append(resp.Components, own, db, b)
	resp.Components = append(resp.Components, out...)
	for _, c := range resp.Components {
		if c.Status != healthHealthy {
			resp.Status = healthDegraded
		}
	}
	if db.Status != healthHealthy {
		resp.Status = healthUnhealthy
	}
	return resp
}

// probe runs one component's health check.
func probe(ctx context.Context, c Component) *analyticsv1.ComponentHealth {
	h := &analyticsv1.ComponentHealth{Name: c.Name}
	pctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	start := time.Now()
	resp, err := healthpb.NewHealthClient(c.Conn).Check(pctx, &healthpb.HealthCheckRequest{Service: c.Service})
	h.LatencyMs = ms(time.Since(start))
	switch {
	case err != nil && status.Code(err) == codes.NotFound:
		h.Status, h.Message = healthUnknown, "health service does not know "+c.Service
	case err != nil:
		h.Status, h.Message = healthUnhealthy, "unreachable: "+status.Code(err).String()
	case resp.GetStatus() == healthpb.HealthCheckResponse_SERVING:
		h.Status = healthHealthy
	default:
		h.Status, h.Message = healthUnhealthy, resp.GetStatus().String()
	}
	return h
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }

// retryFinalization finalizes a session again (admins of its school, super admins): a failed
// finalization, a stuck one (its claim ran out) or one that never happened. A finalized session
// answers its analytics without publishing again; when summaries are on and its summaries failed
// (or were never built) they are built again.
func (s *Service) retryFinalization(ctx context.Context, sessionID string) (*analyticsv1.SessionAnalytics, error) {
	p, acc, err := s.access(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	if p.Role != authn.RoleAdmin && p.Role != authn.RoleSuperAdmin {
		return nil, authn.ErrForbidden
	}
	f, found, err := s.store.Finalization(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	if found && f.Status == statusFinalized {
		if s.cfg.SummariesEnabled && (f.SummaryStatus == "" || f.SummaryStatus == summaryFailed) {
			if err := s.restartSummaries(ctx, sessionID, acc); err != nil {
				return nil, err
			}
		}
		return s.sessionAnalytics(ctx, sessionID, acc)
	}
	if !acc.ended() && !(found && f.Status != statusFinalized) {
		return nil, ErrSessionNotEnded
	}
	res, err := s.finalize(ctx, sessionID, true)
	if err != nil {
		return nil, err
	}
	s.auditRetry(ctx, p, acc, sessionID, res)
	switch {
	case res.Outcome == Claimed && res.Analytics != nil:
		return res.Analytics, nil
	case res.Outcome == Claimed:
		return nil, ErrAnalyticsFailed.WithMetadata("failureReason", res.FailureReason)
	case res.Outcome == InProgress:
		return nil, ErrFinalizationInProgress
	}
	// Finalized (or failed) by another replica between the look and the claim.
	a, err := s.sessionAnalytics(ctx, sessionID, acc)
	if err != nil {
		return nil, err
	}
	if a.GetStatus() == statusFailed {
		return nil, ErrAnalyticsFailed.WithMetadata("failureReason", a.GetFailureReason())
	}
	return a, nil
}

func (s *Service) auditRetry(ctx context.Context, p authn.Principal, acc sessionAccess, sessionID string, res finalizeResult) {
	if s.audit == nil {
		return
	}
	outcome := "finalized"
	switch {
	case res.Outcome != Claimed:
		outcome = "not claimed"
	case res.Analytics == nil:
		outcome = "failed: " + res.FailureReason
	}
	s.audit.Log(ctx, auditlog.Event{
		ActorID: p.Subject, ActorType: actorType(p.Role), EventType: "analytics.finalization_retried", Category: auditlog.CategorySession,
		ResourceType: "session_analytics", ResourceID: sessionID, SchoolID: acc.schoolID, SessionID: sessionID,
		Description: fmt.Sprintf("retried the session's analytics finalization: %s", outcome),
		Metadata:    map[string]string{"outcome": outcome},
	})
}
