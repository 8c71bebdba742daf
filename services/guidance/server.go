// Package guidance is the guidance service: Tier 1 and Tier 2 discussion analysis and teacher prompts.
package guidance

import (
	"google.golang.org/grpc"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
)

// Server is the guidance service's gRPC server. Its RPCs are built by the Guidance service issue; until then the
// embedded Unimplemented server answers UNIMPLEMENTED (with the server's not-built-yet note).
type Server struct {
	guidancev1.UnimplementedGuidanceServiceServer
}

var _ guidancev1.GuidanceServiceServer = (*Server)(nil)

// New returns the guidance server.
func New() *Server { return &Server{} }

// Register registers the server's service.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	guidancev1.RegisterGuidanceServiceServer(r, s)
}

// ServiceNames are the gRPC services this package serves (for health and reflection).
func ServiceNames() []string {
	return []string{guidancev1.GuidanceService_ServiceDesc.ServiceName}
}
