package auth

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/store/storetest"
)

func (h *harness) refresh(tok string) (*authv1.TokenPair, error) {
	resp, err := h.auth.RefreshToken(context.Background(), &authv1.RefreshTokenRequest{RefreshToken: tok})
	return resp.GetTokens(), err
}

// TestRefreshRotation: every refresh spends its token and answers a new pair; presenting a spent
// token revokes the whole family, so the newest token fails too.
func TestRefreshRotation(t *testing.T) {
	h := newHarness(t, nil, nil)
	first := h.signIn("rot@" + testSchoolDomain).GetTokens()
	teacher := h.teacher("rot@" + testSchoolDomain)

	second, err := h.refresh(first.GetRefreshToken())
	if err != nil {
		t.Fatal(err)
	}
	if second.GetRefreshToken() == first.GetRefreshToken() || second.GetAccessToken() == "" || second.GetExpiresIn() != 900 {
		t.Errorf("refresh answered %v", second)
	}
	third, err := h.refresh(second.GetRefreshToken())
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.keys.Verifier().VerifyToken(context.Background(), third.GetAccessToken())
	if err != nil || p.Subject != teacher.ID || p.Role != authn.RoleTeacher || p.SchoolID != h.school.ID {
		t.Errorf("refreshed access token: %+v, %v", p, err)
	}

	t.Run("reuse revokes the family", func(t *testing.T) {
		_, err := h.refresh(first.GetRefreshToken())
		wantErr(t, err, codes.Unauthenticated, ReasonRefreshTokenReused)
		_, err = h.refresh(third.GetRefreshToken())
		wantErr(t, err, codes.Unauthenticated, ReasonRefreshTokenRevoked)
		_, err = h.refresh(second.GetRefreshToken())
		wantErr(t, err, codes.Unauthenticated, ReasonRefreshTokenReused)
		reuse := h.auditEvents("auth.refresh_token_reuse")
		if len(reuse) != 2 || reuse[0].GetPriority() != "critical" || reuse[0].GetActorId() != teacher.ID ||
			reuse[0].GetSchoolId() != h.school.ID || reuse[0].GetMetadata()["familyRevokedNow"] != "true" ||
			reuse[1].GetMetadata()["familyRevokedNow"] != "false" {
			t.Errorf("reuse audit events = %v", reuse)
		}
		if got := h.counter(h.svc.m.refreshes, "refresh_token_reused"); got != 2 {
			t.Errorf("classwaves_auth_refresh_total{outcome=refresh_token_reused} = %v, want 2", got)
		}
	})

	t.Run("another sign-in is not affected", func(t *testing.T) {
		other := h.signIn("rot@" + testSchoolDomain).GetTokens()
		if _, err := h.refresh(other.GetRefreshToken()); err != nil {
			t.Errorf("refresh of another family: %v", err)
		}
	})

	t.Run("role changes reach the next refresh", func(t *testing.T) {
		tok := h.signIn("promoted@" + testSchoolDomain).GetTokens()
		if _, err := h.st.UpdateTeacherRole(t.Context(), h.teacher("promoted@"+testSchoolDomain).ID, RoleAdmin, "", t0); err != nil {
			t.Fatal(err)
		}
		next, err := h.refresh(tok.GetRefreshToken())
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := h.keys.Verifier().VerifyToken(context.Background(), next.GetAccessToken()); p.Role != authn.RoleAdmin {
			t.Errorf("role after refresh = %q, want admin", p.Role)
		}
	})

	t.Run("suspended teacher", func(t *testing.T) {
		tok := h.signIn("gone@" + testSchoolDomain).GetTokens()
		if _, err := h.st.UpdateTeacherRole(t.Context(), h.teacher("gone@"+testSchoolDomain).ID, RoleTeacher, StatusSuspended, t0); err != nil {
			t.Fatal(err)
		}
		_, err := h.refresh(tok.GetRefreshToken())
		wantErr(t, err, codes.PermissionDenied, ReasonAccountSuspended)
		_, err = h.refresh(tok.GetRefreshToken())
		wantErr(t, err, codes.Unauthenticated, ReasonRefreshTokenRevoked)
	})

	bad := []struct {
		name, token string
		wantCode    codes.Code
		wantReason  string
	}{
		{"empty", "", codes.InvalidArgument, reasonValidation},
		{"malformed", "not a token", codes.Unauthenticated, ReasonRefreshTokenInvalid},
		{"right shape, unknown", strings.Repeat("A", 43), codes.Unauthenticated, ReasonRefreshTokenInvalid},
		{"padding", strings.Repeat("A", 42) + "=", codes.Unauthenticated, ReasonRefreshTokenInvalid},
		{"longer than any token", strings.Repeat("A", 512), codes.Unauthenticated, ReasonRefreshTokenInvalid},
		{"over the size limit", strings.Repeat("A", 513), codes.InvalidArgument, reasonValidation},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.refresh(tt.token)
			wantErr(t, err, tt.wantCode, tt.wantReason)
		})
	}
}

