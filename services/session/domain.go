package session

import (
	"crypto/rand"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/classwaves/classwaves/pkg/apperr"
)

// Status is a session's lifecycle state: created -> active <-> paused -> ended.
type Status string

// Session statuses.
const (
	StatusCreated Status = "created"
	StatusActive  Status = "active"
	StatusPaused  Status = "paused"
	StatusEnded   Status = "ended"
)

// Action is a lifecycle request.
type Action string

// Lifecycle actions.
const (
	ActionStart  Action = "start"
	ActionPause  Action = "pause"
	ActionResume Action = "resume"
	ActionEnd    Action = "end"
)

// Domain errors. Reasons are stable: REST clients branch on them (error.code). Illegal
// transitions are FailedPrecondition, which the gateway answers 409.
var (
	ErrSessionNotFound = apperr.New(codes.NotFound, "SESSION_NOT_FOUND", "session not found")
	ErrGroupNotFound   = apperr.New(codes.NotFound, "GROUP_NOT_FOUND", "group not found in this session")
	ErrStudentNotFound = apperr.New(codes.NotFound, "STUDENT_NOT_FOUND", "student not found in this session")
	ErrInvalidCode     = apperr.New(codes.NotFound, "INVALID_ACCESS_CODE", "no open session has this access code")

	ErrAlreadyEnded   = apperr.New(codes.FailedPrecondition, "SESSION_ALREADY_ENDED", "the session has ended")
	ErrAlreadyActive  = apperr.New(codes.FailedPrecondition, "SESSION_ALREADY_ACTIVE", "the session is already active")
	ErrAlreadyStarted = apperr.New(codes.FailedPrecondition, "SESSION_ALREADY_STARTED", "the session has already started; resume it instead")
	ErrNotActive      = apperr.New(codes.FailedPrecondition, "SESSION_NOT_ACTIVE", "the session is not active")
	ErrNotPaused      = apperr.New(codes.FailedPrecondition, "SESSION_NOT_PAUSED", "the session is not paused")
	ErrGroupsNotReady = apperr.New(codes.FailedPrecondition, "GROUPS_NOT_READY", "some groups are not ready; start with force to go ahead")
	ErrGroupFull      = apperr.New(codes.FailedPrecondition, "GROUP_FULL", "the group is full")
	ErrNoGroups       = apperr.New(codes.FailedPrecondition, "SESSION_HAS_NO_GROUPS", "the session has no groups to join")

	ErrCOPPAConsentRequired = apperr.New(codes.PermissionDenied, "COPPA_CONSENT_REQUIRED",
		"a parent or guardian's consent is required before this student can join")
	ErrInvalid = apperr.New(codes.InvalidArgument, apperr.ReasonValidation, "invalid request")
)

// Transition answers the status action leads to from from, or the reason it is illegal.
func Transition(from Status, a Action) (Status, error) {
	if from == StatusEnded {
		return "", ErrAlreadyEnded
	}
	switch a {
	case ActionStart:
		switch from {
		case StatusCreated:
			return StatusActive, nil
		case StatusActive:
			return "", ErrAlreadyActive
		default:
			return "", ErrAlreadyStarted
		}
	case ActionPause:
		if from == StatusActive {
			return StatusPaused, nil
		}
		return "", ErrNotActive
	case ActionResume:
		if from == StatusPaused {
			return StatusActive, nil
		}
		return "", ErrNotPaused
	case ActionEnd:
		return StatusEnded, nil
	}
	return "", ErrInvalid.WithField("action", "unknown lifecycle action")
}

// Session is a classroom session as the domain sees it. Times are UTC; nil means not set.
type Session struct {
	ID                   string
	TeacherID            string
	SchoolID             string
	Title                string
	Description          string
	Status               Status
	ScheduledStart       *time.Time
	ActualStart          *time.Time
	ActualEnd            *time.Time
	LastActiveAt         *time.Time // start of the current active period (duration accounting)
	DurationSeconds      int64      // active seconds accumulated before LastActiveAt
	TargetGroupSize      int
	LearningObjectives   []string
	AccessCode           string
	GroupCount           int
	StudentCount         int // rostered students (all members)
	JoinedCount          int // members who joined the live session
	EngagementScore      float64
	AIAnalysisEnabled    bool
	TranscriptionEnabled bool
	EndReason            string
	CreatedAt            time.Time
	UpdatedAt            time.Time

	Groups []Group // loaded by Get, not by List
}

// ParticipationRate is the share of rostered students who joined, 0..100.
func (s Session) ParticipationRate() float64 {
	if s.StudentCount == 0 {
		return 0
	}
	return float64(s.JoinedCount) * 100 / float64(s.StudentCount)
}

