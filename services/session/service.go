package session

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/store"
)

// Errors of the service's collaborators.
var (
	errTokenUnavailable = apperr.New(codes.Unavailable, "TOKEN_SERVICE_UNAVAILABLE", "could not issue a student token; try again")
	errBadPageToken     = apperr.New(codes.InvalidArgument, apperr.ReasonValidation, "invalid page token").WithField("page_token", "not a token this service issued")
)

const (
	dashboardLimit    = 3
	defaultGroupSize  = 4
	codeAttempts      = 8
	transitionRetries = 3
	purgeBatch        = 500
	purgeDryRunLimit  = 10000
)

// Service is the session service: domain logic over a Store, the bus, the audit log, auth (student
// tokens) and stt (audio drain).
type Service struct {
	cfg    Config
	store  Store
	bus    bus.Bus
	tokens TokenIssuer
	drain  AudioDrainer
	audit  *auditlog.Client
	logger *slog.Logger
	m      *metrics
	now    func() time.Time

	mu      sync.Mutex
	started bool
}

// New builds the session service on db (SQLite or PostgreSQL) and b. It validates cfg and touches
// neither the database nor the bus: Start migrates. audit may be nil (nothing audited), logger nil
// (discard), reg nil (metrics not registered); tokens and drainer are required.
func New(cfg Config, db *store.DB, b bus.Bus, tokens TokenIssuer, drainer AudioDrainer, audit *auditlog.Client, logger *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if db == nil {
		return nil, errors.New("session: New needs a database")
	}
	return newService(cfg, newSQLStore(db), b, tokens, drainer, audit, logger, reg)
}

func newService(cfg Config, st Store, b bus.Bus, tokens TokenIssuer, drainer AudioDrainer, audit *auditlog.Client, logger *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case b == nil:
		return nil, errors.New("session: New needs a bus")
	case tokens == nil:
		return nil, errors.New("session: New needs a TokenIssuer")
	case drainer == nil:
		return nil, errors.New("session: New needs an AudioDrainer")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, store: st, bus: b, tokens: tokens, drain: drainer, audit: audit,
		logger: logger.With("component", "session"), m: newMetrics(reg), now: time.Now}, nil
}

// ServiceNames are the gRPC services this package serves (for health and reflection).
func ServiceNames() []string {
	return []string{sessionv1.SessionService_ServiceDesc.ServiceName}
}

// Register registers the gRPC server on r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	sessionv1.RegisterSessionServiceServer(r, &server{svc: s})
}

// Start applies the migrations. The service runs no background work.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("session: Start called twice")
	}
	if err := s.store.Migrate(ctx); err != nil {
		return fmt.Errorf("session: migrating: %w", err)
	}
	s.started = true
	return nil
}

// Stop does nothing: every call is a request the gRPC server drains.
func (s *Service) Stop(context.Context) error { return nil }

// visible says whether p may see sess: super admins every session, admins their school's,
// teachers their own. Anything else answers SESSION_NOT_FOUND, so nothing leaks.
func visible(p authn.Principal, sess Session) bool {
	switch p.Role {
	case authn.RoleSuperAdmin:
		return true
	case authn.RoleAdmin:
		return p.SchoolID != "" && p.SchoolID == sess.SchoolID
	case authn.RoleTeacher:
		return p.Subject == sess.TeacherID
	}
	return false
}

