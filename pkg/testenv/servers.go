package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// sharedServer is a server shared by every test of the process, found or started once.
//
// These are the package's only process-wide state: starting a database per test would cost seconds
// each, and a test binary has no hook that runs at exit (TestMain belongs to the package under test),
// so a started server lives until the process dies and the kernel kills it (Pdeathsig).
type sharedServer struct {
	once sync.Once
	url  string
	err  error
	// keep holds what must stay referenced while the server runs (the stdin pipe of cw-containers:
	// its finalizer would close it and so stop the containers).
	keep any
}

var (
	sharedRedis    sharedServer
	sharedPostgres sharedServer
)

// redisURL returns the shared Redis server's URL, finding or starting it on first use.
func redisURL() (string, error) {
	sharedRedis.once.Do(func() {
		sharedRedis.url, sharedRedis.err = findServer("Redis", "REDIS_URL", startSharedRedis, "redis")
	})
	return sharedRedis.url, sharedRedis.err
}

// postgresURL returns the shared PostgreSQL server's URL (an admin connection able to CREATE
// DATABASE), finding or starting it on first use.
func postgresURL() (string, error) {
	sharedPostgres.once.Do(func() {
		sharedPostgres.url, sharedPostgres.err = findServer("PostgreSQL", "DATABASE_URL", startSharedPostgres, "postgres")
		if sharedPostgres.err == nil {
			dropStaleDatabases(sharedPostgres.url)
		}
	})
	return sharedPostgres.url, sharedPostgres.err
}

// errNotInstalled reports that a server binary is not installed, so the next way is tried.
var errNotInstalled = errors.New("not installed")

// findServer tries the three ways in order: the environment variable, a local binary, Docker.
func findServer(what, envName string, startLocal func() (string, error), service string) (string, error) {
	if u := os.Getenv(envName); u != "" {
		return u, nil
	}
	url, localErr := startLocal()
	if localErr == nil {
		return url, nil
	}
	if !errors.Is(localErr, errNotInstalled) {
		return "", fmt.Errorf("testenv: %s: starting the local binary failed: %w", what, localErr)
	}
	url, dockerErr := startContainer(service)
	if dockerErr == nil {
		return url, nil
	}
	return "", fmt.Errorf("testenv: no %s for tests. Provide one of: (1) %s pointing at a running server; "+
		"(2) the %s binary installed (on PATH%s); (3) a Docker engine (DOCKER_HOST or /var/run/docker.sock) for testcontainers-go.\n"+
		"  local binary: %v\n  docker: %v",
		what, envName, binaryName(service), binaryHint(service), localErr, dockerErr)
}

func binaryName(service string) string {
	if service == "redis" {
		return "redis-server"
	}
	return "postgres/initdb"
}

func binaryHint(service string) string {
	if service == "postgres" {
		return " or in /usr/lib/postgresql/*/bin"
	}
	return ""
}

// startSharedRedis starts redis-server on a free loopback port in a process temp dir.
func startSharedRedis() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server: %w", errNotInstalled)
	}
	dir, err := makeProcessTempDir()
	if err != nil {
		return "", err
	}
	_, url, err := startRedisProcess(bin, dir, 0, false)
	return url, err
}

// startRedisProcess starts redis-server in dir on port (0: a free one, retried on a bind race).
// persistent turns on the append-only file so data survives a graceful restart.
func startRedisProcess(bin, dir string, port int, persistent bool) (*process, string, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p := port
		if p == 0 {
			var err error
			if p, err = freePort(); err != nil {
				return nil, "", err
			}
		}
		args := []string{
			"--bind", "127.0.0.1", "--port", strconv.Itoa(p), "--dir", dir,
			"--save", "", "--daemonize", "no", "--protected-mode", "no",
			"--appendonly", "no",
		}
		if persistent {
			args[len(args)-1] = "yes"
			args = append(args, "--appendfsync", "everysec")
		}
		proc, err := startProcess(bin, args, filepath.Join(dir, "redis.log"), nil, syscall.SIGKILL)
		if err != nil {
			return nil, "", err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		if err := waitReady(proc, 30*time.Second, func(ctx context.Context) error { return pingRedis(ctx, addr) }); err != nil {
			lastErr = err
			if port != 0 {
				break // a fixed port cannot be retried elsewhere
			}
			continue
		}
		return proc, "redis://" + addr + "/0", nil
	}
	return nil, "", lastErr
}

// pingRedis sends PING over a raw connection and expects +PONG (not -LOADING while an AOF loads).
func pingRedis(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// postgresBinDir finds a directory holding both postgres and initdb: PATH first, then the newest
// /usr/lib/postgresql/<version>/bin (Debian keeps them off PATH).
func postgresBinDir() (string, error) {
	if p, err := exec.LookPath("postgres"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	sort.Slice(matches, func(i, j int) bool { return versionOf(matches[i]) > versionOf(matches[j]) })
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("postgres and initdb: %w", errNotInstalled)
}

// versionOf extracts <version> from /usr/lib/postgresql/<version>/bin/postgres for sorting.
func versionOf(path string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(path))), 64)
	return v
}

// startSharedPostgres initializes a throwaway cluster in a process temp dir and starts postgres on
// a free loopback port, tuned for tests (no fsync).
func startSharedPostgres() (string, error) {
	binDir, err := postgresBinDir()
	if err != nil {
		return "", err
	}
	cred, err := serverCredential()
	if err != nil {
		return "", err
	}
	dir, err := makeProcessTempDir()
	if err != nil {
		return "", err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return "", err
		}
	}
	data := filepath.Join(dir, "data")
	if err := runAs(cred, dir, filepath.Join(binDir, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return "", err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return "", err
		}
		args := []string{
			"-D", data, "-p", strconv.Itoa(port), "-h", "127.0.0.1", "-k", dir,
			"-F", "-c", "full_page_writes=off", "-c", "synchronous_commit=off",
			"-c", "max_connections=300", "-c", "shared_buffers=64MB",
		}
		// SIGINT is PostgreSQL's fast shutdown: clients are disconnected and shared memory released,
		// which a SIGKILL of the postmaster would leave behind.
		proc, err := startProcess(filepath.Join(binDir, "postgres"), args, filepath.Join(dir, "postgres.log"), cred, syscall.SIGINT)
		if err != nil {
			return "", err
		}
		url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
		if err := waitReady(proc, 60*time.Second, func(ctx context.Context) error { return pingPostgres(ctx, url) }); err != nil {
			lastErr = err
			continue
		}
		return url, nil
	}
	return "", lastErr
}

// pingPostgres opens and closes one connection.
func pingPostgres(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}
