package auth

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/oauth2"
	"google.golang.org/grpc/codes"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/config"
	"github.com/classwaves/classwaves/services/auth/oidctest"
)

// TestGoogleSignInIDToken signs in with ID tokens that must pass and ones that must not. A refused
// sign-in changes nothing: no teacher, no refresh token family.
func TestGoogleSignInIDToken(t *testing.T) {
	h := newHarness(t, nil, nil)
	suspended := newTestSchool(t, h.st, "Closed School", "closed.example.org", 0)
	status := SubscriptionSuspended
	if _, err := h.st.UpdateSchool(t.Context(), suspended.ID, SchoolUpdate{SubscriptionStatus: &status}, t0); err != nil {
		t.Fatal(err)
	}
	full := newTestSchool(t, h.st, "Full School", "full.example.org", 1)
	newTestTeacher(t, h.st, full)

	same := func(c oidctest.Claims) oidctest.Claims { return c }
	refusals := []struct {
		name       string
		edit       func(oidctest.Claims) oidctest.Claims
		forge      bool
		wantCode   codes.Code
		wantReason string
	}{
		{"domain no school registered", func(c oidctest.Claims) oidctest.Claims { c.HostedDomain = "unknown.example.org"; return c },
			false, codes.PermissionDenied, ReasonSchoolNotRegistered},
		{"consumer account without hd", func(c oidctest.Claims) oidctest.Claims { c.HostedDomain = ""; return c },
			false, codes.PermissionDenied, ReasonSchoolNotRegistered},
		{"unverified e-mail", func(c oidctest.Claims) oidctest.Claims { c.EmailVerified = false; return c },
			false, codes.PermissionDenied, ReasonEmailNotVerified},
		{"unverified e-mail as a string", func(c oidctest.Claims) oidctest.Claims { c.EmailVerifiedString = "false"; return c },
			false, codes.PermissionDenied, ReasonEmailNotVerified},
		{"wrong audience", func(c oidctest.Claims) oidctest.Claims {
			c.Audience = []string{"someone-else.apps.googleusercontent.com"}
			return c
		},
			false, codes.Unauthenticated, ReasonGoogleTokenInvalid},
		{"expired", func(c oidctest.Claims) oidctest.Claims {
			c.IssuedAt, c.ExpiresAt = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
			return c
		}, false, codes.Unauthenticated, ReasonGoogleTokenInvalid},
		{"wrong issuer", func(c oidctest.Claims) oidctest.Claims { c.Issuer = "https://accounts.google.com"; return c },
			false, codes.Unauthenticated, ReasonGoogleTokenInvalid},
		{"bad signature", same, true, codes.Unauthenticated, ReasonGoogleTokenInvalid},
		{"no subject", func(c oidctest.Claims) oidctest.Claims { c.Subject = ""; return c },
			false, codes.Unauthenticated, ReasonGoogleTokenInvalid},
		{"suspended school", func(c oidctest.Claims) oidctest.Claims {
			c.HostedDomain, c.Email = suspended.Domain, "t@"+suspended.Domain
			return c
		}, false, codes.PermissionDenied, ReasonSchoolInactive},
		{"no seat left", func(c oidctest.Claims) oidctest.Claims {
			c.HostedDomain, c.Email = full.Domain, "t@"+full.Domain
			return c
		},
			false, codes.PermissionDenied, ReasonTeacherLimit},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			teachers, families := h.teacherCount(), h.familyCount()
			c := tt.edit(h.op.Claims("new.teacher@"+testSchoolDomain, testSchoolDomain))
			raw := h.op.MintIDToken(c)
			if tt.forge {
				raw = h.op.Forge(c)
			}
			_, err := h.auth.GoogleSignIn(context.Background(), &authv1.GoogleSignInRequest{Credential: raw})
			wantErr(t, err, tt.wantCode, tt.wantReason)
			if got := h.teacherCount(); got != teachers {
				t.Errorf("teachers: %d after the refusal, want %d", got, teachers)
			}
			if got := h.familyCount(); got != families {
				t.Errorf("refresh families: %d after the refusal, want %d", got, families)
			}
		})
	}

	t.Run("first and second sign-in", func(t *testing.T) {
		email := "ann@" + testSchoolDomain
		first := h.signIn(email)
		if !first.GetFirstSignIn() || first.GetDegradedMode() {
			t.Errorf("first sign-in: firstSignIn %v degradedMode %v, want true false", first.GetFirstSignIn(), first.GetDegradedMode())
		}
		ann := h.teacher(email)
		want := &authv1.Teacher{Id: ann.ID, Email: email, Name: "Test Teacher", Picture: "https://example.com/p.png",
			SchoolId: h.school.ID, Role: RoleTeacher, Status: StatusActive}
		got := first.GetTeacher()
		got.LastLoginAt, got.CreatedAt = nil, nil
		if diff := cmp.Diff(want.String(), got.String()); diff != "" {
			t.Errorf("teacher (-want +got):\n%s", diff)
		}
		if s := first.GetSchool(); s.GetId() != h.school.ID || s.GetDomain() != testSchoolDomain || s.GetTeacherCount() < 1 {
			t.Errorf("school = %v", s)
		}
		tok := first.GetTokens()
		if tok.GetTokenType() != "Bearer" || tok.GetExpiresIn() != 900 || tok.GetRefreshExpiresIn() != int32(DefaultRefreshIdleTTL/time.Second) ||
			len(tok.GetRefreshToken()) != 43 {
			t.Errorf("tokens = %v", tok)
		}
		p, err := h.keys.Verifier().VerifyToken(context.Background(), tok.GetAccessToken())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(authn.Principal{Subject: ann.ID, Role: authn.RoleTeacher, SchoolID: h.school.ID}, p); diff != "" {
			t.Errorf("access token principal (-want +got):\n%s", diff)
		}
		second := h.signIn(email)
		if second.GetFirstSignIn() || second.GetTeacher().GetId() != ann.ID {
			t.Errorf("second sign-in: firstSignIn %v, teacher %s; want false, %s", second.GetFirstSignIn(), second.GetTeacher().GetId(), ann.ID)
		}
		logins := h.auditEvents("auth.login")
		if len(logins) < 2 || logins[0].GetActorId() != ann.ID || logins[0].GetSchoolId() != h.school.ID ||
			logins[0].GetMetadata()["method"] != methodIDToken || logins[0].GetMetadata()["firstSignIn"] != "true" {
			t.Errorf("auth.login audit events = %v", logins)
		}
	})

	t.Run("email_verified as a string", func(t *testing.T) {
		c := h.op.Claims("str@"+testSchoolDomain, testSchoolDomain)
		c.EmailVerifiedString = "true"
		if _, err := h.auth.GoogleSignIn(context.Background(), &authv1.GoogleSignInRequest{Credential: h.op.MintIDToken(c)}); err != nil {
			t.Errorf("GoogleSignIn() = %v", err)
		}
	})

	t.Run("provider rotated its key", func(t *testing.T) {
		h.op.RotateKey()
		h.signIn("rotated@" + testSchoolDomain)
	})

	t.Run("suspended teacher", func(t *testing.T) {
		h.signIn("sus@" + testSchoolDomain)
		sus := h.teacher("sus@" + testSchoolDomain)
		if _, err := h.st.UpdateTeacherRole(t.Context(), sus.ID, RoleTeacher, StatusSuspended, t0); err != nil {
			t.Fatal(err)
		}
		families := h.familyCount()
		_, err := h.auth.GoogleSignIn(context.Background(), &authv1.GoogleSignInRequest{
			Credential: h.op.MintIDToken(h.op.Claims("sus@"+testSchoolDomain, testSchoolDomain)),
		})
		wantErr(t, err, codes.PermissionDenied, ReasonAccountSuspended)
		if h.familyCount() != families {
			t.Error("a refused sign-in started a refresh token family")
		}
	})

	t.Run("refusals are audited", func(t *testing.T) {
		failed := h.auditEvents("auth.login_failed")
		reasons := map[string]bool{}
		for _, ev := range failed {
			reasons[ev.GetMetadata()["reason"]] = true
		}
		for _, r := range []string{ReasonSchoolNotRegistered, ReasonEmailNotVerified, ReasonSchoolInactive, ReasonTeacherLimit, ReasonAccountSuspended} {
			if !reasons[r] {
				t.Errorf("no auth.login_failed event with reason %s (have %v)", r, reasons)
			}
		}
	})

	t.Run("neither code nor credential", func(t *testing.T) {
		_, err := h.auth.GoogleSignIn(context.Background(), &authv1.GoogleSignInRequest{})
		wantErr(t, err, codes.InvalidArgument, reasonValidation)
	})
}

