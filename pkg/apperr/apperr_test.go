package apperr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
)

var errSessionNotFound = New(codes.NotFound, "SESSION_NOT_FOUND", "session not found")

// wantStatus is the comparable shape of a status: code, message and details.
type wantStatus struct {
	Code    codes.Code
	Message string
	Details []any
}

func shape(st *status.Status) wantStatus {
	return wantStatus{Code: st.Code(), Message: st.Message(), Details: st.Details()}
}

func info(reason string, md map[string]string) *errdetails.ErrorInfo {
	return &errdetails.ErrorInfo{Reason: reason, Domain: Domain, Metadata: md}
}

func TestToStatus(t *testing.T) {
	secret := errors.New("pq: password authentication failed for user classwaves")
	downstream := New(codes.PermissionDenied, "COPPA_CONSENT_REQUIRED", "parental consent required").GRPCStatus()
	tests := []struct {
		name string
		err  error
		want wantStatus
	}{
		{
			name: "app error",
			err:  errSessionNotFound,
			want: wantStatus{codes.NotFound, "session not found", []any{info("SESSION_NOT_FOUND", nil)}},
		},
		{
			name: "wrapped app error with cause and metadata keeps the cause out",
			err:  fmt.Errorf("get session: %w", errSessionNotFound.WithCause(secret).WithMetadata("sessionId", "s1")),
			want: wantStatus{codes.NotFound, "session not found", []any{info("SESSION_NOT_FOUND", map[string]string{"sessionId": "s1"})}},
		},
		{
			name: "field violations become BadRequest",
			err:  New(codes.InvalidArgument, ReasonValidation, "invalid request").WithField("title", "must not be empty"),
			want: wantStatus{codes.InvalidArgument, "invalid request", []any{
				info(ReasonValidation, nil),
				&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "title", Description: "must not be empty"}}},
			}},
		},
		{
			name: "empty reason and message get defaults",
			err:  New(codes.NotFound, "", ""),
			want: wantStatus{codes.NotFound, "Not Found", []any{info(ReasonNotFound, nil)}},
		},
		{
			name: "code OK is never a success",
			err:  New(codes.OK, "", ""),
			want: wantStatus{codes.Internal, InternalMessage, []any{info(ReasonInternal, nil)}},
		},
		{
			name: "gRPC status passes through",
			err:  downstream.Err(),
			want: wantStatus{codes.PermissionDenied, "parental consent required", []any{info("COPPA_CONSENT_REQUIRED", nil)}},
		},
		{
			name: "wrapped gRPC status passes through without the wrapping text",
			err:  fmt.Errorf("calling auth: %w", downstream.Err()),
			want: wantStatus{codes.PermissionDenied, "parental consent required", []any{info("COPPA_CONSENT_REQUIRED", nil)}},
		},
		{
			name: "internal status text written outside apperr is not leaked",
			err:  status.Error(codes.Internal, secret.Error()),
			want: wantStatus{codes.Internal, InternalMessage, []any{info(ReasonInternal, nil)}},
		},
		{
			name: "unknown status text is not leaked",
			err:  status.Error(codes.Unknown, secret.Error()),
			want: wantStatus{codes.Unknown, InternalMessage, []any{info(ReasonInternal, nil)}},
		},
		{
			name: "context canceled",
			err:  fmt.Errorf("query: %w", context.Canceled),
			want: wantStatus{codes.Canceled, "request cancelled", []any{info(ReasonCancelled, nil)}},
		},
		{
			name: "context deadline",
			err:  context.DeadlineExceeded,
			want: wantStatus{codes.DeadlineExceeded, "request timed out", []any{info(ReasonTimeout, nil)}},
		},
		{
			name: "anything else is internal and safe",
			err:  secret,
			want: wantStatus{codes.Internal, InternalMessage, []any{info(ReasonInternal, nil)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := shape(ToStatus(tt.err))
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("ToStatus() mismatch (-want +got):\n%s", diff)
			}
			if strings.Contains(ToStatus(tt.err).String(), "password") {
				t.Errorf("ToStatus() leaked the cause: %v", ToStatus(tt.err))
			}
		})
	}
	if got := ToStatus(nil); got != nil {
		t.Errorf("ToStatus(nil) = %v, want nil", got)
	}
	if got := ToError(nil); got != nil {
		t.Errorf("ToError(nil) = %v, want nil", got)
	}
}

func TestErrorBuilders(t *testing.T) {
	cause := errors.New("no rows")
	err := errSessionNotFound.WithCause(cause).WithField("id", "unknown").WithMetadata("k", "v")

	if !errors.Is(err, errSessionNotFound) {
		t.Error("errors.Is(decorated, sentinel) = false, want true")
	}
	if !errors.Is(fmt.Errorf("wrap: %w", err), errSessionNotFound) {
		t.Error("errors.Is(wrapped decorated, sentinel) = false, want true")
	}
	if errors.Is(err, New(codes.NotFound, "GROUP_NOT_FOUND", "")) {
		t.Error("errors.Is matched a different reason")
	}
	if errors.Is(err, New(codes.Aborted, "SESSION_NOT_FOUND", "")) {
		t.Error("errors.Is matched a different code")
	}
	if !errors.Is(err, cause) {
		t.Error("errors.Is(err, cause) = false, want true")
	}
	if got, want := err.Error(), "SESSION_NOT_FOUND: session not found: no rows"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	// The sentinel must be untouched by the builders.
	if errSessionNotFound.cause != nil || errSessionNotFound.Fields != nil || errSessionNotFound.Metadata != nil {
		t.Errorf("builders modified the sentinel: %+v", errSessionNotFound)
	}
	// A copy's metadata must not alias the one it was built from.
	a := errSessionNotFound.WithMetadata("k", "a")
	b := a.WithMetadata("k", "b")
	if got := a.Metadata["k"]; got != "a" {
		t.Errorf("a.Metadata[k] = %q after building b, want %q", got, "a")
	}
	if got := b.Metadata["k"]; got != "b" {
		t.Errorf("b.Metadata[k] = %q, want %q", got, "b")
	}
	if got, want := status.Code(err), codes.NotFound; got != want {
		t.Errorf("status.Code(err) = %v, want %v", got, want)
	}
}

