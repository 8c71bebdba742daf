package guidance

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	"github.com/classwaves/classwaves/pkg/store"
)

// migrationsFS holds the service's migrations: migrations/postgres/NNN_*.sql and
// migrations/sqlite/NNN_*.sql.
//
//go:embed migrations
var migrationsFS embed.FS

// Migrations returns the embedded migrations, rooted so that store.Migrate finds the "postgres"
// and "sqlite" directories (for `classwaves db migrate`).
func Migrations() fs.FS { return store.EmbeddedMigrations(migrationsFS) }

// MigrationService is the name the service's migrations are recorded under.
const MigrationService = "guidance"

// insightJSON is how insights are stored and published: protojson, camelCase, unpopulated fields
// left out.
var (
	insightJSON   = protojson.MarshalOptions{}
	insightDecode = protojson.UnmarshalOptions{DiscardUnknown: true}
)

var promptColumns = "id, session_id, group_id, school_id, teacher_id, kind, category, priority, message, reason, " +
	"insight_id, status, tier, dedupe_key, created_at, expires_at, acted_at, acted_by, dismiss_reason"

// sqlStore is the Store adapter over *store.DB for SQLite and PostgreSQL. The dialects differ in
// the time columns (TIMESTAMPTZ against Unix microseconds) and the insight column (JSONB against
// text); the query texts are shared.
type sqlStore struct {
	db       *store.DB
	postgres bool
	turns    string
	activity string
	cursors  string
	tier1    string
	tier2    string
	prompts  string
	slots    string
	sessions string
}

var _ Store = (*sqlStore)(nil)

func newSQLStore(db *store.DB) *sqlStore {
	t := func(name string) string { return db.Table("ai_insights", name) }
	return &sqlStore{
		db:       db,
		postgres: db.Provider() == store.Postgres,
		turns:    t("discussion_turns"),
		activity: t("speech_activity"),
		cursors:  t("analysis_cursors"),
		tier1:    t("tier1_insights"),
		tier2:    t("tier2_insights"),
		prompts:  t("prompts"),
		slots:    t("prompt_slots"),
		sessions: t("sessions"),
	}
}

// Migrate applies the embedded migrations.
func (s *sqlStore) Migrate(ctx context.Context) error {
	return s.db.Migrate(ctx, MigrationService, Migrations())
}

func (s *sqlStore) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// timeArg is t as the dialect's time columns hold it.
func (s *sqlStore) timeArg(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if s.postgres {
		return t
	}
	return t.UnixMicro()
}

// nullTimeArg is timeArg with the zero time as NULL.
func (s *sqlStore) nullTimeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.timeArg(t)
}

// nullTime scans a nullable time column of either dialect; NULL is the zero time.
type nullTime struct{ T time.Time }

func (n *nullTime) Scan(v any) error {
	if v == nil {
		n.T = time.Time{}
		return nil
	}
	var t store.Time
	if err := t.Scan(v); err != nil {
		return err
	}
	n.T = t.T
	return nil
}

