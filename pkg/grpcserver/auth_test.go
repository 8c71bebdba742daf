package grpcserver

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/classwaves/classwaves/pkg/apperr"
)

// TestAuthRunsBeforeValidation: an unauthenticated caller gets 401 even for an invalid request,
// and an authenticated one then meets validation.
func TestAuthRunsBeforeValidation(t *testing.T) {
	errNoToken := apperr.New(codes.Unauthenticated, "TOKEN_MISSING", "authentication required")
	auth := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		if len(md.Get("authorization")) == 0 {
			return nil, errNoToken
		}
		return handler(ctx, req)
	}
	e := start(t, DefaultConfig(), WithAuth(auth, nil))
	tests := []struct {
		name       string
		ctx        context.Context
		wantCode   codes.Code
		wantReason string
	}{
		{"no token, invalid request", context.Background(), codes.Unauthenticated, "TOKEN_MISSING"},
		{"token, invalid request", metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer x"), codes.InvalidArgument, "VALIDATION_ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.create(tt.ctx, newReq(""))
			st := status.Convert(err)
			if st.Code() != tt.wantCode || apperr.ReasonOf(st) != tt.wantReason {
				t.Errorf("got %v %s, want %v %s", st.Code(), apperr.ReasonOf(st), tt.wantCode, tt.wantReason)
			}
		})
	}
}
