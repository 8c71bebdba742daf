// Package authn carries the verified caller (the principal) through a context and declares the
// roles. Token verification (JWKS fetched from the auth service, the gRPC interceptors and the
// HTTP/Socket.IO handshake helper) is built by the Auth service issue; until then no request
// carries a principal and every RPC that requires one answers UNAUTHENTICATED.
package authn

import (
	"context"
	"slices"

	"google.golang.org/grpc/codes"

	"github.com/classwaves/classwaves/pkg/apperr"
)

// Role is a principal's role.
type Role string

// Roles, from the seed: staff roles and scoped student tokens.
const (
	RoleTeacher    Role = "teacher"
	RoleAdmin      Role = "admin"
	RoleSuperAdmin Role = "super_admin"
	RoleStudent    Role = "student"
)

// Principal is a verified caller.
type Principal struct {
	// Subject is the teacher id or student id.
	Subject  string
	Role     Role
	SchoolID string
	// SessionID and GroupID scope a student token.
	SessionID string
	GroupID   string
}

type ctxKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal of ctx, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// Errors answered when the caller is not allowed.
var (
	ErrUnauthenticated = apperr.New(codes.Unauthenticated, "UNAUTHORIZED", "authentication required")
	ErrForbidden       = apperr.New(codes.PermissionDenied, "FORBIDDEN", "your role does not allow this")
)

// Require returns the principal of ctx when its role is one of roles, else ErrUnauthenticated (no
// principal) or ErrForbidden (another role).
func Require(ctx context.Context, roles ...Role) (Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return Principal{}, ErrUnauthenticated
	}
	if !slices.Contains(roles, p.Role) {
		return Principal{}, ErrForbidden
	}
	return p, nil
}