// TestRefreshExpiry: the idle expiry lapses an unused token; rotation never extends the absolute
// expiry.
func TestRefreshExpiry(t *testing.T) {
	h := newHarness(t, nil, nil)

	t.Run("idle", func(t *testing.T) {
		tok := h.signIn("idle@" + testSchoolDomain).GetTokens()
		h.clk.Advance(DefaultRefreshIdleTTL - time.Second)
		next, err := h.refresh(tok.GetRefreshToken())
		if err != nil {
			t.Fatalf("refresh just inside the idle window: %v", err)
		}
		h.clk.Advance(DefaultRefreshIdleTTL)
		_, err = h.refresh(next.GetRefreshToken())
		wantErr(t, err, codes.Unauthenticated, ReasonRefreshTokenExpired)
	})

	t.Run("absolute", func(t *testing.T) {
		tok := h.signIn("abs@" + testSchoolDomain).GetTokens()
		start := h.clk.Now()
		var err error
		for h.clk.Now().Sub(start) < DefaultRefreshTTL-6*24*time.Hour {
			h.clk.Advance(6 * 24 * time.Hour)
			if tok, err = h.refresh(tok.GetRefreshToken()); err != nil {
				t.Fatalf("refresh at day %v: %v", h.clk.Now().Sub(start)/(24*time.Hour), err)
			}
		}
		if got, max := tok.GetRefreshExpiresIn(), int32((DefaultRefreshTTL-h.clk.Now().Sub(start))/time.Second); got > max {
			t.Errorf("refresh_expires_in = %d beyond the family's expiry (%d s left)", got, max)
		}
		h.clk.Advance(6 * 24 * time.Hour)
		_, err = h.refresh(tok.GetRefreshToken())
		wantErr(t, err, codes.Unauthenticated, ReasonRefreshTokenExpired)
	})

	t.Run("cleanup deletes expired families", func(t *testing.T) {
		before := h.familyCount()
		h.clk.Advance(DefaultRefreshTTL)
		h.svc.cleanup(t.Context())
		if after := h.familyCount(); after != 0 || before == 0 {
			t.Errorf("families: %d before cleanup, %d after; want some, then none", before, after)
		}
	})
}

// TestConcurrentRefresh: two refreshes of one token at once. Exactly one rotates; the other finds
// the token spent and is treated as reuse, which revokes the family, so the winner's new token
// fails at its next use. Clients must refresh one at a time.
func TestConcurrentRefresh(t *testing.T) {
	storetest.ForEachProvider(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		for round := range 5 {
			tok := h.signIn("race@" + testSchoolDomain).GetTokens().GetRefreshToken()
			var wg sync.WaitGroup
			pairs := make([]*authv1.TokenPair, 2)
			errs := make([]error, 2)
			for i := range 2 {
				wg.Go(func() { pairs[i], errs[i] = h.refresh(tok) })
			}
			wg.Wait()
			winner := -1
			for i, err := range errs {
				if err == nil {
					if winner >= 0 {
						t.Fatalf("round %d: both refreshes succeeded", round)
					}
					winner = i
					continue
				}
				wantErr(t, err, codes.Unauthenticated, ReasonRefreshTokenReused)
			}
			if winner < 0 {
				t.Fatalf("round %d: no refresh succeeded: %v", round, errs)
			}
			_, err := h.refresh(pairs[winner].GetRefreshToken())
			wantErr(t, err, codes.Unauthenticated, ReasonRefreshTokenRevoked)
		}
	})
}

