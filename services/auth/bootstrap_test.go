package auth

import (
	"context"
	"testing"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
)

// TestBootstrap: an empty platform gets its first school and super admin, who then signs in with
// Google and can administer.
func TestBootstrap(t *testing.T) {
	h := newHarness(t, nil, nil)
	req := BootstrapRequest{SchoolName: "Platform Ops", Domain: "Ops.Example.org", SuperAdminEmail: "Root@ops.example.org"}
	school, admin, err := Bootstrap(t.Context(), h.db, req)
	if err != nil {
		t.Fatal(err)
	}
	if school.Domain != "ops.example.org" || admin.Email != "root@ops.example.org" || admin.Role != RoleSuperAdmin || admin.GoogleID != "" {
		t.Errorf("Bootstrap() = %+v, %+v", school, admin)
	}
	again, adminAgain, err := Bootstrap(t.Context(), h.db, req)
	if err != nil || again.ID != school.ID || adminAgain.ID != admin.ID {
		t.Errorf("second Bootstrap() = %v, %v, %v; want the same school and admin", again.ID, adminAgain.ID, err)
	}
	resp, err := h.auth.GoogleSignIn(context.Background(), &authv1.GoogleSignInRequest{
		Credential: h.op.MintIDToken(h.claims("root@ops.example.org", "ops.example.org")),
	})
	if err != nil || resp.GetTeacher().GetId() != admin.ID || resp.GetTeacher().GetRole() != RoleSuperAdmin {
		t.Fatalf("first sign-in of the bootstrapped admin = %v, %v", resp, err)
	}
	if _, err := h.admin.ListSchools(bearer(resp.GetTokens().GetAccessToken()), &authv1.ListSchoolsRequest{}); err != nil {
		t.Errorf("the bootstrapped super admin cannot list schools: %v", err)
	}

	bad := []BootstrapRequest{
		{Domain: "ops.example.org", SuperAdminEmail: "root@ops.example.org"},
		{SchoolName: "X", Domain: "a b", SuperAdminEmail: "x@a b"},
		{SchoolName: "X", Domain: "x.example.org", SuperAdminEmail: "root@elsewhere.example.org"},
	}
	for _, r := range bad {
		if _, _, err := Bootstrap(t.Context(), h.db, r); err == nil {
			t.Errorf("Bootstrap(%+v) = nil error", r)
		}
	}
}
