// Package storetest runs a service's store contract tests against every relational provider, on
// real databases: a fresh SQLite file and a fresh PostgreSQL database (pkg/testenv).
//
//	func TestStore(t *testing.T) {
//		storetest.ForEachProvider(t, func(t *testing.T, db *store.DB) {
//			if err := db.Migrate(t.Context(), "audit", migrations.FS); err != nil {
//				t.Fatal(err)
//			}
//			s := auditstore.New(db)
//			// ... the contract
//		})
//	}
package storetest

import (
	"context"
	"testing"

	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/testenv"
)

// maxOpenConns sizes each test's pool: tests run in parallel against one PostgreSQL server, whose
// connection limit is shared.
const maxOpenConns = 8

// ForEachProvider runs fn as the subtests "sqlite" (a fresh file) and "postgres" (a fresh database
// on the test PostgreSQL server). Each database is empty, closed and removed when its subtest ends.
// fn may call t.Parallel.
func ForEachProvider(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	providers := []struct {
		name string
		open func(testing.TB) *store.DB
	}{
		{store.SQLite, OpenSQLite},
		{store.Postgres, OpenPostgres},
	}
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) { fn(t, p.open(t)) })
	}
}

// OpenSQLite opens a fresh SQLite database in t's temp dir, closed when t ends.
func OpenSQLite(t testing.TB) *store.DB {
	t.Helper()
	return open(t, store.Config{Provider: store.SQLite, SQLitePath: testenv.SQLitePath(t), MaxOpenConns: maxOpenConns})
}

// OpenPostgres opens a fresh PostgreSQL database (testenv.Postgres), closed and dropped when t ends.
func OpenPostgres(t testing.TB) *store.DB {
	t.Helper()
	return open(t, store.Config{Provider: store.Postgres, URL: testenv.Postgres(t).URL, MaxOpenConns: maxOpenConns})
}

func open(t testing.TB, cfg store.Config) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
