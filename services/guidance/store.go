package guidance

import (
	"context"
	"errors"
	"time"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
)

// Turn is a stored transcript window of a group: the input of analysis (ai_insights.discussion_turns).
type Turn struct {
	// ID is the transcript id; storing is idempotent by it.
	ID          string
	SessionID   string
	GroupID     string
	SchoolID    string
	Text        string
	Speaker     string
	WordCount   int
	WindowStart time.Time
	WindowEnd   time.Time
}

// Activity is the stored voice activity of one closed audio window (ai_insights.speech_activity).
type Activity struct {
	// WindowID is the audio window id; storing is idempotent by it.
	WindowID              string
	SessionID             string
	GroupID               string
	SchoolID              string
	WindowStart           time.Time
	WindowEnd             time.Time
	SpeechSeconds         float64
	SilenceSeconds        float64
	LongestSilenceSeconds float64
}

// Span is the part of a group's discussion not analysed yet: the windows ending after the
// group's analysis cursor.
type Span struct {
	Start time.Time
	End   time.Time
}

// Prompt statuses.
const (
	StatusPending      = "pending"
	StatusAcknowledged = "acknowledged"
	StatusDismissed    = "dismissed"
	StatusExpired      = "expired"
)

// Prompt kinds: a teacher:alert and a teacher:recommendations entry.
const (
	KindAlert          = "alert"
	KindRecommendation = "recommendation"
)

// Prompt is a piece of teacher guidance (ai_insights.prompts).
type Prompt struct {
	ID        string
	SessionID string
	// GroupID is empty for a session-wide recommendation.
	GroupID   string
	SchoolID  string
	TeacherID string
	Kind      string
	Category  string
	Priority  string
	Message   string
	Reason    string
	InsightID string
	Status    string
	Tier      int
	// DedupeKey is "kind:category"; with the session and group it names the cooldown slot.
	DedupeKey string
	CreatedAt time.Time
	ExpiresAt time.Time
	// ActedAt is zero until acknowledged or dismissed.
	ActedAt       time.Time
	ActedBy       string
	DismissReason string
}

// effectiveStatus is the status as of now: a pending prompt past its expiry reads expired.
func (p Prompt) effectiveStatus(now time.Time) string {
	if p.Status == StatusPending && !now.Before(p.ExpiresAt) {
		return StatusExpired
	}
	return p.Status
}

// PromptSlot names a cooldown slot: one per session, group, kind and category.
type PromptSlot struct {
	SessionID string
	GroupID   string
	Kind      string
	Category  string
}

// PromptQuery selects a session's prompts, newest first.
type PromptQuery struct {
	SessionID string
	// GroupID limits to one group ("" for all).
	GroupID string
	// Statuses keeps prompts whose effective status (expiry applied as of Now) is one of them;
	// empty keeps every status.
	Statuses []string
	Now      time.Time
	Since    time.Time
	Limit    int
}

// InsightQuery selects a session's stored insights, newest first.
type InsightQuery struct {
	SessionID string
	// GroupID limits Tier 1 insights to one group ("" for all); Tier 2 ignores it.
	GroupID string
	Since   time.Time
	Limit   int
}

// SessionState is what the service keeps about a session it analyses (ai_insights.sessions).
type SessionState struct {
	SessionID string
	SchoolID  string
	TeacherID string
	// Status is the session's last known status: created, active, paused or ended.
	Status string
	// LastTier1At is when the last Tier 1 insight was stored (zero: none yet).
	LastTier1At time.Time
	// LastTier2At is the snapshot time of the last Tier 2 analysis (zero: none yet).
	LastTier2At time.Time
	// NextTier2At is when the session is next due for a scheduled Tier 2.
	NextTier2At time.Time
	// FinalTier2At is when the end-of-session Tier 2 was claimed (zero: not yet).
	FinalTier2At time.Time
}

// Store errors.
var (
	errNotFound     = errors.New("guidance store: not found")
	errAlreadyActed = errors.New("guidance store: prompt already acted upon")
	errExpired      = errors.New("guidance store: prompt expired")
)