// owned loads the session when p may see it.
func (s *Service) owned(ctx context.Context, p authn.Principal, id string) (Session, error) {
	sess, err := s.store.GetSession(ctx, id)
	if errors.Is(err, errNotFound) || (err == nil && !visible(p, sess)) {
		return Session{}, ErrSessionNotFound.WithMetadata("sessionId", id)
	}
	return sess, err
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

func (s *Service) auditSession(ctx context.Context, p authn.Principal, sess Session, eventType, description string, md map[string]string) {
	s.audit.Log(ctx, auditlog.Event{
		ActorID: p.Subject, ActorType: actorType(p.Role), EventType: eventType, Category: auditlog.CategorySession,
		ResourceType: "session", ResourceID: sess.ID, SchoolID: sess.SchoolID, SessionID: sess.ID,
		Description: description, ComplianceBasis: "legitimate_interest", Metadata: md,
	})
}

// ListParams selects a page of sessions.
type ListParams struct {
	Limit     int
	PageToken string
	Status    Status
	// Dashboard answers the 3 most recent sessions and ignores Limit.
	Dashboard bool
}

// List answers p's sessions (teachers their own, admins their school's), newest first, the total,
// and the next page's token.
func (s *Service) List(ctx context.Context, p authn.Principal, lp ListParams) ([]Session, int, string, error) {
	f := ListFilter{Status: lp.Status, Limit: lp.Limit}
	switch p.Role {
	case authn.RoleTeacher:
		f.TeacherID = p.Subject
	case authn.RoleAdmin:
		f.SchoolID = p.SchoolID
	case authn.RoleSuperAdmin:
	default:
		return nil, 0, "", authn.ErrForbidden
	}
	if f.Limit <= 0 {
		f.Limit = s.cfg.ListLimit
	}
	if lp.Dashboard {
		f.Limit = dashboardLimit
	} else if lp.PageToken != "" {
		var err error
		if f.AfterCreatedAt, f.AfterID, err = decodePageToken(lp.PageToken); err != nil {
			return nil, 0, "", errBadPageToken
		}
	}
	out, total, err := s.store.ListSessions(ctx, f)
	if err != nil {
		return nil, 0, "", err
	}
	next := ""
	if !lp.Dashboard && len(out) == f.Limit {
		last := out[len(out)-1]
		next = encodePageToken(last.CreatedAt, last.ID)
	}
	return out, total, next, nil
}

func encodePageToken(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixMicro(), 10) + "|" + id))
}

func decodePageToken(tok string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return time.Time{}, "", err
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok {
		return time.Time{}, "", errors.New("malformed")
	}
	us, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, "", err
	}
	if _, err := uuid.Parse(id); err != nil {
		return time.Time{}, "", err
	}
	return time.UnixMicro(us).UTC(), id, nil
}

// CreateInput is a new session.
type CreateInput struct {
	Title                string
	Description          string
	ScheduledStart       *time.Time
	TargetGroupSize      int
	LearningObjectives   []string
	AIAnalysisEnabled    bool
	TranscriptionEnabled bool
	Groups               []GroupInput
}

// GroupInput is a new group with its roster.
type GroupInput struct {
	Name        string
	LeaderIndex int
	MaxSize     int
	Members     []Student
}

// Create creates a session in status created, owned by p, with a fresh access code.
func (s *Service) Create(ctx context.Context, p authn.Principal, in CreateInput) (Session, error) {
	if p.Role != authn.RoleTeacher && p.Role != authn.RoleAdmin && p.Role != authn.RoleSuperAdmin {
		return Session{}, authn.ErrForbidden
	}
	if in.TargetGroupSize == 0 {
		in.TargetGroupSize = defaultGroupSize
	}
	if in.TargetGroupSize < 2 {
		return Session{}, ErrInvalid.WithField("target_group_size", "must be between 2 and 10")
	}
	now := s.now().UTC()
	sess := Session{
		ID: uuid.NewString(), TeacherID: p.Subject, SchoolID: p.SchoolID, Title: in.Title, Description: in.Description,
		Status: StatusCreated, ScheduledStart: in.ScheduledStart, TargetGroupSize: in.TargetGroupSize,
		LearningObjectives: in.LearningObjectives, AIAnalysisEnabled: in.AIAnalysisEnabled,
		TranscriptionEnabled: in.TranscriptionEnabled, CreatedAt: now, UpdatedAt: now,
	}
	groups := make([]NewGroup, len(in.Groups))
	names, ids := map[string]bool{}, map[string]bool{}
	for i, g := range in.Groups {
		field := fmt.Sprintf("groups[%d]", i)
		if len(g.Members) == 0 {
			g.LeaderIndex = -1
		}
		if g.LeaderIndex >= len(g.Members) {
			return Session{}, ErrInvalid.WithField(field+".leader_index", "must index a member of the group")
		}
		maxSize := g.MaxSize
		if maxSize == 0 {
			maxSize = max(in.TargetGroupSize, len(g.Members))
		}
		if maxSize < len(g.Members) {
			return Session{}, ErrInvalid.WithField(field+".max_size", "is smaller than the group's members")
		}
		ng := NewGroup{Group: Group{ID: uuid.NewString(), Name: g.Name, GroupNumber: i + 1, MaxSize: maxSize}, LeaderIndex: g.LeaderIndex}
		for j, m := range g.Members {
			k := nameKey(m.DisplayName)
			if names[k] {
				return Session{}, ErrInvalid.WithField(fmt.Sprintf("%s.members[%d].display_name", field, j), "names another member of the session")
			}
			names[k] = true
			if m.ID == "" {
				m.ID = uuid.NewString()
			} else if ids[m.ID] {
				return Session{}, ErrInvalid.WithField(fmt.Sprintf("%s.members[%d].student_id", field, j), "student is already in the session")
			}
			ids[m.ID] = true
			ng.Roster = append(ng.Roster, m)
		}
		if ng.LeaderIndex >= 0 {
			ng.LeaderID = ng.Roster[ng.LeaderIndex].ID
		}
		groups[i] = ng
		sess.StudentCount += len(ng.Roster)
	}
	sess.GroupCount = len(groups)
	var err error
	for range codeAttempts {
		sess.AccessCode = newAccessCode(s.cfg.AccessCodeLength)
		if err = s.store.CreateSession(ctx, sess, groups); !errors.Is(err, errCodeTaken) {
			break
		}
	}
	if err != nil {
		return Session{}, err
	}
	created, err := s.Get(ctx, p, sess.ID)
	if err != nil {
		return Session{}, err
	}
	s.auditSession(ctx, p, created, "session.create", "session created", nil)
	return created, nil
}

