package auth

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/config"
)

// TestTestTokens: the test-token RPCs exist outside production with the right E2E_TEST_SECRET
// only; otherwise they answer the gateway's not-found, message included.
func TestTestTokens(t *testing.T) {
	tests := []struct {
		name   string
		env    config.Environment
		secret string // configured
		sent   string
		want   bool
	}{
		{"test, right secret", config.Test, testSecret, testSecret, true},
		{"development, right secret", config.Development, testSecret, testSecret, true},
		{"wrong secret", config.Test, testSecret, "guess", false},
		{"secret prefix", config.Test, testSecret, testSecret[:5], false},
		{"no secret configured", config.Test, "", "anything", false},
		{"production, right secret", config.Production, testSecret, testSecret, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, func(c *Config) { c.Environment, c.E2ETestSecret = tt.env, tt.secret })
			gen, genErr := h.auth.GenerateTestToken(context.Background(), &authv1.GenerateTestTokenRequest{Secret: tt.sent, Role: RoleAdmin})
			iss, issErr := h.auth.IssueTestToken(context.Background(), &authv1.IssueTestTokenRequest{Secret: tt.sent, Role: "student",
				SessionId: uuid.NewString(), GroupId: uuid.NewString()})
			if !tt.want {
				for path, err := range map[string]error{generateTestTokenPath: genErr, issueTestTokenPath: issErr} {
					wantErr(t, err, codes.NotFound, ReasonRouteNotFound)
					if got, want := status.Convert(err).Message(), "Route POST "+path+" not found"; got != want {
						t.Errorf("message = %q, want the gateway's %q", got, want)
					}
				}
				// Requests that would fail validation get the same answer (GuardTestRoutes).
				_, err := h.auth.IssueTestToken(context.Background(), &authv1.IssueTestTokenRequest{Role: "bogus"})
				wantErr(t, err, codes.NotFound, ReasonRouteNotFound)
				_, err = h.auth.GenerateTestToken(context.Background(), &authv1.GenerateTestTokenRequest{Secret: tt.sent, Email: "not an e-mail"})
				wantErr(t, err, codes.NotFound, ReasonRouteNotFound)
				if n := len(h.auditEvents("")); n != 0 {
					t.Errorf("%d audit events for refused test tokens", n)
				}
				return
			}
			if genErr != nil || issErr != nil {
				t.Fatalf("GenerateTestToken() = %v; IssueTestToken() = %v", genErr, issErr)
			}
			if gen.GetTeacher().GetId() != DevTeacherID || gen.GetTeacher().GetRole() != RoleAdmin || gen.GetTokens().GetRefreshToken() == "" {
				t.Errorf("GenerateTestToken() = %v", gen)
			}
			p, err := h.keys.Verifier().VerifyToken(context.Background(), iss.GetTokens().GetAccessToken())
			if err != nil || p.Role != authn.RoleStudent || p.SchoolID != DevSchoolID || p.SessionID != iss.GetClaims().GetSessionId() {
				t.Errorf("IssueTestToken() principal = %+v, %v", p, err)
			}
		})
	}

	t.Run("options", func(t *testing.T) {
		h := newHarness(t, nil, nil)
		gen, err := h.auth.GenerateTestToken(context.Background(), &authv1.GenerateTestTokenRequest{Secret: testSecret, Email: "E2E@dev.classwaves.test"})
		if err != nil || gen.GetTeacher().GetEmail() != "e2e@dev.classwaves.test" || gen.GetTeacher().GetRole() != RoleTeacher ||
			gen.GetSchool().GetId() != DevSchoolID {
			t.Errorf("GenerateTestToken(new e-mail) = %v, %v", gen, err)
		}
		staff, err := h.auth.IssueTestToken(context.Background(), &authv1.IssueTestTokenRequest{Secret: testSecret, Role: RoleSuperAdmin})
		if err != nil || staff.GetClaims().GetRole() != RoleSuperAdmin || staff.GetClaims().GetSubject() != DevTeacherID {
			t.Errorf("IssueTestToken(super_admin) = %v, %v", staff, err)
		}
		_, err = h.auth.IssueTestToken(context.Background(), &authv1.IssueTestTokenRequest{Secret: testSecret, Role: "student"})
		wantErr(t, err, codes.InvalidArgument, reasonValidation)
	})
}

