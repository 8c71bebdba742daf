package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/traceid"
)

// interceptors holds what the interceptor chain needs; its methods are the interceptors.
type interceptors struct {
	logger      *slog.Logger
	validator   protovalidate.Validator
	unbuiltNote func(fullMethod string) string
}

// rpcError is what the error-mapping and recovery interceptors return: the status the client
// receives plus what only the log may see. grpc-go sends st verbatim because rpcError implements
// GRPCStatus directly (status.FromError would otherwise rewrite the message of a wrapped status).
type rpcError struct {
	st    *status.Status
	cause error  // the handler's error or the panic value; logged, never sent
	stack []byte // set for panics
}

func (e *rpcError) Error() string              { return e.st.Err().Error() }
func (e *rpcError) GRPCStatus() *status.Status { return e.st }
func (e *rpcError) Unwrap() error              { return e.cause }

// serverStream overrides the context of a grpc.ServerStream.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }

// --- trace id ---

// The trace id goes back to the caller as response header metadata when the RPC sends a
// response, and as trailer metadata otherwise. A failure must stay trailers-only: under gRFC A6 a
// client treats an RPC whose headers arrived as committed and will not retry it, so a header on
// an UNAVAILABLE answer would defeat grpcclient's retry policy.

// withTraceID reads the caller's x-trace-id (refusing malformed ones), or mints one, and returns
// a context carrying it plus the metadata that echoes it.
func withTraceID(ctx context.Context) (context.Context, metadata.MD) {
	md, _ := metadata.FromIncomingContext(ctx)
	id := traceid.Pick(md.Get(traceid.MetadataKey)...)
	return traceid.NewContext(ctx, id), metadata.Pairs(traceid.MetadataKey, id)
}

func (ic *interceptors) unaryTraceID(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, echo := withTraceID(ctx)
	resp, err := handler(ctx, req)
	// SetHeader fails when the handler already sent headers itself; the trailer still carries the id.
	if err != nil || grpc.SetHeader(ctx, echo) != nil {
		_ = grpc.SetTrailer(ctx, echo)
	}
	return resp, err
}

func (ic *interceptors) streamTraceID(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, echo := withTraceID(ss.Context())
	ts := &traceIDStream{serverStream: serverStream{ServerStream: ss, ctx: ctx}, echo: echo}
	err := handler(srv, ts)
	if !ts.headerSet.Load() {
		ss.SetTrailer(echo)
	}
	return err
}

// traceIDStream adds the trace id to the response headers when the handler first sends, so a
// stream that fails before sending anything stays trailers-only (and retryable).
type traceIDStream struct {
	serverStream
	echo      metadata.MD
	headerSet atomic.Bool
}

func (s *traceIDStream) SendMsg(m any) error {
	if !s.headerSet.Load() && s.ServerStream.SetHeader(s.echo) == nil {
		s.headerSet.Store(true)
	}
	return s.ServerStream.SendMsg(m)
}

func (s *traceIDStream) SendHeader(md metadata.MD) error {
	if !s.headerSet.Load() {
		md = metadata.Join(md, s.echo)
	}
	err := s.ServerStream.SendHeader(md)
	if err == nil {
		s.headerSet.Store(true)
	}
	return err
}

// --- logging ---

// quietMethods are logged at debug level when they succeed: probes call them every few seconds.
var quietMethods = map[string]bool{
	"/grpc.health.v1.Health/Check":                                   true,
	"/grpc.health.v1.Health/Watch":                                   true,
	"/grpc.health.v1.Health/List":                                    true,
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      true,
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": true,
}

// logRPC writes the one line every RPC gets: method, code, durationMs and requestId; for failures
// also reason, the client message, the cause and, after a panic, the stack. Client mistakes log
// at warn, server faults at error.
func (ic *interceptors) logRPC(ctx context.Context, method string, start time.Time, err error) {
	st := status.Convert(err)
	level := levelFor(st.Code())
	if level == slog.LevelInfo && quietMethods[method] {
		level = slog.LevelDebug
	}
	if !ic.logger.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("code", st.Code().String()),
		slog.Float64("durationMs", float64(time.Since(start).Microseconds())/1000),
		slog.String("requestId", traceid.FromContext(ctx)),
	}
	if err != nil {
		attrs = append(attrs, slog.String("reason", apperr.ReasonOf(st)), slog.String("message", st.Message()))
		if re, ok := errors.AsType[*rpcError](err); ok {
			if re.cause != nil {
				attrs = append(attrs, slog.String("error", re.cause.Error()))
			}
			if re.stack != nil {
				attrs = append(attrs, slog.String("stack", string(re.stack)))
			}
		}
	}
	ic.logger.LogAttrs(ctx, level, "grpc request", attrs...)
}