// Get answers the session with its groups and members.
func (s *Service) Get(ctx context.Context, p authn.Principal, id string) (Session, error) {
	sess, err := s.owned(ctx, p, id)
	if err != nil {
		return Session{}, err
	}
	if sess.Groups, err = s.store.ListGroups(ctx, id, true); err != nil {
		return Session{}, err
	}
	return sess, nil
}

// Update changes a session that has not ended.
func (s *Service) Update(ctx context.Context, p authn.Principal, id string, patch SessionPatch) (Session, error) {
	if _, err := s.owned(ctx, p, id); err != nil {
		return Session{}, err
	}
	sess, err := s.store.UpdateSession(ctx, id, patch, s.now())
	if errors.Is(err, errNotFound) {
		return Session{}, ErrSessionNotFound
	}
	if err != nil {
		return Session{}, err
	}
	s.auditSession(ctx, p, sess, "session.update", "session updated", nil)
	return sess, nil
}

// TransitionResult is a lifecycle change's outcome.
type TransitionResult struct {
	Session  Session
	Previous Status
	// NotReady lists groups that were not ready at a forced start.
	NotReady []string
	// DrainTimedOut lists groups whose audio did not drain in time (end).
	DrainTimedOut []string
	Stats         Stats
}

// StartSession moves created -> active, gated on every group being ready unless force.
func (s *Service) StartSession(ctx context.Context, p authn.Principal, id string, force bool) (TransitionResult, error) {
	return s.transition(ctx, p, id, ActionStart, force, "")
}

// PauseSession moves active -> paused.
func (s *Service) PauseSession(ctx context.Context, p authn.Principal, id string) (TransitionResult, error) {
	return s.transition(ctx, p, id, ActionPause, false, "")
}

// ResumeSession moves paused -> active.
func (s *Service) ResumeSession(ctx context.Context, p authn.Principal, id string) (TransitionResult, error) {
	return s.transition(ctx, p, id, ActionResume, false, "")
}

// EndSession drains the session's audio (bounded by AUDIO_DRAIN_TIMEOUT_MS), marks it ended and answers
// its end-of-session stats.
func (s *Service) EndSession(ctx context.Context, p authn.Principal, id, reason string) (TransitionResult, error) {
	return s.transition(ctx, p, id, ActionEnd, false, reason)
}

