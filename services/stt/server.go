// Package stt is the stt service: in-memory audio windows transcribed through an OpenAI-compatible Whisper endpoint.
package stt

import (
	"google.golang.org/grpc"

	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
)

// Server is the stt service's gRPC server. Its RPCs are built by the STT service issue; until then the
// embedded Unimplemented server answers UNIMPLEMENTED (with the server's not-built-yet note).
type Server struct {
	sttv1.UnimplementedSttServiceServer
}

var _ sttv1.SttServiceServer = (*Server)(nil)

// New returns the stt server.
func New() *Server { return &Server{} }

// Register registers the server's service.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	sttv1.RegisterSttServiceServer(r, s)
}

// ServiceNames are the gRPC services this package serves (for health and reflection).
func ServiceNames() []string {
	return []string{sttv1.SttService_ServiceDesc.ServiceName}
}
