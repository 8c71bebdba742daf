package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/classwaves/classwaves/loadtest/internal/wire"
	"github.com/classwaves/classwaves/pkg/retry"
)

// serverProc is a benchmarked server running as a child process.
type serverProc struct {
	name string
	cmd  *exec.Cmd
	base string // http://host:port
	pid  int

	mu     sync.Mutex
	stderr bytes.Buffer
	exited chan struct{}
	err    error
}

// startServer starts the server name ("go" or "node") pinned to cfg.ServerCPUs and waits until it
// serves /stats.
func startServer(ctx context.Context, cfg *Config, name, goBin string) (*serverProc, error) {
	ms := strconv.FormatInt(cfg.PingInterval.Milliseconds(), 10)
	mt := strconv.FormatInt(cfg.PingTimeout.Milliseconds(), 10)
	var argv []string
	switch name {
	case "go":
		argv = []string{goBin, "-addr", "127.0.0.1:0"}
	case "node":
		argv = []string{cfg.Node, "--expose-gc", filepath.Join(cfg.Dir, "node", "server.mjs"), "--port", "0"}
	default:
		return nil, fmt.Errorf("unknown server %q", name)
	}
	if cfg.ServerCPUs != "" {
		argv = append([]string{cfg.taskset, "-c", cfg.ServerCPUs}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = cfg.Dir
	cmd.Env = append(os.Environ(), "PING_INTERVAL_MS="+ms, "PING_TIMEOUT_MS="+mt, "HOST=127.0.0.1")
	if name == "go" && cfg.GoGC != "" {
		cmd.Env = append(cmd.Env, "GOGC="+cfg.GoGC) // the last value of a name wins
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &serverProc{name: name, cmd: cmd, exited: make(chan struct{})}
	cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the %s server: %w", name, err)
	}
	p.pid = cmd.Process.Pid
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				select {
				case addrc <- strings.TrimSpace(rest):
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	select {
	case p.base = <-addrc:
	case <-p.exited:
		return nil, fmt.Errorf("the %s server exited at start (%v): %s", name, p.err, p.stderrText())
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("the %s server did not start in 30s: %s", name, p.stderrText())
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
	if _, err := p.stats(ctx); err != nil {
		p.stop()
		return nil, fmt.Errorf("the %s server does not answer /stats: %w", name, err)
	}
	return p, nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *serverProc) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := strings.TrimSpace(p.stderr.String())
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}

// alive reports whether the process is still running.
func (p *serverProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop ends the server: SIGTERM, then SIGKILL after 5 s.
func (p *serverProc) stop() {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Minute}

func (p *serverProc) stats(ctx context.Context) (*wire.Stats, error) {
	var st wire.Stats
	if err := p.call(ctx, http.MethodGet, "/stats", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// broadcastReply is the /broadcast answer.
type broadcastReply struct {
	Emitted    int64   `json:"emitted"`
	EmitMillis float64 `json:"emitMillis"`
}

func (p *serverProc) broadcast(ctx context.Context, room string, from int64, count, size int) (*broadcastReply, error) {
	path := fmt.Sprintf("/broadcast?room=%s&count=%d&size=%d&from=%d", room, count, size, from)
	var r broadcastReply
	if err := p.call(ctx, http.MethodPost, path, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// gc asks the server for a full garbage collection and waits a moment for the memory to be returned.
func (p *serverProc) gc(ctx context.Context) error {
	var out struct{}
	if err := p.call(ctx, http.MethodPost, "/gc", &out); err != nil {
		return err
	}
	return retry.Sleep(ctx, 500*time.Millisecond)
}

func (p *serverProc) call(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(body))
	}
	return json.Unmarshal(body, out)
}

// procStatus returns the fields of /proc/<pid>/status named, in bytes (they are in kB there).
func procStatus(pid int, names ...string) (map[string]int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(names))
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		for _, n := range names {
			if key == n {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("/proc/%d/status %s: %w", pid, key, err)
				}
				out[key] = kb << 10
			}
		}
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("/proc/%d/status has no %s", pid, n)
		}
	}
	return out, nil
}

// rss returns the resident set size of pid in bytes.
func rss(pid int) (int64, error) {
	m, err := procStatus(pid, "VmRSS")
	if err != nil {
		return 0, err
	}
	return m["VmRSS"], nil
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat (100 on every Linux platform Go
// supports).
const clockTicks = 100

// cpuTime returns the user+system CPU time pid has used (all its threads).
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces; fields after its closing parenthesis are fixed.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc/pid/stat format")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc/pid/stat format")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// openFilesLimit returns the soft "Max open files" of pid.
func openFilesLimit(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			if f[0] == "unlimited" {
				return 1 << 62, nil
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/limits has no Max open files", pid)
}

// raiseOpenFiles sets this process's RLIMIT_NOFILE soft limit to the hard limit. Calling Setrlimit also
// makes children inherit the raised limit (the Go runtime otherwise restores the original soft limit
// for them).
func raiseOpenFiles() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}

// pinSelf restricts every thread of this process to cpus (taskset syntax) and sets GOMAXPROCS to their
// number.
func pinSelf(taskset, cpus string) (int, error) {
	out, err := exec.Command(taskset, "-a", "-p", "-c", cpus, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("taskset -a -p -c %s: %v: %s", cpus, err, bytes.TrimSpace(out))
	}
	n, err := countCPUs(cpus)
	if err != nil {
		return 0, err
	}
	runtime.GOMAXPROCS(n)
	return n, nil
}

// countCPUs counts the CPUs of a taskset list such as "0", "1-3" or "0,2".
func countCPUs(list string) (int, error) {
	n := 0
	for part := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return 0, fmt.Errorf("bad CPU list %q", list)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, fmt.Errorf("bad CPU list %q", list)
			}
		}
		n += b - a + 1
	}
	return n, nil
}

