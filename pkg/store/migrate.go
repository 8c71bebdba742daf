package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"time"
)

// migrationsTable records applied migrations, in the public schema (PostgreSQL) or unprefixed
// (SQLite): it belongs to no service.
const migrationsTable = "classwaves_migrations"

// ErrMigrationChanged is wrapped by Migrate's error when an applied migration's file no longer
// matches what was applied.
var ErrMigrationChanged = errors.New("was changed after it was applied")

// migrationLockKey is the PostgreSQL advisory lock every Migrate transaction takes. One lock for
// all services rather than one per service: services share schemas (auth and session both create
// "users"), and CREATE SCHEMA IF NOT EXISTS fails when another transaction creates the same schema
// concurrently. Migrations are rare and short, so serializing them all costs nothing.
var migrationLockKey = func() int64 {
	h := fnv.New64a()
	h.Write([]byte(migrationsTable))
	return int64(h.Sum64())
}()

// migrationName is NNN_name.sql: the version is the leading number.
var migrationName = regexp.MustCompile(`^([0-9]+)_([A-Za-z0-9_.-]+)\.sql$`)

// Migration is one migration file.
type Migration struct {
	Version  int
	Name     string // the file name without version and .sql: "create_audit_log"
	File     string // the path in the migrations FS: "postgres/001_create_audit_log.sql"
	Checksum string // hex SHA-256 of the file
	SQL      string
}

// AppliedMigration is a row of classwaves_migrations.
type AppliedMigration struct {
	Version   int
	Name      string
	Checksum  string
	AppliedAt time.Time
}

// Migrate applies service's pending migrations from fsys, a service's embedded migrations with one
// directory per dialect: "postgres/NNN_name.sql" and "sqlite/NNN_name.sql" (the directory named
// after Provider is used). Migrations are applied in version order, each in its own transaction
// with its record in classwaves_migrations(service, version, name, checksum, applied_at), so a
// failing migration leaves neither its changes nor its record. Applied migrations are skipped;
// concurrent Migrate calls, from goroutines or processes, are serialized (a PostgreSQL advisory
// lock; SQLite's write lock, taken by BEGIN IMMEDIATE).
//
// An applied migration whose file has changed is an error, before anything is applied:
//
//	store: migration audit/sqlite/001_init.sql was changed after it was applied (checksum 1a2b3c4d5e6f recorded, 6f5e4d3c2b1a now); add a new migration instead of editing an applied one
//
// Recorded versions with no file (applied by a newer binary) are ignored. PostgreSQL migrations
// create their own schemas (CREATE SCHEMA IF NOT EXISTS compliance) and cannot use statements that
// refuse to run in a transaction (CREATE INDEX CONCURRENTLY); SQLite migrations cannot change
// PRAGMA foreign_keys.
func (db *DB) Migrate(ctx context.Context, service string, fsys fs.FS) error {
	if service == "" {
		return errors.New("store: Migrate needs a service name")
	}
	migrations, err := ReadMigrations(fsys, db.provider)
	if err != nil {
		return err
	}
	var applied map[int]AppliedMigration
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		if err := db.lockMigrations(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.migrationsDDL()); err != nil {
			return fmt.Errorf("store: creating %s: %w", migrationsTable, err)
		}
		applied, err = db.applied(ctx, tx, service)
		return err
	})
	if err != nil {
		return err
	}
	var pending []Migration
	for _, m := range migrations {
		a, ok := applied[m.Version]
		if !ok {
			pending = append(pending, m)
			continue
		}
		if a.Checksum != m.Checksum {
			return changedError(service, m, a)
		}
	}
	for _, m := range pending {
		if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.apply(ctx, tx, service, m) }); err != nil {
			return err
		}
	}
	return nil
}

// apply applies m in tx unless a concurrent Migrate applied it first.
func (db *DB) apply(ctx context.Context, tx *sql.Tx, service string, m Migration) error {
	if err := db.lockMigrations(ctx, tx); err != nil {
		return err
	}
	var checksum string
	err := tx.QueryRowContext(ctx,
		db.Rebind("SELECT checksum FROM "+migrationsTable+" WHERE service = ? AND version = ?"),
		service, m.Version).Scan(&checksum)
	switch {
	case err == nil:
		if checksum != m.Checksum {
			return changedError(service, m, AppliedMigration{Checksum: checksum})
		}
		return nil // applied meanwhile
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store: reading %s: %w", migrationsTable, err)
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("store: migration %s/%s failed: %w", service, m.File, err)
	}
	if _, err := tx.ExecContext(ctx,
		db.Rebind("INSERT INTO "+migrationsTable+" (service, version, name, checksum, applied_at) VALUES (?, ?, ?, ?, ?)"),
		service, m.Version, m.Name, m.Checksum, time.Now().UTC()); err != nil {
		return fmt.Errorf("store: recording migration %s/%s: %w", service, m.File, err)
	}
	return nil
}

