// Package store opens the relational database a service keeps its tables in, and migrates it.
//
// Two providers, chosen by DB_PROVIDER / DATABASE_URL:
//
//   - sqlite (the embedded default, monolithic mode): a file under ./var through modernc.org/sqlite
//     (pure Go), in WAL mode with a 5 s busy timeout, foreign keys on and synchronous=NORMAL, set on
//     every pooled connection; transactions begin IMMEDIATE, so a writer waits for the write lock
//     instead of failing midway with SQLITE_BUSY.
//   - postgres (microservices mode): PostgreSQL through pgx's database/sql driver.
//
// Both are a *sql.DB. Services write queries with ? placeholders and pass them through Rebind, and
// name tables with Table, so one query text serves both. Table groups are named after the seed's
// Unity Catalog schemas (users, sessions, audio, ai_insights, analytics, compliance, operational,
// admin, communication, notifications): real schemas in PostgreSQL ("compliance.audit_log"), a name
// prefix in SQLite, which has none ("compliance__audit_log").
//
// Time values: SQLite stores time.Time as text in the sqlite format ("2006-01-02
// 15:04:05.999999999-07:00"); store UTC times so that text order is time order.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/classwaves/classwaves/pkg/config"
)

// Providers.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Config selects and sizes the database.
type Config struct {
	// Provider is DB_PROVIDER: "sqlite" or "postgres". Left empty (the default), it is postgres
	// when DATABASE_URL is set and sqlite otherwise, so a deployment that names its database needs
	// nothing more. An explicit "sqlite" ignores DATABASE_URL. See EffectiveProvider.
	Provider string
	// URL is DATABASE_URL, a postgres:// or postgresql:// URL; required for postgres.
	URL string
	// SQLitePath is SQLITE_PATH, the SQLite file (default var/classwaves.db); its directory is
	// created at Open.
	SQLitePath string
	// MaxOpenConns is DB_MAX_OPEN_CONNS, the pool's size (default 10); it is also the number of idle
	// connections kept.
	MaxOpenConns int
}

// RegisterFlags registers -db.provider (DB_PROVIDER), -db.url (DATABASE_URL), -db.sqlite-path
// (SQLITE_PATH) and -db.max-open-conns (DB_MAX_OPEN_CONNS).
func (c *Config) RegisterFlags(f *config.FlagSet) {
	f.String(&c.Provider, "db.provider", "DB_PROVIDER", "",
		"database: sqlite or postgres; empty means postgres when DATABASE_URL is set, else sqlite")
	f.String(&c.URL, "db.url", "DATABASE_URL", "", "PostgreSQL URL (postgres://user:password@host:5432/db?sslmode=...)")
	f.String(&c.SQLitePath, "db.sqlite-path", "SQLITE_PATH", "var/classwaves.db", "SQLite database file")
	f.Int(&c.MaxOpenConns, "db.max-open-conns", "DB_MAX_OPEN_CONNS", 10, "database connection pool size")
}

// EffectiveProvider is the provider Open uses: Provider when set, else postgres when URL is set,
// else sqlite.
func (c Config) EffectiveProvider() string {
	switch {
	case c.Provider != "":
		return c.Provider
	case c.URL != "":
		return Postgres
	default:
		return SQLite
	}
}

// Validate reports every mistake, one per line:
//
//	DB_PROVIDER must be one of sqlite, postgres; got "mysql"
//	DATABASE_URL is required when DB_PROVIDER is postgres
//	DATABASE_URL must be a postgres:// or postgresql:// URL
//	SQLITE_PATH is required when DB_PROVIDER is sqlite
//	DB_MAX_OPEN_CONNS must be positive, got 0
//
// The URL is never echoed: it may hold a password.
func (c Config) Validate() error {
	var errs []error
	if c.Provider != "" {
		errs = append(errs, config.OneOf("DB_PROVIDER", c.Provider, SQLite, Postgres))
	}
	switch c.EffectiveProvider() {
	case Postgres:
		if strings.TrimSpace(c.URL) == "" {
			errs = append(errs, config.Errorf("DATABASE_URL is required when DB_PROVIDER is postgres"))
		} else if !isPostgresURL(c.URL) {
			errs = append(errs, config.Errorf("DATABASE_URL must be a postgres:// or postgresql:// URL"))
		}
	case SQLite:
		if strings.TrimSpace(c.SQLitePath) == "" {
			errs = append(errs, config.Errorf("SQLITE_PATH is required when DB_PROVIDER is sqlite"))
		}
	}
	errs = append(errs, config.Positive("DB_MAX_OPEN_CONNS", c.MaxOpenConns))
	return config.Join(errs...)
}

func isPostgresURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql")
}

// DB is an open database: a *sql.DB that knows its dialect.
type DB struct {
	*sql.DB
	provider string
}

// Open opens and pings the database cfg names. cfg should have passed Validate; Open checks it again.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	provider := cfg.EffectiveProvider()
	var (
		sqlDB *sql.DB
		err   error
	)
	switch provider {
	case SQLite:
		if dir := filepath.Dir(cfg.SQLitePath); dir != "." {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("store: creating the SQLite directory: %w", err)
			}
		}
		sqlDB, err = sql.Open("sqlite", sqliteDSN(cfg.SQLitePath))
	case Postgres:
		sqlDB, err = sql.Open("pgx", cfg.URL)
	}
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", provider, err)
	}
	sqlDB.SetMaxOpenConns(cfg.MaxOpenConns)
	sqlDB.SetMaxIdleConns(cfg.MaxOpenConns)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("store: connecting to %s: %w", provider, err)
	}
	return &DB{DB: sqlDB, provider: provider}, nil
}

// sqliteDSN is path with the settings every pooled connection needs. busy_timeout comes first (the
// driver applies it before the others), so switching to WAL waits for a concurrent opener.
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	q.Set("_time_format", "sqlite")
	return path + "?" + q.Encode()
}

// Provider returns SQLite or Postgres.
func (db *DB) Provider() string { return db.provider }

// identifier is what Table accepts: code constants such as "compliance" and "audit_log".
var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Table returns the table's name in this dialect: "compliance.audit_log" in PostgreSQL,
// "compliance__audit_log" in SQLite. schema and name are code constants (lower-case identifiers);
// anything else panics, since it would be spliced into SQL.
func (db *DB) Table(schema, name string) string {
	if !identifier.MatchString(schema) || !identifier.MatchString(name) {
		panic(fmt.Sprintf("store: Table(%q, %q): not lower-case SQL identifiers", schema, name))
	}
	if db.provider == Postgres {
		return schema + "." + name
	}
	return schema + "__" + name
}

// Rebind rewrites ? placeholders for this dialect: $1, $2, ... for PostgreSQL, unchanged for
// SQLite. A ? inside a quoted string or identifier or a comment is left alone. PostgreSQL's jsonb
// operators ?, ?| and ?& cannot be told apart from placeholders: use jsonb_exists() and friends.
func (db *DB) Rebind(query string) string {
	if db.provider != Postgres {
		return query
	}
	return rebindDollar(query)
}

// rebindDollar replaces ? with $n outside quotes ('...', "..."), line comments and block comments.
func rebindDollar(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			// Copy through the closing quote; a doubled quote is an escaped one and reopens.
			j := strings.IndexByte(query[i+1:], c)
			if j < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+j+2])
			i += j + 1
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+j+1])
			i += j
		case c == '/' && i+1 < len(query) && query[i+1] == '*':
			j := strings.Index(query[i+2:], "*/")
			if j < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+j+4])
			i += j + 3
		case c == '?':
			n++
			fmt.Fprintf(&b, "$%d", n)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// InTx runs fn in a transaction, committed when fn returns nil and rolled back when it returns an
// error or panics (the panic goes on). In SQLite the transaction holds the write lock from its start.
func (db *DB) InTx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// IsUniqueViolation reports whether err is a unique or primary key violation, in either dialect:
// the way to make an insert idempotent by id.
func (db *DB) IsUniqueViolation(err error) bool { return IsUniqueViolation(err) }

// IsUniqueViolation reports whether err is a unique or primary key violation from PostgreSQL
// (SQLSTATE 23505) or SQLite (SQLITE_CONSTRAINT_UNIQUE or SQLITE_CONSTRAINT_PRIMARYKEY).
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		code := sqliteErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}
