package authn

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/grpcserver"
)

// recorder notes every handler run and the principal it saw.
type recorder struct {
	mu         sync.Mutex
	runs       map[string]int
	principals map[string]*Principal // nil entry: ran without a principal
}

func newRecorder() *recorder {
	return &recorder{runs: map[string]int{}, principals: map[string]*Principal{}}
}

func (r *recorder) hit(ctx context.Context, method string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs[method]++
	if p, ok := FromContext(ctx); ok {
		r.principals[method] = &p
	} else {
		r.principals[method] = nil
	}
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.runs {
		n += c
	}
	return n
}

func (r *recorder) last(method string) *Principal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.principals[method]
}

// The fake services: each handler records that it ran.
type (
	sessionSrv struct {
		sessionv1.UnimplementedSessionServiceServer
		rec *recorder
	}
	adminSrv struct {
		authv1.UnimplementedAdminServiceServer
		rec *recorder
	}
	authSrv struct {
		authv1.UnimplementedAuthServiceServer
		rec *recorder
	}
	sttSrv struct {
		sttv1.UnimplementedSttServiceServer
		rec *recorder
	}
	analyticsSrv struct {
		analyticsv1.UnimplementedAnalyticsServiceServer
		rec *recorder
	}
)

func (s sessionSrv) CreateSession(ctx context.Context, _ *sessionv1.CreateSessionRequest) (*sessionv1.CreateSessionResponse, error) {
	s.rec.hit(ctx, "CreateSession")
	return &sessionv1.CreateSessionResponse{}, nil
}

func (s sessionSrv) JoinSession(ctx context.Context, _ *sessionv1.JoinSessionRequest) (*sessionv1.JoinSessionResponse, error) {
	s.rec.hit(ctx, "JoinSession")
	return &sessionv1.JoinSessionResponse{}, nil
}

func (s adminSrv) ListSchools(ctx context.Context, _ *authv1.ListSchoolsRequest) (*authv1.ListSchoolsResponse, error) {
	s.rec.hit(ctx, "ListSchools")
	return &authv1.ListSchoolsResponse{}, nil
}

func (s adminSrv) ListTeachers(ctx context.Context, _ *authv1.ListTeachersRequest) (*authv1.ListTeachersResponse, error) {
	s.rec.hit(ctx, "ListTeachers")
	return &authv1.ListTeachersResponse{}, nil
}

func (s authSrv) GetCurrentUser(ctx context.Context, _ *authv1.GetCurrentUserRequest) (*authv1.GetCurrentUserResponse, error) {
	s.rec.hit(ctx, "GetCurrentUser")
	c, ok := ClaimsFromContext(ctx)
	if !ok {
		return nil, errors.New("no claims in context")
	}
	return &authv1.GetCurrentUserResponse{Claims: c.Proto()}, nil
}

func (s sttSrv) StreamAudio(stream grpc.BidiStreamingServer[sttv1.StreamAudioRequest, sttv1.StreamAudioResponse]) error {
	s.rec.hit(stream.Context(), "StreamAudio")
	return nil
}

func (s analyticsSrv) GetGroupSummary(ctx context.Context, _ *analyticsv1.GetGroupSummaryRequest) (*analyticsv1.GetGroupSummaryResponse, error) {
	s.rec.hit(ctx, "GetGroupSummary")
	return &analyticsv1.GetGroupSummaryResponse{}, nil
}

// jwksSrv is the auth service's GetJwks, counting the calls.
type jwksSrv struct {
	authv1.UnimplementedAuthServiceServer
	keys  []*authv1.Jwk
	calls atomic.Int32
}

func (s *jwksSrv) GetJwks(context.Context, *authv1.GetJwksRequest) (*authv1.GetJwksResponse, error) {
	s.calls.Add(1)
	return &authv1.GetJwksResponse{Keys: s.keys}, nil
}

// serve runs srv on a loopback port until the test ends and returns a client connection to it.
func serve(t *testing.T, srv *grpcserver.Server) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return conn
}

// world is an auth service publishing one key over gRPC, and an application server whose
// interceptor verifies against it remotely, as a service in microservices mode does.
type world struct {
	key      testKey
	jwks     *jwksSrv
	keyClock *clock
	rec      *recorder
	conn     *grpc.ClientConn
}

