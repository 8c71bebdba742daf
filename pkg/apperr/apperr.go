// Package apperr is the one place where domain errors become gRPC statuses (and, through the
// gateway, REST error envelopes).
//
// A domain package declares its errors as sentinels built with New, for example
//
//	var ErrSessionNotFound = apperr.New(codes.NotFound, "SESSION_NOT_FOUND", "session not found")
//
// and returns them, optionally decorated: ErrSessionNotFound.WithCause(err).WithMetadata("sessionId", id).
// The builder methods copy, so a shared sentinel is never modified, and errors.Is(err,
// ErrSessionNotFound) still holds for the decorated copy because Is compares code and reason.
//
// The client sees Code, Reason (google.rpc.ErrorInfo.reason, the REST error.code), Message,
// Fields (google.rpc.BadRequest field violations) and Metadata. The cause is for the log only and
// is never sent (Tailscale tsweb: Msg for the client, Err for the log).
package apperr

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// Domain is the google.rpc.ErrorInfo domain of every error ClassWaves produces.
const Domain = "classwaves.app"

// Stable reasons used when an error carries no reason of its own. Reasons are UPPER_SNAKE and,
// once published, never change: REST clients branch on them (error.code).
const (
	ReasonValidation         = "VALIDATION_ERROR"
	ReasonNotFound           = "NOT_FOUND"
	ReasonAlreadyExists      = "ALREADY_EXISTS"
	ReasonForbidden          = "FORBIDDEN"
	ReasonUnauthorized       = "UNAUTHORIZED"
	ReasonFailedPrecondition = "FAILED_PRECONDITION"
	ReasonConflict           = "CONFLICT"
	ReasonRateLimited        = "RATE_LIMITED"
	ReasonNotImplemented     = "NOT_IMPLEMENTED"
	ReasonUnavailable        = "SERVICE_UNAVAILABLE"
	ReasonTimeout            = "TIMEOUT"
	ReasonCancelled          = "CANCELLED"
	ReasonOutOfRange         = "OUT_OF_RANGE"
	ReasonInternal           = "INTERNAL_ERROR"
)

// InternalMessage is the only message a client ever sees for an unexpected failure.
const InternalMessage = "internal error"

// FieldViolation names one request field that is wrong and says why. Field is the field path as
// protovalidate prints it, for example "title" or "groups[0].name".
type FieldViolation struct {
	Field       string
	Description string
}

// Error is a domain error with everything needed to answer a client safely. Build it with New;
// the zero value is not useful.
type Error struct {
	// Code is the gRPC code; it decides the HTTP status at the gateway.
	Code codes.Code
	// Reason is the stable UPPER_SNAKE identifier clients branch on.
	Reason string
	// Message is safe to show a user: it never contains internal detail.
	Message string
	// Fields lists request fields that are wrong (sent as google.rpc.BadRequest).
	Fields []FieldViolation
	// Metadata is sent as google.rpc.ErrorInfo.metadata; keep values free of personal data.
	Metadata map[string]string

	cause error
}

// New returns an error with the given code, stable reason and client-safe message.
func New(code codes.Code, reason, message string) *Error {
	return &Error{Code: code, Reason: reason, Message: message}
}

// clone returns a deep copy so builder methods never modify a shared sentinel.
func (e *Error) clone() *Error {
	c := *e
	c.Fields = slices.Clone(e.Fields)
	c.Metadata = maps.Clone(e.Metadata)
	return &c
}

// WithCause returns a copy of e that wraps err. The cause is logged, never sent to the client.
func (e *Error) WithCause(err error) *Error {
	c := e.clone()
	c.cause = err
	return c
}

// WithField returns a copy of e with one more field violation.
func (e *Error) WithField(field, description string) *Error {
	c := e.clone()
	c.Fields = append(c.Fields, FieldViolation{Field: field, Description: description})
	return c
}

