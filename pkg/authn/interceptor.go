package authn

import (
	"context"
	"errors"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MetadataKey is the gRPC metadata key of the bearer token (grpc-gateway forwards the HTTP
// Authorization header under it).
const MetadataKey = "authorization"

// WithPolicy replaces DefaultPolicy in an Interceptor, for tests of the interceptor itself.
func WithPolicy(p Policy) Option {
	return func(o *options) { o.policy = p }
}

// Interceptor verifies the caller's token and enforces the access policy on every RPC: the
// principal and claims go into the handler's context; an RPC whose rule the caller does not meet,
// or that has no rule, never reaches its handler.
//
// Install it with grpcserver.WithServerOptions(i.ServerOptions()...): it then runs inside the
// built-in chain, so its errors are mapped, logged and carry the trace id.
type Interceptor struct {
	verifier *Verifier
	policy   Policy
}

// NewInterceptor returns the interceptor of v with DefaultPolicy (or the WithPolicy one).
func NewInterceptor(v *Verifier, opts ...Option) *Interceptor {
	o := buildOptions(opts)
	if o.policy == nil {
		o.policy = DefaultPolicy()
	}
	return &Interceptor{verifier: v, policy: o.policy}
}

// ServerOptions returns the unary and stream interceptors as server options.
func (i *Interceptor) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(i.Unary),
		grpc.ChainStreamInterceptor(i.Stream),
	}
}

// Unary is the unary server interceptor.
func (i *Interceptor) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, rule, err := i.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	if err := rule.checkRequest(ctx, req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// Stream is the stream server interceptor. For a StudentScoped RPC every message the client sends
// is checked against the student's scope before the handler receives it.
func (i *Interceptor) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, rule, err := i.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, &authStream{ServerStream: ss, ctx: ctx, rule: rule})
}

// authenticate finds the rule of method, verifies the caller's token as the rule requires and
// checks the caller's role. It returns the context carrying the principal.
func (i *Interceptor) authenticate(ctx context.Context, method string) (context.Context, Rule, error) {
	rule, ok := i.policy[method]
	if !ok || rule.kind == 0 {
		return ctx, rule, ErrNoRule.WithMetadata("method", method)
	}
	claims, err := i.fromMetadata(ctx)
	if rule.kind == kindPublic {
		if err == nil {
			ctx = NewContextWithClaims(ctx, claims)
		}
		return ctx, rule, nil
	}
	if err != nil {
		return ctx, rule, err
	}
	if err := rule.checkRole(claims.Role); err != nil {
		return ctx, rule, err
	}
	return NewContextWithClaims(ctx, claims), rule, nil
}

// fromMetadata verifies the one bearer token of the incoming metadata.
func (i *Interceptor) fromMetadata(ctx context.Context) (*Claims, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(MetadataKey)
	switch len(vals) {
	case 0:
		return nil, ErrTokenMissing
	case 1:
	default:
		return nil, ErrTokenInvalid.WithCause(errors.New("more than one authorization value"))
	}
	raw, err := ParseBearer(vals[0])
	if err != nil {
		return nil, err
	}
	return i.verifier.VerifyClaims(ctx, raw)
}

// checkRole checks the caller's role against the rule.
func (r Rule) checkRole(role Role) error {
	var ok bool
	switch r.kind {
	case kindAuthenticated:
		ok = role.IsStaff() || role == RoleStudent
	case kindRoles:
		ok = slices.Contains(r.roles, role)
	case kindStudentScoped:
		ok = role == RoleStudent || slices.Contains(r.roles, role)
	case kindInternal:
		ok = role == RoleService
	case kindPublic:
		ok = true
	}
	if !ok {
		return ErrForbidden
	}
	return nil
}

// checkRequest applies a StudentScoped rule to a request a student sends.
func (r Rule) checkRequest(ctx context.Context, req any) error {
	if r.kind != kindStudentScoped {
		return nil
	}
	p, ok := FromContext(ctx)
	if !ok || p.Role != RoleStudent {
		return nil
	}
	m, ok := req.(proto.Message)
	if !ok {
		return ErrOutOfScope
	}
	// A request without a session_id field reads as naming no session, which InScope refuses.
	return InScope(p, stringField(m, "session_id"), stringField(m, "group_id"))
}

// stringField returns the value of m's singular string field name, or "" when m has none.
func stringField(m proto.Message, name protoreflect.Name) string {
	msg := m.ProtoReflect()
	fd := msg.Descriptor().Fields().ByName(name)
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() || fd.IsMap() {
		return ""
	}
	return msg.Get(fd).String()
}

// authStream carries the principal's context and checks student scope on every received message.
type authStream struct {
	grpc.ServerStream
	ctx  context.Context
	rule Rule
}

func (s *authStream) Context() context.Context { return s.ctx }

func (s *authStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.rule.checkRequest(s.ctx, m)
}

type claimsKey struct{}

// ClaimsFromContext returns the verified claims the Interceptor put in ctx (token id, issue and
// expiry times, email), for handlers that need more than the Principal, such as GetCurrentUser.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// NewContextWithClaims returns ctx carrying c and its principal, as the Interceptor does; for HTTP
// or WebSocket handlers that verified a token themselves (Verifier.VerifyClaims).
func NewContextWithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(NewContext(ctx, c.Principal()), claimsKey{}, c)
}
