package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tempPrefix starts the name of every directory testenv makes under os.TempDir for a process-wide
// server. The directory is named cw-testenv-<pid>-<random>, so a later run can remove the ones whose
// process is gone (a test binary cannot clean up after itself at exit: there is no hook for it).
const tempPrefix = "cw-testenv-"

// process is a server process started by testenv. It is started from a goroutine that keeps its OS
// thread locked until the process exits: the kernel sends the parent-death signal when the thread
// that forked the child exits, not the process, and Go may otherwise retire that thread at any time.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // Wait's result, valid after done
}

// startProcess starts bin with args, output to logPath, as cred's user when cred is not nil.
// deathSig is sent to it by the kernel when this test process dies, however it dies.
func startProcess(bin string, args []string, logPath string, cred *syscall.Credential, deathSig syscall.Signal) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if cred != nil {
		// The server writes its own log too (e.g. redis logfile): let it.
		if err := os.Chown(logPath, int(cred.Uid), int(cred.Gid)); err != nil {
			logFile.Close()
			return nil, err
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: deathSig, Credential: cred, Setpgid: true}
	p := &process{name: filepath.Base(bin), cmd: cmd, logPath: logPath, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer logFile.Close()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return p, nil
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits for the process to exit, escalating to SIGKILL after grace.
func (p *process) stop(sig syscall.Signal, grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// logTail returns the last lines of the process's log, for error messages.
func (p *process) logTail() string { return fileTail(p.logPath) }

// fileTail returns the last 20 lines of the file at path.
func fileTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// waitReady polls ready until it succeeds, the process exits or timeout passes.
func waitReady(p *process, timeout time.Duration, ready func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last = ready(ctx)
		cancel()
		if last == nil {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited before it was ready (%v); log %s:\n%s", p.name, p.err, p.logPath, p.logTail())
		}
		if time.Now().After(deadline) {
			p.stop(syscall.SIGKILL, 0)
			return fmt.Errorf("%s not ready after %v: %v; log %s:\n%s", p.name, timeout, last, p.logPath, p.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a loopback TCP port that was free a moment ago. Another process may take it
// before the server binds it; callers retry a failed start on a new port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// makeProcessTempDir makes os.TempDir()/cw-testenv-<pid>-<random>, after removing such directories
// left by processes that no longer run.
func makeProcessTempDir() (string, error) {
	removeStaleTempDirs()
	return os.MkdirTemp("", fmt.Sprintf("%s%d-", tempPrefix, os.Getpid()))
}

// removeStaleTempDirs removes cw-testenv-<pid>-* directories whose process is gone.
var staleOnce sync.Once

func removeStaleTempDirs() {
	staleOnce.Do(func() {
		matches, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
		for _, dir := range matches {
			rest := strings.TrimPrefix(filepath.Base(dir), tempPrefix)
			pidStr, _, ok := strings.Cut(rest, "-")
			if !ok {
				continue
			}
			pid, err := strconv.Atoi(pidStr)
			if err != nil || pid == os.Getpid() {
				continue
			}
			if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
				_ = os.RemoveAll(dir)
			}
		}
	})
}

// serverCredential returns the credential a database server must run as: nil (this process's own
// user) unless we are root, in which case the "postgres" user (PostgreSQL refuses to run as root).
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and PostgreSQL refuses root, but there is no postgres user to run it as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// runAs runs bin to completion as cred's user (nil: ourselves), returning its combined output in the
// error when it fails.
func runAs(cred *syscall.Credential, dir, bin string, args ...string) error {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", bin, strings.Join(args, " "), err, out.String())
	}
	return nil
}
