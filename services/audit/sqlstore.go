package audit

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

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/classwaves/classwaves/pkg/store"
)

// migrationsFS holds the audit service's migrations: migrations/postgres/NNN_*.sql and
// migrations/sqlite/NNN_*.sql.
//
//go:embed migrations
var migrationsFS embed.FS

// Migrations returns the service's embedded migrations, rooted so that store.Migrate finds the
// "postgres" and "sqlite" directories (for `classwaves db migrate`).
func Migrations() fs.FS { return store.EmbeddedMigrations(migrationsFS) }

// MigrationService is the name the audit service's migrations are recorded under.
const MigrationService = "audit"

// insertChunk is the most rows per INSERT statement: 16 parameters a row stays far below SQLite's
// 32766 and PostgreSQL's 65535 bound parameters. A batch bigger than this is several statements
// in one transaction.
const insertChunk = 500

// columns of compliance.audit_log in the order Insert binds and Query scans them.
var columns = []string{
	"id", "occurred_at", "actor_id", "actor_type", "event_type", "event_category",
	"resource_type", "resource_id", "school_id", "session_id", "description",
	"user_agent_hash", "compliance_basis", "priority", "metadata", "event_count",
}

// sqlStore is the Store adapter over *store.DB, for SQLite and PostgreSQL. The dialects differ in
// two column types: occurred_at is TIMESTAMPTZ in PostgreSQL and Unix microseconds (INTEGER) in
// SQLite; metadata is JSONB and JSON text. Everything else is one query text.
type sqlStore struct {
	db       *store.DB
	table    string
	postgres bool
	// selectSQL is the SELECT list and FROM clause of every query.
	selectSQL string
}

var _ Store = (*sqlStore)(nil)

func newSQLStore(db *store.DB) *sqlStore {
	table := db.Table("compliance", "audit_log")
	return &sqlStore{
		db:        db,
		table:     table,
		postgres:  db.Provider() == store.Postgres,
		selectSQL: "SELECT " + strings.Join(columns, ", ") + " FROM " + table,
	}
}

// Migrate applies the embedded migrations.
func (s *sqlStore) Migrate(ctx context.Context) error {
	return s.db.Migrate(ctx, MigrationService, Migrations())
}

// Ping checks the database answers.
func (s *sqlStore) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Insert stores recs idempotently: INSERT ... ON CONFLICT (id) DO NOTHING, insertChunk rows a
// statement, all in one transaction. Duplicate ids within recs count once.
func (s *sqlStore) Insert(ctx context.Context, recs []Record) (int, error) {
	recs = uniqueByID(recs)
	if len(recs) == 0 {
		return 0, nil
	}
	total := 0
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		for chunk := range slices.Chunk(recs, insertChunk) {
			query, args, err := s.insertSQL(chunk)
			if err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, query, args...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, classify(err)
	}
	return total, nil
}

// uniqueByID drops later records whose id came before.
func uniqueByID(recs []Record) []Record {
	seen := make(map[string]bool, len(recs))
	out := recs[:0:0]
	for _, r := range recs {
		if !seen[r.ID] {
			seen[r.ID] = true
			out = append(out, r)
		}
	}
	return out
}

func (s *sqlStore) insertSQL(recs []Record) (string, []any, error) {
	var b strings.Builder
	b.Grow(64 + len(recs)*(4*len(columns)))
	b.WriteString("INSERT INTO ")
	b.WriteString(s.table)
	b.WriteString(" (")
	b.WriteString(strings.Join(columns, ", "))
	b.WriteString(") VALUES ")
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(columns)), ", ") + ")"
	args := make([]any, 0, len(recs)*len(columns))
	for i, r := range recs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
		md := "{}"
		if len(r.Metadata) > 0 {
			j, err := json.Marshal(r.Metadata)
			if err != nil {
				return "", nil, fmt.Errorf("%w: metadata of %s: %w", ErrRejected, r.ID, err)
			}
			md = string(j)
		}
		count := r.Count
		if count < 1 {
			count = 1
		}
		args = append(args,
			r.ID, s.timeArg(r.OccurredAt), r.ActorID, r.ActorType, r.EventType, r.Category,
			r.ResourceType, r.ResourceID, r.SchoolID, r.SessionID, r.Description,
			r.UserAgentHash, r.ComplianceBasis, r.Priority, md, count)
	}
	b.WriteString(" ON CONFLICT (id) DO NOTHING")
	return s.db.Rebind(b.String()), args, nil
}

