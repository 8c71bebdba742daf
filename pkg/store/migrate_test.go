package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/store/storetest"
	"github.com/classwaves/classwaves/pkg/testenv"
)

// migrationSet builds a migrations FS for both dialects. Each migration appends its name to the
// steps table, so the table's rows show what ran and in which order. sqlite's tables carry the
// schema as a prefix, postgres's live in the schema.
func migrationSet(steps ...string) fstest.MapFS {
	fsys := fstest.MapFS{
		"postgres/001_create_steps.sql": {Data: []byte(`CREATE SCHEMA IF NOT EXISTS compliance;
CREATE TABLE compliance.steps (seq INTEGER PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO compliance.steps VALUES (1, 'create_steps');`)},
		"sqlite/001_create_steps.sql": {Data: []byte(`CREATE TABLE compliance__steps (seq INTEGER PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO compliance__steps VALUES (1, 'create_steps');`)},
		"sqlite/README.md": {Data: []byte("not a migration")},
	}
	for _, s := range steps {
		version, name, _ := strings.Cut(s, "_")
		for dialect, table := range map[string]string{"postgres": "compliance.steps", "sqlite": "compliance__steps"} {
			fsys[dialect+"/"+s+".sql"] = &fstest.MapFile{Data: []byte(fmt.Sprintf(
				"INSERT INTO %s SELECT COUNT(*) + 1, '%s' FROM %s; -- version %s", table, name, table, version))}
		}
	}
	return fsys
}

// stepsRun lists the steps table's names in order.
func stepsRun(t *testing.T, db *store.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "SELECT name FROM "+db.Table("compliance", "steps")+" ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

// appliedVersions lists the recorded versions of service.
func appliedVersions(t *testing.T, db *store.DB, service string) []int {
	t.Helper()
	applied, err := db.AppliedMigrations(context.Background(), service)
	if err != nil {
		t.Fatal(err)
	}
	var v []int
	for _, a := range applied {
		v = append(v, a.Version)
	}
	return v
}

func TestMigrateOrderAndIdempotency(t *testing.T) {
	storetest.ForEachProvider(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if got := appliedVersions(t, db, "audit"); got != nil {
			t.Fatalf("before Migrate: applied %v, want none", got)
		}
		// 10 after 2 after 1: numeric order, not file name order.
		fsys := migrationSet("010_ten", "002_two")
		if err := db.Migrate(ctx, "audit", fsys); err != nil {
			t.Fatal(err)
		}
		want := []string{"create_steps", "two", "ten"}
		if diff := cmp.Diff(want, stepsRun(t, db)); diff != "" {
			t.Errorf("steps run (-want +got):\n%s", diff)
		}
		applied, err := db.AppliedMigrations(ctx, "audit")
		if err != nil {
			t.Fatal(err)
		}
		if len(applied) != 3 || applied[2].Version != 10 || applied[2].Name != "ten" || len(applied[2].Checksum) != 64 || applied[2].AppliedAt.IsZero() {
			t.Errorf("AppliedMigrations() = %+v, want versions 1, 2, 10 with names, checksums and times", applied)
		}

		// Again: nothing runs.
		if err := db.Migrate(ctx, "audit", fsys); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		if diff := cmp.Diff(want, stepsRun(t, db)); diff != "" {
			t.Errorf("second Migrate ran steps (-want +got):\n%s", diff)
		}
		again, err := db.AppliedMigrations(ctx, "audit")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(applied, again); diff != "" {
			t.Errorf("records changed by the second Migrate (-first +second):\n%s", diff)
		}

		// A new migration: only it runs.
		if err := db.Migrate(ctx, "audit", migrationSet("010_ten", "002_two", "011_eleven")); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(append(want, "eleven"), stepsRun(t, db)); diff != "" {
			t.Errorf("steps after adding 011 (-want +got):\n%s", diff)
		}
		// Other services' records are their own.
		if got := appliedVersions(t, db, "session"); got != nil {
			t.Errorf("service session: applied %v, want none", got)
		}
	})
}

func TestMigrateChecksumChange(t *testing.T) {
	storetest.ForEachProvider(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx, "audit", migrationSet("002_two")); err != nil {
			t.Fatal(err)
		}
		changed := migrationSet("002_two", "003_three")
		file := db.Provider() + "/002_two.sql"
		old := changed[file].Data
		changed[file] = &fstest.MapFile{Data: append([]byte("-- edited\n"), old...)}

		err := db.Migrate(ctx, "audit", changed)
		if !errors.Is(err, store.ErrMigrationChanged) {
			t.Fatalf("Migrate() = %v, want ErrMigrationChanged", err)
		}
		want := fmt.Sprintf("store: migration audit/%s was changed after it was applied (checksum %s recorded, %s now); "+
			"add a new migration instead of editing an applied one", file, checksum(old)[:12], checksum(changed[file].Data)[:12])
		if err.Error() != want {
			t.Errorf("Migrate() error =\n%q\nwant\n%q", err, want)
		}
		if diff := cmp.Diff([]string{"create_steps", "two"}, stepsRun(t, db)); diff != "" {
			t.Errorf("a migration ran despite the changed one (-want +got):\n%s", diff)
		}
	})
}