func (s *sqlStore) exec(ctx context.Context, q execer, query string, args ...any) (int64, error) {
	res, err := q.ExecContext(ctx, s.db.Rebind(query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// execer is *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *sqlStore) InsertTurn(ctx context.Context, t Turn) (bool, error) {
	n, err := s.exec(ctx, s.db, "INSERT INTO "+s.turns+
		" (id, session_id, group_id, school_id, text, speaker, word_count, window_start, window_end, created_at)"+
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
		t.ID, t.SessionID, t.GroupID, t.SchoolID, t.Text, t.Speaker, t.WordCount,
		s.timeArg(t.WindowStart), s.timeArg(t.WindowEnd), s.timeArg(time.Now()))
	if err != nil {
		return false, fmt.Errorf("guidance store: insert turn: %w", err)
	}
	return n == 1, nil
}

func (s *sqlStore) InsertActivity(ctx context.Context, a Activity) (bool, error) {
	n, err := s.exec(ctx, s.db, "INSERT INTO "+s.activity+
		" (window_id, session_id, group_id, school_id, window_start, window_end, speech_seconds, silence_seconds, longest_silence_seconds, created_at)"+
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (window_id) DO NOTHING",
		a.WindowID, a.SessionID, a.GroupID, a.SchoolID, s.timeArg(a.WindowStart), s.timeArg(a.WindowEnd),
		a.SpeechSeconds, a.SilenceSeconds, a.LongestSilenceSeconds, s.timeArg(time.Now()))
	if err != nil {
		return false, fmt.Errorf("guidance store: insert activity: %w", err)
	}
	return n == 1, nil
}

func (s *sqlStore) PendingSpan(ctx context.Context, sessionID, groupID string, after time.Time) (Span, bool, error) {
	cond := "session_id = ? AND group_id = ?"
	args := []any{sessionID, groupID}
	if !after.IsZero() {
		cond += " AND window_end > ?"
		args = append(args, s.timeArg(after))
	}
	q := "SELECT MIN(ws), MAX(we) FROM (SELECT window_start AS ws, window_end AS we FROM " + s.turns + " WHERE " + cond +
		" UNION ALL SELECT window_start, window_end FROM " + s.activity + " WHERE " + cond + ") u"
	var lo, hi nullTime
	if err := s.db.QueryRowContext(ctx, s.db.Rebind(q), append(args, args...)...).Scan(&lo, &hi); err != nil {
		return Span{}, false, fmt.Errorf("guidance store: pending span: %w", err)
	}
	if hi.T.IsZero() {
		return Span{}, false, nil
	}
	return Span{Start: lo.T, End: hi.T}, true, nil
}

// rangeWhere is the window_end range (after, until] of a group's rows.
func (s *sqlStore) rangeWhere(sessionID, groupID string, after, until time.Time) (string, []any) {
	where := []string{"session_id = ?"}
	args := []any{sessionID}
	if groupID != "" {
		where = append(where, "group_id = ?")
		args = append(args, groupID)
	}
	if !after.IsZero() {
		where = append(where, "window_end > ?")
		args = append(args, s.timeArg(after))
	}
	if !until.IsZero() {
		where = append(where, "window_end <= ?")
		args = append(args, s.timeArg(until))
	}
	return strings.Join(where, " AND "), args
}

const turnColumns = "id, session_id, group_id, school_id, text, speaker, word_count, window_start, window_end"

func (s *sqlStore) Turns(ctx context.Context, sessionID, groupID string, after, until time.Time, limit int) ([]Turn, error) {
	if limit <= 0 {
		return nil, errors.New("guidance store: limit must be positive")
	}
	where, args := s.rangeWhere(sessionID, groupID, after, until)
	return s.queryTurns(ctx, "SELECT "+turnColumns+" FROM "+s.turns+" WHERE "+where+
		" ORDER BY window_end DESC, id DESC LIMIT ?", append(args, limit)...)
}

func (s *sqlStore) TurnsBefore(ctx context.Context, sessionID, groupID string, t time.Time, n int) ([]Turn, error) {
	if n <= 0 {
		return nil, nil
	}
	return s.queryTurns(ctx, "SELECT "+turnColumns+" FROM "+s.turns+
		" WHERE session_id = ? AND group_id = ? AND window_end <= ? ORDER BY window_end DESC, id DESC LIMIT ?",
		sessionID, groupID, s.timeArg(t), n)
}

// queryTurns runs a newest-first query and answers its rows oldest first.
func (s *sqlStore) queryTurns(ctx context.Context, q string, args ...any) ([]Turn, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("guidance store: turns: %w", err)
	}
	defer rows.Close()
	var out []Turn
	for rows.Next() {
		var (
			t          Turn
			start, end store.Time
		)
		if err := rows.Scan(&t.ID, &t.SessionID, &t.GroupID, &t.SchoolID, &t.Text, &t.Speaker, &t.WordCount, &start, &end); err != nil {
			return nil, fmt.Errorf("guidance store: scan turn: %w", err)
		}
		t.WindowStart, t.WindowEnd = start.T, end.T
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("guidance store: turns: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}

func (s *sqlStore) Activity(ctx context.Context, sessionID, groupID string, after, until time.Time, limit int) ([]Activity, error) {
	if limit <= 0 {
		return nil, errors.New("guidance store: limit must be positive")
	}
	where, args := s.rangeWhere(sessionID, groupID, after, until)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind("SELECT window_id, session_id, group_id, school_id, window_start, window_end,"+
		" speech_seconds, silence_seconds, longest_silence_seconds FROM "+s.activity+" WHERE "+where+
		" ORDER BY window_end DESC, window_id DESC LIMIT ?"), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("guidance store: activity: %w", err)
	}
	defer rows.Close()
	var out []Activity
	for rows.Next() {
		var (
			a          Activity
			start, end store.Time
		)
		if err := rows.Scan(&a.WindowID, &a.SessionID, &a.GroupID, &a.SchoolID, &start, &end,
			&a.SpeechSeconds, &a.SilenceSeconds, &a.LongestSilenceSeconds); err != nil {
			return nil, fmt.Errorf("guidance store: scan activity: %w", err)
		}
		a.WindowStart, a.WindowEnd = start.T, end.T
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("guidance store: activity: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}

func (s *sqlStore) Cursor(ctx context.Context, sessionID, groupID string) (time.Time, error) {
	var t store.Time
	err := s.db.QueryRowContext(ctx, s.db.Rebind("SELECT analysed_until FROM "+s.cursors+" WHERE session_id = ? AND group_id = ?"),
		sessionID, groupID).Scan(&t)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("guidance store: cursor: %w", err)
	}
	return t.T, nil
}

func (s *sqlStore) AdvanceCursor(ctx context.Context, sessionID, groupID string, from, to time.Time) (bool, error) {
	ok, err := s.advanceCursor(ctx, s.db, sessionID, groupID, from, to)
	if err != nil {
		return false, fmt.Errorf("guidance store: advance cursor: %w", err)
	}
	return ok, nil
}

func (s *sqlStore) advanceCursor(ctx context.Context, q execer, sessionID, groupID string, from, to time.Time) (bool, error) {
	now := s.timeArg(time.Now())
	var (
		n   int64
		err error
	)
	if from.IsZero() {
		n, err = s.exec(ctx, q, "INSERT INTO "+s.cursors+" (session_id, group_id, analysed_until, updated_at) VALUES (?, ?, ?, ?)"+
			" ON CONFLICT (session_id, group_id) DO NOTHING", sessionID, groupID, s.timeArg(to), now)
	} else {
		n, err = s.exec(ctx, q, "UPDATE "+s.cursors+" SET analysed_until = ?, updated_at = ? WHERE session_id = ? AND group_id = ? AND analysed_until = ?",
			s.timeArg(to), now, sessionID, groupID, s.timeArg(from))
	}
	return n == 1, err
}

// errCursorMoved rolls back a SaveTier1 whose cursor moved.
var errCursorMoved = errors.New("cursor moved")

func (s *sqlStore) SaveTier1(ctx context.Context, ins *guidancev1.Tier1Insight, schoolID string, alerts []string, from, to time.Time) (bool, error) {
	js, err := insightJSON.Marshal(ins)
	if err != nil {
		return false, fmt.Errorf("guidance store: encoding insight %s: %w", ins.GetId(), err)
	}
	created := ins.GetCreatedAt().AsTime()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if to.After(from) {
			ok, err := s.advanceCursor(ctx, tx, ins.GetSessionId(), ins.GetGroupId(), from, to)
			if err != nil {
				return err
			}
			if !ok {
				return errCursorMoved
			}
		}
		m := ins.GetMetrics()
		if _, err := s.exec(ctx, tx, "INSERT INTO "+s.tier1+
			" (id, session_id, group_id, school_id, analyzer, confidence, topical_focus, off_task_ratio, question_count, alerts,"+
			" window_start, window_end, insight, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			ins.GetId(), ins.GetSessionId(), ins.GetGroupId(), schoolID, ins.GetAnalyzer(), ins.GetConfidence(),
			m.GetTopicalFocus(), m.GetOffTaskRatio(), m.GetQuestionCount(), strings.Join(alerts, ","),
			s.timeArg(ins.GetWindowStart().AsTime()), s.timeArg(ins.GetWindowEnd().AsTime()), string(js), s.timeArg(created)); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, "UPDATE "+s.sessions+" SET last_tier1_at = ?, updated_at = ? WHERE session_id = ? AND (last_tier1_at IS NULL OR last_tier1_at < ?)",
			s.timeArg(created), s.timeArg(time.Now()), ins.GetSessionId(), s.timeArg(created))
		return err
	})
	if errors.Is(err, errCursorMoved) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("guidance store: save tier 1 insight: %w", err)
	}
	return true, nil
}

func (s *sqlStore) SaveTier2(ctx context.Context, ins *guidancev1.Tier2Insight, schoolID string) error {
	js, err := insightJSON.Marshal(ins)
	if err != nil {
		return fmt.Errorf("guidance store: encoding insight %s: %w", ins.GetId(), err)
	}
	if _, err := s.exec(ctx, s.db, "INSERT INTO "+s.tier2+" (id, session_id, school_id, analyzer, confidence, insight, created_at)"+
		" VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
		ins.GetId(), ins.GetSessionId(), schoolID, ins.GetAnalyzer(), ins.GetConfidence(), string(js),
		s.timeArg(ins.GetCreatedAt().AsTime())); err != nil {
		return fmt.Errorf("guidance store: save tier 2 insight: %w", err)
	}
	return nil
}

func (s *sqlStore) insightRows(ctx context.Context, table string, q InsightQuery, byGroup bool) (*sql.Rows, error) {
	if q.Limit <= 0 {
		return nil, errors.New("guidance store: limit must be positive")
	}
	where := []string{"session_id = ?"}
	args := []any{q.SessionID}
	if byGroup && q.GroupID != "" {
		where = append(where, "group_id = ?")
		args = append(args, q.GroupID)
	}
	if !q.Since.IsZero() {
		where = append(where, "created_at >= ?")
		args = append(args, s.timeArg(q.Since))
	}
	return s.db.QueryContext(ctx, s.db.Rebind("SELECT insight FROM "+table+" WHERE "+strings.Join(where, " AND ")+
		" ORDER BY created_at DESC, id DESC LIMIT ?"), append(args, q.Limit)...)
}

func (s *sqlStore) ListTier1(ctx context.Context, q InsightQuery) ([]*guidancev1.Tier1Insight, error) {
	rows, err := s.insightRows(ctx, s.tier1, q, true)
	if err != nil {
		return nil, fmt.Errorf("guidance store: list tier 1: %w", err)
	}
	defer rows.Close()
	var out []*guidancev1.Tier1Insight
	for rows.Next() {
		var js []byte
		if err := rows.Scan(&js); err != nil {
			return nil, fmt.Errorf("guidance store: list tier 1: %w", err)
		}
		ins := &guidancev1.Tier1Insight{}
		if err := insightDecode.Unmarshal(js, ins); err != nil {
			return nil, fmt.Errorf("guidance store: decoding tier 1 insight: %w", err)
		}
		out = append(out, ins)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("guidance store: list tier 1: %w", err)
	}
	return out, nil
}

func (s *sqlStore) ListTier2(ctx context.Context, q InsightQuery) ([]*guidancev1.Tier2Insight, error) {
	rows, err := s.insightRows(ctx, s.tier2, q, false)
	if err != nil {
		return nil, fmt.Errorf("guidance store: list tier 2: %w", err)
	}
	defer rows.Close()
	var out []*guidancev1.Tier2Insight
	for rows.Next() {
		var js []byte
		if err := rows.Scan(&js); err != nil {
			return nil, fmt.Errorf("guidance store: list tier 2: %w", err)
		}
		ins := &guidancev1.Tier2Insight{}
		if err := insightDecode.Unmarshal(js, ins); err != nil {
			return nil, fmt.Errorf("guidance store: decoding tier 2 insight: %w", err)
		}
		out = append(out, ins)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("guidance store: list tier 2: %w", err)
	}
	return out, nil
}

func (s *sqlStore) PreviousAlerts(ctx context.Context, sessionID, groupID, exclude string) ([]string, bool, error) {
	var alerts string
	err := s.db.QueryRowContext(ctx, s.db.Rebind("SELECT alerts FROM "+s.tier1+
		" WHERE session_id = ? AND group_id = ? AND id <> ? ORDER BY created_at DESC, id DESC LIMIT 1"),
		sessionID, groupID, exclude).Scan(&alerts)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("guidance store: previous alerts: %w", err)
	}
	if alerts == "" {
		return nil, true, nil
	}
	return strings.Split(alerts, ","), true, nil
}

