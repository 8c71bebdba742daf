// Package grpcserver builds the gRPC server every ClassWaves service runs on: OpenTelemetry stats,
// trace id propagation, one log line per RPC, panic recovery, error mapping through apperr,
// protovalidate validation of every request, standard health and reflection, and a shutdown that
// goes not-ready before it drains.
//
// Services register on GRPC() and report readiness through Health(); the interceptors apply to
// every service on the server, so a handler only calls the domain and returns its error.
package grpcserver

import (
	"context"
	"log/slog"
	"net"
	"time"

	"buf.build/go/protovalidate"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// Config sizes the server. Zero fields take the DefaultConfig value.
type Config struct {
	// MaxRecvMsgSize is the largest request message accepted, in bytes. The stt audio stream
	// carries audio chunks and needs more than the 4 MiB default.
	MaxRecvMsgSize int
	// KeepaliveMinTime is the shortest interval at which a client may ping; a client pinging more
	// often is disconnected (too_many_pings). It must stay below the client ping interval
	// (grpcclient pings every 30s).
	KeepaliveMinTime time.Duration
	// KeepaliveTime is how long a connection may be idle before the server pings it, so dead
	// peers (a vanished realtime edge holding an audio stream) are noticed.
	KeepaliveTime time.Duration
	// KeepaliveTimeout is how long the server waits for a ping answer before closing.
	KeepaliveTimeout time.Duration
}

// DefaultConfig returns the defaults: 4 MiB messages, clients may ping every 10s (also without
// active streams), the server pings idle connections after 2m and gives them 20s to answer.
func DefaultConfig() Config {
	return Config{
		MaxRecvMsgSize:   4 << 20,
		KeepaliveMinTime: 10 * time.Second,
		KeepaliveTime:    2 * time.Minute,
		KeepaliveTimeout: 20 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxRecvMsgSize <= 0 {
		c.MaxRecvMsgSize = d.MaxRecvMsgSize
	}
	if c.KeepaliveMinTime <= 0 {
		c.KeepaliveMinTime = d.KeepaliveMinTime
	}
	if c.KeepaliveTime <= 0 {
		c.KeepaliveTime = d.KeepaliveTime
	}
	if c.KeepaliveTimeout <= 0 {
		c.KeepaliveTimeout = d.KeepaliveTimeout
	}
	return c
}

// Option changes how New builds the server.
type Option func(*options)

type options struct {
	unbuiltNote func(fullMethod string) string
	validator   protovalidate.Validator
	otel        []otelgrpc.Option
	grpc        []grpc.ServerOption
	authUnary   grpc.UnaryServerInterceptor
	authStream  grpc.StreamServerInterceptor
}

// WithAuth installs the authentication and authorization interceptors. They run after error
// mapping and before validation, so an unauthenticated caller learns nothing about the request
// shape an RPC expects (401 before 400), and their errors take the same path to a status.
func WithAuth(unary grpc.UnaryServerInterceptor, stream grpc.StreamServerInterceptor) Option {
	return func(o *options) { o.authUnary, o.authStream = unary, stream }
}

// WithUnbuiltNote makes an Unimplemented answer explanatory: when a handler answers
// codes.Unimplemented (as the generated Unimplemented*Server embeds do for RPCs whose issue has not
// landed) and note(fullMethod) is not empty, the client receives Unimplemented, reason
// NOT_IMPLEMENTED, message "<fullMethod> is not built yet: <note>".
func WithUnbuiltNote(note func(fullMethod string) string) Option {
	return func(o *options) { o.unbuiltNote = note }
}

// WithValidator replaces protovalidate.GlobalValidator, for example to pass validator options.
func WithValidator(v protovalidate.Validator) Option {
	return func(o *options) { o.validator = v }
}

// WithOTelOptions passes options (tracer or meter provider, filters) to the otelgrpc stats
// handler. Without them it uses the global providers.
func WithOTelOptions(opts ...otelgrpc.Option) Option {
	return func(o *options) { o.otel = append(o.otel, opts...) }
}

// WithServerOptions adds grpc.ServerOptions after the built-in ones. Interceptors added with
// grpc.ChainUnaryInterceptor or grpc.ChainStreamInterceptor run inside the built-in chain, after
// validation, so they see a trace id and valid requests, and their errors are mapped and logged.
func WithServerOptions(opts ...grpc.ServerOption) Option {
	return func(o *options) { o.grpc = append(o.grpc, opts...) }
}

// Server is a *grpc.Server with its health service, ready to have services registered.
type Server struct {
	grpc   *grpc.Server
	health *health.Server
}

// New builds the server. Interceptors run, outermost first: trace id, logging, panic recovery,
// error mapping (with the unbuilt note), authentication (WithAuth), validation, then the handler. Logging sits outside
// recovery so a panicking RPC still gets its one log line (with the stack); error mapping sits
// outside validation so validation errors take the same single path to a status.
//
// Requests are decoded by the proto codec, except a ReusingDecoder, which decodes itself.
//
// The trace id (incoming x-trace-id, else a new one) is in the handler's context and goes back
// as x-trace-id response header metadata, or trailer metadata when the RPC fails before sending
// (so the failure stays retryable by clients, see gRFC A6).
func New(cfg Config, logger *slog.Logger, opts ...Option) *Server {
	cfg = cfg.withDefaults()
	o := options{validator: protovalidate.GlobalValidator}
	for _, opt := range opts {
		opt(&o)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ic := &interceptors{logger: logger, validator: o.validator, unbuiltNote: o.unbuiltNote}

	unary := []grpc.UnaryServerInterceptor{ic.unaryTraceID, ic.unaryLogging, ic.unaryRecovery, ic.unaryErrors}
	stream := []grpc.StreamServerInterceptor{ic.streamTraceID, ic.streamLogging, ic.streamRecovery, ic.streamErrors}
	if o.authUnary != nil {
		unary = append(unary, o.authUnary)
	}
	if o.authStream != nil {
		stream = append(stream, o.authStream)
	}
	unary = append(unary, ic.unaryValidation)
	stream = append(stream, ic.streamValidation)
	serverOpts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(newCodec()),
		grpc.StatsHandler(otelgrpc.NewServerHandler(o.otel...)),
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             cfg.KeepaliveMinTime,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    cfg.KeepaliveTime,
			Timeout: cfg.KeepaliveTimeout,
		}),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
	gs := grpc.NewServer(append(serverOpts, o.grpc...)...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	return &Server{grpc: gs, health: hs}
}

// GRPC returns the underlying server for registering services.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Health returns the standard grpc.health.v1 server registered on this server. The overall
// status (service "") starts SERVING.
func (s *Server) Health() *health.Server { return s.health }

// SetServing reports service (its full proto name, e.g. "classwaves.session.v1.SessionService")
// as SERVING or NOT_SERVING. After Shutdown began, changes are ignored.
func (s *Server) SetServing(service string, serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus(service, st)
}

// Serve accepts connections on lis until Shutdown. It returns nil after Shutdown.
func (s *Server) Serve(lis net.Listener) error {
	return s.grpc.Serve(lis)
}

// Shutdown first reports every service NOT_SERVING (so load balancers and the gateway's /ready
// stop sending work), then stops accepting and waits for in-flight RPCs. When ctx ends first it
// closes every connection and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
		return ctx.Err()
	}
}
