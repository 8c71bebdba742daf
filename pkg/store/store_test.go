package store_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/pkg/config"
	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/store/storetest"
	"github.com/classwaves/classwaves/pkg/testenv"
)

func TestConfigFlags(t *testing.T) {
	tests := []struct {
		name          string
		env           map[string]string
		args          []string
		want          store.Config
		wantEffective string
	}{
		{
			"defaults: embedded SQLite",
			nil, nil,
			store.Config{SQLitePath: "var/classwaves.db", MaxOpenConns: 10},
			store.SQLite,
		},
		{
			"DATABASE_URL alone selects postgres",
			map[string]string{"DATABASE_URL": "postgres://cw@db:5432/cw"}, nil,
			store.Config{URL: "postgres://cw@db:5432/cw", SQLitePath: "var/classwaves.db", MaxOpenConns: 10},
			store.Postgres,
		},
		{
			"explicit sqlite ignores DATABASE_URL",
			map[string]string{"DB_PROVIDER": "sqlite", "DATABASE_URL": "postgres://cw@db/cw", "SQLITE_PATH": "/data/cw.db"}, nil,
			store.Config{Provider: "sqlite", URL: "postgres://cw@db/cw", SQLitePath: "/data/cw.db", MaxOpenConns: 10},
			store.SQLite,
		},
		{
			"flags override environment",
			map[string]string{"DB_PROVIDER": "sqlite", "DB_MAX_OPEN_CONNS": "3"},
			[]string{"-db.provider=postgres", "-db.url=postgres://x/y", "-db.max-open-conns=20"},
			store.Config{Provider: "postgres", URL: "postgres://x/y", SQLitePath: "var/classwaves.db", MaxOpenConns: 20},
			store.Postgres,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got store.Config
			f := config.NewFlagSet("test", config.MapEnv(tt.env))
			got.RegisterFlags(f)
			if err := f.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Config mismatch (-want +got):\n%s", diff)
			}
			if got := got.EffectiveProvider(); got != tt.wantEffective {
				t.Errorf("EffectiveProvider() = %q, want %q", got, tt.wantEffective)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	valid := store.Config{SQLitePath: "var/classwaves.db", MaxOpenConns: 10}
	tests := []struct {
		name   string
		modify func(*store.Config)
		want   string
	}{
		{"unknown provider", func(c *store.Config) { c.Provider = "databricks" }, `DB_PROVIDER must be one of sqlite, postgres; got "databricks"`},
		{"postgres without URL", func(c *store.Config) { c.Provider = "postgres" }, "DATABASE_URL is required when DB_PROVIDER is postgres"},
		{
			"not a postgres URL, and the password is not echoed",
			func(c *store.Config) { c.URL = "mysql://root:s3cret@db/cw" },
			"DATABASE_URL must be a postgres:// or postgresql:// URL",
		},
		{"postgresql scheme ok", func(c *store.Config) { c.URL = "postgresql://cw@db/cw" }, ""},
		{"sqlite without path", func(c *store.Config) { c.SQLitePath = " " }, "SQLITE_PATH is required when DB_PROVIDER is sqlite"},
		{"pool size", func(c *store.Config) { c.MaxOpenConns = 0 }, "DB_MAX_OPEN_CONNS must be positive, got 0"},
		{
			"every mistake at once",
			func(c *store.Config) { c.Provider, c.MaxOpenConns = "postgres", -1 },
			"DATABASE_URL is required when DB_PROVIDER is postgres\nDB_MAX_OPEN_CONNS must be positive, got -1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.modify(&c)
			got := ""
			if err := c.Validate(); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
			if strings.Contains(got, "s3cret") {
				t.Errorf("Validate() echoes the password: %q", got)
			}
		})
	}
}

func TestOpenRefusesInvalidConfig(t *testing.T) {
	_, err := store.Open(context.Background(), store.Config{Provider: "postgres", MaxOpenConns: 1})
	if err == nil || err.Error() != "DATABASE_URL is required when DB_PROVIDER is postgres" {
		t.Errorf("Open() error = %v, want the validation error", err)
	}
}

func TestOpenUnreachablePostgres(t *testing.T) {
	// A proxy that is cut refuses connections: a server that is down.
	p := testenv.NewProxy(t, "127.0.0.1:1")
	p.Cut()
	_, err := store.Open(context.Background(), store.Config{
		Provider: store.Postgres, URL: p.URL("postgres://postgres@127.0.0.1:5432/x?sslmode=disable&connect_timeout=2"), MaxOpenConns: 1,
	})
	if err == nil || !strings.HasPrefix(err.Error(), "store: connecting to postgres: ") {
		t.Errorf("Open() error = %v, want a connection error", err)
	}
}

// TestSQLitePragmasOnEveryConnection checks the settings hold on every pooled connection, not only
// the first, and that Open creates the file's directory.
func TestSQLitePragmasOnEveryConnection(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/nested/dir/classwaves.db"
	db, err := store.Open(ctx, store.Config{Provider: store.SQLite, SQLitePath: path, MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "5000", "synchronous": "1"}
	var conns []*sql.Conn
	for i := range 4 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		got := map[string]string{}
		for pragma := range want {
			var v string
			if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&v); err != nil {
				t.Fatal(err)
			}
			got[pragma] = v
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("connection %d pragmas (-want +got):\n%s", i, diff)
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

func TestRebind(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"none", "SELECT 1", "SELECT 1"},
		{"numbered in order", "SELECT * FROM t WHERE a = ? AND b IN (?, ?)", "SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)"},
		{"string literal", "SELECT '?' , ? FROM t WHERE c = 'it''s ?'", "SELECT '?' , $1 FROM t WHERE c = 'it''s ?'"},
		{"quoted identifier", `SELECT "col?" FROM t WHERE x = ?`, `SELECT "col?" FROM t WHERE x = $1`},
		{"line comment", "SELECT ? -- why?\nFROM t WHERE y = ?", "SELECT $1 -- why?\nFROM t WHERE y = $2"},
		{"block comment", "SELECT /* a ? b */ ? FROM t", "SELECT /* a ? b */ $1 FROM t"},
		{"unterminated quote kept", "SELECT ? WHERE a = 'x?", "SELECT $1 WHERE a = 'x?"},
		{"unterminated comment kept", "SELECT ? /* ?", "SELECT $1 /* ?"},
		{"trailing line comment", "SELECT ? -- ?", "SELECT $1 -- ?"},
		{"minus is not a comment", "SELECT 1-? , ?", "SELECT 1-$1 , $2"},
		{"ten and more", strings.Repeat("?,", 11), "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,"},
	}
	ctx := context.Background()
	pg, err := store.Open(ctx, store.Config{Provider: store.Postgres, URL: testenv.Postgres(t).URL, MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	lite := storetest.OpenSQLite(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pg.Rebind(tt.in); got != tt.want {
				t.Errorf("postgres Rebind(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := lite.Rebind(tt.in); got != tt.in {
				t.Errorf("sqlite Rebind(%q) = %q, want it unchanged", tt.in, got)
			}
		})
	}
}

func TestTable(t *testing.T) {
	want := map[string]string{store.SQLite: "compliance__audit_log", store.Postgres: "compliance.audit_log"}
	storetest.ForEachProvider(t, func(t *testing.T, db *store.DB) {
		if got := db.Table("compliance", "audit_log"); got != want[db.Provider()] {
			t.Errorf("Table() = %q, want %q", got, want[db.Provider()])
		}
		for _, bad := range [][2]string{{"compliance", "audit_log; DROP TABLE x"}, {"Compliance", "x"}, {"", "x"}} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("Table(%q, %q) did not panic", bad[0], bad[1])
					}
				}()
				db.Table(bad[0], bad[1])
			}()
		}
	})
}

