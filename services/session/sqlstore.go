package session

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/google/uuid"

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
const MigrationService = "session"

const sessionColumns = `id, teacher_id, school_id, title, description, status, scheduled_start, actual_start,
	actual_end, last_active_at, duration_seconds, target_group_size, learning_objectives, access_code,
	total_groups, total_students, joined_students, engagement_score, ai_analysis_enabled,
	transcription_enabled, end_reason, created_at, updated_at`

const groupColumns = `id, session_id, name, group_number, status, is_ready, leader_id, max_size, ready_at`

// sqlStore is the Store adapter over *store.DB for SQLite and PostgreSQL; query texts are shared.
// Joins of one session are serialized by locking its row (PostgreSQL: SELECT ... FOR UPDATE;
// SQLite: every transaction holds the write lock from BEGIN IMMEDIATE).
type sqlStore struct {
	db        *store.DB
	forUpdate string // " FOR UPDATE" in PostgreSQL, "" in SQLite
	sessions  string
	groups    string
	members   string
	students  string
}

var _ Store = (*sqlStore)(nil)

func newSQLStore(db *store.DB) *sqlStore {
	s := &sqlStore{
		db:       db,
		sessions: db.Table("sessions", "classroom_sessions"),
		groups:   db.Table("sessions", "student_groups"),
		members:  db.Table("sessions", "student_group_members"),
		students: db.Table("users", "students"),
	}
	if db.Provider() == store.Postgres {
		s.forUpdate = " FOR UPDATE"
	}
	return s
}

// Migrate applies the embedded migrations.
func (s *sqlStore) Migrate(ctx context.Context) error {
	return s.db.Migrate(ctx, MigrationService, Migrations())
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *sqlStore) q(query string) string { return s.db.Rebind(query) }

func micros(t time.Time) int64 { return t.UTC().UnixMicro() }

func microsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return micros(*t)
}

func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMicro(v.Int64).UTC()
	return &t
}

type scanner interface{ Scan(dest ...any) error }

func scanSession(r scanner) (Session, error) {
	var (
		s                                   Session
		status, objectives                  string
		sched, start, end, lastActive       sql.NullInt64
		created, updated                    int64
		target, groups, students, joinedCnt int64
	)
	err := r.Scan(&s.ID, &s.TeacherID, &s.SchoolID, &s.Title, &s.Description, &status, &sched, &start,
		&end, &lastActive, &s.DurationSeconds, &target, &objectives, &s.AccessCode,
		&groups, &students, &joinedCnt, &s.EngagementScore, &s.AIAnalysisEnabled,
		&s.TranscriptionEnabled, &s.EndReason, &created, &updated)
	if err != nil {
		return Session{}, err
	}
	s.Status = Status(status)
	s.ScheduledStart, s.ActualStart, s.ActualEnd, s.LastActiveAt = timePtr(sched), timePtr(start), timePtr(end), timePtr(lastActive)
	s.TargetGroupSize, s.GroupCount, s.StudentCount, s.JoinedCount = int(target), int(groups), int(students), int(joinedCnt)
	s.CreatedAt, s.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	if err := json.Unmarshal([]byte(objectives), &s.LearningObjectives); err != nil {
		return Session{}, fmt.Errorf("session store: learning objectives of %s: %w", s.ID, err)
	}
	return s, nil
}

func scanGroup(r scanner, extra ...any) (Group, error) {
	var (
		g            Group
		num, maxSize int64
		readyAt      sql.NullInt64
	)
	dest := append([]any{&g.ID, &g.SessionID, &g.Name, &num, &g.Status, &g.IsReady, &g.LeaderID, &maxSize, &readyAt}, extra...)
	if err := r.Scan(dest...); err != nil {
		return Group{}, err
	}
	g.GroupNumber, g.MaxSize, g.ReadyAt = int(num), int(maxSize), timePtr(readyAt)
	return g, nil
}

func objectivesJSON(o []string) string {
	if o == nil {
		o = []string{}
	}
	b, _ := json.Marshal(o) // []string always encodes
	return string(b)
}