func (s *sqlStore) RaisePrompt(ctx context.Context, slot PromptSlot, decide func(last *Prompt) *Prompt) (*Prompt, error) {
	var raised *Prompt
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		raised = nil
		now := s.timeArg(time.Now())
		if _, err := s.exec(ctx, tx, "INSERT INTO "+s.slots+" (session_id, group_id, kind, category, last_prompt_id, updated_at)"+
			" VALUES (?, ?, ?, ?, '', ?) ON CONFLICT (session_id, group_id, kind, category) DO NOTHING",
			slot.SessionID, slot.GroupID, slot.Kind, slot.Category, now); err != nil {
			return err
		}
		lock := ""
		if s.postgres {
			lock = " FOR UPDATE" // SQLite: the IMMEDIATE transaction already holds the write lock
		}
		var lastID string
		if err := tx.QueryRowContext(ctx, s.db.Rebind("SELECT last_prompt_id FROM "+s.slots+
			" WHERE session_id = ? AND group_id = ? AND kind = ? AND category = ?"+lock),
			slot.SessionID, slot.GroupID, slot.Kind, slot.Category).Scan(&lastID); err != nil {
			return err
		}
		var last *Prompt
		if lastID != "" {
			p, err := s.getPrompt(ctx, tx, lastID)
			switch {
			case err == nil:
				last = &p
			case !errors.Is(err, errNotFound):
				return err
			}
		}
		p := decide(last)
		if p == nil {
			return nil
		}
		if last != nil && last.Status == StatusPending {
			if _, err := s.exec(ctx, tx, "UPDATE "+s.prompts+" SET status = 'expired' WHERE id = ? AND status = 'pending'", last.ID); err != nil {
				return err
			}
		}
		if _, err := s.exec(ctx, tx, "INSERT INTO "+s.prompts+" ("+promptColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			p.ID, p.SessionID, p.GroupID, p.SchoolID, p.TeacherID, p.Kind, p.Category, p.Priority, p.Message, p.Reason,
			p.InsightID, p.Status, p.Tier, p.DedupeKey, s.timeArg(p.CreatedAt), s.timeArg(p.ExpiresAt), s.nullTimeArg(p.ActedAt),
			p.ActedBy, p.DismissReason); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, "UPDATE "+s.slots+" SET last_prompt_id = ?, updated_at = ? WHERE session_id = ? AND group_id = ? AND kind = ? AND category = ?",
			p.ID, now, slot.SessionID, slot.GroupID, slot.Kind, slot.Category); err != nil {
			return err
		}
		raised = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("guidance store: raise prompt: %w", err)
	}
	return raised, nil
}