// transition applies a lifecycle action with a conditional update, retrying when a concurrent
// change moved the session first (the retry then answers the right reason).
func (s *Service) transition(ctx context.Context, p authn.Principal, id string, a Action, force bool, reason string) (TransitionResult, error) {
	for attempt := 0; ; attempt++ {
		sess, err := s.owned(ctx, p, id)
		if err != nil {
			return TransitionResult{}, err
		}
		to, err := Transition(sess.Status, a)
		if err != nil {
			s.m.transitions.WithLabelValues(string(a), "refused").Inc()
			return TransitionResult{}, err
		}
		res := TransitionResult{Previous: sess.Status}
		if a == ActionStart {
			groups, err := s.store.ListGroups(ctx, id, false)
			if err != nil {
				return TransitionResult{}, err
			}
			for _, g := range groups {
				if !g.IsReady {
					res.NotReady = append(res.NotReady, g.ID)
				}
			}
			if len(res.NotReady) > 0 && !force {
				s.m.transitions.WithLabelValues(string(a), "refused").Inc()
				return TransitionResult{}, ErrGroupsNotReady.WithMetadata("groupIds", strings.Join(res.NotReady, ",")).
					WithMetadata("notReadyCount", strconv.Itoa(len(res.NotReady)))
			}
		}
		if a == ActionEnd {
			res.DrainTimedOut = s.drainAudio(ctx, id)
		}
		now := s.now().UTC()
		c := StatusChange{From: sess.Status, To: to, At: now, DurationSeconds: sess.ActiveSeconds(now), EndReason: sess.EndReason}
		switch to {
		case StatusActive:
			c.LastActiveAt = &now
			c.ActualStart = &now
			c.DurationSeconds = sess.DurationSeconds
		case StatusEnded:
			c.ActualEnd = &now
			c.EndReason = reason
		}
		updated, err := s.store.ChangeStatus(ctx, id, c)
		if errors.Is(err, errStatusChanged) && attempt < transitionRetries {
			continue
		}
		if errors.Is(err, errNotFound) {
			return TransitionResult{}, ErrSessionNotFound
		}
		if err != nil {
			return TransitionResult{}, err
		}
		res.Session = updated
		if a == ActionEnd {
			if res.Stats, err = s.store.SessionStats(ctx, id, now); err != nil {
				return TransitionResult{}, err
			}
		}
		s.m.transitions.WithLabelValues(string(a), "ok").Inc()
		s.publish(ctx, &eventsv1.Event{
			Type: EventSessionStatusChanged, Key: id, SchoolId: updated.SchoolID, SessionId: id,
			Payload: &eventsv1.Event_SessionStatusChanged{SessionStatusChanged: &eventsv1.SessionStatusChanged{
				PreviousStatus: string(sess.Status), Status: string(to), TeacherId: updated.TeacherID, Reason: reason,
			}},
		})
		md := map[string]string{"from": string(sess.Status), "to": string(to)}
		if force && len(res.NotReady) > 0 {
			md["forcedNotReady"] = strconv.Itoa(len(res.NotReady))
		}
		if reason != "" {
			md["reason"] = reason
		}
		s.auditSession(ctx, p, updated, "session."+string(a), "session "+string(to), md)
		return res, nil
	}
}

// drainAudio asks stt to drain the session's open windows. Failures are logged, not returned: an
// unreachable stt must not keep a teacher from ending a class.
func (s *Service) drainAudio(ctx context.Context, id string) []string {
	// The drainer bounds itself by the timeout; the extra second bounds the call around it.
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DrainTimeout+time.Second)
	defer cancel()
	timedOut, err := s.drain.FlushGroups(dctx, id, s.cfg.DrainTimeout)
	if err != nil {
		s.logger.WarnContext(ctx, "session: draining audio", "err", err, "sessionId", id)
	}
	return timedOut
}

// GroupsStatus answers the session's groups with readiness and members.
func (s *Service) GroupsStatus(ctx context.Context, p authn.Principal, id string) ([]Group, error) {
	if _, err := s.owned(ctx, p, id); err != nil {
		return nil, err
	}
	return s.store.ListGroups(ctx, id, true)
}

// JoinAnswer is a successful join.
type JoinAnswer struct {
	JoinResult
	Token     string
	ExpiresIn int32
}

