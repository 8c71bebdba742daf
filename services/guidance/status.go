package guidance

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
)

// Tier and health states.
const (
	tierOnline   = "online"
	tierDegraded = "degraded"
	tierOffline  = "offline"

	healthHealthy   = "healthy"
	healthDegraded  = "degraded"
	healthUnhealthy = "unhealthy"
)

// healthPingTimeout bounds the database check of GetGuidanceHealth.
const healthPingTimeout = 2 * time.Second

// tierStatus reports one tier: offline when the service is not running, degraded when its last
// analysis failed, online otherwise. The counters are this process's.
func (s *Service) tierStatus(tier int) *guidancev1.TierStatus {
	st, a, endpoint, interval := &s.t1, s.tier1.Name(), s.cfg.LLM.Tier1Endpoint != "", s.cfg.Tier1Interval
	if tier == 2 {
		st, a, endpoint, interval = &s.t2, s.tier2.Name(), s.cfg.LLM.Tier2Endpoint != "", s.cfg.Tier2Interval
	}
	total, failures, last, lastFailed := st.snapshot()
	out := &guidancev1.TierStatus{
		Status: tierOnline, Analyzer: analyzerKind(a), EndpointConfigured: endpoint,
		AnalysesTotal: total, FailuresTotal: failures, IntervalSeconds: interval.Seconds(), QueueDepth: st.queue.Load(),
	}
	if !last.IsZero() {
		out.LastRunAt = timestamppb.New(last)
	}
	switch {
	case !s.running():
		out.Status = tierOffline
	case lastFailed:
		out.Status = tierDegraded
	}
	return out
}

// health is GetGuidanceHealth: unhealthy when the service is not running or its database does
// not answer, degraded when a tier is degraded, healthy otherwise.
func (s *Service) health(ctx context.Context) *guidancev1.GetGuidanceHealthResponse {
	out := &guidancev1.GetGuidanceHealthResponse{
		Status: healthHealthy, Tier1: s.tierStatus(1), Tier2: s.tierStatus(2),
		PromptsDeliveredTotal: s.promptsDelivered.Load(), EmitsFailedTotal: s.emitsFailedTotal.Load(),
		Timestamp: timestamppb.New(s.now()),
	}
	pctx, cancel := context.WithTimeout(ctx, healthPingTimeout)
	defer cancel()
	switch {
	case !s.running() || s.store.Ping(pctx) != nil:
		out.Status = healthUnhealthy
	case out.Tier1.GetStatus() != tierOnline || out.Tier2.GetStatus() != tierOnline:
		out.Status = healthDegraded
	}
	return out
}
