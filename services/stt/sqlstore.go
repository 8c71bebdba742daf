package stt

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

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
const MigrationService = "stt"

var transcriptColumns = []string{
	"id", "session_id", "group_id", "school_id", "window_start", "window_end", "text",
	"confidence", "language", "segments", "speech_seconds", "created_at",
}

// sqlStore is the Store adapter over *store.DB for SQLite and PostgreSQL. The dialects differ in
// the time columns (TIMESTAMPTZ against Unix microseconds) and segments (JSONB against text);
// the query texts are shared.
type sqlStore struct {
	db       *store.DB
	postgres bool
	tr       string // audio.transcriptions
	budgets  string // audio.budgets
	alerts   string // audio.budget_alerts
	now      func() time.Time
}

var _ Store = (*sqlStore)(nil)

func newSQLStore(db *store.DB) *sqlStore {
	return &sqlStore{
		db:       db,
		postgres: db.Provider() == store.Postgres,
		tr:       db.Table("audio", "transcriptions"),
		budgets:  db.Table("audio", "budgets"),
		alerts:   db.Table("audio", "budget_alerts"),
		now:      time.Now,
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

func (s *sqlStore) InsertTranscript(ctx context.Context, t Transcript) error {
	segs := t.Segments
	if segs == nil {
		segs = []Segment{}
	}
	js, err := json.Marshal(segs)
	if err != nil {
		return fmt.Errorf("stt store: segments of %s: %w", t.ID, err)
	}
	q := "INSERT INTO " + s.tr + " (" + strings.Join(transcriptColumns, ", ") + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?, ", len(transcriptColumns)), ", ") + ") ON CONFLICT (id) DO NOTHING"
	_, err = s.db.ExecContext(ctx, s.db.Rebind(q),
		t.ID, t.SessionID, t.GroupID, t.SchoolID, s.timeArg(t.WindowStart), s.timeArg(t.WindowEnd), t.Text,
		t.Confidence, t.Language, string(js), t.SpeechSeconds, s.timeArg(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("stt store: insert transcript: %w", err)
	}
	return nil
}

func (s *sqlStore) ListTranscripts(ctx context.Context, q TranscriptQuery) (TranscriptPage, error) {
	if q.Limit <= 0 {
		return TranscriptPage{}, errors.New("stt store: limit must be positive")
	}
	where := []string{"session_id = ?"}
	args := []any{q.SessionID}
	if q.GroupID != "" {
		where = append(where, "group_id = ?")
		args = append(args, q.GroupID)
	}
	if !q.Since.IsZero() {
		where = append(where, "window_start >= ?")
		args = append(args, s.timeArg(q.Since))
	}
	if q.After != nil {
		at := s.timeArg(q.After.WindowStart)
		where = append(where, "(window_start > ? OR (window_start = ? AND id > ?))")
		args = append(args, at, at, q.After.ID)
	}
	query := "SELECT " + strings.Join(transcriptColumns, ", ") + " FROM " + s.tr +
		" WHERE " + strings.Join(where, " AND ") + " ORDER BY window_start, id LIMIT ?"
	args = append(args, q.Limit+1)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(query), args...)
	if err != nil {
		return TranscriptPage{}, fmt.Errorf("stt store: list transcripts: %w", err)
	}
	defer rows.Close()
	var page TranscriptPage
	for rows.Next() {
		var (
			t                   Transcript
			start, end, created store.Time
			segs                []byte
		)
		if err := rows.Scan(&t.ID, &t.SessionID, &t.GroupID, &t.SchoolID, &start, &end, &t.Text,
			&t.Confidence, &t.Language, &segs, &t.SpeechSeconds, &created); err != nil {
			return TranscriptPage{}, fmt.Errorf("stt store: scan transcript: %w", err)
		}
		t.WindowStart, t.WindowEnd, t.CreatedAt = start.T, end.T, created.T
		if err := json.Unmarshal(segs, &t.Segments); err != nil {
			return TranscriptPage{}, fmt.Errorf("stt store: segments of %s: %w", t.ID, err)
		}
		if len(t.Segments) == 0 {
			t.Segments = nil
		}
		page.Transcripts = append(page.Transcripts, t)
	}
	if err := rows.Err(); err != nil {
		return TranscriptPage{}, fmt.Errorf("stt store: list transcripts: %w", err)
	}
	if len(page.Transcripts) > q.Limit {
		page.Transcripts = page.Transcripts[:q.Limit]
		last := page.Transcripts[q.Limit-1]
		page.Next = &Cursor{WindowStart: last.WindowStart, ID: last.ID}
	}
	return page, nil
}

func (s *sqlStore) SessionSchool(ctx context.Context, sessionID string) (string, bool, error) {
	var school string
	err := s.db.QueryRowContext(ctx, s.db.Rebind("SELECT school_id FROM "+s.tr+" WHERE session_id = ? LIMIT 1"), sessionID).Scan(&school)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("stt store: session school: %w", err)
	}
	return school, true, nil
}

