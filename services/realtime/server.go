// Package realtime is the realtime service: the Socket.IO edge (namespaces /sessions and /guidance).
package realtime

import (
	"google.golang.org/grpc"

	realtimev1 "github.com/classwaves/classwaves/pkg/api/classwaves/realtime/v1"
)

// Server is the realtime service's gRPC server. Its RPCs are built by the Realtime edge issue; until then the
// embedded Unimplemented server answers UNIMPLEMENTED (with the server's not-built-yet note).
type Server struct {
	realtimev1.UnimplementedRealtimeServiceServer
}

var _ realtimev1.RealtimeServiceServer = (*Server)(nil)

// New returns the realtime server.
func New() *Server { return &Server{} }

// Register registers the server's service.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	realtimev1.RegisterRealtimeServiceServer(r, s)
}

// ServiceNames are the gRPC services this package serves (for health and reflection).
func ServiceNames() []string {
	return []string{realtimev1.RealtimeService_ServiceDesc.ServiceName}
}