// Join admits a student by access code, placing it (roster group, requested group, or the
// least-full group), and answers a token scoped to the session and group.
func (s *Service) Join(ctx context.Context, req JoinRequest) (JoinAnswer, error) {
	var seen JoinState
	res, err := s.store.Join(ctx, req, s.now(), func(st JoinState) (Placement, error) {
		seen = st
		return place(st, req)
	})
	if errors.Is(err, ErrCOPPAConsentRequired) {
		s.m.joins.WithLabelValues("coppa_refused").Inc()
		actor := "anonymous"
		if seen.Existing != nil {
			actor = seen.Existing.StudentID
		}
		s.audit.Log(ctx, auditlog.Event{
			ActorID: actor, ActorType: auditlog.ActorStudent, EventType: "session.join_refused_coppa",
			Category: auditlog.CategoryCompliance, Priority: auditlog.PriorityCritical, ResourceType: "session",
			ResourceID: seen.Session.ID, SchoolID: seen.Session.SchoolID, SessionID: seen.Session.ID,
			Description: "under-13 student refused: no parental consent on record", ComplianceBasis: "legal_obligation",
			Metadata: map[string]string{"reason": "COPPA_CONSENT_REQUIRED", "rostered": strconv.FormatBool(seen.Existing != nil)},
		})
		return JoinAnswer{}, err
	}
	if err != nil {
		s.m.joins.WithLabelValues("refused").Inc()
		return JoinAnswer{}, err
	}
	tok, exp, err := s.tokens.IssueStudentToken(ctx, res.Member.StudentID, res.Session.ID, res.Group.ID, res.Session.SchoolID, res.Member.DisplayName)
	if err != nil {
		s.m.joins.WithLabelValues("token_failed").Inc()
		return JoinAnswer{}, errTokenUnavailable.WithCause(err)
	}
	s.m.joins.WithLabelValues("ok").Inc()
	if !res.Rejoined {
		s.publish(ctx, &eventsv1.Event{
			Type: EventGroupMemberJoined, Key: res.Group.ID, SchoolId: res.Session.SchoolID, SessionId: res.Session.ID, GroupId: res.Group.ID,
			Payload: &eventsv1.Event_GroupMemberJoined{GroupMemberJoined: &eventsv1.GroupMemberJoined{
				StudentId: res.Member.StudentID, MemberCount: int32(res.Group.MemberCount),
			}},
		})
	}
	s.audit.Log(ctx, auditlog.Event{
		ActorID: res.Member.StudentID, ActorType: auditlog.ActorStudent, EventType: "session.join",
		Category: auditlog.CategorySessionActivity, ResourceType: "group", ResourceID: res.Group.ID,
		SchoolID: res.Session.SchoolID, SessionID: res.Session.ID, Description: "student joined",
	})
	return JoinAnswer{JoinResult: res, Token: tok, ExpiresIn: exp}, nil
}

// RecordConsent records a guardian's consent for a student of the session.
func (s *Service) RecordConsent(ctx context.Context, p authn.Principal, sessionID string, c Consent) (Consent, error) {
	sess, err := s.owned(ctx, p, sessionID)
	if err != nil {
		return Consent{}, err
	}
	if c.ConsentedAt.IsZero() {
		c.ConsentedAt = s.now()
	}
	c.RecordedBy = p.Subject
	out, err := s.store.RecordConsent(ctx, sessionID, c)
	if errors.Is(err, errNotFound) {
		return Consent{}, ErrStudentNotFound
	}
	if err != nil {
		return Consent{}, err
	}
	s.audit.Log(ctx, auditlog.Event{
		ActorID: p.Subject, ActorType: actorType(p.Role), EventType: "compliance.parental_consent_recorded",
		Category: auditlog.CategoryCompliance, Priority: auditlog.PriorityCritical, ResourceType: "student",
		ResourceID: c.StudentID, SchoolID: sess.SchoolID, SessionID: sessionID, ComplianceBasis: "consent",
		Description: "parental consent recorded", Metadata: map[string]string{"method": c.Method},
	})
	return out, nil
}

// UpdateGroupStatus records a group's readiness and publishes it.
// Staff may update only sessions they may see (404 otherwise); students are scoped to their own
// session and group by the access policy; the realtime edge calls with a service principal.
func (s *Service) UpdateGroupStatus(ctx context.Context, sessionID, groupID, status string, ready bool, traceID string) (Group, error) {
	sess, err := s.store.GetSession(ctx, sessionID)
	if errors.Is(err, errNotFound) {
		return Group{}, ErrSessionNotFound
	}
	if p, ok := authn.FromContext(ctx); ok && p.Role.IsStaff() && err == nil && !visible(p, sess) {
		return Group{}, ErrSessionNotFound.WithMetadata("sessionId", sessionID)
	}
	if err != nil {
		return Group{}, err
	}
	if sess.Status == StatusEnded {
		return Group{}, ErrAlreadyEnded
	}
	g, err := s.store.UpdateGroupStatus(ctx, sessionID, groupID, status, ready, s.now())
	if errors.Is(err, errNotFound) {
		return Group{}, ErrGroupNotFound
	}
	if err != nil {
		return Group{}, err
	}
	s.publish(ctx, &eventsv1.Event{
		Type: EventGroupStatusChanged, Key: groupID, SchoolId: sess.SchoolID, SessionId: sessionID, GroupId: groupID, TraceId: traceID,
		Payload: &eventsv1.Event_GroupStatusChanged{GroupStatusChanged: &eventsv1.GroupStatusChanged{Status: g.Status, IsReady: g.IsReady}},
	})
	return g, nil
}

