package auth

import (
	"context"
	"crypto/subtle"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/authn"
)

// server is the gRPC port of the service: it converts messages and calls the service. Requests
// are validated (protovalidate) and callers authorized (authn policy) by interceptors before they
// get here; errors are *apperr.Error values mapped once by the server's error interceptor.
type server struct {
	authv1.UnimplementedAuthServiceServer
	authv1.UnimplementedAdminServiceServer
	svc *Service
}

var (
	_ authv1.AuthServiceServer  = (*server)(nil)
	_ authv1.AdminServiceServer = (*server)(nil)
)

// GoogleSignIn implements authv1.AuthServiceServer.
func (s *server) GoogleSignIn(ctx context.Context, req *authv1.GoogleSignInRequest) (*authv1.GoogleSignInResponse, error) {
	res, err := s.svc.googleSignIn(ctx, req.GetCode(), req.GetCredential(), req.GetCodeVerifier(), req.GetRedirectUri())
	if err != nil {
		return nil, err
	}
	return &authv1.GoogleSignInResponse{
		Teacher:      teacherProto(res.Teacher),
		School:       schoolProto(res.School),
		Tokens:       pairProto(res.Tokens),
		DegradedMode: res.Degraded,
		FirstSignIn:  res.FirstSignIn,
	}, nil
}

// GoogleCallback implements authv1.AuthServiceServer. The binding cookie goes out as set-cookie
// response metadata, which the gateway turns into a Set-Cookie header.
func (s *server) GoogleCallback(ctx context.Context, req *authv1.GoogleCallbackRequest) (*authv1.GoogleCallbackResponse, error) {
	res, err := s.svc.googleCallback(ctx, req.GetCode(), req.GetState(), req.GetError(), requestCookies(ctx))
	if err != nil {
		return nil, err
	}
	if res.SetCookie != "" {
		if err := grpc.SetHeader(ctx, metadata.Pairs("set-cookie", res.SetCookie, "cache-control", "no-store")); err != nil {
			return nil, err
		}
	}
	return &authv1.GoogleCallbackResponse{RedirectUrl: res.RedirectURL}, nil
}

// RefreshToken implements authv1.AuthServiceServer.
func (s *server) RefreshToken(ctx context.Context, req *authv1.RefreshTokenRequest) (*authv1.RefreshTokenResponse, error) {
	pair, _, err := s.svc.refresh(ctx, req.GetRefreshToken())
	if err != nil {
		return nil, err
	}
	return &authv1.RefreshTokenResponse{Tokens: pairProto(pair)}, nil
}

// Logout implements authv1.AuthServiceServer.
func (s *server) Logout(ctx context.Context, req *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
	n, err := s.svc.logout(ctx, req.GetRefreshToken(), req.GetAllDevices())
	if err != nil {
		return nil, err
	}
	return &authv1.LogoutResponse{RevokedFamilies: int32(n)}, nil
}

// GetCurrentUser implements authv1.AuthServiceServer.
func (s *server) GetCurrentUser(ctx context.Context, _ *authv1.GetCurrentUserRequest) (*authv1.GetCurrentUserResponse, error) {
	me, err := s.svc.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	out := &authv1.GetCurrentUserResponse{Claims: me.Claims.Proto()}
	if me.Teacher.ID != "" {
		out.Teacher, out.School = teacherProto(me.Teacher), schoolProto(me.School)
	}
	return out, nil
}

// GetCsrfToken implements authv1.AuthServiceServer. Credentials never travel in cookies, so no
// request needs CSRF protection; the token is random and checked nowhere (see the package doc).
func (s *server) GetCsrfToken(context.Context, *authv1.GetCsrfTokenRequest) (*authv1.GetCsrfTokenResponse, error) {
	return &authv1.GetCsrfTokenResponse{CsrfToken: randomValue()}, nil
}

// GetJwks implements authv1.AuthServiceServer.
func (s *server) GetJwks(context.Context, *authv1.GetJwksRequest) (*authv1.GetJwksResponse, error) {
	return &authv1.GetJwksResponse{Keys: s.svc.keys.JWKS()}, nil
}