func TestMigrateFailureRollsBack(t *testing.T) {
	storetest.ForEachProvider(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fsys := migrationSet()
		table := db.Table("compliance", "half_done")
		fsys[db.Provider()+"/002_broken.sql"] = &fstest.MapFile{Data: []byte(
			"CREATE TABLE " + table + " (id INTEGER);\nINSERT INTO " + db.Table("compliance", "steps") + " VALUES (2, 'broken');\nINSERT INTO no_such_table VALUES (1);")}
		fsys[db.Provider()+"/003_after.sql"] = &fstest.MapFile{Data: []byte("SELECT 1")}

		err := db.Migrate(ctx, "audit", fsys)
		if err == nil || !strings.HasPrefix(err.Error(), "store: migration audit/"+db.Provider()+"/002_broken.sql failed: ") {
			t.Fatalf("Migrate() = %v, want the broken migration's failure", err)
		}
		if diff := cmp.Diff([]int{1}, appliedVersions(t, db, "audit")); diff != "" {
			t.Errorf("recorded versions (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"create_steps"}, stepsRun(t, db)); diff != "" {
			t.Errorf("the failed migration's insert was kept (-want +got):\n%s", diff)
		}
		if _, err := db.ExecContext(ctx, "SELECT * FROM "+table); err == nil {
			t.Errorf("table %s created by the failed migration exists", table)
		}

		// Fixed, it applies, and so does the one after it.
		fsys[db.Provider()+"/002_broken.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE " + table + " (id INTEGER)")}
		if err := db.Migrate(ctx, "audit", fsys); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int{1, 2, 3}, appliedVersions(t, db, "audit")); diff != "" {
			t.Errorf("recorded versions after the fix (-want +got):\n%s", diff)
		}
	})
}

// TestMigrateConcurrent starts 5 Migrate calls at once, each on its own connection pool as 5
// processes would: every migration runs exactly once and none fails. Then 5 services at once whose
// migrations create the same schema, as auth and session both create "users".
func TestMigrateConcurrent(t *testing.T) {
	ctx := context.Background()
	configs := map[string]func(t *testing.T) store.Config{
		store.SQLite: func(t *testing.T) store.Config {
			return store.Config{Provider: store.SQLite, SQLitePath: testenv.SQLitePath(t), MaxOpenConns: 4}
		},
		store.Postgres: func(t *testing.T) store.Config {
			return store.Config{Provider: store.Postgres, URL: testenv.Postgres(t).URL, MaxOpenConns: 4}
		},
	}
	for _, provider := range []string{store.SQLite, store.Postgres} {
		t.Run(provider, func(t *testing.T) {
			cfg := configs[provider](t)
			dbs := make([]*store.DB, 5)
			for i := range dbs {
				db, err := store.Open(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				dbs[i] = db
			}
			run := func(service func(i int) string, fsys func(i int) fstest.MapFS) {
				t.Helper()
				var wg sync.WaitGroup
				errs := make([]error, len(dbs))
				for i, db := range dbs {
					wg.Go(func() { errs[i] = db.Migrate(ctx, service(i), fsys(i)) })
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Errorf("Migrate #%d: %v", i, err)
					}
				}
			}

			fsys := migrationSet("002_two", "003_three", "004_four")
			run(func(int) string { return "audit" }, func(int) fstest.MapFS { return fsys })
			if diff := cmp.Diff([]string{"create_steps", "two", "three", "four"}, stepsRun(t, dbs[0])); diff != "" {
				t.Errorf("steps run (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]int{1, 2, 3, 4}, appliedVersions(t, dbs[0], "audit")); diff != "" {
				t.Errorf("recorded versions (-want +got):\n%s", diff)
			}

			run(func(i int) string { return fmt.Sprintf("svc%d", i) }, func(i int) fstest.MapFS {
				return fstest.MapFS{
					fmt.Sprintf("postgres/001_svc%d.sql", i): {Data: []byte(fmt.Sprintf(
						"CREATE SCHEMA IF NOT EXISTS users; CREATE TABLE users.svc%d (id INTEGER)", i))},
					fmt.Sprintf("sqlite/001_svc%d.sql", i): {Data: []byte(fmt.Sprintf(
						"CREATE TABLE users__svc%d (id INTEGER)", i))},
				}
			})
		})
	}
}

func TestReadMigrationsErrors(t *testing.T) {
	sql := &fstest.MapFile{Data: []byte("SELECT 1")}
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"no directory", fstest.MapFS{"postgres/001_a.sql": sql}, "store: no sqlite migrations (want files sqlite/NNN_name.sql): open sqlite: file does not exist"},
		{"no sql files", fstest.MapFS{"sqlite/README.md": sql}, "store: no sqlite migrations (want files sqlite/NNN_name.sql)"},
		{"bad name", fstest.MapFS{"sqlite/create.sql": sql}, "store: migration sqlite/create.sql: name must be NNN_name.sql, e.g. 001_create_audit_log.sql"},
		{"version zero", fstest.MapFS{"sqlite/000_a.sql": sql}, "store: migration sqlite/000_a.sql: version must be a number from 1"},
		{"duplicate version", fstest.MapFS{"sqlite/01_a.sql": sql, "sqlite/1_b.sql": sql}, "store: migrations sqlite/01_a.sql and sqlite/1_b.sql have the same version 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := store.ReadMigrations(tt.fsys, store.SQLite)
			if err == nil || err.Error() != tt.want {
				t.Errorf("ReadMigrations() error = %v, want %q", err, tt.want)
			}
		})
	}
	db := storetest.OpenSQLite(t)
	if err := db.Migrate(context.Background(), "", migrationSet()); err == nil {
		t.Error("Migrate with no service name succeeded")
	}
}

func checksum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
