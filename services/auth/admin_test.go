package auth

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	auditv1 "github.com/classwaves/classwaves/pkg/api/classwaves/audit/v1"
	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	"github.com/classwaves/classwaves/pkg/authn"
)

// staff creates a teacher of school with role and returns it.
func (h *harness) staff(school School, role string) Teacher {
	h.t.Helper()
	t := newTestTeacher(h.t, h.st, school)
	if role != RoleTeacher {
		var err error
		if t, err = h.st.UpdateTeacherRole(context.Background(), t.ID, role, "", t0); err != nil {
			h.t.Fatal(err)
		}
	}
	return t
}

func TestAdminSchools(t *testing.T) {
	h := newHarness(t, nil, nil)
	super := h.staff(h.school, RoleSuperAdmin)
	ctx := h.asTeacher(super)

	created, err := h.admin.CreateSchool(ctx, &authv1.CreateSchoolRequest{
		Name: "  Washington Middle ", Domain: "Washington.Example.org", MaxTeachers: 2, SttMinutesPerDay: 600, FerpaAgreement: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := created.GetSchool()
	want := &authv1.School{Id: s.GetId(), Name: "Washington Middle", Domain: "washington.example.org", SubscriptionTier: TierFree,
		SubscriptionStatus: SubscriptionActive, MaxTeachers: 2, SttMinutesPerDay: 600, FerpaAgreement: true,
		CreatedAt: s.GetCreatedAt(), UpdatedAt: s.GetUpdatedAt()}
	if !proto.Equal(want, s) {
		t.Errorf("CreateSchool() = %v, want %v", s, want)
	}

	t.Run("a teacher of the new school can sign in", func(t *testing.T) {
		c := h.claims("first@washington.example.org", "washington.example.org")
		resp, err := h.auth.GoogleSignIn(context.Background(), &authv1.GoogleSignInRequest{Credential: h.op.MintIDToken(c)})
		if err != nil || resp.GetSchool().GetId() != s.GetId() {
			t.Fatalf("GoogleSignIn() = %v, %v", resp, err)
		}
	})

	_, err = h.admin.CreateSchool(ctx, &authv1.CreateSchoolRequest{Name: "Copy", Domain: "washington.example.org"})
	wantErr(t, err, codes.AlreadyExists, ReasonSchoolDomainTaken)
	_, err = h.admin.CreateSchool(ctx, &authv1.CreateSchoolRequest{Name: "Bad", Domain: "not a domain"})
	wantErr(t, err, codes.InvalidArgument, reasonValidation)
	_, err = h.admin.CreateSchool(ctx, &authv1.CreateSchoolRequest{Name: "   ", Domain: "blank.example.org"})
	wantErr(t, err, codes.InvalidArgument, reasonValidation)

	status, limit := SubscriptionSuspended, int32(10)
	updated, err := h.admin.UpdateSchool(ctx, &authv1.UpdateSchoolRequest{SchoolId: s.GetId(), SubscriptionStatus: &status, MaxTeachers: &limit})
	if err != nil {
		t.Fatal(err)
	}
	if u := updated.GetSchool(); u.GetSubscriptionStatus() != status || u.GetMaxTeachers() != 10 || u.GetName() != "Washington Middle" || u.GetTeacherCount() != 1 {
		t.Errorf("UpdateSchool() = %v", u)
	}
	_, err = h.auth.GoogleSignIn(context.Background(), &authv1.GoogleSignInRequest{
		Credential: h.op.MintIDToken(h.claims("second@washington.example.org", "washington.example.org")),
	})
	wantErr(t, err, codes.PermissionDenied, ReasonSchoolInactive)

	taken := testSchoolDomain
	_, err = h.admin.UpdateSchool(ctx, &authv1.UpdateSchoolRequest{SchoolId: s.GetId(), Domain: &taken})
	wantErr(t, err, codes.AlreadyExists, ReasonSchoolDomainTaken)
	name := "Nowhere"
	_, err = h.admin.UpdateSchool(ctx, &authv1.UpdateSchoolRequest{SchoolId: uuid.NewString(), Name: &name})
	wantErr(t, err, codes.NotFound, ReasonSchoolNotFound)

	list, err := h.admin.ListSchools(ctx, &authv1.ListSchoolsRequest{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetSchools()) != 1 || list.GetTotal() != 3 || list.GetNextPageToken() == "" {
		t.Fatalf("ListSchools(page 1) = %v", list)
	}
	var names []string
	for tok := ""; ; {
		page, err := h.admin.ListSchools(ctx, &authv1.ListSchoolsRequest{PageSize: 1, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range page.GetSchools() {
			names = append(names, x.GetName())
		}
		if tok = page.GetNextPageToken(); tok == "" {
			break
		}
	}
	if diff := cmp.Diff([]string{DevSchoolName, "Lincoln High", "Washington Middle"}, names); diff != "" {
		t.Errorf("paging through the schools (-want +got):\n%s", diff)
	}
	if found, _ := h.admin.ListSchools(ctx, &authv1.ListSchoolsRequest{Query: "WASHING"}); len(found.GetSchools()) != 1 {
		t.Errorf("ListSchools(query) = %v", found)
	}
	_, err = h.admin.ListSchools(ctx, &authv1.ListSchoolsRequest{PageToken: "garbage!"})
	wantErr(t, err, codes.InvalidArgument, reasonValidation)

	t.Run("audited", func(t *testing.T) {
		wantAudit(t, h, "admin.school.create", super, s.GetId(), "critical")
		wantAudit(t, h, "admin.school.update", super, s.GetId(), "critical")
		if ev := h.auditEvents("admin.schools.list"); len(ev) == 0 || ev[0].GetActorId() != super.ID {
			t.Errorf("admin.schools.list events = %v", ev)
		}
	})
}

// wantAudit checks that an event of eventType by actor about school was recorded with priority.
func wantAudit(t *testing.T, h *harness, eventType string, actor Teacher, schoolID, priority string) *auditv1.AuditEvent {
	t.Helper()
	for _, ev := range h.auditEvents(eventType) {
		if ev.GetActorId() == actor.ID && ev.GetSchoolId() == schoolID {
			if ev.GetPriority() != priority || ev.GetActorType() != actorType(actor.Role) || ev.GetEventCategory() == "" {
				t.Errorf("%s event = %v, want priority %s by a %s", eventType, ev, priority, actor.Role)
			}
			return ev
		}
	}
	t.Errorf("no %s event by %s about school %s", eventType, actor.ID, schoolID)
	return nil
}

func TestAdminTeachers(t *testing.T) {
	h := newHarness(t, nil, nil)
	other := newTestSchool(t, h.st, "Other", "other.example.org", 0)
	super := h.staff(h.school, RoleSuperAdmin)
	admin := h.staff(h.school, RoleAdmin)
	teacher := h.staff(h.school, RoleTeacher)
	foreign := h.staff(other, RoleTeacher)

	emailsOf := func(resp *authv1.ListTeachersResponse) []string {
		var out []string
		for _, x := range resp.GetTeachers() {
			out = append(out, x.GetEmail())
		}
		return out
	}
	t.Run("an admin sees its own school only", func(t *testing.T) {
		resp, err := h.admin.ListTeachers(h.asTeacher(admin), &authv1.ListTeachersRequest{SchoolId: other.ID})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range resp.GetTeachers() {
			if x.GetSchoolId() != h.school.ID {
				t.Errorf("admin of %s saw teacher %s of school %s", h.school.ID, x.GetEmail(), x.GetSchoolId())
			}
		}
		if len(resp.GetTeachers()) != 3 {
			t.Errorf("ListTeachers(admin) = %v, want the 3 teachers of its school", emailsOf(resp))
		}
	})
	t.Run("a super admin sees any school", func(t *testing.T) {
		resp, err := h.admin.ListTeachers(h.asTeacher(super), &authv1.ListTeachersRequest{SchoolId: other.ID})
		if err != nil || !cmp.Equal([]string{foreign.Email}, emailsOf(resp)) {
			t.Errorf("ListTeachers(super admin, other school) = %v, %v", emailsOf(resp), err)
		}
		all, err := h.admin.ListTeachers(h.asTeacher(super), &authv1.ListTeachersRequest{PageSize: 2})
		if err != nil || len(all.GetTeachers()) != 2 || all.GetNextPageToken() == "" {
			t.Errorf("ListTeachers(super admin, page of 2) = %v, %v", emailsOf(all), err)
		}
	})

	denied := []struct {
		name string
		ctx  context.Context
		call func(ctx context.Context) error
	}{
		{"a teacher lists teachers", h.asTeacher(teacher), func(ctx context.Context) error {
			_, err := h.admin.ListTeachers(ctx, &authv1.ListTeachersRequest{})
			return err
		}},
		{"a teacher on a super_admin route", h.asTeacher(teacher), func(ctx context.Context) error {
			_, err := h.admin.ListSchools(ctx, &authv1.ListSchoolsRequest{})
			return err
		}},
		{"an admin changes a role", h.asTeacher(admin), func(ctx context.Context) error {
			_, err := h.admin.UpdateTeacherRole(ctx, &authv1.UpdateTeacherRoleRequest{TeacherId: teacher.ID, Role: RoleAdmin})
			return err
		}},
		{"a student", h.as(authn.Principal{Subject: uuid.NewString(), Role: authn.RoleStudent, SchoolID: h.school.ID,
			SessionID: uuid.NewString(), GroupID: uuid.NewString()}), func(ctx context.Context) error {
			_, err := h.admin.ListTeachers(ctx, &authv1.ListTeachersRequest{})
			return err
		}},
	}
	for _, tt := range denied {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, tt.call(tt.ctx), codes.PermissionDenied, "FORBIDDEN") })
	}

	t.Run("role and status", func(t *testing.T) {
		pair, err := h.svc.startSession(t.Context(), teacher, DefaultRefreshIdleTTL)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := h.admin.UpdateTeacherRole(h.asTeacher(super), &authv1.UpdateTeacherRoleRequest{TeacherId: teacher.ID, Role: RoleAdmin})
		if err != nil || resp.GetTeacher().GetRole() != RoleAdmin || resp.GetTeacher().GetStatus() != StatusActive {
			t.Fatalf("UpdateTeacherRole(admin) = %v, %v", resp, err)
		}
		if _, err := h.refresh(pair.Refresh); err != nil {
			t.Errorf("a promotion ended the teacher's sessions: %v", err)
		}
		resp, err = h.admin.UpdateTeacherRole(h.asTeacher(super), &authv1.UpdateTeacherRoleRequest{TeacherId: teacher.ID, Role: RoleTeacher, Status: StatusSuspended})
		if err != nil || resp.GetTeacher().GetStatus() != StatusSuspended {
			t.Fatalf("UpdateTeacherRole(suspend) = %v, %v", resp, err)
		}
		if n := h.liveFamiliesOf(teacher.ID); n != 0 {
			t.Errorf("a suspended teacher keeps %d live refresh token families", n)
		}
		ev := wantAudit(t, h, "admin.teacher.update_role", super, h.school.ID, "critical")
		if ev != nil && (ev.GetResourceId() != teacher.ID) {
			t.Errorf("audit resource = %q, want %s", ev.GetResourceId(), teacher.ID)
		}
		_, err = h.admin.UpdateTeacherRole(h.asTeacher(super), &authv1.UpdateTeacherRoleRequest{TeacherId: super.ID, Role: RoleTeacher})
		wantErr(t, err, codes.FailedPrecondition, ReasonCannotChangeOwnRole)
		_, err = h.admin.UpdateTeacherRole(h.asTeacher(super), &authv1.UpdateTeacherRoleRequest{TeacherId: uuid.NewString(), Role: RoleTeacher})
		wantErr(t, err, codes.NotFound, ReasonTeacherNotFound)
		if ev := h.auditEvents("admin.teachers.list"); len(ev) < 2 {
			t.Errorf("admin.teachers.list events = %d, want one per listing", len(ev))
		}
	})
}

// liveFamiliesOf is how many live refresh token families teacherID has.
func (h *harness) liveFamiliesOf(teacherID string) int {
	h.t.Helper()
	var n int
	if err := h.db.QueryRowContext(context.Background(), h.db.Rebind("SELECT COUNT(*) FROM "+h.db.Table("auth", "refresh_families")+
		" WHERE revoked_at IS NULL AND teacher_id = ?"), teacherID).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}