func changedError(service string, m Migration, a AppliedMigration) error {
	return fmt.Errorf("store: migration %s/%s %w (checksum %s recorded, %s now); add a new migration instead of editing an applied one",
		service, m.File, ErrMigrationChanged, short(a.Checksum), short(m.Checksum))
}

func short(checksum string) string {
	if len(checksum) > 12 {
		return checksum[:12]
	}
	return checksum
}

// lockMigrations serializes migrations on PostgreSQL until tx ends. SQLite needs nothing: its
// transactions begin IMMEDIATE, holding the database's write lock.
func (db *DB) lockMigrations(ctx context.Context, tx *sql.Tx) error {
	if db.provider != Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey); err != nil {
		return fmt.Errorf("store: locking migrations: %w", err)
	}
	return nil
}

func (db *DB) migrationsDDL() string {
	appliedAt := "TIMESTAMP NOT NULL"
	if db.provider == Postgres {
		appliedAt = "TIMESTAMPTZ NOT NULL"
	}
	return "CREATE TABLE IF NOT EXISTS " + migrationsTable + ` (
	service    TEXT NOT NULL,
	version    INTEGER NOT NULL,
	name       TEXT NOT NULL,
	checksum   TEXT NOT NULL,
	applied_at ` + appliedAt + `,
	PRIMARY KEY (service, version)
)`
}

// applied reads service's applied migrations.
func (db *DB) applied(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, service string) (map[int]AppliedMigration, error) {
	rows, err := q.QueryContext(ctx,
		db.Rebind("SELECT version, name, checksum, applied_at FROM "+migrationsTable+" WHERE service = ? ORDER BY version"),
		service)
	if err != nil {
		return nil, fmt.Errorf("store: reading %s: %w", migrationsTable, err)
	}
	defer rows.Close()
	out := map[int]AppliedMigration{}
	for rows.Next() {
		var a AppliedMigration
		if err := rows.Scan(&a.Version, &a.Name, &a.Checksum, &a.AppliedAt); err != nil {
			return nil, fmt.Errorf("store: reading %s: %w", migrationsTable, err)
		}
		out[a.Version] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading %s: %w", migrationsTable, err)
	}
	return out, nil
}

// AppliedMigrations lists service's applied migrations in version order (none before the first
// Migrate), e.g. for `classwaves db status`.
func (db *DB) AppliedMigrations(ctx context.Context, service string) ([]AppliedMigration, error) {
	var exists bool
	q := "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?)"
	if db.provider == Postgres {
		q = "SELECT to_regclass(?) IS NOT NULL"
	}
	if err := db.QueryRowContext(ctx, db.Rebind(q), migrationsTable).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, nil
	}
	m, err := db.applied(ctx, db.DB, service)
	if err != nil {
		return nil, err
	}
	out := make([]AppliedMigration, 0, len(m))
	for _, a := range m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// ReadMigrations reads the migrations of dialect (SQLite or Postgres) from fsys's directory of
// that name, in version order. Files other than *.sql are ignored; a *.sql file not named
// NNN_name.sql, or two files with one version, is an error.
func ReadMigrations(fsys fs.FS, dialect string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dialect)
	if err != nil {
		return nil, fmt.Errorf("store: no %s migrations (want files %s/NNN_name.sql): %w", dialect, dialect, err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		file := path.Join(dialect, e.Name())
		parts := migrationName.FindStringSubmatch(e.Name())
		if parts == nil {
			return nil, fmt.Errorf("store: migration %s: name must be NNN_name.sql, e.g. 001_create_audit_log.sql", file)
		}
		version, err := strconv.Atoi(parts[1])
		if err != nil || version < 1 {
			return nil, fmt.Errorf("store: migration %s: version must be a number from 1", file)
		}
		if other, ok := seen[version]; ok {
			return nil, fmt.Errorf("store: migrations %s and %s have the same version %d", other, file, version)
		}
		seen[version] = file
		body, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, fmt.Errorf("store: reading migration %s: %w", file, err)
		}
		sum := sha256.Sum256(body)
		out = append(out, Migration{
			Version: version, Name: parts[2], File: file,
			Checksum: hex.EncodeToString(sum[:]), SQL: string(body),
		})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("store: no %s migrations (want files %s/NNN_name.sql)", dialect, dialect)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// EmbeddedMigrations roots a service's embedded "migrations" directory (holding postgres/ and
// sqlite/) so that Migrate and ReadMigrations find the dialect directories.
func EmbeddedMigrations(embedded fs.FS) fs.FS {
	sub, err := fs.Sub(embedded, "migrations")
	if err != nil {
		panic(err) // embedded at build time
	}
	return sub
}
