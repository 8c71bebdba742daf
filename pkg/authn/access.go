package authn

import "context"

// SameSchool reports whether p may reach data of schoolID: a super admin reaches every school,
// everyone else only their own. It answers ErrWrongSchool otherwise (also for an empty schoolID,
// which would otherwise match a principal without a school). Services call it once they have
// loaded the data and know its school.
func SameSchool(p Principal, schoolID string) error {
	if p.Role == RoleSuperAdmin {
		return nil
	}
	if schoolID == "" || p.SchoolID != schoolID {
		return ErrWrongSchool
	}
	return nil
}

// RequireSchool is SameSchool for the principal of ctx; without one it answers ErrUnauthenticated.
func RequireSchool(ctx context.Context, schoolID string) (Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return Principal{}, ErrUnauthenticated
	}
	if err := SameSchool(p, schoolID); err != nil {
		return Principal{}, err
	}
	return p, nil
}

// InScope reports whether a student principal may reach sessionID and groupID: its token opens
// exactly one session and one group. groupID "" means the request names no group; a student must
// always name its session. Other principals are not scoped and always pass (their school and
// ownership are the service's to check). It answers ErrOutOfScope otherwise.
func InScope(p Principal, sessionID, groupID string) error {
	if p.Role != RoleStudent {
		return nil
	}
	if sessionID == "" || sessionID != p.SessionID {
		return ErrOutOfScope
	}
	if groupID != "" && groupID != p.GroupID {
		return ErrOutOfScope
	}
	return nil
}
