// Package audit is the audit service: the compliance audit log (FERPA/COPPA).
package audit

import (
	"google.golang.org/grpc"

	auditv1 "github.com/classwaves/classwaves/pkg/api/classwaves/audit/v1"
)

// Server is the audit service's gRPC server. Its RPCs are built by the Platform (audit log) issue; until then the
// embedded Unimplemented server answers UNIMPLEMENTED (with the server's not-built-yet note).
type Server struct {
	auditv1.UnimplementedAuditServiceServer
}

var _ auditv1.AuditServiceServer = (*Server)(nil)

// New returns the audit server.
func New() *Server { return &Server{} }

// Register registers the server's service.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	auditv1.RegisterAuditServiceServer(r, s)
}

// ServiceNames are the gRPC services this package serves (for health and reflection).
func ServiceNames() []string {
	return []string{auditv1.AuditService_ServiceDesc.ServiceName}
}
