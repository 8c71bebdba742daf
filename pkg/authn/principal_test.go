package authn

import (
	"context"
	"errors"
	"testing"
)

func TestRequire(t *testing.T) {
	admin := Principal{Subject: "a", Role: RoleAdmin, SchoolID: "s"}
	tests := []struct {
		name    string
		ctx     context.Context
		roles   []Role
		wantErr error
	}{
		{"no principal", context.Background(), []Role{RoleAdmin}, ErrUnauthenticated},
		{"wrong role", NewContext(context.Background(), Principal{Role: RoleTeacher}), []Role{RoleAdmin, RoleSuperAdmin}, ErrForbidden},
		{"allowed", NewContext(context.Background(), admin), []Role{RoleAdmin, RoleSuperAdmin}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Require(tt.ctx, tt.roles...)
			if !errors.Is(err, tt.wantErr) && !(err == nil && tt.wantErr == nil) {
				t.Fatalf("Require() error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && p != admin {
				t.Errorf("Require() = %+v, want %+v", p, admin)
			}
		})
	}
}
