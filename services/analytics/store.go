package analytics

import (
	"context"
	"errors"
	"time"
)

// Event kinds the service applies (the bus event types it consumes).
type eventKind int

const (
	kindSessionStatus eventKind = iota + 1
	kindGroupStatus
	kindMemberJoined
	kindTranscript
	kindSpeech
	kindInsight
	kindPromptRaised
	kindPromptActed
)

// Change is one consumed event reduced to what analytics keeps: the store applies it atomically
// with the record of its id, so a redelivered event changes nothing.
type Change struct {
	// EventID is the bus event's id (idempotency key).
	EventID   string
	Kind      eventKind
	Type      string // the bus event type, for the processed-event record
	SessionID string
	GroupID   string
	SchoolID  string
	At        time.Time

	// kindSessionStatus
	Status    string
	TeacherID string
	// kindGroupStatus
	Ready bool
	// kindMemberJoined
	StudentID string
	// kindTranscript: Words counts as a turn when > 0; Seconds is the window's length; Text is kept
	// only when summaries are on (empty otherwise).
	TranscriptID string
	Words        int64
	Seconds      float64
	Text         string
	WindowStart  time.Time
	// Speaker is the speaker's id when the transcript tells speakers apart (none do today).
	Speaker string
	// kindSpeech
	Speech, Silence, LongestSilence float64
	// kindInsight
	Tier      int
	OnTopic   bool
	Questions int64
	// kindPromptRaised, kindPromptActed ("acknowledged" or "dismissed")
	PromptID    string
	PromptState string
}

// SessionState is what analytics keeps of a session (analytics.sessions plus counts).
type SessionState struct {
	SessionID string
	SchoolID  string
	TeacherID string
	// Title, Objectives, GroupCount and StudentCount are recorded from the session context at
	// finalization.
	Title        string
	Objectives   []string
	GroupCount   int
	StudentCount int
	// Status is the last status seen on the bus: created, active, paused, ended ("" unknown).
	Status    string
	StartedAt *time.Time
	EndedAt   *time.Time
	// SessionInsights counts the insights without a group (Tier 2).
	SessionInsights int
	// Prompts and PromptsAcknowledged count the session's teacher prompts.
	Prompts             int
	PromptsAcknowledged int
	FirstSeen           time.Time
}

// GroupState is a group's running measures (analytics.group_metrics plus members).
type GroupState struct {
	GroupID               string
	Name                  string
	SpeakingSeconds       float64
	SilenceSeconds        float64
	LongestSilenceSeconds float64
	// TranscribedSeconds is the length of the group's transcribed windows.
	TranscribedSeconds float64
	Words              int64
	Turns              int64
	Questions          int64
	Tier1              int64
	OnTopic            int64
	// Insights counts the group's insights (Tier 1).
	Insights int64
	// Members are the distinct students seen joining (GroupMemberJoined).
	Members     int
	FirstJoinAt *time.Time
	ReadyAt     *time.Time
	// SpeakerWords are words per speaker, when transcripts name speakers.
	SpeakerWords map[string]int64
}

// Member is a student seen joining a group.
type Member struct {
	GroupID   string
	StudentID string
	JoinedAt  time.Time
}

// ContextRecord is what finalization records from the session context.
type ContextRecord struct {
	SessionID    string
	SchoolID     string
	TeacherID    string
	Title        string
	Objectives   []string
	GroupCount   int
	StudentCount int
	Groups       []GroupName
}

// GroupName names a group.
type GroupName struct {
	GroupID string
	Name    string
}

// Finalization statuses (analytics.finalizations.status); a session without a row is live.
const (
	statusLive       = "live"
	statusFinalizing = "finalizing"
	statusFinalized  = "finalized"
	statusFailed     = "failed"
)

// Summary statuses.
const (
	summaryPending = "pending"
	summaryReady   = "ready"
	summaryFailed  = "failed"
)