func scanPrompt(sc interface{ Scan(...any) error }) (Prompt, error) {
	var (
		p                  Prompt
		created, expires   store.Time
		acted              nullTime
		tier               int
		groupID, teacherID string
	)
	err := sc.Scan(&p.ID, &p.SessionID, &groupID, &p.SchoolID, &teacherID, &p.Kind, &p.Category, &p.Priority, &p.Message, &p.Reason,
		&p.InsightID, &p.Status, &tier, &p.DedupeKey, &created, &expires, &acted, &p.ActedBy, &p.DismissReason)
	if err != nil {
		return Prompt{}, err
	}
	p.GroupID, p.TeacherID, p.Tier = groupID, teacherID, tier
	p.CreatedAt, p.ExpiresAt, p.ActedAt = created.T, expires.T, acted.T
	return p, nil
}

func (s *sqlStore) getPrompt(ctx context.Context, q execer, id string) (Prompt, error) {
	p, err := scanPrompt(q.QueryRowContext(ctx, s.db.Rebind("SELECT "+promptColumns+" FROM "+s.prompts+" WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Prompt{}, errNotFound
	}
	return p, err
}

func (s *sqlStore) GetPrompt(ctx context.Context, id string) (Prompt, error) {
	p, err := s.getPrompt(ctx, s.db, id)
	if err != nil && !errors.Is(err, errNotFound) {
		return Prompt{}, fmt.Errorf("guidance store: get prompt: %w", err)
	}
	return p, err
}

func (s *sqlStore) ListPrompts(ctx context.Context, q PromptQuery) ([]Prompt, error) {
	if q.Limit <= 0 {
		return nil, errors.New("guidance store: limit must be positive")
	}
	where := []string{"session_id = ?"}
	args := []any{q.SessionID}
	if q.GroupID != "" {
		where = append(where, "group_id = ?")
		args = append(args, q.GroupID)
	}
	if !q.Since.IsZero() {
		where = append(where, "created_at >= ?")
		args = append(args, s.timeArg(q.Since))
	}
	if len(q.Statuses) > 0 {
		// The effective status: a pending prompt past its expiry reads expired.
		now := s.timeArg(q.Now)
		var ors []string
		for _, st := range q.Statuses {
			switch st {
			case StatusPending:
				ors = append(ors, "(status = 'pending' AND expires_at > ?)")
				args = append(args, now)
			case StatusExpired:
				ors = append(ors, "status = 'expired' OR (status = 'pending' AND expires_at <= ?)")
				args = append(args, now)
			default:
				ors = append(ors, "status = ?")
				args = append(args, st)
			}
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind("SELECT "+promptColumns+" FROM "+s.prompts+" WHERE "+strings.Join(where, " AND ")+
		" ORDER BY created_at DESC, id DESC LIMIT ?"), append(args, q.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("guidance store: list prompts: %w", err)
	}
	defer rows.Close()
	var out []Prompt
	for rows.Next() {
		p, err := scanPrompt(rows)
		if err != nil {
			return nil, fmt.Errorf("guidance store: scan prompt: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("guidance store: list prompts: %w", err)
	}
	return out, nil
}

func (s *sqlStore) ActOnPrompt(ctx context.Context, id, status, actor, reason string, at time.Time) (Prompt, error) {
	if status != StatusAcknowledged && status != StatusDismissed {
		return Prompt{}, fmt.Errorf("guidance store: cannot set a prompt %q", status)
	}
	n, err := s.exec(ctx, s.db, "UPDATE "+s.prompts+" SET status = ?, acted_at = ?, acted_by = ?, dismiss_reason = ?"+
		" WHERE id = ? AND status = 'pending' AND expires_at > ?",
		status, s.timeArg(at), actor, reason, id, s.timeArg(at))
	if err != nil {
		return Prompt{}, fmt.Errorf("guidance store: act on prompt: %w", err)
	}
	p, err := s.GetPrompt(ctx, id)
	if err != nil {
		return Prompt{}, err
	}
	if n == 1 {
		return p, nil
	}
	if p.Status == StatusPending || p.Status == StatusExpired {
		return p, errExpired
	}
	return p, errAlreadyActed
}

func (s *sqlStore) ExpirePrompts(ctx context.Context, sessionID string, now time.Time) (int, error) {
	q := "UPDATE " + s.prompts + " SET status = 'expired' WHERE status = 'pending' AND "
	var arg any
	if sessionID != "" {
		q, arg = q+"session_id = ?", sessionID
	} else {
		q, arg = q+"expires_at <= ?", s.timeArg(now)
	}
	n, err := s.exec(ctx, s.db, q, arg)
	if err != nil {
		return 0, fmt.Errorf("guidance store: expire prompts: %w", err)
	}
	return int(n), nil
}

func (s *sqlStore) UpsertSession(ctx context.Context, st SessionState, nextTier2 time.Time) error {
	// An ended session stays ended: a late or replayed event never revives it.
	_, err := s.exec(ctx, s.db, "INSERT INTO "+s.sessions+" AS cur (session_id, school_id, teacher_id, status, next_tier2_at, updated_at)"+
		" VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET"+
		" school_id = CASE WHEN excluded.school_id = '' THEN cur.school_id ELSE excluded.school_id END,"+
		" teacher_id = CASE WHEN excluded.teacher_id = '' THEN cur.teacher_id ELSE excluded.teacher_id END,"+
		" status = CASE WHEN cur.status = 'ended' OR excluded.status = '' THEN cur.status ELSE excluded.status END,"+
		" updated_at = excluded.updated_at",
		st.SessionID, st.SchoolID, st.TeacherID, st.Status, s.timeArg(nextTier2), s.timeArg(time.Now()))
	if err != nil {
		return fmt.Errorf("guidance store: upsert session: %w", err)
	}
	return nil
}

func (s *sqlStore) GetSession(ctx context.Context, sessionID string) (SessionState, error) {
	var (
		st                      SessionState
		t1, t2, final           nullTime
		next                    store.Time
		school, teacher, status string
	)
	err := s.db.QueryRowContext(ctx, s.db.Rebind("SELECT school_id, teacher_id, status, last_tier1_at, last_tier2_at, next_tier2_at, final_tier2_at FROM "+
		s.sessions+" WHERE session_id = ?"), sessionID).Scan(&school, &teacher, &status, &t1, &t2, &next, &final)
	if errors.Is(err, sql.ErrNoRows) {
		return SessionState{}, errNotFound
	}
	if err != nil {
		return SessionState{}, fmt.Errorf("guidance store: get session: %w", err)
	}
	st = SessionState{SessionID: sessionID, SchoolID: school, TeacherID: teacher, Status: status,
		LastTier1At: t1.T, LastTier2At: t2.T, NextTier2At: next.T, FinalTier2At: final.T}
	return st, nil
}

func (s *sqlStore) DueTier2(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind("SELECT session_id FROM "+s.sessions+
		" WHERE status = 'active' AND next_tier2_at <= ? AND last_tier1_at IS NOT NULL"+
		" AND (last_tier2_at IS NULL OR last_tier1_at > last_tier2_at) ORDER BY next_tier2_at, session_id LIMIT ?"),
		s.timeArg(now), limit)
	if err != nil {
		return nil, fmt.Errorf("guidance store: due tier 2: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("guidance store: due tier 2: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("guidance store: due tier 2: %w", err)
	}
	return out, nil
}

func (s *sqlStore) ClaimTier2(ctx context.Context, sessionID string, now, next time.Time) (bool, error) {
	n, err := s.exec(ctx, s.db, "UPDATE "+s.sessions+" SET next_tier2_at = ?, updated_at = ? WHERE session_id = ? AND next_tier2_at <= ?",
		s.timeArg(next), s.timeArg(time.Now()), sessionID, s.timeArg(now))
	if err != nil {
		return false, fmt.Errorf("guidance store: claim tier 2: %w", err)
	}
	return n == 1, nil
}

func (s *sqlStore) MarkTier2(ctx context.Context, sessionID string, at time.Time) error {
	if _, err := s.exec(ctx, s.db, "UPDATE "+s.sessions+" SET last_tier2_at = ?, updated_at = ? WHERE session_id = ? AND (last_tier2_at IS NULL OR last_tier2_at < ?)",
		s.timeArg(at), s.timeArg(time.Now()), sessionID, s.timeArg(at)); err != nil {
		return fmt.Errorf("guidance store: mark tier 2: %w", err)
	}
	return nil
}

func (s *sqlStore) ClaimFinalTier2(ctx context.Context, sessionID string, at time.Time) (bool, error) {
	n, err := s.exec(ctx, s.db, "UPDATE "+s.sessions+" SET final_tier2_at = ?, updated_at = ? WHERE session_id = ? AND final_tier2_at IS NULL",
		s.timeArg(at), s.timeArg(time.Now()), sessionID)
	if err != nil {
		return false, fmt.Errorf("guidance store: claim final tier 2: %w", err)
	}
	return n == 1, nil
}