func TestReasonOf(t *testing.T) {
	tests := []struct {
		name string
		st   *status.Status
		want string
	}{
		{"nil", nil, ""},
		{"ok", status.New(codes.OK, ""), ""},
		{"error info wins", New(codes.NotFound, "SESSION_NOT_FOUND", "x").GRPCStatus(), "SESSION_NOT_FOUND"},
		{"InvalidArgument", status.New(codes.InvalidArgument, ""), "VALIDATION_ERROR"},
		{"NotFound", status.New(codes.NotFound, ""), "NOT_FOUND"},
		{"AlreadyExists", status.New(codes.AlreadyExists, ""), "ALREADY_EXISTS"},
		{"PermissionDenied", status.New(codes.PermissionDenied, ""), "FORBIDDEN"},
		{"Unauthenticated", status.New(codes.Unauthenticated, ""), "UNAUTHORIZED"},
		{"FailedPrecondition", status.New(codes.FailedPrecondition, ""), "FAILED_PRECONDITION"},
		{"Aborted", status.New(codes.Aborted, ""), "CONFLICT"},
		{"ResourceExhausted", status.New(codes.ResourceExhausted, ""), "RATE_LIMITED"},
		{"Unimplemented", status.New(codes.Unimplemented, ""), "NOT_IMPLEMENTED"},
		{"Unavailable", status.New(codes.Unavailable, ""), "SERVICE_UNAVAILABLE"},
		{"DeadlineExceeded", status.New(codes.DeadlineExceeded, ""), "TIMEOUT"},
		{"Canceled", status.New(codes.Canceled, ""), "CANCELLED"},
		{"OutOfRange", status.New(codes.OutOfRange, ""), "OUT_OF_RANGE"},
		{"Internal", status.New(codes.Internal, ""), "INTERNAL_ERROR"},
		{"Unknown", status.New(codes.Unknown, ""), "INTERNAL_ERROR"},
		{"DataLoss", status.New(codes.DataLoss, ""), "INTERNAL_ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ReasonOf(tt.st); got != tt.want {
				t.Errorf("ReasonOf() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHTTPStatus(t *testing.T) {
	tests := []struct {
		code codes.Code
		want int
	}{
		{codes.OK, http.StatusOK},
		{codes.InvalidArgument, http.StatusBadRequest},
		{codes.OutOfRange, http.StatusBadRequest},
		{codes.FailedPrecondition, http.StatusConflict},
		{codes.Aborted, http.StatusConflict},
		{codes.AlreadyExists, http.StatusConflict},
		{codes.NotFound, http.StatusNotFound},
		{codes.PermissionDenied, http.StatusForbidden},
		{codes.Unauthenticated, http.StatusUnauthorized},
		{codes.ResourceExhausted, http.StatusTooManyRequests},
		{codes.Unimplemented, http.StatusNotImplemented},
		{codes.Unavailable, http.StatusServiceUnavailable},
		{codes.DeadlineExceeded, http.StatusGatewayTimeout},
		{codes.Canceled, 499},
		{codes.Internal, http.StatusInternalServerError},
		{codes.Unknown, http.StatusInternalServerError},
		{codes.DataLoss, http.StatusInternalServerError},
		{codes.Code(99), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			if got := HTTPStatus(tt.code); got != tt.want {
				t.Errorf("HTTPStatus(%v) = %d, want %d", tt.code, got, tt.want)
			}
		})
	}
}

func TestDetails(t *testing.T) {
	tests := []struct {
		name string
		st   *status.Status
		want []any
	}{
		{"nil", nil, []any{}},
		{"no details", status.New(codes.NotFound, "x"), []any{}},
		{"error info without metadata adds nothing", errSessionNotFound.GRPCStatus(), []any{}},
		{
			name: "field violations then error info metadata",
			st: New(codes.InvalidArgument, ReasonValidation, "invalid request").
				WithField("title", "value length must be at least 1 characters").
				WithField("groups[0].name", "value is required").
				WithMetadata("limit", "10").GRPCStatus(),
			want: []any{
				map[string]any{"field": "title", "description": "value length must be at least 1 characters"},
				map[string]any{"field": "groups[0].name", "description": "value is required"},
				map[string]any{"reason": ReasonValidation, "domain": Domain, "metadata": map[string]any{"limit": "10"}},
			},
		},
		{
			name: "debug info never leaks",
			st: func() *status.Status {
				st, err := status.New(codes.Internal, InternalMessage).WithDetails(&errdetails.DebugInfo{Detail: "stack"})
				if err != nil {
					t.Fatal(err)
				}
				return st
			}(),
			want: []any{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Details(tt.st)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Details() mismatch (-want +got):\n%s", diff)
			}
			if _, err := structpb.NewList(got); err != nil {
				t.Errorf("structpb.NewList(Details()) error = %v, want nil", err)
			}
		})
	}
}