// timeArg is t as the dialect's occurred_at column holds it.
func (s *sqlStore) timeArg(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if s.postgres {
		return t
	}
	return t.UnixMicro()
}

// Query lists the records q selects, newest first, fetching one more than q.Limit to know
// whether another page follows.
func (s *sqlStore) Query(ctx context.Context, q Query) (Page, error) {
	if q.Limit <= 0 {
		return Page{}, errors.New("audit store: query limit must be positive")
	}
	var where []string
	var args []any
	eq := func(col, v string) {
		if v != "" {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	eq("school_id", q.SchoolID)
	eq("actor_id", q.ActorID)
	eq("event_type", q.EventType)
	eq("event_category", q.Category)
	eq("session_id", q.SessionID)
	if !q.From.IsZero() {
		where = append(where, "occurred_at >= ?")
		args = append(args, s.timeArg(q.From))
	}
	if !q.To.IsZero() {
		where = append(where, "occurred_at < ?")
		args = append(args, s.timeArg(q.To))
	}
	if q.After != nil {
		at := s.timeArg(q.After.OccurredAt)
		where = append(where, "(occurred_at < ? OR (occurred_at = ? AND id < ?))")
		args = append(args, at, at, q.After.ID)
	}
	query := s.selectSQL
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY occurred_at DESC, id DESC LIMIT ?"
	args = append(args, q.Limit+1)

	rows, err := s.db.QueryContext(ctx, s.db.Rebind(query), args...)
	if err != nil {
		return Page{}, fmt.Errorf("audit store: query: %w", err)
	}
	defer rows.Close()
	var page Page
	for rows.Next() {
		var (
			r  Record
			at store.Time
			md []byte
		)
		if err := rows.Scan(&r.ID, &at, &r.ActorID, &r.ActorType, &r.EventType, &r.Category,
			&r.ResourceType, &r.ResourceID, &r.SchoolID, &r.SessionID, &r.Description,
			&r.UserAgentHash, &r.ComplianceBasis, &r.Priority, &md, &r.Count); err != nil {
			return Page{}, fmt.Errorf("audit store: scan: %w", err)
		}
		r.OccurredAt = at.T
		if len(md) > 0 && string(md) != "{}" {
			if err := json.Unmarshal(md, &r.Metadata); err != nil {
				return Page{}, fmt.Errorf("audit store: metadata of %s: %w", r.ID, err)
			}
		}
		page.Records = append(page.Records, r)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("audit store: query: %w", err)
	}
	if len(page.Records) > q.Limit {
		page.Records = page.Records[:q.Limit]
		last := page.Records[q.Limit-1]
		page.Next = &Cursor{OccurredAt: last.OccurredAt, ID: last.ID}
	}
	return page, nil
}

// classify wraps err in ErrRejected when the database refused the rows' content: PostgreSQL
// SQLSTATE classes 22 (data exception) and 23 (integrity constraint), SQLite constraint, type
// mismatch and too-big errors. Connection failures, timeouts and everything else stay transient.
func classify(err error) error {
	if errors.Is(err, ErrRejected) {
		return err
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		if strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23") {
			return fmt.Errorf("%w: %w", ErrRejected, err)
		}
		return err
	}
	if se, ok := errors.AsType[*sqlite.Error](err); ok {
		switch se.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_TOOBIG:
			return fmt.Errorf("%w: %w", ErrRejected, err)
		}
	}
	return err
}
