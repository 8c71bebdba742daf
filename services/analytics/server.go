// Package analytics is the analytics service: live group metrics, end-of-session finalization and summaries.
package analytics

import (
	"google.golang.org/grpc"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
)

// Server is the analytics service's gRPC server. Its RPCs are built by the Analytics service issue; until then the
// embedded Unimplemented server answers UNIMPLEMENTED (with the server's not-built-yet note).
type Server struct {
	analyticsv1.UnimplementedAnalyticsServiceServer
}

var _ analyticsv1.AnalyticsServiceServer = (*Server)(nil)

// New returns the analytics server.
func New() *Server { return &Server{} }

// Register registers the server's service.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	analyticsv1.RegisterAnalyticsServiceServer(r, s)
}

// ServiceNames are the gRPC services this package serves (for health and reflection).
func ServiceNames() []string {
	return []string{analyticsv1.AnalyticsService_ServiceDesc.ServiceName}
}
