// Package testenv gives tests real Redis and PostgreSQL servers, each test isolated from the others.
//
// A server is found in this order:
//
//  1. REDIS_URL / DATABASE_URL, when set (make test and CI set them: scripts/test-services.sh);
//  2. a redis-server / postgres binary (PATH, or /usr/lib/postgresql/*/bin for postgres and
//     initdb), started on a free loopback port in a temp dir; as root, PostgreSQL runs as the
//     "postgres" user, since it refuses to run as root;
//  3. testcontainers-go, when a Docker engine answers (DOCKER_HOST or /var/run/docker.sock), through
//     the cw-containers command of the separate testcontainers module, so the product module never
//     depends on testcontainers-go;
//
// otherwise the test fails with a message naming these three ways.
//
// The servers of ways 2 and 3 are started once per test process, on first use, and shared by every
// test in it (the package's only process-wide state). They stop when the process exits: the kernel
// sends them a parent-death signal (Pdeathsig), and the cw-containers command stops its containers
// when its standard input closes. Their temp dirs, named cw-testenv-<pid>-*, are removed by a later
// run once that pid is gone.
//
// Isolation: Redis gives each test a unique key prefix whose keys are deleted at cleanup; Postgres
// gives each test a database of its own, dropped at cleanup. So tests may run in parallel, several
// test binaries may share one server, and leftovers of a killed run never collide with a new one.
//
// For fault tests, StartRedis runs a private redis-server the test can stop and restart, and
// NewProxy puts a TCP proxy in front of any server so a test can cut its connections.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// RedisEnv is a test's share of the shared Redis server.
type RedisEnv struct {
	// URL of the shared server (redis://host:port/db).
	URL string
	// Prefix is unique to the test, e.g. "t:3f9a0c1d2e4b5a69:". Name every key (and stream) with it;
	// keys with the prefix are deleted when the test ends.
	Prefix string
}

// Redis returns the shared Redis server with a key prefix unique to t. Keys with the prefix are
// deleted (SCAN + DEL) when t ends.
func Redis(t testing.TB) *RedisEnv {
	t.Helper()
	u, err := redisURL()
	if err != nil {
		t.Fatal(err)
	}
	env := &RedisEnv{URL: u, Prefix: "t:" + randomHex(8) + ":"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := deleteKeys(ctx, env.URL, env.Prefix); err != nil {
			t.Errorf("testenv: deleting Redis keys %s*: %v", env.Prefix, err)
		}
	})
	return env
}

// Client returns a go-redis client of r's server, closed when t ends.
func (r *RedisEnv) Client(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatalf("testenv: REDIS_URL %q: %v", r.URL, err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Key returns the prefixed key name.
func (r *RedisEnv) Key(name string) string { return r.Prefix + name }

// Addr returns the server's host:port, e.g. the target of a Proxy.
func (r *RedisEnv) Addr() string { return hostPort(r.URL) }

// deleteKeys deletes every key that starts with prefix.
func deleteKeys(ctx context.Context, rawURL, prefix string) error {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return err
	}
	c := redis.NewClient(opts)
	defer c.Close()
	iter := c.Scan(ctx, 0, globEscape(prefix)+"*", 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := c.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return c.Unlink(ctx, batch...).Err()
	}
	return nil
}

// globEscape escapes Redis glob metacharacters.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\', '^', '-':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// PostgresEnv is a database of the test's own on the shared PostgreSQL server.
type PostgresEnv struct {
	// URL connects to Database (postgres://...).
	URL string
	// Database is the database's name, cw_test_<unix seconds>_<random>.
	Database string
}

// Addr returns the server's host:port, e.g. the target of a Proxy.
func (p *PostgresEnv) Addr() string { return hostPort(p.URL) }

// hostPort returns rawURL's host:port ("" when rawURL does not parse).
func hostPort(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// Postgres creates a fresh database on the shared PostgreSQL server for t, and drops it (WITH
// (FORCE), closing connections left open) when t ends.
func Postgres(t testing.TB) *PostgresEnv {
	t.Helper()
	admin, err := postgresURL()
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("testenv: DATABASE_URL must be a postgres:// URL for tests, got %q", admin)
	}
	name := fmt.Sprintf("%s%d_%s", dbPrefix, time.Now().Unix(), randomHex(6))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adminExec(ctx, admin, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: dropping database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return &PostgresEnv{URL: u.String(), Database: name}
}

// dbPrefix starts every test database's name.
const dbPrefix = "cw_test_"

// staleAfter is the age after which a test database is taken for a leftover of a killed run.
const staleAfter = 24 * time.Hour

// adminExec runs one statement on the admin connection.
func adminExec(ctx context.Context, adminURL, stmt string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, stmt)
	return err
}

// dropStaleDatabases drops test databases older than staleAfter (their name carries their creation
// time), left by runs that were killed before their cleanup ran. Errors are ignored: this is
// housekeeping.
func dropStaleDatabases(adminURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE 'cw\\_test\\_%'")
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, name := range names {
		secs, _, ok := strings.Cut(strings.TrimPrefix(name, dbPrefix), "_")
		created, err := strconv.ParseInt(secs, 10, 64)
		if !ok || err != nil || time.Since(time.Unix(created, 0)) < staleAfter {
			continue
		}
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
}

// SQLitePath returns a path for a fresh SQLite database file in t's temp dir (the file does not
// exist yet).
func SQLitePath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "classwaves.db")
}

// randomHex returns 2n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}