func TestGetCurrentUser(t *testing.T) {
	h := newHarness(t, nil, nil)
	resp := h.signIn("me@" + testSchoolDomain)
	me, err := h.auth.GetCurrentUser(bearer(resp.GetTokens().GetAccessToken()), &authv1.GetCurrentUserRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if me.GetTeacher().GetEmail() != "me@"+testSchoolDomain || me.GetSchool().GetId() != h.school.ID ||
		me.GetClaims().GetRole() != RoleTeacher || me.GetClaims().GetEmail() != "me@"+testSchoolDomain || me.GetClaims().GetTokenId() == "" {
		t.Errorf("GetCurrentUser() = %v", me)
	}

	student := authn.Principal{Subject: uuid.NewString(), Role: authn.RoleStudent, SchoolID: h.school.ID, SessionID: uuid.NewString(), GroupID: uuid.NewString()}
	sm, err := h.auth.GetCurrentUser(h.as(student), &authv1.GetCurrentUserRequest{})
	if err != nil || sm.GetTeacher() != nil || sm.GetClaims().GetSessionId() != student.SessionID {
		t.Errorf("GetCurrentUser(student) = %v, %v", sm, err)
	}

	_, err = h.auth.GetCurrentUser(context.Background(), &authv1.GetCurrentUserRequest{})
	wantErr(t, err, codes.Unauthenticated, authn.ReasonTokenMissing)
	_, err = h.auth.GetCurrentUser(h.as(authn.Principal{Subject: uuid.NewString(), Role: authn.RoleTeacher, SchoolID: h.school.ID}), &authv1.GetCurrentUserRequest{})
	wantErr(t, err, codes.Unauthenticated, "UNAUTHORIZED")
	if _, err := h.st.UpdateTeacherRole(t.Context(), me.GetTeacher().GetId(), RoleTeacher, StatusSuspended, t0); err != nil {
		t.Fatal(err)
	}
	_, err = h.auth.GetCurrentUser(bearer(resp.GetTokens().GetAccessToken()), &authv1.GetCurrentUserRequest{})
	wantErr(t, err, codes.PermissionDenied, ReasonAccountSuspended)

	csrf, err := h.auth.GetCsrfToken(h.as(student), &authv1.GetCsrfTokenRequest{})
	if err != nil || len(csrf.GetCsrfToken()) != 43 {
		t.Errorf("GetCsrfToken() = %v, %v", csrf, err)
	}
}

// TestInternalRPCs: VerifyToken and IssueStudentToken answer service principals only; GetJwks
// publishes the KeySet.
func TestInternalRPCs(t *testing.T) {
	h := newHarness(t, nil, nil)
	svcTok, err := h.keys.IssueService(context.Background(), "session")
	if err != nil {
		t.Fatal(err)
	}
	asService := bearer(svcTok.Token)
	req := &authv1.IssueStudentTokenRequest{StudentId: uuid.NewString(), SessionId: uuid.NewString(), GroupId: uuid.NewString(),
		SchoolId: h.school.ID, DisplayName: "Ada"}
	st, err := h.auth.IssueStudentToken(asService, req)
	if err != nil {
		t.Fatal(err)
	}
	if st.GetExpiresIn() != 4*3600 {
		t.Errorf("student token lifetime = %d s, want 4h", st.GetExpiresIn())
	}
	verified, err := h.auth.VerifyToken(asService, &authv1.VerifyTokenRequest{Token: st.GetAccessToken()})
	if err != nil {
		t.Fatal(err)
	}
	got := verified.GetClaims()
	want := &authv1.Claims{Subject: req.GetStudentId(), Role: "student", SchoolId: req.GetSchoolId(), SessionId: req.GetSessionId(),
		GroupId: req.GetGroupId(), TokenId: got.GetTokenId(), IssuedAt: got.GetIssuedAt(), ExpiresAt: got.GetExpiresAt()}
	if diff := cmp.Diff(want.String(), got.String()); diff != "" {
		t.Errorf("VerifyToken() claims (-want +got):\n%s", diff)
	}
	_, err = h.auth.VerifyToken(asService, &authv1.VerifyTokenRequest{Token: "x.y.z"})
	wantErr(t, err, codes.Unauthenticated, authn.ReasonTokenInvalid)

	teacher := h.signIn("t@" + testSchoolDomain).GetTokens().GetAccessToken()
	_, err = h.auth.IssueStudentToken(bearer(teacher), req)
	wantErr(t, err, codes.PermissionDenied, "FORBIDDEN")
	_, err = h.auth.VerifyToken(bearer(teacher), &authv1.VerifyTokenRequest{Token: teacher})
	wantErr(t, err, codes.PermissionDenied, "FORBIDDEN")

	jwks, err := h.auth.GetJwks(context.Background(), &authv1.GetJwksRequest{})
	if err != nil || len(jwks.GetKeys()) == 0 || jwks.GetKeys()[0].GetKty() != "OKP" || jwks.GetKeys()[0].GetAlg() != authn.Algorithm {
		t.Errorf("GetJwks() = %v, %v", jwks, err)
	}
}
