package gateway

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	systemv1 "github.com/classwaves/classwaves/pkg/api/classwaves/system/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
)

// ReadinessFunc reports the status of each component the process depends on, keyed by name, with
// "SERVING" meaning ready.
type ReadinessFunc func(ctx context.Context) []*systemv1.ComponentStatus

// System answers /api/v1/health and /api/v1/ready.
type System struct {
	systemv1.UnimplementedSystemServiceServer
	started time.Time
	ready   ReadinessFunc
	now     func() time.Time
}

var _ systemv1.SystemServiceServer = (*System)(nil)

// ErrNotReady answers /api/v1/ready while a component is not serving (HTTP 503).
var ErrNotReady = apperr.New(codes.Unavailable, "NOT_READY", "service is not ready")

// NewSystem returns the probes' server; started is the process start time.
func NewSystem(started time.Time, ready ReadinessFunc) *System {
	return &System{started: started, ready: ready, now: time.Now}
}

// GetHealth is liveness: answering at all means healthy.
func (s *System) GetHealth(context.Context, *systemv1.GetHealthRequest) (*systemv1.GetHealthResponse, error) {
	now := s.now()
	return &systemv1.GetHealthResponse{
		Status:    "healthy",
		Timestamp: timestamppb.New(now),
		Uptime:    now.Sub(s.started).Seconds(),
	}, nil
}

// GetReadiness is ready only when every component serves; otherwise 503 NOT_READY with the
// components that are not serving in error.details.
func (s *System) GetReadiness(ctx context.Context, _ *systemv1.GetReadinessRequest) (*systemv1.GetReadinessResponse, error) {
	components := s.ready(ctx)
	notReady := ErrNotReady
	failed := false
	for _, c := range components {
		if c.GetStatus() != "SERVING" {
			failed = true
			notReady = notReady.WithMetadata(c.GetName(), c.GetStatus())
		}
	}
	if failed {
		return nil, notReady
	}
	return &systemv1.GetReadinessResponse{Status: "ready", Timestamp: timestamppb.New(s.now()), Components: components}, nil
}
