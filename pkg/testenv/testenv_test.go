package testenv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

func TestRedisPrefixIsolation(t *testing.T) {
	ctx := context.Background()
	keep := Redis(t)
	c := keep.Client(t)
	if err := c.Set(ctx, keep.Key("k"), "keep", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var inner *RedisEnv
	t.Run("inner", func(t *testing.T) {
		inner = Redis(t)
		if inner.Prefix == keep.Prefix {
			t.Fatalf("two tests got the same prefix %q", inner.Prefix)
		}
		if !strings.HasPrefix(inner.Prefix, "t:") || !strings.HasSuffix(inner.Prefix, ":") {
			t.Errorf("Prefix = %q, want t:<random>:", inner.Prefix)
		}
		ic := inner.Client(t)
		for i := range 1200 { // more than one SCAN/UNLINK batch
			if err := ic.Set(ctx, fmt.Sprintf("%sk%d", inner.Prefix, i), i, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := ic.XAdd(ctx, &redis.XAddArgs{Stream: inner.Key("stream"), Values: []string{"a", "b"}}).Err(); err != nil {
			t.Fatal(err)
		}
	})
	// The inner test's cleanup ran: its keys are gone, ours are not.
	n, err := c.Keys(ctx, inner.Prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(n) != 0 {
		t.Errorf("%d keys with the ended test's prefix remain, want 0", len(n))
	}
	if got, err := c.Get(ctx, keep.Key("k")).Result(); err != nil || got != "keep" {
		t.Errorf("Get(own key) = %q, %v; want \"keep\"", got, err)
	}
}

func TestPostgresIsolation(t *testing.T) {
	ctx := context.Background()
	a := Postgres(t)
	var bName string
	t.Run("other", func(t *testing.T) {
		b := Postgres(t)
		bName = b.Database
		if b.Database == a.Database || b.URL == a.URL {
			t.Fatalf("two tests got the same database %q", a.Database)
		}
		connB := connect(t, b.URL)
		if _, err := connB.Exec(ctx, "CREATE TABLE only_in_b (id int)"); err != nil {
			t.Fatal(err)
		}
		var db string
		if err := connB.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil || db != b.Database {
			t.Errorf("current_database() = %q, %v; want %q", db, err, b.Database)
		}
		connA := connect(t, a.URL)
		var exists bool
		if err := connA.QueryRow(ctx, "SELECT to_regclass('only_in_b') IS NOT NULL").Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Error("a table created in one test's database is visible in another's")
		}
		// A connection left open must not stop the drop at cleanup (WITH (FORCE)).
		_ = connect(t, b.URL)
	})
	admin, err := postgresURL()
	if err != nil {
		t.Fatal(err)
	}
	var exists bool
	if err := connect(t, admin).QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", bName).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", bName)
	}
}

// connect opens a pgx connection closed after t's later cleanups (so after Postgres's drop).
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func TestProxyCutRestore(t *testing.T) {
	ctx := context.Background()
	env := Redis(t)
	p := NewProxy(t, env.Addr())
	opts, err := redis.ParseURL(p.URL(env.URL))
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxRetries = -1 // see each failure
	opts.DialTimeout = time.Second
	c := redis.NewClient(opts)
	defer c.Close()

	if err := c.Set(ctx, env.Key("k"), "v", 0).Err(); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.Cut()
	if err := c.Get(ctx, env.Key("k")).Err(); err == nil {
		t.Fatal("Get succeeded through a cut proxy")
	}
	if err := c.Get(ctx, env.Key("k")).Err(); err == nil {
		t.Fatal("a new connection succeeded through a cut proxy")
	}
	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, env.Key("k")).Result()
	if err != nil || got != "v" {
		t.Fatalf("after Restore: Get = %q, %v; want \"v\"", got, err)
	}
}

