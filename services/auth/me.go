package auth

import (
	"context"
	"errors"

	"github.com/classwaves/classwaves/pkg/authn"
)

// me is the signed-in caller: the verified claims and, for staff, the teacher and school.
type me struct {
	Claims  *authn.Claims
	Teacher Teacher
	School  School
}

// currentUser answers GET /auth/me from the principal the interceptor verified. A staff token
// whose teacher no longer exists answers 401 (sign in again); one whose teacher is no longer
// active answers ACCOUNT_SUSPENDED. A student token answers its claims only.
func (s *Service) currentUser(ctx context.Context) (me, error) {
	c, ok := authn.ClaimsFromContext(ctx)
	if !ok {
		return me{}, authn.ErrUnauthenticated
	}
	if !c.Role.IsStaff() {
		return me{Claims: c}, nil
	}
	t, err := s.store.GetTeacher(ctx, c.Subject)
	if errors.Is(err, ErrNotFound) {
		return me{}, authn.ErrUnauthenticated.WithCause(errors.New("the token's teacher does not exist"))
	}
	if err != nil {
		return me{}, err
	}
	if t.Status != StatusActive {
		return me{}, errAccountSuspended
	}
	school, err := s.store.GetSchool(ctx, t.SchoolID)
	if err != nil {
		return me{}, err
	}
	return me{Claims: c, Teacher: t, School: school}, nil
}