func newWorld(t *testing.T, opts ...Option) *world {
	t.Helper()
	w := &world{key: newTestKey(t, "k1"), keyClock: newClock(), rec: newRecorder()}
	w.jwks = &jwksSrv{keys: []*authv1.Jwk{NewJWK(w.key.kid, w.key.pub)}}
	authServer := grpcserver.New(grpcserver.Config{}, nil)
	authv1.RegisterAuthServiceServer(authServer.GRPC(), w.jwks)
	authConn := serve(t, authServer)

	cfg := DefaultConfig()
	keys := NewRemoteKeys(cfg, authv1.NewAuthServiceClient(authConn), WithClock(w.keyClock.Now))
	ic := NewInterceptor(NewVerifier(cfg, keys, WithClock(fixedClock)), opts...)
	app := grpcserver.New(grpcserver.Config{}, nil, grpcserver.WithServerOptions(ic.ServerOptions()...))
	sessionv1.RegisterSessionServiceServer(app.GRPC(), sessionSrv{rec: w.rec})
	authv1.RegisterAdminServiceServer(app.GRPC(), adminSrv{rec: w.rec})
	authv1.RegisterAuthServiceServer(app.GRPC(), authSrv{rec: w.rec})
	sttv1.RegisterSttServiceServer(app.GRPC(), sttSrv{rec: w.rec})
	analyticsv1.RegisterAnalyticsServiceServer(app.GRPC(), analyticsSrv{rec: w.rec})
	w.conn = serve(t, app)
	return w
}

// rpc is one call of the suite; it returns the call's error.
type rpc func(ctx context.Context, conn *grpc.ClientConn) error

var (
	createSession rpc = func(ctx context.Context, c *grpc.ClientConn) error {
		_, err := sessionv1.NewSessionServiceClient(c).CreateSession(ctx, &sessionv1.CreateSessionRequest{Title: "Fractions"})
		return err
	}
	joinSession rpc = func(ctx context.Context, c *grpc.ClientConn) error {
		_, err := sessionv1.NewSessionServiceClient(c).JoinSession(ctx, &sessionv1.JoinSessionRequest{AccessCode: "ABC123", DisplayName: "Ana"})
		return err
	}
	listSchools rpc = func(ctx context.Context, c *grpc.ClientConn) error {
		_, err := authv1.NewAdminServiceClient(c).ListSchools(ctx, &authv1.ListSchoolsRequest{})
		return err
	}
	listTeachers rpc = func(ctx context.Context, c *grpc.ClientConn) error {
		_, err := authv1.NewAdminServiceClient(c).ListTeachers(ctx, &authv1.ListTeachersRequest{})
		return err
	}
	currentUser rpc = func(ctx context.Context, c *grpc.ClientConn) error {
		_, err := authv1.NewAuthServiceClient(c).GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
		return err
	}
	streamAudio rpc = func(ctx context.Context, c *grpc.ClientConn) error {
		stream, err := sttv1.NewSttServiceClient(c).StreamAudio(ctx)
		if err != nil {
			return err
		}
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			return err
		}
		return nil
	}
)

const (
	sessionA = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	sessionB = "9b2f4c1e-2d3a-4b5c-8d6e-7f8091a2b3c4"
	groupA   = "1d2e3f40-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
	groupB   = "2e3f4051-6b7c-4d8e-9fa0-1b2c3d4e5f60"
)

func groupSummary(session, group string) rpc {
	return func(ctx context.Context, c *grpc.ClientConn) error {
		_, err := analyticsv1.NewAnalyticsServiceClient(c).GetGroupSummary(ctx,
			&analyticsv1.GetGroupSummaryRequest{SessionId: session, GroupId: group})
		return err
	}
}

func withToken(tok string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), MetadataKey, "Bearer "+tok)
}