func TestProxyPostgres(t *testing.T) {
	ctx := context.Background()
	db := Postgres(t)
	p := NewProxy(t, db.Addr())
	conn := connect(t, p.URL(db.URL))
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	if err := conn.Ping(ctx); err == nil {
		t.Error("Ping succeeded through a cut proxy")
	}
	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	if err := connect(t, p.URL(db.URL)).Ping(ctx); err != nil {
		t.Errorf("new connection after Restore: %v", err)
	}
}

func TestProxyURL(t *testing.T) {
	p := &Proxy{Addr: "127.0.0.1:4242"}
	tests := []struct{ in, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:4242/0"},
		{"postgres://postgres@127.0.0.1:5432/cw_test_1?sslmode=disable", "postgres://postgres@127.0.0.1:4242/cw_test_1?sslmode=disable"},
		{"postgres://u:p@db.internal/x", "postgres://u:p@127.0.0.1:4242/x"},
	}
	for _, tt := range tests {
		if got := p.URL(tt.in); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestStartRedisRestart(t *testing.T) {
	ctx := context.Background()
	s := StartRedis(t)
	opts, err := redis.ParseURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxRetries = -1 // fail fast while the server is down
	c := redis.NewClient(opts)
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	url := s.URL

	s.Stop(t)
	if s.Running() {
		t.Fatal("Running() = true after Stop")
	}
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("Ping succeeded while the server is stopped")
	}
	s.Start(t)
	if s.URL != url {
		t.Errorf("URL after restart = %q, want %q", s.URL, url)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Errorf("after Stop/Start: Get = %q, %v; want \"v\" (data kept, client reconnected)", got, err)
	}

	s.Kill(t)
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("Ping succeeded after Kill")
	}
	s.Restart(t) // Stop of a stopped server is a no-op, then Start
	if err := c.Ping(ctx).Err(); err != nil {
		t.Errorf("Ping after Restart: %v", err)
	}
}

// TestLocalBinaries starts the fallback servers from their binaries even when REDIS_URL and
// DATABASE_URL are set, so the way CI does not take is still tested where the binaries exist.
func TestLocalBinaries(t *testing.T) {
	tests := []struct {
		name  string
		start func() (string, error)
		ping  func(ctx context.Context, url string) error
	}{
		{"redis", startSharedRedis, func(ctx context.Context, url string) error {
			return pingRedis(ctx, strings.TrimSuffix(strings.TrimPrefix(url, "redis://"), "/0"))
		}},
		{"postgres", startSharedPostgres, pingPostgres},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, err := tt.start()
			if errors.Is(err, errNotInstalled) {
				t.Skipf("%s binary not installed (scripts/test-services.sh --install, run by CI, installs it): %v", tt.name, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tt.ping(ctx, url); err != nil {
				t.Errorf("ping %s: %v", url, err)
			}
		})
	}
}

func TestFindServerNamesTheThreeWays(t *testing.T) {
	t.Setenv("CW_TESTENV_TEST_URL", "")
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	notInstalled := func() (string, error) { return "", fmt.Errorf("redis-server: %w", errNotInstalled) }
	_, err := findServer("Redis", "CW_TESTENV_TEST_URL", notInstalled, "redis")
	if err == nil {
		t.Fatal("findServer() error = nil, want one naming the three ways")
	}
	for _, want := range []string{"CW_TESTENV_TEST_URL", "redis-server", "Docker engine", "testcontainers-go"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	t.Setenv("CW_TESTENV_TEST_URL", "redis://example:1/0")
	got, err := findServer("Redis", "CW_TESTENV_TEST_URL", notInstalled, "redis")
	if err != nil || got != "redis://example:1/0" {
		t.Errorf("findServer() with the variable set = %q, %v; want the variable's value", got, err)
	}
}

func TestGlobEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"t:0a1b:", "t:0a1b:"},
		{"a*b?c[d]e\\f^g-h", `a\*b\?c\[d\]e\\f\^g\-h`},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, globEscape(tt.in)); diff != "" {
			t.Errorf("globEscape(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestSQLitePath(t *testing.T) {
	a, b := SQLitePath(t), SQLitePath(t)
	if a == b {
		t.Errorf("SQLitePath returned %q twice", a)
	}
}