// WithMetadata returns a copy of e with metadata k set to v.
func (e *Error) WithMetadata(k, v string) *Error {
	c := e.clone()
	if c.Metadata == nil {
		c.Metadata = make(map[string]string, 1)
	}
	c.Metadata[k] = v
	return c
}

// Error returns "REASON: message" followed by the cause, if any. It is meant for logs: clients
// receive only the status built by GRPCStatus.
func (e *Error) Error() string {
	s := e.reason() + ": " + e.message()
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Unwrap returns the cause given to WithCause.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is an *Error with the same code and reason, so errors.Is works with
// sentinels even after WithCause, WithField or WithMetadata made a copy.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Reason == e.Reason
}

// code never answers OK for an error: an *Error with code OK is a programming mistake and is
// reported as Internal rather than as success.
func (e *Error) code() codes.Code {
	if e.Code == codes.OK {
		return codes.Internal
	}
	return e.Code
}

func (e *Error) reason() string {
	if e.Reason != "" {
		return e.Reason
	}
	return DefaultReason(e.code())
}

func (e *Error) message() string {
	if e.Message != "" {
		return e.Message
	}
	return defaultMessage(e.code())
}

// GRPCStatus returns the status sent to the client: code, message, a google.rpc.ErrorInfo with the
// reason, Domain and metadata, and google.rpc.BadRequest when there are field violations. It lets
// status.FromError and status.Code understand an *Error directly.
func (e *Error) GRPCStatus() *status.Status {
	st := status.New(e.code(), e.message())
	info := &errdetails.ErrorInfo{Reason: e.reason(), Domain: Domain, Metadata: maps.Clone(e.Metadata)}
	details := []protoadapt.MessageV1{info}
	if len(e.Fields) > 0 {
		br := &errdetails.BadRequest{}
		for _, f := range e.Fields {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field:       f.Field,
				Description: f.Description,
			})
		}
		details = append(details, br)
	}
	withDetails, err := st.WithDetails(details...)
	if err != nil {
		// Only possible for code OK, which code() excludes; answer without details rather than fail.
		return st
	}
	return withDetails
}

// grpcStatusError is what status.FromError recognises: an error that carries a gRPC status.
type grpcStatusError interface {
	error
	GRPCStatus() *status.Status
}

