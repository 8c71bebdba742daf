// Package authn verifies ClassWaves access tokens and decides who may call what.
//
//   - Principal is the verified caller, carried through a context (NewContext, FromContext).
//   - Verifier checks an access token (an EdDSA JWT issued by services/auth/token) locally, against
//     public keys from a KeySource: the issuing KeySet when auth runs in the same process, or
//     CachedKeys over the auth service's GetJwks. VerifyBearer and VerifyToken serve the HTTP and
//     Socket.IO handshakes.
//   - Interceptor is the gRPC unary and stream interceptor: it verifies the caller's token and
//     enforces the one access policy of policy.go, where every RPC of every service is given a Rule.
//   - SameSchool and InScope are the checks services make once they have loaded the data.
//   - ServiceCredentials attaches a service token to outgoing internal calls.
//
// Failures are *apperr.Error values with stable reasons: TOKEN_MISSING, TOKEN_EXPIRED and
// TOKEN_INVALID answer 401; FORBIDDEN answers 403.
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
	// RoleService is a ClassWaves service calling another one; only Internal RPCs accept it.
	RoleService Role = "service"
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