// TestGoogleSignInCode exchanges authorization codes at the provider's token endpoint (the popup
// flow: the browser did PKCE with the provider and hands code and verifier over).
func TestGoogleSignInCode(t *testing.T) {
	h := newHarness(t, nil, nil)
	const popup = "postmessage"
	verifier := oauth2.GenerateVerifier()
	claims := h.op.Claims("code@"+testSchoolDomain, testSchoolDomain)

	tests := []struct {
		name       string
		code       func() string
		verifier   string
		redirect   string
		wantReason string
	}{
		{"PKCE", func() string {
			return h.op.IssueCode(claims, popup, oauth2.S256ChallengeFromVerifier(verifier), "S256")
		}, verifier, popup, ""},
		{"default redirect URI", func() string { return h.op.IssueCode(claims, testRedirectURI, "", "") }, "", "", ""},
		{"wrong verifier", func() string {
			return h.op.IssueCode(claims, popup, oauth2.S256ChallengeFromVerifier(verifier), "S256")
		},
			oauth2.GenerateVerifier(), popup, ReasonGoogleCodeInvalid},
		{"verifier missing", func() string {
			return h.op.IssueCode(claims, popup, oauth2.S256ChallengeFromVerifier(verifier), "S256")
		},
			"", popup, ReasonGoogleCodeInvalid},
		{"other redirect URI", func() string { return h.op.IssueCode(claims, popup, "", "") }, "", "https://evil.example/cb", ReasonGoogleCodeInvalid},
		{"unknown code", func() string { return "made-up" }, "", popup, ReasonGoogleCodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := h.auth.GoogleSignIn(context.Background(), &authv1.GoogleSignInRequest{
				Code: tt.code(), CodeVerifier: tt.verifier, RedirectUri: tt.redirect,
			})
			if tt.wantReason != "" {
				wantErr(t, err, codes.Unauthenticated, tt.wantReason)
				return
			}
			if err != nil || resp.GetTeacher().GetEmail() != "code@"+testSchoolDomain {
				t.Fatalf("GoogleSignIn(code) = %v, %v", resp, err)
			}
		})
	}

	t.Run("a code is spent by its first use", func(t *testing.T) {
		code := h.op.IssueCode(claims, popup, "", "")
		if _, err := h.auth.GoogleSignIn(context.Background(), &authv1.GoogleSignInRequest{Code: code, RedirectUri: popup}); err != nil {
			t.Fatal(err)
		}
		_, err := h.auth.GoogleSignIn(context.Background(), &authv1.GoogleSignInRequest{Code: code, RedirectUri: popup})
		wantErr(t, err, codes.Unauthenticated, ReasonGoogleCodeInvalid)
	})
}