// TestSecuritySuite: each attack is refused with the right code and reason, and no handler runs.
func TestSecuritySuite(t *testing.T) {
	w := newWorld(t)
	k := w.key
	forger := newTestKey(t, "k1")
	edit := func(role Role, f func(*Claims)) string {
		c := claimsFor(role)
		f(c)
		return k.sign(t, c)
	}
	tests := []struct {
		name       string
		ctx        context.Context
		call       rpc
		wantCode   codes.Code
		wantReason string
		wantHTTP   int
	}{
		{"missing token on a protected route", context.Background(), createSession, codes.Unauthenticated, ReasonTokenMissing, 401},
		{"expired token", withToken(edit(RoleTeacher, func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-time.Hour)) })), createSession, codes.Unauthenticated, ReasonTokenExpired, 401},
		{"bad signature", withToken(forger.sign(t, claimsFor(RoleTeacher))), createSession, codes.Unauthenticated, ReasonTokenInvalid, 401},
		{"alg none", withToken(signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k1", TokenType, claimsFor(RoleSuperAdmin))), listSchools, codes.Unauthenticated, ReasonTokenInvalid, 401},
		{"HS256 with the public key as secret", withToken(signWith(t, jwt.SigningMethodHS256, []byte(k.pub), "k1", TokenType, claimsFor(RoleSuperAdmin))), listSchools, codes.Unauthenticated, ReasonTokenInvalid, 401},
		{"wrong issuer", withToken(edit(RoleTeacher, func(c *Claims) { c.Issuer = "evil" })), createSession, codes.Unauthenticated, ReasonTokenInvalid, 401},
		{"wrong audience", withToken(edit(RoleTeacher, func(c *Claims) { c.Audience = jwt.ClaimStrings{"other-api"} })), createSession, codes.Unauthenticated, ReasonTokenInvalid, 401},
		{"student token on a teacher route", withToken(k.sign(t, claimsFor(RoleStudent))), createSession, codes.PermissionDenied, "FORBIDDEN", 403},
		{"teacher on a super_admin route", withToken(k.sign(t, claimsFor(RoleTeacher))), listSchools, codes.PermissionDenied, "FORBIDDEN", 403},
		{"admin on a super_admin route", withToken(k.sign(t, claimsFor(RoleAdmin))), listSchools, codes.PermissionDenied, "FORBIDDEN", 403},
		{"teacher on an admin route", withToken(k.sign(t, claimsFor(RoleTeacher))), listTeachers, codes.PermissionDenied, "FORBIDDEN", 403},
		{"teacher on an internal stream", withToken(k.sign(t, claimsFor(RoleTeacher))), streamAudio, codes.PermissionDenied, "FORBIDDEN", 403},
		{"missing token on an internal stream", context.Background(), streamAudio, codes.Unauthenticated, ReasonTokenMissing, 401},
		{"service token on a teacher route", withToken(k.sign(t, claimsFor(RoleService))), createSession, codes.PermissionDenied, "FORBIDDEN", 403},
		{"service token on an Authenticated route", withToken(k.sign(t, claimsFor(RoleService))), currentUser, codes.PermissionDenied, "FORBIDDEN", 403},
		{"Basic credentials", metadata.AppendToOutgoingContext(context.Background(), MetadataKey, "Basic dXNlcjpwYXNz"), createSession, codes.Unauthenticated, ReasonTokenInvalid, 401},
		{"two authorization values", metadata.AppendToOutgoingContext(withToken(k.sign(t, claimsFor(RoleTeacher))), MetadataKey, "Bearer x.y.z"), createSession, codes.Unauthenticated, ReasonTokenInvalid, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := w.rec.total()
			err := tt.call(tt.ctx, w.conn)
			code, reason := statusCodeReason(err)
			if code != tt.wantCode || reason != tt.wantReason {
				t.Fatalf("call = %v, %q (%v), want %v, %q", code, reason, err, tt.wantCode, tt.wantReason)
			}
			if got := apperr.HTTPStatus(code); got != tt.wantHTTP {
				t.Errorf("REST status = %d, want %d", got, tt.wantHTTP)
			}
			if after := w.rec.total(); after != before {
				t.Errorf("a handler ran (%d runs before, %d after)", before, after)
			}
		})
	}

	t.Run("unknown kid: one refresh, then refused", func(t *testing.T) {
		w.keyClock.Advance(time.Minute) // past any earlier fetch's rate limit
		before, calls := w.rec.total(), w.jwks.calls.Load()
		for i, kid := range []string{"rotated-away", "made-up", "another"} {
			tok := signWith(t, jwt.SigningMethodEdDSA, k.priv, kid, TokenType, claimsFor(RoleTeacher))
			err := createSession(withToken(tok), w.conn)
			if code, reason := statusCodeReason(err); code != codes.Unauthenticated || reason != ReasonTokenInvalid {
				t.Fatalf("kid %q: call = %v, %q, want Unauthenticated, TOKEN_INVALID", kid, code, reason)
			}
			if got := w.jwks.calls.Load() - calls; got != 1 {
				t.Fatalf("after %d unknown kids: GetJwks calls = %d, want 1", i+1, got)
			}
		}
		if w.rec.total() != before {
			t.Error("a handler ran")
		}
	})
}