// GenerateTestToken implements authv1.AuthServiceServer.
func (s *server) GenerateTestToken(ctx context.Context, req *authv1.GenerateTestTokenRequest) (*authv1.GenerateTestTokenResponse, error) {
	res, err := s.svc.generateTestToken(ctx, req.GetSecret(), req.GetEmail(), req.GetRole())
	if err != nil {
		return nil, err
	}
	return &authv1.GenerateTestTokenResponse{
		Teacher: teacherProto(res.Teacher), School: schoolProto(res.School), Tokens: pairProto(res.Tokens),
	}, nil
}

// IssueTestToken implements authv1.AuthServiceServer.
func (s *server) IssueTestToken(ctx context.Context, req *authv1.IssueTestTokenRequest) (*authv1.IssueTestTokenResponse, error) {
	iss, err := s.svc.issueTestToken(ctx, req.GetSecret(), req.GetRole(), req.GetSessionId(), req.GetGroupId())
	if err != nil {
		return nil, err
	}
	return &authv1.IssueTestTokenResponse{
		Tokens: &authv1.TokenPair{AccessToken: iss.Token, ExpiresIn: seconds(iss.ExpiresIn), TokenType: "Bearer"},
		Claims: iss.Claims.Proto(),
	}, nil
}

// VerifyToken implements authv1.AuthServiceServer (Internal).
func (s *server) VerifyToken(ctx context.Context, req *authv1.VerifyTokenRequest) (*authv1.VerifyTokenResponse, error) {
	c, err := s.svc.verifier.VerifyClaims(ctx, req.GetToken())
	if err != nil {
		return nil, err
	}
	return &authv1.VerifyTokenResponse{Claims: c.Proto()}, nil
}

// IssueStudentToken implements authv1.AuthServiceServer (Internal: the session service, when a
// student joins). The display name is not put in the token.
func (s *server) IssueStudentToken(ctx context.Context, req *authv1.IssueStudentTokenRequest) (*authv1.IssueStudentTokenResponse, error) {
	iss, err := s.svc.keys.Issue(ctx, authn.Principal{
		Subject: req.GetStudentId(), Role: authn.RoleStudent, SchoolID: req.GetSchoolId(),
		SessionID: req.GetSessionId(), GroupID: req.GetGroupId(),
	}, "")
	if err != nil {
		return nil, err
	}
	return &authv1.IssueStudentTokenResponse{AccessToken: iss.Token, ExpiresIn: seconds(iss.ExpiresIn), Claims: iss.Claims.Proto()}, nil
}