// TestGoogleUnavailable: a provider that cannot be reached answers 503, and the service recovers
// once it can (discovery is retried).
func TestGoogleUnavailable(t *testing.T) {
	h := newHarness(t, nil, func(c *Config) { c.GoogleIssuer = "http://127.0.0.1:1" })
	_, err := h.auth.GoogleSignIn(context.Background(), &authv1.GoogleSignInRequest{Credential: "x.y.z"})
	wantErr(t, err, codes.Unavailable, ReasonGoogleUnavailable)
	_, err = h.auth.GoogleSignIn(context.Background(), &authv1.GoogleSignInRequest{Credential: "x.y.z"})
	wantErr(t, err, codes.Unavailable, ReasonGoogleUnavailable)
}

// TestDevFallback: outside production, without Google settings or with the flag, GoogleSignIn
// signs in the seeded dev teacher in degraded mode and counts it; in production never.
func TestDevFallback(t *testing.T) {
	tests := []struct {
		name        string
		edit        func(*Config)
		wantTrigger string
	}{
		{"google not configured", func(c *Config) { c.Environment, c.GoogleClientID = config.Development, "" }, "google_not_configured"},
		{"flag", func(c *Config) { c.Environment, c.DevFallback = config.Test, true }, "flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, tt.edit)
			resp, err := h.auth.GoogleSignIn(context.Background(), &authv1.GoogleSignInRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if !resp.GetDegradedMode() || resp.GetTeacher().GetId() != DevTeacherID || resp.GetSchool().GetId() != DevSchoolID {
				t.Errorf("GoogleSignIn() = degraded %v, teacher %s, school %s; want the dev teacher, degraded",
					resp.GetDegradedMode(), resp.GetTeacher().GetId(), resp.GetSchool().GetId())
			}
			env := h.cfg.Environment.String()
			if got := h.counter(h.svc.m.devFallback, env, tt.wantTrigger); got != 1 {
				t.Errorf("classwaves_auth_dev_fallback_total{environment=%q,trigger=%q} = %v, want 1", env, tt.wantTrigger, got)
			}
			// The dev session is a real one: /auth/me and refresh work.
			me, err := h.auth.GetCurrentUser(bearer(resp.GetTokens().GetAccessToken()), &authv1.GetCurrentUserRequest{})
			if err != nil || me.GetTeacher().GetEmail() != DevTeacherEmail {
				t.Errorf("GetCurrentUser() = %v, %v", me, err)
			}
			if _, err := h.auth.RefreshToken(context.Background(), &authv1.RefreshTokenRequest{RefreshToken: resp.GetTokens().GetRefreshToken()}); err != nil {
				t.Errorf("RefreshToken() = %v", err)
			}
			if ev := h.auditEvents("auth.login"); len(ev) != 1 || ev[0].GetMetadata()["method"] != methodDevFallback ||
				ev[0].GetMetadata()["degradedMode"] != "true" {
				t.Errorf("auth.login audit events = %v", ev)
			}
		})
	}

	t.Run("never in production", func(t *testing.T) {
		h := newHarness(t, nil, func(c *Config) { c.Environment, c.GoogleClientID, c.DevFallback = config.Production, "", true })
		_, err := h.auth.GoogleSignIn(context.Background(), &authv1.GoogleSignInRequest{})
		wantErr(t, err, codes.Unavailable, ReasonGoogleNotConfigured)
		if _, err := h.st.GetTeacher(t.Context(), DevTeacherID); err == nil {
			t.Error("the dev teacher was seeded in production")
		}
		if got := testutil.CollectAndCount(h.svc.m.devFallback); got != 0 {
			t.Errorf("dev fallback counted in production (%d series)", got)
		}
	})

	t.Run("production with Google uses Google", func(t *testing.T) {
		h := newHarness(t, nil, func(c *Config) { c.Environment, c.DevFallback = config.Production, true })
		resp := h.signIn("prod@" + testSchoolDomain)
		if resp.GetDegradedMode() {
			t.Error("degraded mode in production")
		}
	})
}