// CreateSession implements SessionRepository.
func (s *sqlStore) CreateSession(ctx context.Context, sess Session, groups []NewGroup) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		students := 0
		for _, g := range groups {
			students += len(g.Roster)
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO `+s.sessions+` (`+sessionColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, 0, ?, ?, ?, ?, ?, 0, 0, ?, ?, '', ?, ?)`),
			sess.ID, sess.TeacherID, sess.SchoolID, sess.Title, sess.Description, string(StatusCreated),
			microsPtr(sess.ScheduledStart), sess.TargetGroupSize, objectivesJSON(sess.LearningObjectives),
			sess.AccessCode, len(groups), students, sess.AIAnalysisEnabled, sess.TranscriptionEnabled,
			micros(sess.CreatedAt), micros(sess.UpdatedAt))
		if err != nil {
			if store.IsUniqueViolation(err) {
				return errCodeTaken
			}
			return fmt.Errorf("session store: inserting session: %w", err)
		}
		for _, g := range groups {
			leader := ""
			if g.LeaderIndex >= 0 && g.LeaderIndex < len(g.Roster) {
				leader = g.Roster[g.LeaderIndex].ID
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO `+s.groups+` (`+groupColumns+`, created_at)
				VALUES (?, ?, ?, ?, 'created', ?, ?, ?, NULL, ?)`),
				g.ID, sess.ID, g.Name, g.GroupNumber, false, leader, g.MaxSize, micros(sess.CreatedAt)); err != nil {
				return fmt.Errorf("session store: inserting group: %w", err)
			}
			for i, st := range g.Roster {
				if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO `+s.students+`
					(id, school_id, display_name, email, under_13, created_at) VALUES (?, ?, ?, ?, ?, ?)
					ON CONFLICT (id) DO NOTHING`),
					st.ID, sess.SchoolID, st.DisplayName, st.Email, st.Under13, micros(sess.CreatedAt)); err != nil {
					return fmt.Errorf("session store: inserting student: %w", err)
				}
				if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO `+s.members+`
					(session_id, group_id, student_id, display_name, name_key, is_leader, joined_at, created_at)
					VALUES (?, ?, ?, ?, ?, ?, NULL, ?)`),
					sess.ID, g.ID, st.ID, st.DisplayName, nameKey(st.DisplayName), i == g.LeaderIndex, micros(sess.CreatedAt)); err != nil {
					return fmt.Errorf("session store: inserting member: %w", err)
				}
			}
		}
		return nil
	})
}

// GetSession implements SessionRepository.
func (s *sqlStore) GetSession(ctx context.Context, id string) (Session, error) {
	return s.getSession(ctx, s.db, id, "")
}

func (s *sqlStore) getSession(ctx context.Context, q querier, id, lock string) (Session, error) {
	sess, err := scanSession(q.QueryRowContext(ctx, s.q(`SELECT `+sessionColumns+` FROM `+s.sessions+` WHERE id = ?`+lock), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, errNotFound
	}
	return sess, err
}

// ListSessions implements SessionRepository.
func (s *sqlStore) ListSessions(ctx context.Context, f ListFilter) ([]Session, int, error) {
	var (
		where []string
		args  []any
	)
	if f.TeacherID != "" {
		where, args = append(where, "teacher_id = ?"), append(args, f.TeacherID)
	}
	if f.SchoolID != "" {
		where, args = append(where, "school_id = ?"), append(args, f.SchoolID)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(f.Status))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var total int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM `+s.sessions+cond), args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("session store: counting sessions: %w", err)
	}
	if f.AfterID != "" {
		c := micros(f.AfterCreatedAt)
		where = append(where, "(created_at < ? OR (created_at = ? AND id < ?))")
		args = append(args, c, c, f.AfterID)
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+sessionColumns+` FROM `+s.sessions+cond+
		` ORDER BY created_at DESC, id DESC LIMIT ?`), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("session store: listing sessions: %w", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, sess)
	}
	return out, total, rows.Err()
}