// TestContract is what every service relies on, run against both providers.
func TestContract(t *testing.T) {
	storetest.ForEachProvider(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		parent, child := db.Table("compliance", "parent"), db.Table("compliance", "child")
		ddl := []string{
			"CREATE TABLE " + parent + " (id TEXT PRIMARY KEY, email TEXT UNIQUE)",
			"CREATE TABLE " + child + " (id TEXT PRIMARY KEY, parent_id TEXT NOT NULL REFERENCES " + parent + "(id))",
		}
		if db.Provider() == store.Postgres {
			ddl = append([]string{"CREATE SCHEMA compliance"}, ddl...)
		}
		for _, q := range ddl {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		insert := db.Rebind("INSERT INTO " + parent + " (id, email) VALUES (?, ?)")
		count := func() int {
			var n int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+parent).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}

		t.Run("InTx commits", func(t *testing.T) {
			if err := db.InTx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, insert, "p1", "a@example.com")
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if got := count(); got != 1 {
				t.Errorf("rows = %d, want 1", got)
			}
		})
		t.Run("InTx rolls back on error", func(t *testing.T) {
			boom := errors.New("boom")
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, insert, "p2", "b@example.com"); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Errorf("InTx() = %v, want fn's error", err)
			}
			if got := count(); got != 1 {
				t.Errorf("rows = %d, want 1 (rolled back)", got)
			}
		})
		t.Run("InTx rolls back on panic", func(t *testing.T) {
			func() {
				defer func() {
					if recover() == nil {
						t.Error("the panic did not go on")
					}
				}()
				_ = db.InTx(ctx, func(tx *sql.Tx) error {
					if _, err := tx.ExecContext(ctx, insert, "p3", "c@example.com"); err != nil {
						return err
					}
					panic("boom")
				})
			}()
			if got := count(); got != 1 {
				t.Errorf("rows = %d, want 1 (rolled back)", got)
			}
		})
		t.Run("IsUniqueViolation", func(t *testing.T) {
			_, dupKey := db.ExecContext(ctx, insert, "p1", "other@example.com")
			_, dupUnique := db.ExecContext(ctx, insert, "p9", "a@example.com")
			_, syntax := db.ExecContext(ctx, "INSERT INTO nowhere VALUES (1)")
			_, fk := db.ExecContext(ctx, db.Rebind("INSERT INTO "+child+" (id, parent_id) VALUES (?, ?)"), "c1", "missing")
			tests := []struct {
				name string
				err  error
				want bool
			}{
				{"duplicate primary key", dupKey, true},
				{"duplicate unique column", dupUnique, true},
				{"wrapped", errors.Join(errors.New("ctx"), dupKey), true},
				{"other error", syntax, false},
				{"foreign key violation", fk, false},
				{"nil", nil, false},
			}
			for _, tt := range tests {
				if got := db.IsUniqueViolation(tt.err); got != tt.want {
					t.Errorf("%s: IsUniqueViolation(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
				}
			}
			if fk == nil {
				t.Error("a row referencing a missing parent was accepted: foreign keys are off")
			}
		})
	})
}
