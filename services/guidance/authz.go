package guidance

import (
	"context"

	"github.com/classwaves/classwaves/pkg/authn"
)

// mayReach says whether p may see (and act on the guidance of) a session of teacherID in
// schoolID: a super admin every session, an admin the sessions of their school, a teacher only
// their own. Students and services never: guidance is for staff (the access policy admits staff
// only; this is the second line).
func mayReach(p authn.Principal, teacherID, schoolID string) bool {
	switch p.Role {
	case authn.RoleSuperAdmin:
		return true
	case authn.RoleAdmin:
		return p.SchoolID != "" && p.SchoolID == schoolID
	case authn.RoleTeacher:
		return p.Subject != "" && p.Subject == teacherID
	}
	return false
}

// authorize loads the session the caller names and checks the caller may reach it. A session
// the caller may not see answers SESSION_NOT_FOUND, like a missing one, so nothing leaks.
func (s *Service) authorize(ctx context.Context, sessionID string) (authn.Principal, *sessionInfo, error) {
	p, ok := authn.FromContext(ctx)
	if !ok {
		return authn.Principal{}, nil, authn.ErrUnauthenticated
	}
	info, err := s.sessions.get(ctx, sessionID)
	if err != nil {
		return p, nil, err
	}
	if !mayReach(p, info.TeacherID, info.SchoolID) {
		return p, nil, ErrSessionNotFound.WithMetadata("sessionId", sessionID)
	}
	return p, info, nil
}

// authorizePrompt checks the caller may act on p, from the teacher and school stored with it.
// A prompt the caller may not reach answers PROMPT_NOT_FOUND.
func authorizePrompt(ctx context.Context, p Prompt) (authn.Principal, error) {
	pr, ok := authn.FromContext(ctx)
	if !ok {
		return authn.Principal{}, authn.ErrUnauthenticated
	}
	if !mayReach(pr, p.TeacherID, p.SchoolID) {
		return pr, ErrPromptNotFound
	}
	return pr, nil
}