// TestLogout revokes one family, or every family of the caller.
func TestLogout(t *testing.T) {
	h := newHarness(t, nil, nil)
	email := "out@" + testSchoolDomain
	a, b, c := h.signIn(email).GetTokens(), h.signIn(email).GetTokens(), h.signIn(email).GetTokens()
	teacher := h.teacher(email)
	otherTok := h.signIn("other@" + testSchoolDomain).GetTokens()

	logout := func(ctx context.Context, tok string, all bool) (int32, error) {
		resp, err := h.auth.Logout(ctx, &authv1.LogoutRequest{RefreshToken: tok, AllDevices: all})
		return resp.GetRevokedFamilies(), err
	}

	t.Run("one family, with the refresh token only", func(t *testing.T) {
		n, err := logout(context.Background(), a.GetRefreshToken(), false)
		if err != nil || n != 1 {
			t.Fatalf("Logout() = %d, %v, want 1", n, err)
		}
		_, err = h.refresh(a.GetRefreshToken())
		wantErr(t, err, codes.Unauthenticated, ReasonRefreshTokenRevoked)
		if _, err := h.refresh(b.GetRefreshToken()); err != nil {
			t.Errorf("another family was revoked: %v", err)
		}
		if n, err := logout(context.Background(), a.GetRefreshToken(), false); err != nil || n != 0 {
			t.Errorf("second Logout() = %d, %v, want 0 and no error", n, err)
		}
	})

	refusals := []struct {
		name       string
		ctx        context.Context
		token      string
		all        bool
		wantCode   codes.Code
		wantReason string
	}{
		{"nothing", context.Background(), "", false, codes.InvalidArgument, reasonValidation},
		{"signed in, no token, not all devices", bearer(a.GetAccessToken()), "", false, codes.InvalidArgument, reasonValidation},
		{"all devices, nobody", context.Background(), "", true, codes.Unauthenticated, "UNAUTHORIZED"},
		{"all devices with a spent token", context.Background(), a.GetRefreshToken(), true, codes.Unauthenticated, ReasonRefreshTokenInvalid},
		{"someone else's token", bearer(c.GetAccessToken()), otherTok.GetRefreshToken(), false, codes.PermissionDenied, "FORBIDDEN"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			families := h.liveFamilies()
			_, err := logout(tt.ctx, tt.token, tt.all)
			wantErr(t, err, tt.wantCode, tt.wantReason)
			if got := h.liveFamilies(); got != families {
				t.Errorf("live families %d after a refused logout, want %d", got, families)
			}
		})
	}

	t.Run("unknown token is not an error", func(t *testing.T) {
		if n, err := logout(context.Background(), strings.Repeat("B", 43), false); err != nil || n != 0 {
			t.Errorf("Logout(unknown) = %d, %v, want 0, nil", n, err)
		}
	})

	t.Run("all devices", func(t *testing.T) {
		d := h.signIn(email).GetTokens()
		n, err := logout(bearer(d.GetAccessToken()), "", true)
		if err != nil || n != 3 { // b, c and d; a was revoked already
			t.Fatalf("Logout(all devices) = %d, %v, want 3", n, err)
		}
		for _, tok := range []string{b.GetRefreshToken(), d.GetRefreshToken()} {
			_, err := h.refresh(tok)
			if err == nil {
				t.Error("a family survived logout from all devices")
			}
		}
		if _, err := h.refresh(otherTok.GetRefreshToken()); err != nil {
			t.Errorf("another teacher was logged out: %v", err)
		}
		ev := h.auditEvents("auth.logout")
		if len(ev) < 2 || ev[len(ev)-1].GetActorId() != teacher.ID || ev[len(ev)-1].GetMetadata()["allDevices"] != "true" ||
			ev[len(ev)-1].GetMetadata()["revokedFamilies"] != "3" {
			t.Errorf("auth.logout audit events = %v", ev)
		}
	})

	t.Run("all devices with a live refresh token", func(t *testing.T) {
		e, f := h.signIn(email).GetTokens(), h.signIn(email).GetTokens()
		if n, err := logout(context.Background(), e.GetRefreshToken(), true); err != nil || n != 2 {
			t.Fatalf("Logout(all devices, token) = %d, %v, want 2", n, err)
		}
		_, err := h.refresh(f.GetRefreshToken())
		wantErr(t, err, codes.Unauthenticated, ReasonRefreshTokenRevoked)
	})
}

// liveFamilies is how many refresh token families are not revoked.
func (h *harness) liveFamilies() int {
	h.t.Helper()
	var n int
	if err := h.db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM "+h.db.Table("auth", "refresh_families")+
		" WHERE revoked_at IS NULL").Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}
