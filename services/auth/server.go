// Package auth is the auth service: Google Workspace sign-in, access and refresh tokens, JWKS, and
// school administration.
package auth

import (
	"google.golang.org/grpc"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
)

// Server is the auth service's gRPC server. Its RPCs are built by the Auth service issue; until then
// the embedded Unimplemented servers answer UNIMPLEMENTED (with the server's not-built-yet note).
type Server struct {
	authv1.UnimplementedAuthServiceServer
	authv1.UnimplementedAdminServiceServer
}

var (
	_ authv1.AuthServiceServer  = (*Server)(nil)
	_ authv1.AdminServiceServer = (*Server)(nil)
)

// New returns the auth server.
func New() *Server { return &Server{} }

// Register registers the server's services.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	authv1.RegisterAuthServiceServer(r, s)
	authv1.RegisterAdminServiceServer(r, s)
}

// ServiceNames are the gRPC services this package serves (for health and reflection).
func ServiceNames() []string {
	return []string{authv1.AuthService_ServiceDesc.ServiceName, authv1.AdminService_ServiceDesc.ServiceName}
}
