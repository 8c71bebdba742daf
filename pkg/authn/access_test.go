package authn

import (
	"context"
	"errors"
	"testing"
)

func TestSameSchool(t *testing.T) {
	teacherA := Principal{Subject: "t", Role: RoleTeacher, SchoolID: "school-a"}
	adminA := Principal{Subject: "a", Role: RoleAdmin, SchoolID: "school-a"}
	super := Principal{Subject: "s", Role: RoleSuperAdmin, SchoolID: "school-a"}
	student := Principal{Subject: "k", Role: RoleStudent, SchoolID: "school-a", SessionID: "s1", GroupID: "g1"}
	noSchool := Principal{Subject: "svc", Role: RoleService}
	tests := []struct {
		name    string
		p       Principal
		school  string
		wantErr error
	}{
		{"teacher, own school", teacherA, "school-a", nil},
		{"teacher of school A reading school B", teacherA, "school-b", ErrWrongSchool},
		{"admin of school A reading school B", adminA, "school-b", ErrWrongSchool},
		{"student of another school", student, "school-b", ErrWrongSchool},
		{"super admin, any school", super, "school-b", nil},
		{"empty school never matches", noSchool, "", ErrWrongSchool},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := SameSchool(tt.p, tt.school); !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("SameSchool() = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if code, reason := codeReason(ErrWrongSchool); reason != "FORBIDDEN" || code.String() != "PermissionDenied" {
		t.Errorf("ErrWrongSchool = %v, %q, want PermissionDenied, FORBIDDEN", code, reason)
	}
}

func TestRequireSchool(t *testing.T) {
	teacher := Principal{Subject: "t", Role: RoleTeacher, SchoolID: "school-a"}
	ctx := NewContext(context.Background(), teacher)
	if p, err := RequireSchool(ctx, "school-a"); err != nil || p != teacher {
		t.Errorf("RequireSchool(own) = %+v, %v", p, err)
	}
	if _, err := RequireSchool(ctx, "school-b"); !errors.Is(err, ErrWrongSchool) {
		t.Errorf("RequireSchool(other) = %v, want ErrWrongSchool", err)
	}
	if _, err := RequireSchool(context.Background(), "school-a"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("RequireSchool(no principal) = %v, want ErrUnauthenticated", err)
	}
}

func TestInScope(t *testing.T) {
	student := Principal{Subject: "k", Role: RoleStudent, SchoolID: "a", SessionID: "s1", GroupID: "g1"}
	teacher := Principal{Subject: "t", Role: RoleTeacher, SchoolID: "a"}
	tests := []struct {
		name           string
		p              Principal
		session, group string
		wantErr        bool
	}{
		{"own session and group", student, "s1", "g1", false},
		{"own session, no group named", student, "s1", "", false},
		{"other group", student, "s1", "g2", true},
		{"other session", student, "s2", "g1", true},
		{"no session named", student, "", "g1", true},
		{"teachers are not scoped", teacher, "s9", "g9", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := InScope(tt.p, tt.session, tt.group)
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrOutOfScope)) {
				t.Errorf("InScope() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestPrincipalCheck(t *testing.T) {
	tests := []struct {
		name    string
		p       Principal
		wantErr bool
	}{
		{"teacher", Principal{Subject: "t", Role: RoleTeacher, SchoolID: "a"}, false},
		{"admin without school", Principal{Subject: "t", Role: RoleAdmin}, true},
		{"super admin without school", Principal{Subject: "t", Role: RoleSuperAdmin}, false},
		{"student", Principal{Subject: "k", Role: RoleStudent, SchoolID: "a", SessionID: "s", GroupID: "g"}, false},
		{"student without session", Principal{Subject: "k", Role: RoleStudent, SchoolID: "a", GroupID: "g"}, true},
		{"service", Principal{Subject: "session", Role: RoleService}, false},
		{"service with a group", Principal{Subject: "session", Role: RoleService, GroupID: "g"}, true},
		{"no subject", Principal{Role: RoleTeacher, SchoolID: "a"}, true},
		{"no role", Principal{Subject: "x"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Check(); (err != nil) != tt.wantErr {
				t.Errorf("Check() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
