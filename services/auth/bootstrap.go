package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/classwaves/classwaves/pkg/store"
)

// BootstrapRequest names the first school and its first super admin.
type BootstrapRequest struct {
	SchoolName string
	// Domain is the school's Google Workspace domain.
	Domain string
	// SuperAdminEmail is the Workspace account that becomes super admin at its first sign-in.
	SuperAdminEmail string
}

// Bootstrap solves the first-run problem: signing in needs a registered school, and registering a
// school needs a signed-in super admin. It migrates db, registers the school (or finds it by its
// domain) and provisions a super admin with SuperAdminEmail in it (or makes the existing teacher
// with that e-mail super admin, and active). The person then signs in with Google as usual; the
// first sign-in links the account. Idempotent. Meant for an operator command such as
// `classwaves auth bootstrap`, never for a request path.
func Bootstrap(ctx context.Context, db *store.DB, req BootstrapRequest) (School, Teacher, error) {
	domain, email := normalizeDomain(req.Domain), normalizeEmail(req.SuperAdminEmail)
	name := strings.TrimSpace(req.SchoolName)
	switch {
	case name == "":
		return School{}, Teacher{}, errors.New("auth bootstrap: the school name is required")
	case domain == "" || strings.ContainsAny(domain, " /@"):
		return School{}, Teacher{}, fmt.Errorf("auth bootstrap: %q is not a Workspace domain", req.Domain)
	case !strings.HasSuffix(email, "@"+domain):
		return School{}, Teacher{}, fmt.Errorf("auth bootstrap: the super admin e-mail must belong to %s", domain)
	}
	if err := Migrate(ctx, db); err != nil {
		return School{}, Teacher{}, err
	}
	st := newSQLStore(db)
	now := time.Now().UTC().Truncate(time.Microsecond)
	school, err := st.SchoolByDomain(ctx, domain)
	if errors.Is(err, ErrNotFound) {
		school = School{
			ID: uuid.NewString(), Name: name, Domain: domain, SubscriptionTier: TierFree,
			SubscriptionStatus: SubscriptionActive, CreatedAt: now, UpdatedAt: now,
		}
		if err = st.CreateSchool(ctx, school); errors.Is(err, ErrDomainTaken) {
			school, err = st.SchoolByDomain(ctx, domain) // created concurrently
		}
	}
	if err != nil {
		return School{}, Teacher{}, err
	}
	t, err := st.TeacherByEmail(ctx, email)
	switch {
	case errors.Is(err, ErrNotFound):
		t = Teacher{
			ID: uuid.NewString(), Email: email, SchoolID: school.ID, Role: RoleSuperAdmin, Status: StatusActive,
			CreatedAt: now, UpdatedAt: now,
		}
		err = st.CreateTeacher(ctx, t)
	case err == nil && t.SchoolID != school.ID:
		err = fmt.Errorf("auth bootstrap: %s is a teacher of another school", email)
	case err == nil:
		t, err = st.UpdateTeacherRole(ctx, t.ID, RoleSuperAdmin, StatusActive, now)
	}
	if err != nil {
		return School{}, Teacher{}, err
	}
	return school, t, nil
}