// UpdateSession implements SessionRepository.
func (s *sqlStore) UpdateSession(ctx context.Context, id string, p SessionPatch, at time.Time) (Session, error) {
	var out Session
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		cur, err := s.getSession(ctx, tx, id, s.forUpdate)
		if err != nil {
			return err
		}
		if cur.Status == StatusEnded {
			return ErrAlreadyEnded
		}
		set := []string{"updated_at = ?"}
		args := []any{micros(at)}
		add := func(col string, v any) { set, args = append(set, col+" = ?"), append(args, v) }
		if p.Title != nil {
			add("title", *p.Title)
		}
		if p.Description != nil {
			add("description", *p.Description)
		}
		if p.ScheduledStart != nil {
			add("scheduled_start", micros(*p.ScheduledStart))
		}
		if p.TargetGroupSize != nil {
			add("target_group_size", *p.TargetGroupSize)
		}
		if len(p.LearningObjectives) > 0 {
			add("learning_objectives", objectivesJSON(p.LearningObjectives))
		}
		if p.AIAnalysisEnabled != nil {
			add("ai_analysis_enabled", *p.AIAnalysisEnabled)
		}
		if p.TranscriptionEnabled != nil {
			add("transcription_enabled", *p.TranscriptionEnabled)
		}
		args = append(args, id)
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE `+s.sessions+` SET `+strings.Join(set, ", ")+` WHERE id = ?`), args...); err != nil {
			return fmt.Errorf("session store: updating session: %w", err)
		}
		out, err = s.getSession(ctx, tx, id, "")
		return err
	})
	return out, err
}

// ChangeStatus implements SessionRepository.
func (s *sqlStore) ChangeStatus(ctx context.Context, id string, c StatusChange) (Session, error) {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE `+s.sessions+` SET status = ?, updated_at = ?,
		actual_start = COALESCE(actual_start, ?), actual_end = COALESCE(?, actual_end), last_active_at = ?,
		duration_seconds = ?, end_reason = ? WHERE id = ? AND status = ?`),
		string(c.To), micros(c.At), microsPtr(c.ActualStart), microsPtr(c.ActualEnd), microsPtr(c.LastActiveAt),
		c.DurationSeconds, c.EndReason, id, string(c.From))
	if err != nil {
		return Session{}, fmt.Errorf("session store: changing status: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Session{}, err
	} else if n == 0 {
		if _, err := s.GetSession(ctx, id); err != nil {
			return Session{}, err
		}
		return Session{}, errStatusChanged
	}
	return s.GetSession(ctx, id)
}