// ListSchools implements authv1.AdminServiceServer.
func (s *server) ListSchools(ctx context.Context, req *authv1.ListSchoolsRequest) (*authv1.ListSchoolsResponse, error) {
	schools, next, total, err := s.svc.listSchools(ctx, req.GetQuery(), req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &authv1.ListSchoolsResponse{NextPageToken: next, Total: int32(total)}
	for _, x := range schools {
		out.Schools = append(out.Schools, schoolProto(x))
	}
	return out, nil
}

// CreateSchool implements authv1.AdminServiceServer.
func (s *server) CreateSchool(ctx context.Context, req *authv1.CreateSchoolRequest) (*authv1.CreateSchoolResponse, error) {
	x, err := s.svc.createSchool(ctx, newSchool{
		Name: req.GetName(), Domain: req.GetDomain(), Tier: req.GetSubscriptionTier(),
		MaxTeachers: int(req.GetMaxTeachers()), STTMinutesPerDay: int(req.GetSttMinutesPerDay()),
		FERPA: req.GetFerpaAgreement(), COPPA: req.GetCoppaCompliant(),
	})
	if err != nil {
		return nil, err
	}
	return &authv1.CreateSchoolResponse{School: schoolProto(x)}, nil
}

// UpdateSchool implements authv1.AdminServiceServer.
func (s *server) UpdateSchool(ctx context.Context, req *authv1.UpdateSchoolRequest) (*authv1.UpdateSchoolResponse, error) {
	var u SchoolUpdate
	u.Name, u.Domain, u.SubscriptionTier, u.SubscriptionStatus = req.Name, req.Domain, req.SubscriptionTier, req.SubscriptionStatus
	u.FERPAAgreement, u.COPPACompliant = req.FerpaAgreement, req.CoppaCompliant
	if req.MaxTeachers != nil {
		v := int(req.GetMaxTeachers())
		u.MaxTeachers = &v
	}
	if req.SttMinutesPerDay != nil {
		v := int(req.GetSttMinutesPerDay())
		u.STTMinutesPerDay = &v
	}
	x, err := s.svc.updateSchool(ctx, req.GetSchoolId(), u)
	if err != nil {
		return nil, err
	}
	return &authv1.UpdateSchoolResponse{School: schoolProto(x)}, nil
}

// ListTeachers implements authv1.AdminServiceServer.
func (s *server) ListTeachers(ctx context.Context, req *authv1.ListTeachersRequest) (*authv1.ListTeachersResponse, error) {
	teachers, next, err := s.svc.listTeachers(ctx, req.GetSchoolId(), req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &authv1.ListTeachersResponse{NextPageToken: next}
	for _, t := range teachers {
		out.Teachers = append(out.Teachers, teacherProto(t))
	}
	return out, nil
}

// UpdateTeacherRole implements authv1.AdminServiceServer.
func (s *server) UpdateTeacherRole(ctx context.Context, req *authv1.UpdateTeacherRoleRequest) (*authv1.UpdateTeacherRoleResponse, error) {
	t, err := s.svc.updateTeacherRole(ctx, req.GetTeacherId(), req.GetRole(), req.GetStatus())
	if err != nil {
		return nil, err
	}
	return &authv1.UpdateTeacherRoleResponse{Teacher: teacherProto(t)}, nil
}

// --- conversions ---

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func seconds(d time.Duration) int32 { return int32(d / time.Second) }

func schoolProto(x School) *authv1.School {
	return &authv1.School{
		Id: x.ID, Name: x.Name, Domain: x.Domain,
		SubscriptionTier: x.SubscriptionTier, SubscriptionStatus: x.SubscriptionStatus,
		MaxTeachers: int32(x.MaxTeachers), TeacherCount: int32(x.TeacherCount), SttMinutesPerDay: int32(x.STTMinutesPerDay),
		FerpaAgreement: x.FERPAAgreement, CoppaCompliant: x.COPPACompliant,
		CreatedAt: ts(x.CreatedAt), UpdatedAt: ts(x.UpdatedAt),
	}
}

func teacherProto(t Teacher) *authv1.Teacher {
	return &authv1.Teacher{
		Id: t.ID, Email: t.Email, Name: t.Name, Picture: t.Picture, SchoolId: t.SchoolID,
		Role: t.Role, Status: t.Status, LastLoginAt: ts(t.LastLoginAt), CreatedAt: ts(t.CreatedAt),
	}
}

func pairProto(p tokenPair) *authv1.TokenPair {
	return &authv1.TokenPair{
		AccessToken: p.Access.Token, RefreshToken: p.Refresh,
		ExpiresIn: seconds(p.Access.ExpiresIn), RefreshExpiresIn: seconds(p.RefreshExpiresIn),
		TokenType: "Bearer",
	}
}

// Service-token exchange errors.
var (
	errServiceTokensDisabled = apperr.New(codes.NotFound, "SERVICE_TOKENS_DISABLED", "service token exchange is not enabled (INTERNAL_SERVICE_SECRET)")
	errServiceSecretInvalid  = apperr.New(codes.PermissionDenied, "SERVICE_SECRET_INVALID", "the service secret is not valid")
)

// IssueServiceToken implements authv1.AuthServiceServer: a service in its own process exchanges
// the shared INTERNAL_SERVICE_SECRET (compared in constant time) for a short-lived service token.
func (s *server) IssueServiceToken(ctx context.Context, req *authv1.IssueServiceTokenRequest) (*authv1.IssueServiceTokenResponse, error) {
	secret := s.svc.cfg.InternalServiceSecret
	if secret == "" {
		return nil, errServiceTokensDisabled
	}
	if subtle.ConstantTimeCompare([]byte(req.GetSecret()), []byte(secret)) != 1 {
		s.svc.logger.WarnContext(ctx, "service token refused: wrong secret", "service", req.GetService())
		return nil, errServiceSecretInvalid
	}
	iss, err := s.svc.keys.IssueService(ctx, req.GetService())
	if err != nil {
		return nil, err
	}
	return &authv1.IssueServiceTokenResponse{
		AccessToken: iss.Token,
		ExpiresAt:   timestamppb.New(iss.Claims.ExpiresAt.Time),
	}, nil
}
