package ratelimit

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/authn"
)

func TestUserLimiter(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			u := NewUserLimiter(b.new(t), "end-session", PerPeriod(2, 2*time.Hour))
			alice := authn.NewContext(context.Background(), authn.Principal{Subject: "alice", Role: authn.RoleTeacher, SchoolID: "s"})
			bob := authn.NewContext(context.Background(), authn.Principal{Subject: "bob", Role: authn.RoleTeacher, SchoolID: "s"})
			for i := range 2 {
				if err := u.Check(alice); err != nil {
					t.Fatalf("call %d: Check() = %v", i, err)
				}
			}
			err := u.Check(alice)
			if !errors.Is(err, ErrRateLimited) {
				t.Fatalf("third Check() = %v, want ErrRateLimited", err)
			}
			st := apperr.ToStatus(err)
			if st.Code() != codes.ResourceExhausted || apperr.HTTPStatus(st.Code()) != 429 {
				t.Errorf("status = %v, want ResourceExhausted (429)", st.Code())
			}
			if ae, _ := errors.AsType[*apperr.Error](err); ae.Metadata["retryAfterSeconds"] == "" {
				t.Errorf("metadata = %v, want retryAfterSeconds", ae.Metadata)
			} else if b.slack == 0 && ae.Metadata["retryAfterSeconds"] != "3600" {
				t.Errorf("retryAfterSeconds = %q, want 3600", ae.Metadata["retryAfterSeconds"])
			}
			if err := u.Check(bob); err != nil {
				t.Errorf("another user: Check() = %v", err)
			}
			if err := u.Check(context.Background()); !errors.Is(err, authn.ErrUnauthenticated) {
				t.Errorf("no principal: Check() = %v, want ErrUnauthenticated", err)
			}
		})
	}
	t.Run("fails closed", func(t *testing.T) {
		u := NewUserLimiter(failing{}, "purge", PerPeriod(1, time.Minute))
		ctx := authn.NewContext(context.Background(), authn.Principal{Subject: "s", Role: authn.RoleSuperAdmin})
		if err := u.Check(ctx); !errors.Is(err, ErrLimiterUnavailable) {
			t.Errorf("Check() = %v, want ErrLimiterUnavailable", err)
		}
	})
}
