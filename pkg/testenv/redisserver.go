package testenv

import (
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RedisServer is a private redis-server owned by one test, for fault tests: the test may stop,
// kill and restart it. It keeps its port across restarts, so URL stays valid and clients reconnect.
//
// Its data is persisted in an append-only file (fsync every second) in the test's temp dir, so a
// graceful Stop and Start keeps the data, as a production Redis with AOF would; Kill may lose the
// last second of writes.
type RedisServer struct {
	// URL is redis://127.0.0.1:<port>/0.
	URL string
	// Addr is 127.0.0.1:<port>.
	Addr string

	bin  string
	dir  string
	port int

	mu   sync.Mutex
	proc *process // nil while stopped
}

// StartRedis starts a private redis-server on a free loopback port. It needs redis-server on PATH
// (a REDIS_URL server cannot be restarted by a test). The server is killed when t ends.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testenv: StartRedis needs the redis-server binary on PATH: %v", err)
	}
	s := &RedisServer{bin: bin, dir: t.TempDir()}
	proc, url, err := startRedisProcess(bin, s.dir, 0, true)
	if err != nil {
		t.Fatalf("testenv: starting a private redis-server: %v", err)
	}
	s.proc, s.URL = proc, url
	s.Addr = url[len("redis://") : len(url)-len("/0")]
	s.port, _ = strconv.Atoi(s.Addr[len("127.0.0.1:"):])
	// Registered after t.TempDir, so it runs before the directory is removed.
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.proc != nil {
			s.proc.stop(syscall.SIGKILL, 0)
			s.proc = nil
		}
	})
	return s
}

// Stop shuts the server down gracefully (SIGTERM: the AOF is flushed) and waits until it has
// exited. Stopping a stopped server does nothing.
func (s *RedisServer) Stop(t testing.TB) {
	t.Helper()
	s.halt(syscall.SIGTERM)
}

// Kill kills the server (SIGKILL), as a crash would, and waits until it has exited.
func (s *RedisServer) Kill(t testing.TB) {
	t.Helper()
	s.halt(syscall.SIGKILL)
}

func (s *RedisServer) halt(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	s.proc.stop(sig, 10*time.Second)
	s.proc = nil
}

// Start starts the stopped server again on the same port and waits until it answers PING (its data
// loaded). Starting a running server does nothing.
func (s *RedisServer) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return
	}
	proc, _, err := startRedisProcess(s.bin, s.dir, s.port, true)
	if err != nil {
		t.Fatalf("testenv: restarting redis-server on %s: %v", s.Addr, err)
	}
	s.proc = proc
}

// Restart stops the server gracefully and starts it again on the same port.
func (s *RedisServer) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	s.Start(t)
}

// Running reports whether the server process is running.
func (s *RedisServer) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !s.proc.exited()
}