// Store is the guidance service's persistence port. Adapters: the SQL store (SQLite and
// PostgreSQL, sqlstore.go); one contract suite (store_contract_test.go) runs against each. Every
// write that must hold across replicas and restarts (cursor, cooldown slot, Tier 2 claim, prompt
// action) is a compare-and-set in the database, never process memory.
type Store interface {
	// InsertTurn stores t; false when a turn with its id is stored already (left as it is).
	InsertTurn(ctx context.Context, t Turn) (bool, error)
	// InsertActivity stores a; false when its window id is stored already.
	InsertActivity(ctx context.Context, a Activity) (bool, error)
	// PendingSpan returns the span of the group's turns and activity windows that end after
	// after (zero: all); found is false when there is none.
	PendingSpan(ctx context.Context, sessionID, groupID string, after time.Time) (span Span, found bool, err error)
	// Turns returns the group's turns ending in (after, until], oldest first, at most limit (the
	// newest ones when more match). A zero until has no upper bound; groupID "" means every group.
	Turns(ctx context.Context, sessionID, groupID string, after, until time.Time, limit int) ([]Turn, error)
	// TurnsBefore returns the last n turns of the group ending at or before t, oldest first.
	TurnsBefore(ctx context.Context, sessionID, groupID string, t time.Time, n int) ([]Turn, error)
	// Activity returns the group's activity windows ending in (after, until], oldest first, at
	// most limit (the newest). A zero until has no upper bound.
	Activity(ctx context.Context, sessionID, groupID string, after, until time.Time, limit int) ([]Activity, error)
	// Cursor returns the end of the group's last analysed span (zero when never analysed).
	Cursor(ctx context.Context, sessionID, groupID string) (time.Time, error)
	// AdvanceCursor moves the group's cursor from from (zero: none yet) to to; false when the
	// cursor is not at from any more (another replica or an earlier delivery moved it).
	AdvanceCursor(ctx context.Context, sessionID, groupID string, from, to time.Time) (bool, error)
	// SaveTier1 stores ins with its alert categories, moving the group's cursor from from to to
	// in the same transaction when to is after from; false (and nothing stored) when the cursor
	// moved. It also records the session's last Tier 1 time.
	SaveTier1(ctx context.Context, ins *guidancev1.Tier1Insight, schoolID string, alerts []string, from, to time.Time) (bool, error)
	// SaveTier2 stores ins.
	SaveTier2(ctx context.Context, ins *guidancev1.Tier2Insight, schoolID string) error
	// ListTier1 returns the Tier 1 insights q selects, newest first.
	ListTier1(ctx context.Context, q InsightQuery) ([]*guidancev1.Tier1Insight, error)
	// ListTier2 returns the Tier 2 insights q selects, newest first.
	ListTier2(ctx context.Context, q InsightQuery) ([]*guidancev1.Tier2Insight, error)
	// PreviousAlerts returns the alert categories of the group's last Tier 1 insight created
	// before the insight excluded; found is false when there is none.
	PreviousAlerts(ctx context.Context, sessionID, groupID, exclude string) (alerts []string, found bool, err error)
	// RaisePrompt decides and stores a prompt for slot atomically: decide sees the slot's latest
	// prompt (nil when none) and answers the prompt to store, or nil to store nothing. When
	// decide stores one, a still-pending earlier prompt of the slot is marked expired (superseded).
	RaisePrompt(ctx context.Context, slot PromptSlot, decide func(last *Prompt) *Prompt) (*Prompt, error)
	// GetPrompt returns a prompt by id (errNotFound).
	GetPrompt(ctx context.Context, id string) (Prompt, error)
	// ListPrompts returns the prompts q selects, newest first.
	ListPrompts(ctx context.Context, q PromptQuery) ([]Prompt, error)
	// ActOnPrompt sets a pending prompt's status (acknowledged or dismissed) as of at; errNotFound,
	// errAlreadyActed (not pending), errExpired (pending but expired at at).
	ActOnPrompt(ctx context.Context, id, status, actor, reason string, at time.Time) (Prompt, error)
	// ExpirePrompts marks the pending prompts expired: every one of sessionID when it is not
	// empty, else those whose expiry is at or before now. It returns how many.
	ExpirePrompts(ctx context.Context, sessionID string, now time.Time) (int, error)
	// UpsertSession records a session's school, teacher and status (keeping its Tier 2 times);
	// a new session is first due for Tier 2 at nextTier2.
	UpsertSession(ctx context.Context, s SessionState, nextTier2 time.Time) error
	// GetSession returns a session's state (errNotFound).
	GetSession(ctx context.Context, sessionID string) (SessionState, error)
	// DueTier2 lists active sessions with a Tier 1 insight newer than their last Tier 2 whose next
	// Tier 2 is at or before now.
	DueTier2(ctx context.Context, now time.Time, limit int) ([]string, error)
	// ClaimTier2 takes a due session's Tier 2 for this replica: it moves its next Tier 2 time to
	// next when it is at or before now; false when it is not due (or another replica took it).
	ClaimTier2(ctx context.Context, sessionID string, now, next time.Time) (bool, error)
	// MarkTier2 records the snapshot time of a finished Tier 2 analysis.
	MarkTier2(ctx context.Context, sessionID string, at time.Time) error
	// ClaimFinalTier2 takes the end-of-session Tier 2 once for the session; false when taken.
	ClaimFinalTier2(ctx context.Context, sessionID string, at time.Time) (bool, error)
	// Ping checks the database answers.
	Ping(ctx context.Context) error
}