// Finalization is a session's finalization claim and its outcome.
type Finalization struct {
	SessionID     string
	Status        string
	Owner         string
	LeaseUntil    time.Time
	Attempts      int
	FailureReason string
	// EventID is the AnalyticsFinalized event of the outcome; Published says it went out.
	EventID   string
	Published bool
	// Summary* track the summaries phase; SummaryStatus is "" when summaries are not built.
	SummaryStatus     string
	SummaryOwner      string
	SummaryLeaseUntil time.Time
	SummaryReason     string
	SummaryEventID    string
	SummaryPublished  bool
	UpdatedAt         time.Time
}

// ClaimOutcome is what Claim decided.
type ClaimOutcome int

const (
	// Claimed: the caller owns the finalization until the lease ends.
	Claimed ClaimOutcome = iota + 1
	// AlreadyFinalized: done before; nothing to do.
	AlreadyFinalized
	// InProgress: another claim holds a live lease.
	InProgress
	// AlreadyFailed: failed before and the claim did not ask to retry failures.
	AlreadyFailed
)

// ClaimRequest asks for a session's finalization.
type ClaimRequest struct {
	SessionID string
	Owner     string
	Now       time.Time
	Lease     time.Duration
	// RetryFailed also takes over a failed finalization (RetryFinalization).
	RetryFailed bool
}

// FinalResult is a computed finalization, written once per session.
type FinalResult struct {
	SessionID           string
	SchoolID            string
	TeacherID           string
	ParticipationRate   float64
	EngagementScore     float64
	DurationSeconds     int64
	GroupCount          int
	StudentCount        int
	JoinedStudentCount  int
	InsightCount        int
	PromptCount         int
	PromptsAcknowledged int
	SpeakingSeconds     float64
	WordCount           int64
	EndedAt             *time.Time
	FinalizedAt         time.Time
	// JSON is the SessionAnalytics message (protojson).
	JSON []byte
	// EventID is the AnalyticsFinalized event to publish.
	EventID string
	// Summaries, when non-nil, starts the summaries phase: a pending row for the session ("")
	// and each group, owned by the finalizer.
	Summaries []GroupName
	// SummaryLeaseUntil is the summaries claim's lease.
	SummaryLeaseUntil time.Time
}

// SummaryRow is one stored summary (group "" is the session summary).
type SummaryRow struct {
	GroupID    string
	GroupName  string
	Status     string
	JSON       []byte
	Summarizer string
	UpdatedAt  time.Time
}

// SummarySet is a session's summaries phase.
type SummarySet struct {
	// Status is the phase's status: "" (not started), pending, ready or failed.
	Status string
	Rows   []SummaryRow
}

// TranscriptText is a kept transcript, for summaries.
type TranscriptText struct {
	GroupID     string
	WindowStart time.Time
	Text        string
}

// SchoolStats are one school's figures over a period.
type SchoolStats struct {
	SchoolID                 string
	Teachers                 int
	Sessions                 int
	ActiveSessions           int
	Students                 int
	AverageEngagement        float64
	AverageParticipation     float64
	TranscribedSeconds       float64
	Insights                 int
	FinalizedSessionsCounted int
}

// Figures are the service's own key figures across replicas.
type Figures struct {
	ActiveSessions int
	Finalized      int
	Failed         int
	Pending        int
}

// Work is what the sweeper found to do.
type Work struct {
	// Finalize are sessions whose finalization is stuck (lease ended) or that ended without one.
	Finalize []string
	// Summaries are sessions whose summaries are pending without a live claim.
	Summaries []string
	// Unpublished are finalizations with an event not yet published.
	Unpublished []Finalization
}

// Errors of the store.
var (
	// errLostClaim: the claim was taken over (or the row changed) before the write.
	errLostClaim = errors.New("analytics store: claim lost")
)

