package analytics

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/authn"
)

// Errors the service answers (reasons are the REST error.code).
var (
	ErrSessionNotFound = apperr.New(codes.NotFound, "SESSION_NOT_FOUND", "session not found")
	ErrGroupNotFound   = apperr.New(codes.NotFound, "GROUP_NOT_FOUND", "group not found in this session")
	ErrSummariesOff    = apperr.New(codes.FailedPrecondition, "SUMMARIES_DISABLED",
		"session summaries are not enabled (FEATURE_GROUP_SESSION_SUMMARIES)")
	ErrSummariesFailed = apperr.New(codes.FailedPrecondition, "SUMMARIES_FAILED",
		"the summaries could not be built; an admin can retry the session's finalization")
	ErrAnalyticsFailed = apperr.New(codes.FailedPrecondition, "FINALIZATION_FAILED",
		"the session's analytics could not be finalized; an admin can retry")
	ErrSessionUnavailable = apperr.New(codes.Unavailable, "SESSION_SERVICE_UNAVAILABLE",
		"the session service is unavailable; try again shortly")
	ErrSessionNotEnded = apperr.New(codes.FailedPrecondition, "SESSION_NOT_ENDED",
		"the session has not ended; it is finalized when it ends")
	ErrFinalizationInProgress = apperr.New(codes.Aborted, "FINALIZATION_IN_PROGRESS",
		"the session is being finalized; try again shortly")
	ErrSchoolRequired = apperr.New(codes.FailedPrecondition, "SCHOOL_REQUIRED",
		"your account has no school; use the platform analytics (/api/v1/admin/analytics)")
	errSinceInFuture = apperr.New(codes.InvalidArgument, apperr.ReasonValidation, "since must not be in the future").
				WithField("since", "must not be in the future")
)

// sessionAccess is a session the caller may see, with what is known of it.
type sessionAccess struct {
	// sess is the session context; nil when the session service could not be reached and the
	// stored state stood in.
	sess      *sessionv1.Session
	state     SessionState
	schoolID  string
	teacherID string
	// status is the session's status: the context's, else the last one seen on the bus.
	status string
}

// ended reports whether the session has ended.
func (a sessionAccess) ended() bool { return a.status == "ended" }

// visible says whether p may see a session of teacherID in schoolID: super admins every session,
// admins their school's, teachers their own. Anything else is answered SESSION_NOT_FOUND, so
// nothing leaks (not even that the session exists).
func visible(p authn.Principal, teacherID, schoolID string) bool {
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

// access loads the session and checks the caller may see it. The session service is the
// authority (GetSessionContext); when it cannot be reached, what the bus told about the session
// (its school and teacher) stands in, so finalized analytics stay readable during an outage.
func (s *Service) access(ctx context.Context, sessionID string) (authn.Principal, sessionAccess, error) {
	p, ok := authn.FromContext(ctx)
	if !ok {
		return authn.Principal{}, sessionAccess{}, authn.ErrUnauthenticated
	}
	notFound := ErrSessionNotFound.WithMetadata("sessionId", sessionID)
	sess, err := s.sessionContext(ctx, sessionID)
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return p, sessionAccess{}, notFound
		}
		state, found, serr := s.store.Session(ctx, sessionID)
		if serr != nil || !found || state.SchoolID == "" || state.TeacherID == "" {
			return p, sessionAccess{}, ErrSessionUnavailable.WithCause(err)
		}
		s.logger.WarnContext(ctx, "analytics: session service unreachable; authorizing from stored state", "err", err, "sessionId", sessionID)
		if !visible(p, state.TeacherID, state.SchoolID) {
			return p, sessionAccess{}, notFound
		}
		return p, sessionAccess{state: state, schoolID: state.SchoolID, teacherID: state.TeacherID, status: state.Status}, nil
	}
	if !visible(p, sess.GetTeacherId(), sess.GetSchoolId()) {
		return p, sessionAccess{}, notFound
	}
	state, _, err := s.store.Session(ctx, sessionID)
	if err != nil {
		return p, sessionAccess{}, err
	}
	return p, sessionAccess{sess: sess, state: state, schoolID: sess.GetSchoolId(), teacherID: sess.GetTeacherId(), status: sess.GetStatus()}, nil
}

// auditAccess records p's access to a session's analytics in the audit log.
func (s *Service) auditAccess(ctx context.Context, p authn.Principal, a sessionAccess, sessionID, eventType, category, description string) {
	if s.audit == nil {
		return
	}
	s.audit.Log(ctx, auditlog.Event{
		ActorID: p.Subject, ActorType: actorType(p.Role), EventType: eventType, Category: category,
		ResourceType: "session_analytics", ResourceID: sessionID, SchoolID: a.schoolID, SessionID: sessionID,
		Description: description, ComplianceBasis: "legitimate_interest",
	})
}

func actorType(r authn.Role) string {
	switch r {
	case authn.RoleTeacher:
		return auditlog.ActorTeacher
	case authn.RoleAdmin:
		return auditlog.ActorAdmin
	case authn.RoleSuperAdmin:
		return auditlog.ActorSuperAdmin
	case authn.RoleStudent:
		return auditlog.ActorStudent
	}
	return auditlog.ActorSystem
}