// ToStatus turns any error returned by a handler into the status the client receives:
//   - an *Error (also when wrapped) gives its GRPCStatus;
//   - an error that already is a gRPC status (for example from a downstream call, also when
//     wrapped) passes through unchanged, except that Unknown, Internal and DataLoss statuses get
//     the safe InternalMessage, because their text may have been written by code that did not go
//     through apperr;
//   - context.Canceled answers Canceled, reason CANCELLED;
//   - context.DeadlineExceeded answers DeadlineExceeded, reason TIMEOUT;
//   - anything else answers Internal, InternalMessage, reason INTERNAL_ERROR: the error text is
//     never sent.
//
// ToStatus(nil) returns nil.
func ToStatus(err error) *status.Status {
	if err == nil {
		return nil
	}
	if ae, ok := errors.AsType[*Error](err); ok {
		return ae.GRPCStatus()
	}
	if gs, ok := errors.AsType[grpcStatusError](err); ok {
		if st := gs.GRPCStatus(); st != nil && st.Code() != codes.OK {
			switch st.Code() {
			case codes.Unknown, codes.Internal, codes.DataLoss:
				if st.Message() != InternalMessage {
					return New(st.Code(), ReasonInternal, InternalMessage).GRPCStatus()
				}
			}
			return st
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return New(codes.Canceled, ReasonCancelled, "request cancelled").GRPCStatus()
	case errors.Is(err, context.DeadlineExceeded):
		return New(codes.DeadlineExceeded, ReasonTimeout, "request timed out").GRPCStatus()
	}
	return New(codes.Internal, ReasonInternal, InternalMessage).GRPCStatus()
}

// ToError is ToStatus(err).Err(): the error a gRPC handler or interceptor returns.
func ToError(err error) error {
	return ToStatus(err).Err()
}

// ReasonOf returns the reason carried by st's google.rpc.ErrorInfo, or DefaultReason(st.Code())
// when there is none. It returns "" for a nil or OK status.
func ReasonOf(st *status.Status) string {
	if st == nil || st.Code() == codes.OK {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() != "" {
			return info.GetReason()
		}
	}
	return DefaultReason(st.Code())
}

// DefaultReason is the reason used for a code when the error names none.
func DefaultReason(c codes.Code) string {
	switch c {
	case codes.OK:
		return ""
	case codes.InvalidArgument:
		return ReasonValidation
	case codes.NotFound:
		return ReasonNotFound
	case codes.AlreadyExists:
		return ReasonAlreadyExists
	case codes.PermissionDenied:
		return ReasonForbidden
	case codes.Unauthenticated:
		return ReasonUnauthorized
	case codes.FailedPrecondition:
		return ReasonFailedPrecondition
	case codes.Aborted:
		return ReasonConflict
	case codes.ResourceExhausted:
		return ReasonRateLimited
	case codes.Unimplemented:
		return ReasonNotImplemented
	case codes.Unavailable:
		return ReasonUnavailable
	case codes.DeadlineExceeded:
		return ReasonTimeout
	case codes.Canceled:
		return ReasonCancelled
	case codes.OutOfRange:
		return ReasonOutOfRange
	default: // Internal, Unknown, DataLoss and codes this package does not know.
		return ReasonInternal
	}
}

// StatusClientClosedRequest is the de-facto HTTP status (nginx) for a request the client gave up
// on; net/http has no constant for it.
const StatusClientClosedRequest = 499

// HTTPStatus maps a gRPC code to the HTTP status of the REST answer. It follows grpc-gateway
// except for FailedPrecondition, which ClassWaves uses for illegal lifecycle transitions and the
// product answers 409 Conflict.
func HTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.FailedPrecondition, codes.Aborted, codes.AlreadyExists:
		return http.StatusConflict
	case codes.NotFound:
		return http.StatusNotFound
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Canceled:
		return StatusClientClosedRequest
	default: // Internal, Unknown, DataLoss and codes this package does not know.
		return http.StatusInternalServerError
	}
}

// defaultMessage is the client message for an *Error built without one.
func defaultMessage(c codes.Code) string {
	switch c {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		return InternalMessage
	case codes.Canceled:
		return "request cancelled"
	}
	if t := http.StatusText(HTTPStatus(c)); t != "" {
		return t
	}
	return InternalMessage
}

// Details turns st's details into JSON-friendly values for the REST envelope's error.details:
//   - each google.rpc.BadRequest field violation becomes {"field": ..., "description": ...};
//   - a google.rpc.ErrorInfo with metadata becomes {"reason": ..., "domain": ..., "metadata": {...}}
//     (without metadata it adds nothing: its reason already is error.code).
//
// Other detail types are left out so nothing unexpected (google.rpc.DebugInfo, say) reaches a
// client. Every value is a map[string]any of strings and nested maps, so the slice can be passed
// to structpb.NewList. Details returns an empty, non-nil slice when there is nothing to add.
func Details(st *status.Status) []any {
	out := []any{}
	if st == nil {
		return out
	}
	var infos []any
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				out = append(out, map[string]any{"field": v.GetField(), "description": v.GetDescription()})
			}
		case *errdetails.ErrorInfo:
			if len(d.GetMetadata()) == 0 {
				continue
			}
			md := make(map[string]any, len(d.GetMetadata()))
			for k, v := range d.GetMetadata() {
				md[k] = v
			}
			infos = append(infos, map[string]any{"reason": d.GetReason(), "domain": d.GetDomain(), "metadata": md})
		}
	}
	return append(out, infos...)
}