// buildGoServer builds loadtest/goserver into dir and returns the binary's path.
func buildGoServer(ctx context.Context, cfg *Config, dir string) (string, error) {
	bin := filepath.Join(dir, "goserver")
	cmd := exec.CommandContext(ctx, cfg.Go, "build", "-o", bin, "./goserver")
	cmd.Dir = cfg.Dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./goserver: %v: %s", err, bytes.TrimSpace(out))
	}
	return bin, nil
}

// machineCPU returns the CPU time every process of the machine has used (the non-idle time of
// /proc/stat's cpu line).
func machineCPU() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("unexpected /proc/stat format")
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already counted in user
			break
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}

// cpuProfileSeconds estimates how long a CPU profile should last to cover a broadcast of n deliveries.
func cpuProfileSeconds(n int64) int {
	return int(min(30, max(2, n/100_000)))
}

// profile saves a pprof profile of the Go server in cfg.Pprof: "heap", or a CPU profile of seconds
// named kind. It does nothing for the Node server or without cfg.Pprof; failures are logged.
func (p *serverProc) profile(ctx context.Context, cfg *Config, kind string, seconds int) {
	if cfg.Pprof == "" || p.name != "go" {
		return
	}
	path := "/debug/pprof/heap?gc=1"
	if kind != "heap" {
		path = "/debug/pprof/profile?seconds=" + strconv.Itoa(max(1, seconds))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err == nil {
		var resp *http.Response
		if resp, err = httpClient.Do(req); err == nil {
			var data []byte
			data, err = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("%s: %s", path, resp.Status)
			}
			if err == nil {
				err = os.WriteFile(filepath.Join(cfg.Pprof, kind+".pb.gz"), data, 0o644)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(cfg.Log, "wsbench: %s profile: %v\n", kind, err)
	}
}

// writeSyscalls returns the number of write system calls pid has made (syscw of /proc/<pid>/io).
func writeSyscalls(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "syscw:"); ok {
			return strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/io has no syscw", pid)
}
