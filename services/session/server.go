// Package session is the session service: sessions, groups, rosters and the session lifecycle.
package session

import (
	"google.golang.org/grpc"

	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
)

// Server is the session service's gRPC server. Its RPCs are built by the Session service issue; until then the
// embedded Unimplemented server answers UNIMPLEMENTED (with the server's not-built-yet note).
type Server struct {
	sessionv1.UnimplementedSessionServiceServer
}

var _ sessionv1.SessionServiceServer = (*Server)(nil)

// New returns the session server.
func New() *Server { return &Server{} }

// Register registers the server's service.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	sessionv1.RegisterSessionServiceServer(r, s)
}

// ServiceNames are the gRPC services this package serves (for health and reflection).
func ServiceNames() []string {
	return []string{sessionv1.SessionService_ServiceDesc.ServiceName}
}