// TestAdmitted: callers that meet the rule reach the handler with their principal.
func TestAdmitted(t *testing.T) {
	w := newWorld(t)
	k := w.key
	teacher := Principal{Subject: "user-1", Role: RoleTeacher, SchoolID: "school-a"}
	expired := claimsFor(RoleTeacher)
	expired.ExpiresAt = jwt.NewNumericDate(testNow.Add(-time.Hour))
	tests := []struct {
		name   string
		ctx    context.Context
		call   rpc
		method string
		want   *Principal
	}{
		{"teacher creates a session", withToken(k.sign(t, claimsFor(RoleTeacher))), createSession, "CreateSession", &teacher},
		{"super admin lists schools", withToken(k.sign(t, claimsFor(RoleSuperAdmin))), listSchools, "ListSchools", &Principal{Subject: "user-1", Role: RoleSuperAdmin, SchoolID: "school-a"}},
		{"admin lists teachers", withToken(k.sign(t, claimsFor(RoleAdmin))), listTeachers, "ListTeachers", &Principal{Subject: "user-1", Role: RoleAdmin, SchoolID: "school-a"}},
		{"service streams audio", withToken(k.sign(t, claimsFor(RoleService))), streamAudio, "StreamAudio", &Principal{Subject: "session", Role: RoleService}},
		{"student reads itself", withToken(k.sign(t, claimsFor(RoleStudent))), currentUser, "GetCurrentUser", &Principal{Subject: "user-1", Role: RoleStudent, SchoolID: "school-a", SessionID: "session-1", GroupID: "group-1"}},
		{"public without a token", context.Background(), joinSession, "JoinSession", nil},
		{"public with an expired token", withToken(k.sign(t, expired)), joinSession, "JoinSession", nil},
		{"public with a valid token", withToken(k.sign(t, claimsFor(RoleTeacher))), joinSession, "JoinSession", &teacher},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(tt.ctx, w.conn); err != nil {
				t.Fatalf("call error = %v", err)
			}
			if diff := cmp.Diff(tt.want, w.rec.last(tt.method)); diff != "" {
				t.Errorf("principal seen by %s (-want +got):\n%s", tt.method, diff)
			}
		})
	}

	t.Run("claims reach the handler", func(t *testing.T) {
		resp, err := authv1.NewAuthServiceClient(w.conn).GetCurrentUser(withToken(k.sign(t, claimsFor(RoleTeacher))), &authv1.GetCurrentUserRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if c := resp.GetClaims(); c.GetTokenId() != "jti-1" || c.GetEmail() != "teacher@school-a.example" {
			t.Errorf("claims = %v", c)
		}
	})
}

// TestStudentScoped: under a StudentScoped rule a student reaches only its own session and group.
func TestStudentScoped(t *testing.T) {
	policy := DefaultPolicy()
	policy[analyticsv1.AnalyticsService_GetGroupSummary_FullMethodName] = StudentScoped(RoleTeacher)
	w := newWorld(t, WithPolicy(policy))
	student := claimsFor(RoleStudent)
	student.SessionID, student.GroupID = sessionA, groupA
	studentCtx := withToken(w.key.sign(t, student))
	teacherCtx := withToken(w.key.sign(t, claimsFor(RoleTeacher)))
	adminCtx := withToken(w.key.sign(t, claimsFor(RoleAdmin)))
	tests := []struct {
		name       string
		ctx        context.Context
		call       rpc
		wantReason string
	}{
		{"own session and group", studentCtx, groupSummary(sessionA, groupA), ""},
		{"another group", studentCtx, groupSummary(sessionA, groupB), "FORBIDDEN"},
		{"another session", studentCtx, groupSummary(sessionB, groupA), "FORBIDDEN"},
		{"staff role of the rule", teacherCtx, groupSummary(sessionB, groupB), ""},
		{"staff role not in the rule", adminCtx, groupSummary(sessionA, groupA), "FORBIDDEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := w.rec.total()
			err := tt.call(tt.ctx, w.conn)
			if _, reason := statusCodeReason(err); reason != tt.wantReason {
				t.Fatalf("call reason = %q (%v), want %q", reason, err, tt.wantReason)
			}
			if ran := w.rec.total() != before; ran != (tt.wantReason == "") {
				t.Errorf("handler ran = %v, want %v", ran, tt.wantReason == "")
			}
		})
	}
}

// TestNoRuleIsDenied: a method missing from the policy never reaches its handler, whoever calls.
func TestNoRuleIsDenied(t *testing.T) {
	policy := DefaultPolicy()
	delete(policy, sessionv1.SessionService_CreateSession_FullMethodName)
	w := newWorld(t, WithPolicy(policy))
	err := createSession(withToken(w.key.sign(t, claimsFor(RoleSuperAdmin))), w.conn)
	if code, reason := statusCodeReason(err); code != codes.PermissionDenied || reason != "FORBIDDEN" {
		t.Fatalf("call = %v, %q, want PermissionDenied, FORBIDDEN", code, reason)
	}
	if w.rec.total() != 0 {
		t.Error("the handler ran")
	}
}