// RealtimeDecision answers whether a socket may join a session or group room.
type RealtimeDecision struct {
	Allowed bool
	Reason  string
	Session Session
}

// AuthorizeRealtimeJoin decides whether the verified principal may join the session's room (or
// one group's): staff who may see the session; a student who is a member, of that group.
func (s *Service) AuthorizeRealtimeJoin(ctx context.Context, p authn.Principal, sessionID, groupID string) (RealtimeDecision, error) {
	sess, err := s.store.GetSession(ctx, sessionID)
	if errors.Is(err, errNotFound) {
		return RealtimeDecision{Reason: ErrSessionNotFound.Reason}, nil
	}
	if err != nil {
		return RealtimeDecision{}, err
	}
	d := RealtimeDecision{Session: sess}
	if p.Role != authn.RoleStudent {
		if !visible(p, sess) {
			d.Reason = ErrSessionNotFound.Reason
			d.Session = Session{}
			return d, nil
		}
		d.Allowed = true
		return d, nil
	}
	if sess.Status == StatusEnded {
		d.Reason = ErrAlreadyEnded.Reason
		return d, nil
	}
	m, err := s.store.Membership(ctx, sessionID, p.Subject)
	switch {
	case errors.Is(err, errNotFound):
		d.Reason = "SESSION_FORBIDDEN"
	case err != nil:
		return RealtimeDecision{}, err
	case groupID != "" && m.GroupID != groupID:
		d.Reason = "GROUP_FORBIDDEN"
	default:
		d.Allowed = true
	}
	return d, nil
}

// SessionContext answers what analysis needs about a session, groups with their members (internal; no
// ownership check).
func (s *Service) SessionContext(ctx context.Context, id string) (Session, error) {
	sess, err := s.store.GetSession(ctx, id)
	if errors.Is(err, errNotFound) {
		return Session{}, ErrSessionNotFound
	}
	if err != nil {
		return Session{}, err
	}
	sess.Groups, err = s.store.ListGroups(ctx, id, true)
	return sess, err
}

// Purge deletes (or, dry run, lists) ended sessions whose retention has passed: those that ended
// more than days (0: RETENTION_DEFAULT_DAYS) ago. It is audited either way.
func (s *Service) Purge(ctx context.Context, p authn.Principal, dryRun bool, days int) ([]string, error) {
	if days <= 0 {
		days = s.cfg.RetentionDays
	}
	now := s.now().UTC()
	cutoff := now.AddDate(0, 0, -days) // DeletionDate(end, days) < now  <=>  end < cutoff
	var all []string
	if dryRun {
		ids, err := s.store.ExpiredSessions(ctx, cutoff, purgeDryRunLimit)
		if err != nil {
			return nil, err
		}
		all = ids
	}
	for !dryRun {
		ids, err := s.store.ExpiredSessions(ctx, cutoff, purgeBatch)
		if err != nil || len(ids) == 0 {
			if err != nil {
				return all, err
			}
			break
		}
		if err := s.store.DeleteSessions(ctx, ids); err != nil {
			return all, err
		}
		all = append(all, ids...)
		if len(ids) < purgeBatch {
			break
		}
	}
	s.audit.Log(ctx, auditlog.Event{
		ActorID: p.Subject, ActorType: actorType(p.Role), EventType: "compliance.retention_purge",
		Category: auditlog.CategoryCompliance, Priority: auditlog.PriorityCritical, ResourceType: "session",
		Description: "ended sessions past retention purged", ComplianceBasis: "legal_obligation",
		Metadata: map[string]string{"dryRun": strconv.FormatBool(dryRun), "count": strconv.Itoa(len(all)),
			"retentionDays": strconv.Itoa(days)},
	})
	return all, nil
}