// Store is the analytics service's persistence port. Adapter: the SQL store (SQLite and
// PostgreSQL, sqlstore.go); one contract suite (store_contract_test.go) runs against each.
type Store interface {
	// Apply applies c unless its event id was applied before (applied false). The record of the
	// id and the change commit together.
	Apply(ctx context.Context, c Change) (applied bool, err error)
	// Session returns a session's state; found is false when no event of it was seen.
	Session(ctx context.Context, sessionID string) (s SessionState, found bool, err error)
	// Groups returns a session's groups, ordered by group id.
	Groups(ctx context.Context, sessionID string) ([]GroupState, error)
	// Members returns the students seen joining a session.
	Members(ctx context.Context, sessionID string) ([]Member, error)
	// RecordContext stores what the session context says of a session and its groups' names.
	RecordContext(ctx context.Context, r ContextRecord, now time.Time) error

	// Claim claims a session's finalization; see ClaimOutcome.
	Claim(ctx context.Context, r ClaimRequest) (ClaimOutcome, Finalization, error)
	// Complete writes the result of owner's claim (idempotently: one row per session) and marks
	// the finalization finalized; errLostClaim when owner no longer holds it.
	Complete(ctx context.Context, owner string, r FinalResult) error
	// Fail marks owner's claim failed with reason, to be published as eventID; errLostClaim when
	// owner no longer holds it.
	Fail(ctx context.Context, sessionID, owner, reason, eventID string, now time.Time) error
	// Finalization returns a session's finalization; found is false when there is none.
	Finalization(ctx context.Context, sessionID string) (f Finalization, found bool, err error)
	// FinalAnalytics returns the stored SessionAnalytics JSON of a finalized session.
	FinalAnalytics(ctx context.Context, sessionID string) (js []byte, found bool, err error)
	// MarkPublished records that eventID (a finalization's or its summaries') was published.
	MarkPublished(ctx context.Context, sessionID, eventID string) error
	// ClaimRepublish takes the right to republish a session's unpublished event whose row was last
	// touched before `before`; false when another replica took it (or it was published).
	ClaimRepublish(ctx context.Context, sessionID, eventID string, before, now time.Time) (bool, error)

	// ClaimSummaries claims a pending summaries phase (no owner, or its lease ended).
	ClaimSummaries(ctx context.Context, sessionID, owner string, now, leaseUntil time.Time) (bool, error)
	// RestartSummaries starts the summaries phase of a finalized session again (it failed, or
	// summaries were off when it was finalized): pending rows for the session and groups, owned by
	// owner. False when the phase is pending or ready, or the session is not finalized.
	RestartSummaries(ctx context.Context, sessionID, owner string, groups []GroupName, now, leaseUntil time.Time) (bool, error)
	// SaveSummaries stores owner's summaries as ready, deletes the session's kept transcript text
	// and records eventID (SummariesReady) to publish; errLostClaim when owner no longer holds it.
	SaveSummaries(ctx context.Context, sessionID, owner string, rows []SummaryRow, eventID string, now time.Time) error
	// FailSummaries marks owner's summaries phase failed.
	FailSummaries(ctx context.Context, sessionID, owner, reason string, now time.Time) error
	// Summaries returns a session's summaries phase and rows.
	Summaries(ctx context.Context, sessionID string) (SummarySet, error)
	// TranscriptTexts returns a session's kept transcripts in window order.
	TranscriptTexts(ctx context.Context, sessionID string) ([]TranscriptText, error)

	// Sweep returns the work left behind: stuck or missed finalizations (ended or leased before
	// staleBefore), pending summaries without a live claim, unpublished events last touched before
	// staleBefore. At most limit of each.
	Sweep(ctx context.Context, now, staleBefore time.Time, limit int) (Work, error)
	// Purge forgets processed event ids recorded before `before`, and transcript text kept for
	// summaries of windows that started before it (a session that never ended, or whose summaries
	// failed and were not retried). It returns the rows deleted.
	Purge(ctx context.Context, before time.Time) (int64, error)

	// SchoolStats returns per-school figures of the sessions first seen at or after since
	// (schoolID "" for every school), ordered by school id.
	SchoolStats(ctx context.Context, since time.Time, schoolID string) ([]SchoolStats, error)
	// Figures returns the service's key figures.
	Figures(ctx context.Context) (Figures, error)
	// Ping checks the database answers.
	Ping(ctx context.Context) error
}
