package testenv

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// containerStartTimeout bounds building cw-containers and pulling and starting an image.
const containerStartTimeout = 10 * time.Minute

// startContainer starts service ("redis" or "postgres") in a container through the cw-containers
// command of the testcontainers module (kept out of the product module, so its dependencies never
// reach the product), and returns its URL. The command keeps the container until its standard input
// closes, which happens when this process exits.
func startContainer(service string) (string, error) {
	if err := dockerAnswers(); err != nil {
		return "", err
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("a Docker engine answers but the go command is not on PATH to run cw-containers: %w", err)
	}
	logFile, err := os.CreateTemp("", "cw-containers-*.log")
	if err != nil {
		return "", err
	}
	cmd := exec.Command(goBin, "run", "./cmd/cw-containers", "-services", service)
	cmd.Dir = filepath.Join(root, "testcontainers")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	started := make(chan error, 1)
	go func() {
		// Locked for the parent-death signal, as in startProcess.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		logFile.Close()
	}()
	if err := <-started; err != nil {
		return "", fmt.Errorf("go run ./testcontainers/cmd/cw-containers: %w", err)
	}
	type result struct {
		urls map[string]string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			res <- result{err: err}
			return
		}
		var urls map[string]string
		err = json.Unmarshal([]byte(line), &urls)
		res <- result{urls: urls, err: err}
		// Drain the rest so the child never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case r := <-res:
		if r.err != nil || r.urls[service] == "" {
			_ = stdin.Close()
			// Give the command a moment to finish writing its log before quoting it.
			time.Sleep(100 * time.Millisecond)
			return "", fmt.Errorf("cw-containers gave no %s URL (%v); log %s:\n%s", service, r.err, logFile.Name(), fileTail(logFile.Name()))
		}
		// Keep the pipe referenced for the life of the process: closing it stops the container.
		keep := &sharedRedis
		if service == "postgres" {
			keep = &sharedPostgres
		}
		keep.keep = stdin
		return r.urls[service], nil
	case <-time.After(containerStartTimeout):
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		return "", fmt.Errorf("cw-containers did not start %s within %v; log %s", service, containerStartTimeout, logFile.Name())
	}
}

// dockerAnswers reports whether a Docker engine accepts connections: DOCKER_HOST (unix:// or
// tcp://) or else /var/run/docker.sock.
func dockerAnswers() error {
	network, addr := "unix", "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		u, err := url.Parse(h)
		if err != nil {
			return fmt.Errorf("DOCKER_HOST %q: %w", h, err)
		}
		switch u.Scheme {
		case "unix":
			addr = u.Path
		case "tcp":
			network, addr = "tcp", u.Host
		default:
			return fmt.Errorf("DOCKER_HOST %q: unsupported scheme", h)
		}
	} else if _, err := os.Stat(addr); err != nil {
		return errors.New("no Docker engine: DOCKER_HOST is not set and /var/run/docker.sock does not exist")
	}
	c, err := net.DialTimeout(network, addr, 3*time.Second)
	if err != nil {
		return fmt.Errorf("no Docker engine answers at %s: %w", addr, err)
	}
	return c.Close()
}

// repoRoot walks up from the working directory (a test runs in its package's directory) to the
// directory holding go.work.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "testcontainers", "go.mod")); err != nil {
				return "", fmt.Errorf("%s has no testcontainers module: %w", dir, err)
			}
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the repository root (a directory with go.work) above the working directory")
		}
		dir = parent
	}
}
