package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/services/auth/token"
)

// The REST routes of the test-token RPCs, for their not-found answer.
const (
	generateTestTokenPath = "/api/v1/auth/generate-test-token"
	issueTestTokenPath    = "/api/v1/auth/test-token"
)

var errStudentScope = apperr.New(codes.InvalidArgument, reasonValidation, "a student token needs a session and a group").
	WithField("session_id", "required for role student").WithField("group_id", "required for role student")

// checkTestSecret admits a test-token call: outside production, with E2E_TEST_SECRET set and
// presented. Anything else answers the gateway's not-found for path, so a probe cannot tell the
// route exists. The secrets are compared as SHA-256 digests in constant time (neither their
// content nor their length leaks through timing).
func (c Config) checkTestSecret(secret, path string) error {
	notFound := routeNotFound("POST", path)
	if !c.testTokensEnabled() {
		return notFound
	}
	got, want := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(c.E2ETestSecret))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return notFound.WithCause(errWrongTestSecret)
	}
	return nil
}

// errWrongTestSecret is the logged cause of a refused test-token call.
var errWrongTestSecret = errors.New("wrong E2E_TEST_SECRET")

// checkTestSecret is Config.checkTestSecret, logging a wrong secret.
func (s *Service) checkTestSecret(ctx context.Context, secret, path string) error {
	err := s.cfg.checkTestSecret(secret, path)
	if errors.Is(err, errWrongTestSecret) {
		s.logger.WarnContext(ctx, "test token refused: wrong E2E_TEST_SECRET", "path", path)
	}
	return err
}

// generateTestToken signs in a teacher for end-to-end tests: the one with email (default: the dev
// teacher), created in the dev school when it does not exist, with role (default teacher; an
// existing teacher's role is changed to it).
func (s *Service) generateTestToken(ctx context.Context, secret, email, role string) (signInResult, error) {
	if err := s.checkTestSecret(ctx, secret, generateTestTokenPath); err != nil {
		return signInResult{}, err
	}
	email = normalizeEmail(email)
	if email == "" {
		email = DevTeacherEmail
	}
	t, err := s.store.TeacherByEmail(ctx, email)
	now := s.now()
	switch {
	case errors.Is(err, ErrNotFound):
		if role == "" {
			role = RoleTeacher
		}
		t = Teacher{
			ID: uuid.NewString(), Email: email, Name: "E2E Test Teacher", SchoolID: DevSchoolID,
			Role: role, Status: StatusActive, CreatedAt: now, UpdatedAt: now,
		}
		if err := s.store.CreateTeacher(ctx, t); err != nil {
			return signInResult{}, storeError(err, nil)
		}
	case err != nil:
		return signInResult{}, err
	case role != "" && role != t.Role:
		if t, err = s.store.UpdateTeacherRole(ctx, t.ID, role, "", now); err != nil {
			return signInResult{}, err
		}
	}
	school, err := s.store.GetSchool(ctx, t.SchoolID)
	if err != nil {
		return signInResult{}, err
	}
	if t.Status != StatusActive {
		return signInResult{}, errAccountSuspended
	}
	pair, err := s.startSession(ctx, t, s.cfg.RefreshIdleTTL)
	if err != nil {
		return signInResult{}, err
	}
	res := signInResult{Teacher: t, School: school, Tokens: pair}
	s.auditLogin(ctx, res, methodTestToken)
	return res, nil
}

// issueTestToken issues an access token (no refresh token) for end-to-end tests: a student token
// scoped to sessionID and groupID in the dev school, or a staff token of the dev teacher with the
// given role.
func (s *Service) issueTestToken(ctx context.Context, secret, role, sessionID, groupID string) (token.Issued, error) {
	if err := s.checkTestSecret(ctx, secret, issueTestTokenPath); err != nil {
		return token.Issued{}, err
	}
	var (
		p     authn.Principal
		email string
	)
	if authn.Role(role) == authn.RoleStudent {
		if sessionID == "" || groupID == "" {
			return token.Issued{}, errStudentScope
		}
		p = authn.Principal{Subject: uuid.NewString(), Role: authn.RoleStudent, SchoolID: DevSchoolID, SessionID: sessionID, GroupID: groupID}
	} else {
		p = authn.Principal{Subject: DevTeacherID, Role: authn.Role(role), SchoolID: DevSchoolID}
		email = DevTeacherEmail
	}
	iss, err := s.keys.Issue(ctx, p, email)
	if err != nil {
		return token.Issued{}, err
	}
	s.auditLog(ctx, auditlog.Event{
		ActorID: p.Subject, ActorType: auditlog.ActorSystem, EventType: "auth.test_token", Category: auditlog.CategoryAuthentication,
		SchoolID: DevSchoolID, SessionID: sessionID, Description: "test access token issued",
		Metadata: map[string]string{"role": role},
	})
	return iss, nil
}

// GuardTestRoutes returns a unary interceptor that runs the test-token check of cfg before next
// (the authn interceptor) and so before request validation: where the test-token RPCs do not
// exist, or the secret is wrong, even a request that would fail validation gets the gateway's
// not-found, never a 400 that would betray the route. Install it in place of the authn unary
// interceptor, with the auth service's Config (NODE_ENV copied in):
//
//	grpcserver.WithAuth(auth.GuardTestRoutes(authCfg, interceptor.Unary), interceptor.Stream)
//
// Without it the RPCs still answer not-found for every valid request; only malformed ones could
// be told apart. Other methods go straight to next (or the handler when next is nil).
func GuardTestRoutes(cfg Config, next grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		var err error
		switch info.FullMethod {
		case authv1.AuthService_GenerateTestToken_FullMethodName:
			r, _ := req.(*authv1.GenerateTestTokenRequest)
			err = cfg.checkTestSecret(r.GetSecret(), generateTestTokenPath)
		case authv1.AuthService_IssueTestToken_FullMethodName:
			r, _ := req.(*authv1.IssueTestTokenRequest)
			err = cfg.checkTestSecret(r.GetSecret(), issueTestTokenPath)
		}
		if err != nil {
			return nil, err
		}
		if next == nil {
			return handler(ctx, req)
		}
		return next(ctx, req, info, handler)
	}
}