// ExpiredSessions implements SessionRepository.
func (s *sqlStore) ExpiredSessions(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id FROM `+s.sessions+`
		WHERE status = 'ended' AND actual_end < ? ORDER BY actual_end, id LIMIT ?`), micros(cutoff), limit)
	if err != nil {
		return nil, fmt.Errorf("session store: listing expired sessions: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// DeleteSessions implements SessionRepository. Students who are no longer in any session are
// deleted with them: their roster record (name, consent) is personal data under the same retention.
func (s *sqlStore) DeleteSessions(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + ")"
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT DISTINCT student_id FROM `+s.members+` WHERE session_id IN `+in), args...)
		if err != nil {
			return err
		}
		var studentIDs []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			studentIDs = append(studentIDs, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, stmt := range []string{
			`DELETE FROM ` + s.members + ` WHERE session_id IN ` + in,
			`DELETE FROM ` + s.groups + ` WHERE session_id IN ` + in,
			`DELETE FROM ` + s.sessions + ` WHERE id IN ` + in,
		} {
			if _, err := tx.ExecContext(ctx, s.q(stmt), args...); err != nil {
				return fmt.Errorf("session store: purging: %w", err)
			}
		}
		for _, sid := range studentIDs {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM `+s.students+` WHERE id = ?
				AND NOT EXISTS (SELECT 1 FROM `+s.members+` WHERE student_id = ?)`), sid, sid); err != nil {
				return fmt.Errorf("session store: purging students: %w", err)
			}
		}
		return nil
	})
}

// ListGroups implements GroupRepository.
func (s *sqlStore) ListGroups(ctx context.Context, sessionID string, withMembers bool) ([]Group, error) {
	return s.listGroups(ctx, s.db, sessionID, withMembers)
}

func (s *sqlStore) listGroups(ctx context.Context, q querier, sessionID string, withMembers bool) ([]Group, error) {
	rows, err := q.QueryContext(ctx, s.q(`SELECT `+groupColumns+`,
		(SELECT COUNT(*) FROM `+s.members+` m WHERE m.group_id = g.id)
		FROM `+s.groups+` g WHERE session_id = ? ORDER BY group_number`), sessionID)
	if err != nil {
		return nil, fmt.Errorf("session store: listing groups: %w", err)
	}
	var groups []Group
	for rows.Next() {
		var n int64
		g, err := scanGroup(rows, &n)
		if err != nil {
			rows.Close()
			return nil, err
		}
		g.MemberCount = int(n)
		groups = append(groups, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if !withMembers || len(groups) == 0 {
		return groups, nil
	}
	members, err := s.listMembers(ctx, q, `session_id = ?`, sessionID)
	if err != nil {
		return nil, err
	}
	idx := make(map[string]int, len(groups))
	for i, g := range groups {
		idx[g.ID] = i
		groups[i].Members = []Member{}
	}
	for _, m := range members {
		if i, ok := idx[m.GroupID]; ok {
			groups[i].Members = append(groups[i].Members, m)
		}
	}
	return groups, nil
}

func (s *sqlStore) listMembers(ctx context.Context, q querier, cond string, args ...any) ([]Member, error) {
	rows, err := q.QueryContext(ctx, s.q(`SELECT group_id, student_id, display_name, is_leader, joined_at
		FROM `+s.members+` WHERE `+cond+` ORDER BY created_at, name_key`), args...)
	if err != nil {
		return nil, fmt.Errorf("session store: listing members: %w", err)
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var (
			m      Member
			joined sql.NullInt64
		)
		if err := rows.Scan(&m.GroupID, &m.StudentID, &m.DisplayName, &m.IsLeader, &joined); err != nil {
			return nil, err
		}
		m.JoinedAt = timePtr(joined)
		out = append(out, m)
	}
	return out, rows.Err()
}

func (s *sqlStore) getGroup(ctx context.Context, q querier, sessionID, groupID string) (Group, error) {
	var n int64
	g, err := scanGroup(q.QueryRowContext(ctx, s.q(`SELECT `+groupColumns+`,
		(SELECT COUNT(*) FROM `+s.members+` m WHERE m.group_id = g.id)
		FROM `+s.groups+` g WHERE id = ? AND session_id = ?`), groupID, sessionID), &n)
	if errors.Is(err, sql.ErrNoRows) {
		return Group{}, errNotFound
	}
	g.MemberCount = int(n)
	return g, err
}

// UpdateGroupStatus implements GroupRepository. ready_at keeps the first time a group became
// ready and is cleared when it stops being ready.
func (s *sqlStore) UpdateGroupStatus(ctx context.Context, sessionID, groupID, status string, ready bool, at time.Time) (Group, error) {
	query := `UPDATE ` + s.groups + ` SET status = ?, is_ready = ?, ready_at = NULL WHERE id = ? AND session_id = ?`
	args := []any{status, ready, groupID, sessionID}
	if ready {
		query = `UPDATE ` + s.groups + ` SET status = ?, is_ready = ?, ready_at = COALESCE(ready_at, ?) WHERE id = ? AND session_id = ?`
		args = []any{status, ready, micros(at), groupID, sessionID}
	}
	if _, err := s.db.ExecContext(ctx, s.q(query), args...); err != nil {
		return Group{}, fmt.Errorf("session store: updating group: %w", err)
	}
	return s.getGroup(ctx, s.db, sessionID, groupID)
}

// Membership implements GroupRepository.
func (s *sqlStore) Membership(ctx context.Context, sessionID, studentID string) (Member, error) {
	ms, err := s.listMembers(ctx, s.db, `session_id = ? AND student_id = ?`, sessionID, studentID)
	if err != nil {
		return Member{}, err
	}
	if len(ms) == 0 {
		return Member{}, errNotFound
	}
	return ms[0], nil
}

func (s *sqlStore) getStudent(ctx context.Context, q querier, id string) (*Student, error) {
	var (
		st                           Student
		method, guardian, recordedBy string
		consentedAt                  sql.NullInt64
	)
	err := q.QueryRowContext(ctx, s.q(`SELECT id, school_id, display_name, email, under_13, consent_method,
		guardian_name, consented_at, consent_recorded_by FROM `+s.students+` WHERE id = ?`), id).
		Scan(&st.ID, &st.SchoolID, &st.DisplayName, &st.Email, &st.Under13, &method, &guardian, &consentedAt, &recordedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if consentedAt.Valid && method != "" {
		st.Consent = &Consent{StudentID: st.ID, GuardianName: guardian, Method: method,
			ConsentedAt: *timePtr(consentedAt), RecordedBy: recordedBy}
	}
	return &st, nil
}

// Join implements RosterRepository.
func (s *sqlStore) Join(ctx context.Context, req JoinRequest, at time.Time, decide func(JoinState) (Placement, error)) (JoinResult, error) {
	var res JoinResult
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		sess, err := scanSession(tx.QueryRowContext(ctx, s.q(`SELECT `+sessionColumns+` FROM `+s.sessions+
			` WHERE access_code = ? AND status <> 'ended'`+s.forUpdate), normalizeCode(req.AccessCode)))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrInvalidCode
		}
		if err != nil {
			return fmt.Errorf("session store: finding session by code: %w", err)
		}
		groups, err := s.listGroups(ctx, tx, sess.ID, false)
		if err != nil {
			return err
		}
		st := JoinState{Session: sess, Groups: groups}
		var existing []Member
		if req.StudentID != "" {
			existing, err = s.listMembers(ctx, tx, `session_id = ? AND student_id = ?`, sess.ID, req.StudentID)
		} else {
			existing, err = s.listMembers(ctx, tx, `session_id = ? AND name_key = ?`, sess.ID, nameKey(req.DisplayName))
		}
		if err != nil {
			return err
		}
		if len(existing) == 0 && req.StudentID != "" {
			return ErrStudentNotFound
		}
		if len(existing) > 0 {
			st.Existing = &existing[0]
			if st.Student, err = s.getStudent(ctx, tx, existing[0].StudentID); err != nil {
				return err
			}
		}
		p, err := decide(st)
		if err != nil {
			return err
		}
		res.Session = sess
		switch {
		case st.Existing != nil && st.Existing.JoinedAt != nil:
			res.Member, res.Rejoined = *st.Existing, true
		case st.Existing != nil:
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE `+s.members+` SET joined_at = ? WHERE session_id = ? AND student_id = ?`),
				micros(at), sess.ID, st.Existing.StudentID); err != nil {
				return fmt.Errorf("session store: marking joined: %w", err)
			}
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE `+s.sessions+` SET joined_students = joined_students + 1 WHERE id = ?`), sess.ID); err != nil {
				return err
			}
			res.Member = *st.Existing
			t := at.UTC().Truncate(time.Microsecond)
			res.Member.JoinedAt = &t
			res.Session.JoinedCount++
		default:
			id := uuid.NewString()
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO `+s.students+` (id, school_id, display_name, email, under_13, created_at)
				VALUES (?, ?, ?, '', ?, ?)`), id, sess.SchoolID, req.DisplayName, req.Under13, micros(at)); err != nil {
				return fmt.Errorf("session store: inserting student: %w", err)
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO `+s.members+`
				(session_id, group_id, student_id, display_name, name_key, is_leader, joined_at, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), sess.ID, p.GroupID, id, req.DisplayName, nameKey(req.DisplayName),
				false, micros(at), micros(at)); err != nil {
				return fmt.Errorf("session store: inserting member: %w", err)
			}
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE `+s.sessions+` SET total_students = total_students + 1,
				joined_students = joined_students + 1 WHERE id = ?`), sess.ID); err != nil {
				return err
			}
			t := at.UTC().Truncate(time.Microsecond)
			res.Member = Member{StudentID: id, GroupID: p.GroupID, DisplayName: req.DisplayName, JoinedAt: &t}
			res.Session.StudentCount++
			res.Session.JoinedCount++
		}
		res.Group, err = s.getGroup(ctx, tx, sess.ID, p.GroupID)
		return err
	})
	return res, err
}

// RecordConsent implements RosterRepository.
func (s *sqlStore) RecordConsent(ctx context.Context, sessionID string, c Consent) (Consent, error) {
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		ms, err := s.listMembers(ctx, tx, `session_id = ? AND student_id = ?`, sessionID, c.StudentID)
		if err != nil {
			return err
		}
		if len(ms) == 0 {
			return errNotFound
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE `+s.students+` SET consent_method = ?, guardian_name = ?,
			consented_at = ?, consent_recorded_by = ? WHERE id = ?`),
			c.Method, c.GuardianName, micros(c.ConsentedAt), c.RecordedBy, c.StudentID)
		return err
	})
	c.ConsentedAt = c.ConsentedAt.UTC().Truncate(time.Microsecond)
	return c, err
}

// SessionStats implements StatsRepository.
func (s *sqlStore) SessionStats(ctx context.Context, id string, now time.Time) (Stats, error) {
	sess, err := s.GetSession(ctx, id)
	if err != nil {
		return Stats{}, err
	}
	var ready int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM `+s.groups+` WHERE session_id = ? AND is_ready = ?`), id, true).Scan(&ready); err != nil {
		return Stats{}, fmt.Errorf("session store: counting ready groups: %w", err)
	}
	return Stats{DurationSeconds: sess.ActiveSeconds(now), GroupCount: sess.GroupCount, StudentCount: sess.StudentCount,
		ReadyGroupCount: ready, JoinedCount: sess.JoinedCount}, nil
}
