package session

import (
	"context"
	"errors"
	"time"
)

// Store errors the domain branches on.
var (
	// errNotFound: no such row.
	errNotFound = errors.New("session store: not found")
	// errStatusChanged: a conditional status update found another status (a concurrent change).
	errStatusChanged = errors.New("session store: status changed concurrently")
	// errCodeTaken: the access code is in use by a session that has not ended.
	errCodeTaken = errors.New("session store: access code taken")
)

// NewGroup is a group to create with its roster.
type NewGroup struct {
	Group
	// Roster lists the students placed in the group; a student without an id is created.
	Roster []Student
	// LeaderIndex is the index in Roster of the leader, or -1.
	LeaderIndex int
}

// ListFilter selects sessions for List. Exactly one of TeacherID and SchoolID is set, or neither
// (super admin: every session).
type ListFilter struct {
	TeacherID string
	SchoolID  string
	Status    Status
	Limit     int
	// After is the keyset cursor: sessions strictly older than (CreatedAt, ID).
	AfterCreatedAt time.Time
	AfterID        string
}

// SessionPatch is an update; nil fields are unchanged.
type SessionPatch struct {
	Title                *string
	Description          *string
	ScheduledStart       *time.Time
	TargetGroupSize      *int
	LearningObjectives   []string
	AIAnalysisEnabled    *bool
	TranscriptionEnabled *bool
}

// StatusChange is a conditional lifecycle update: applied only when the session is in From.
type StatusChange struct {
	From, To        Status
	At              time.Time
	ActualStart     *time.Time // set on first start
	ActualEnd       *time.Time
	LastActiveAt    *time.Time // nil clears it
	DurationSeconds int64
	EndReason       string
}

// SessionRepository holds sessions (seed: SessionRepository, SessionDetailRepository).
type SessionRepository interface {
	// CreateSession inserts s with its groups and rosters in one transaction. errCodeTaken when
	// s.AccessCode is used by a session that has not ended.
	CreateSession(ctx context.Context, s Session, groups []NewGroup) error
	// GetSession answers the session, without groups; errNotFound.
	GetSession(ctx context.Context, id string) (Session, error)
	// ListSessions answers f's sessions newest first and how many match in all.
	ListSessions(ctx context.Context, f ListFilter) ([]Session, int, error)
	// UpdateSession applies p unless the session ended (ErrAlreadyEnded); errNotFound.
	UpdateSession(ctx context.Context, id string, p SessionPatch, at time.Time) (Session, error)
	// ChangeStatus applies c when the session's status is c.From; errStatusChanged otherwise.
	ChangeStatus(ctx context.Context, id string, c StatusChange) (Session, error)
	// ExpiredSessions lists ended sessions that ended before cutoff.
	ExpiredSessions(ctx context.Context, cutoff time.Time, limit int) ([]string, error)
	// DeleteSessions deletes sessions with their groups and members.
	DeleteSessions(ctx context.Context, ids []string) error
}

// GroupRepository holds groups and memberships (seed: GroupRepository).
type GroupRepository interface {
	// ListGroups answers the session's groups in group-number order with member counts, and
	// their members when withMembers.
	ListGroups(ctx context.Context, sessionID string, withMembers bool) ([]Group, error)
	// UpdateGroupStatus sets a group's status and readiness; errNotFound.
	UpdateGroupStatus(ctx context.Context, sessionID, groupID, status string, ready bool, at time.Time) (Group, error)
	// Membership answers the student's membership in the session; errNotFound.
	Membership(ctx context.Context, sessionID, studentID string) (Member, error)
}

// RosterRepository admits students and records consent.
type RosterRepository interface {
	// Join finds the open session by access code and, in one transaction that excludes concurrent
	// joins of the same session, reads the JoinState, asks decide where the student goes and
	// records the membership. A student already joined is answered as is (rejoined true).
	Join(ctx context.Context, req JoinRequest, at time.Time, decide func(JoinState) (Placement, error)) (JoinResult, error)
	// RecordConsent stores a guardian's consent for a member of the session; errNotFound.
	RecordConsent(ctx context.Context, sessionID string, c Consent) (Consent, error)
}

// JoinResult is a recorded join.
type JoinResult struct {
	Session  Session
	Group    Group
	Member   Member
	Rejoined bool
}

// StatsRepository computes end-of-session summaries (seed: SessionStatsRepository).
type StatsRepository interface {
	SessionStats(ctx context.Context, id string, now time.Time) (Stats, error)
}

// Store is every repository the service uses; sqlStore implements it for SQLite and PostgreSQL.
type Store interface {
	SessionRepository
	GroupRepository
	RosterRepository
	StatsRepository
	Migrate(ctx context.Context) error
}