func (s *sqlStore) AddUsage(ctx context.Context, schoolID, day string, seconds, limit float64) (used float64, added bool, err error) {
	now := s.timeArg(s.now())
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.db.Rebind("INSERT INTO "+s.budgets+
			" (school_id, day, seconds_used, updated_at) VALUES (?, ?, 0, ?) ON CONFLICT (school_id, day) DO NOTHING"),
			schoolID, day, now); err != nil {
			return err
		}
		q := "UPDATE " + s.budgets + " SET seconds_used = seconds_used + ?, updated_at = ? WHERE school_id = ? AND day = ?"
		args := []any{seconds, now, schoolID, day}
		if limit > 0 {
			q += " AND seconds_used < ?"
			args = append(args, limit)
		}
		err := tx.QueryRowContext(ctx, s.db.Rebind(q+" RETURNING seconds_used"), args...).Scan(&used)
		switch {
		case err == nil:
			added = true
			return nil
		case errors.Is(err, sql.ErrNoRows):
			return tx.QueryRowContext(ctx, s.db.Rebind("SELECT seconds_used FROM "+s.budgets+" WHERE school_id = ? AND day = ?"),
				schoolID, day).Scan(&used)
		default:
			return err
		}
	})
	if err != nil {
		return 0, false, fmt.Errorf("stt store: add usage: %w", err)
	}
	return used, added, nil
}

func (s *sqlStore) RefundUsage(ctx context.Context, schoolID, day string, seconds float64) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind("UPDATE "+s.budgets+
		" SET seconds_used = CASE WHEN seconds_used > ? THEN seconds_used - ? ELSE 0 END, updated_at = ? WHERE school_id = ? AND day = ?"),
		seconds, seconds, s.timeArg(s.now()), schoolID, day)
	if err != nil {
		return fmt.Errorf("stt store: refund usage: %w", err)
	}
	return nil
}

func (s *sqlStore) ClaimAlert(ctx context.Context, schoolID, day string, percent int) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.db.Rebind("INSERT INTO "+s.alerts+
		" (school_id, day, percent, sent_at) VALUES (?, ?, ?, ?) ON CONFLICT (school_id, day, percent) DO NOTHING"),
		schoolID, day, percent, s.timeArg(s.now()))
	if err != nil {
		return false, fmt.Errorf("stt store: claim alert: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("stt store: claim alert: %w", err)
	}
	return n == 1, nil
}

func (s *sqlStore) Usage(ctx context.Context, schoolID, day string) (Usage, error) {
	var u Usage
	err := s.db.QueryRowContext(ctx, s.db.Rebind("SELECT seconds_used FROM "+s.budgets+" WHERE school_id = ? AND day = ?"),
		schoolID, day).Scan(&u.Seconds)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Usage{}, fmt.Errorf("stt store: usage: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind("SELECT percent FROM "+s.alerts+" WHERE school_id = ? AND day = ? ORDER BY percent"),
		schoolID, day)
	if err != nil {
		return Usage{}, fmt.Errorf("stt store: usage alerts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p int
		if err := rows.Scan(&p); err != nil {
			return Usage{}, fmt.Errorf("stt store: usage alerts: %w", err)
		}
		u.AlertsSent = append(u.AlertsSent, p)
	}
	if err := rows.Err(); err != nil {
		return Usage{}, fmt.Errorf("stt store: usage alerts: %w", err)
	}
	slices.Sort(u.AlertsSent)
	return u, nil
}