// ActiveSeconds is the session's active time at now, pauses excluded.
func (s Session) ActiveSeconds(now time.Time) int64 {
	d := s.DurationSeconds
	if s.Status == StatusActive && s.LastActiveAt != nil && now.After(*s.LastActiveAt) {
		d += int64(now.Sub(*s.LastActiveAt) / time.Second)
	}
	return d
}

// Group is a discussion group of a session.
type Group struct {
	ID          string
	SessionID   string
	Name        string
	GroupNumber int
	Status      string
	IsReady     bool
	LeaderID    string
	MaxSize     int
	ReadyAt     *time.Time
	MemberCount int
	Members     []Member // loaded on request
}

// Member is a student placed in a group.
type Member struct {
	StudentID   string
	GroupID     string
	DisplayName string
	IsLeader    bool
	JoinedAt    *time.Time
}

// Student is a rostered student (users.students) with its consent record.
type Student struct {
	ID          string
	SchoolID    string
	DisplayName string
	Email       string
	Under13     bool
	Consent     *Consent
}

// Consent is a guardian's recorded parental consent: who, when, how, and who recorded it.
type Consent struct {
	StudentID    string
	GuardianName string
	Method       string
	ConsentedAt  time.Time
	RecordedBy   string
}

// Stats summarises a session at its end (the seed's SessionStatsRepository).
type Stats struct {
	DurationSeconds int64
	GroupCount      int
	StudentCount    int
	ReadyGroupCount int
	JoinedCount     int
}

// accessCodeAlphabet has no 0/O, 1/I/L: codes are read aloud and typed by children.
const accessCodeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// newAccessCode returns a random code of n characters from accessCodeAlphabet.
func newAccessCode(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	for i := range b {
		// 256 % 31 leaves a small bias; irrelevant for a short-lived join code.
		b[i] = accessCodeAlphabet[int(b[i])%len(accessCodeAlphabet)]
	}
	return string(b)
}

// normalizeCode upper-cases a typed code.
func normalizeCode(code string) string { return strings.ToUpper(strings.TrimSpace(code)) }

// nameKey identifies a display name within a session: a student re-joining under the same
// name (after a refresh) is the same member, never a duplicate.
func nameKey(name string) string { return strings.ToLower(strings.Join(strings.Fields(name), " ")) }

// DeletionDate is when an ended session's data is due for deletion under a retention of days
// (the seed's retention calculator).
func DeletionDate(endedAt time.Time, days int) time.Time {
	return endedAt.UTC().AddDate(0, 0, days)
}

// JoinRequest is a student's join, as the domain sees it.
type JoinRequest struct {
	AccessCode  string
	DisplayName string
	GroupID     string
	StudentID   string
	Under13     bool
}

// JoinState is what the store read, under lock, to place a joining student.
type JoinState struct {
	Session Session
	// Groups of the session, each with MemberCount.
	Groups []Group
	// Existing is the student's membership when already rostered or joined (by student id or
	// display name).
	Existing *Member
	// Student is the rostered student behind Existing (or the requested student id).
	Student *Student
}

// Placement is the domain's decision for a join.
type Placement struct {
	GroupID string
}

// place decides where a joining student goes: the roster group if rostered, else the requested
// group, else the least-full group with room (lowest group number on ties). It refuses ended
// sessions, under-13 students without consent and full groups.
func place(st JoinState, req JoinRequest) (Placement, error) {
	if st.Session.Status == StatusEnded {
		return Placement{}, ErrAlreadyEnded
	}
	under13 := req.Under13 || (st.Student != nil && st.Student.Under13)
	if under13 && (st.Student == nil || st.Student.Consent == nil) {
		return Placement{}, ErrCOPPAConsentRequired
	}
	if st.Existing != nil {
		return Placement{GroupID: st.Existing.GroupID}, nil
	}
	if len(st.Groups) == 0 {
		return Placement{}, ErrNoGroups
	}
	if req.GroupID != "" {
		i := slices.IndexFunc(st.Groups, func(g Group) bool { return g.ID == req.GroupID })
		if i < 0 {
			return Placement{}, ErrGroupNotFound
		}
		if g := st.Groups[i]; g.MemberCount >= g.MaxSize {
			return Placement{}, ErrGroupFull.WithMetadata("groupId", g.ID)
		}
		return Placement{GroupID: req.GroupID}, nil
	}
	best := -1
	for i, g := range st.Groups {
		if g.MemberCount >= g.MaxSize {
			continue
		}
		if best < 0 || g.MemberCount < st.Groups[best].MemberCount ||
			(g.MemberCount == st.Groups[best].MemberCount && g.GroupNumber < st.Groups[best].GroupNumber) {
			best = i
		}
	}
	if best < 0 {
		return Placement{}, ErrGroupFull
	}
	return Placement{GroupID: st.Groups[best].ID}, nil
}