// levelFor says who is at fault: the server (error), the caller (warn) or nobody (info).
func levelFor(c codes.Code) slog.Level {
	switch c {
	case codes.OK:
		return slog.LevelInfo
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unavailable, codes.DeadlineExceeded:
		return slog.LevelError
	default:
		return slog.LevelWarn
	}
}

func (ic *interceptors) unaryLogging(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	ic.logRPC(ctx, info.FullMethod, start, err)
	return resp, err
}

func (ic *interceptors) streamLogging(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	ic.logRPC(ss.Context(), info.FullMethod, start, err)
	return err
}

// --- panic recovery ---

// recovered turns a panic value into the Internal answer; the value and stack go to the log.
func recovered(r any) error {
	return &rpcError{
		st:    apperr.New(codes.Internal, apperr.ReasonInternal, apperr.InternalMessage).GRPCStatus(),
		cause: fmt.Errorf("panic: %v", r),
		stack: debug.Stack(),
	}
}

func (ic *interceptors) unaryRecovery(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, recovered(r)
		}
	}()
	return handler(ctx, req)
}

func (ic *interceptors) streamRecovery(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = recovered(r)
		}
	}()
	return handler(srv, ss)
}

// --- error mapping ---

// mapError is the single place a handler's error becomes the client's status (apperr.ToStatus),
// with the unbuilt note applied. The original error stays attached for the log.
func (ic *interceptors) mapError(method string, err error) error {
	if err == nil {
		return nil
	}
	st := apperr.ToStatus(err)
	if st.Code() == codes.Unimplemented && ic.unbuiltNote != nil {
		if note := ic.unbuiltNote(method); note != "" {
			st = apperr.New(codes.Unimplemented, apperr.ReasonNotImplemented,
				method+" is not built yet: "+note).GRPCStatus()
		}
	}
	return &rpcError{st: st, cause: err}
}

func (ic *interceptors) unaryErrors(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		return nil, ic.mapError(info.FullMethod, err)
	}
	return resp, nil
}

func (ic *interceptors) streamErrors(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return ic.mapError(info.FullMethod, handler(srv, ss))
}

// --- validation ---

// validateRequest checks msg against its protovalidate rules. A violation is an InvalidArgument
// *apperr.Error with reason VALIDATION_ERROR, the message "invalid request: <violations>" and one
// field violation per broken rule; a rule that cannot be evaluated is a server fault (Internal).
func validateRequest(v protovalidate.Validator, msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil
	}
	err := v.Validate(m)
	if err == nil {
		return nil
	}
	verr, ok := errors.AsType[*protovalidate.ValidationError](err)
	if !ok {
		return apperr.New(codes.Internal, apperr.ReasonInternal, apperr.InternalMessage).
			WithCause(fmt.Errorf("validate %s: %w", m.ProtoReflect().Descriptor().FullName(), err))
	}
	parts := make([]string, 0, len(verr.Violations))
	fields := make([]apperr.FieldViolation, 0, len(verr.Violations))
	for _, viol := range verr.Violations {
		parts = append(parts, viol.String())
		desc := viol.Proto.GetMessage()
		if desc == "" {
			desc = "[" + viol.Proto.GetRuleId() + "]"
		}
		fields = append(fields, apperr.FieldViolation{
			Field:       protovalidate.FieldPathString(viol.Proto.GetField()),
			Description: desc,
		})
	}
	ae := apperr.New(codes.InvalidArgument, apperr.ReasonValidation, "invalid request: "+strings.Join(parts, "; "))
	ae.Fields = fields
	return ae
}

func (ic *interceptors) unaryValidation(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := validateRequest(ic.validator, req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (ic *interceptors) streamValidation(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &validatingStream{ServerStream: ss, validator: ic.validator})
}

// validatingStream validates every message the client sends on a stream before the handler sees
// it. The handler gets the *apperr.Error from RecvMsg and, returning it, answers InvalidArgument.
type validatingStream struct {
	grpc.ServerStream
	validator protovalidate.Validator
}

func (s *validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return validateRequest(s.validator, m)
}
