// Command wsbench is the realtime load benchmark: it runs the Go Socket.IO server (loadtest/goserver)
// and the reference Node server (loadtest/node/server.mjs, npm socket.io v4) one after the other with
// identical parameters, drives each with many WebSocket clients, and prints a side-by-side table:
// sockets held, memory per connection, broadcast deliveries per second and chunk ingest rate.
//
// From loadtest/ (after `npm ci --prefix node`):
//
//	GOWORK=off go run ./wsbench                 # full run: 10,000 sockets per server
//	GOWORK=off go run ./wsbench -quick          # 500 sockets, short phases
//
// See README.md for what each phase measures and how the cores are split.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Config is one benchmark run's parameters.
type Config struct {
	Servers      []string      // "go", "node", in run order
	Sockets      int           // concurrent sockets per server
	Room         string        // the room every socket joins
	Broadcasts   int           // messages of the measured broadcast round
	PayloadSize  int           // bytes of each broadcast message's payload string
	ChunkClients int           // sockets sending chunks in the ingest phase
	ChunkSize    int           // bytes of each chunk's binary attachment
	ChunkWindow  int           // unacknowledged chunks per sending socket
	Duration     time.Duration // length of the ingest phase
	PingInterval time.Duration // Engine.IO heartbeat of both servers
	PingTimeout  time.Duration
	Hold         time.Duration // how long the sockets are held before memory is measured (0: 2.5 ping intervals)
	Dialers      int           // concurrent connection attempts during the ramp
	ServerCPUs   string        // taskset CPU list of the servers ("" = not pinned)
	ClientCPUs   string        // taskset CPU list of this tool ("" = not pinned)
	Dir          string        // the loadtest module directory
	GoServer     string        // prebuilt goserver binary ("" = build it)
	GoGC         string        // GOGC of the Go server ("" = the environment's)
	Go, Node     string        // tool paths
	JSONOut      string        // where the JSON report goes ("" = nowhere)
	Pprof        string        // directory for pprof profiles of the Go server ("" = none)
	Log          io.Writer     // progress lines

	taskset string
}

// QuickConfig returns the parameters of the -quick mode (the smoke test's): 500 sockets, a 1 s
// heartbeat and short phases.
func QuickConfig() Config {
	c := DefaultConfig()
	c.Sockets = 500
	c.Broadcasts = 20
	c.ChunkClients = 20
	c.Duration = time.Second
	c.PingInterval = time.Second
	c.PingTimeout = 2 * time.Second
	return c
}

// EdgeGOGC is the GOGC that compose.yaml gives the realtime edge, and the Go server's by default: the
// collector then lets the heap grow by half of what it found live rather than double it.
const EdgeGOGC = "50"

// DefaultConfig returns the parameters of a full run.
func DefaultConfig() Config {
	return Config{
		Servers:      []string{"go", "node"},
		Sockets:      10_000,
		Room:         "bench",
		Broadcasts:   100,
		PayloadSize:  128,
		ChunkClients: 100,
		ChunkSize:    4096,
		ChunkWindow:  8,
		Duration:     5 * time.Second,
		PingInterval: 25 * time.Second,
		PingTimeout:  20 * time.Second,
		Dialers:      64,
		GoGC:         EdgeGOGC,
		ServerCPUs:   "1",
		ClientCPUs:   "0",
		JSONOut:      "wsbench-results.json",
		Log:          os.Stderr,
	}
}

// Validate reports what is wrong with c.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Servers) == 0 {
		errs = append(errs, errors.New("-servers: name at least one of go, node"))
	}
	seen := map[string]bool{}
	for _, s := range c.Servers {
		if s != "go" && s != "node" {
			errs = append(errs, fmt.Errorf("-servers: unknown server %q (want go, node)", s))
		}
		if seen[s] {
			errs = append(errs, fmt.Errorf("-servers: %q named twice", s))
		}
		seen[s] = true
	}
	positive := func(name string, v int, max int) {
		if v <= 0 || v > max {
			errs = append(errs, fmt.Errorf("-%s must be in [1, %d], got %d", name, max, v))
		}
	}
	positive("sockets", c.Sockets, 1_000_000)
	positive("broadcasts", c.Broadcasts, 1_000_000)
	positive("chunk-clients", c.ChunkClients, c.Sockets)
	positive("chunk-size", c.ChunkSize, 500_000)
	positive("chunk-window", c.ChunkWindow, 1024)
	positive("dialers", c.Dialers, 10_000)
	if c.PayloadSize < 0 || c.PayloadSize > 500_000 {
		errs = append(errs, fmt.Errorf("-payload must be in [0, 500000], got %d", c.PayloadSize))
	}
	if c.Room == "" || len(c.Room) > 128 || strings.ContainsAny(c.Room, "&=?#% \"\\") {
		errs = append(errs, fmt.Errorf("-room must be 1 to 128 characters without URL or JSON specials, got %q", c.Room))
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("-duration must be positive, got %v", c.Duration))
	}
	if c.PingInterval < 100*time.Millisecond || c.PingTimeout < 100*time.Millisecond {
		errs = append(errs, errors.New("-ping-interval and -ping-timeout must be at least 100ms"))
	}
	if c.Hold < 0 {
		errs = append(errs, fmt.Errorf("-hold must not be negative, got %v", c.Hold))
	}
	for _, l := range []struct{ name, v string }{{"server-cpus", c.ServerCPUs}, {"client-cpus", c.ClientCPUs}} {
		if l.v != "" {
			if _, err := countCPUs(l.v); err != nil {
				errs = append(errs, fmt.Errorf("-%s: %w", l.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := cli(ctx, os.Args[1:], os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
	}
	os.Exit(code)
}

// cli parses args, runs the benchmark and prints the table to out. The exit code is 0 when every
// invariant held, 1 when one failed, 2 on bad usage.
func cli(ctx context.Context, args []string, out io.Writer) (int, error) {
	fs := flag.NewFlagSet("wsbench", flag.ContinueOnError)
	quick := false
	for _, a := range args {
		if a == "-quick" || a == "--quick" || a == "-quick=true" || a == "--quick=true" {
			quick = true
		}
	}
	cfg := DefaultConfig()
	if quick {
		cfg = QuickConfig()
	}
	servers := strings.Join(cfg.Servers, ",")
	fs.Bool("quick", false, "quick mode: 500 sockets, 1s heartbeat, short phases (other flags still apply)")
	fs.StringVar(&servers, "servers", servers, "servers to benchmark, in order: go, node")
	fs.IntVar(&cfg.Sockets, "sockets", cfg.Sockets, "concurrent sockets per server")
	fs.StringVar(&cfg.Room, "room", cfg.Room, "room every socket joins")
	fs.IntVar(&cfg.Broadcasts, "broadcasts", cfg.Broadcasts, "messages in the measured broadcast round (each goes to every socket)")
	fs.IntVar(&cfg.PayloadSize, "payload", cfg.PayloadSize, "payload bytes of each broadcast message")
	fs.IntVar(&cfg.ChunkClients, "chunk-clients", cfg.ChunkClients, "sockets sending binary chunks in the ingest phase")
	fs.IntVar(&cfg.ChunkSize, "chunk-size", cfg.ChunkSize, "bytes of each chunk")
	fs.IntVar(&cfg.ChunkWindow, "chunk-window", cfg.ChunkWindow, "unacknowledged chunks per sending socket")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of the chunk ingest phase")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", cfg.PingInterval, "Engine.IO ping interval of both servers")
	fs.DurationVar(&cfg.PingTimeout, "ping-timeout", cfg.PingTimeout, "Engine.IO ping timeout of both servers")
	fs.DurationVar(&cfg.Hold, "hold", cfg.Hold, "how long sockets are held before memory is measured (0: 2.5 ping intervals)")
	fs.IntVar(&cfg.Dialers, "dialers", cfg.Dialers, "concurrent connection attempts during the ramp")
	fs.StringVar(&cfg.ServerCPUs, "server-cpus", cfg.ServerCPUs, "taskset CPU list for the servers (empty: not pinned)")
	fs.StringVar(&cfg.ClientCPUs, "client-cpus", cfg.ClientCPUs, "taskset CPU list for this tool (empty: not pinned)")
	fs.StringVar(&cfg.Dir, "dir", "", "the loadtest module directory (default: found from the working directory)")
	fs.StringVar(&cfg.GoServer, "go-server", "", "prebuilt goserver binary (default: go build ./goserver)")
	fs.StringVar(&cfg.GoGC, "go-gogc", cfg.GoGC, "GOGC of the Go server (default: as compose.yaml runs the realtime edge; empty: the environment's)")
	fs.StringVar(&cfg.JSONOut, "json", cfg.JSONOut, "file the JSON report is written to (empty: none)")
	fs.StringVar(&cfg.Pprof, "pprof", "", "directory to save pprof profiles of the Go server in (heap after the hold, CPU during broadcast and ingest)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, nil
		}
		return 2, err
	}
	if fs.NArg() > 0 {
		return 2, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.Servers = nil
	for s := range strings.SplitSeq(servers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Servers = append(cfg.Servers, s)
		}
	}
	if err := cfg.Validate(); err != nil {
		return 2, err
	}
	rep, err := Run(ctx, cfg)
	if rep != nil {
		rep.WriteMarkdown(out)
	}
	if err != nil {
		return 1, err
	}
	if v := rep.Violations(); len(v) > 0 {
		return 1, fmt.Errorf("invariants failed:\n  %s", strings.Join(v, "\n  "))
	}
	return 0, nil
}

// findDir returns the loadtest module directory: dir when set, else the first of the working directory
// and its parents that holds this module's go.mod.
func findDir(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		for _, cand := range []string{d, filepath.Join(d, "loadtest")} {
			data, err := os.ReadFile(filepath.Join(cand, "go.mod"))
			if err == nil && strings.Contains(string(data), "module github.com/classwaves/classwaves/loadtest\n") {
				return cand, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no loadtest module above %s: pass -dir", wd)
		}
	}
}

// lookTools fills in the paths of go, node and taskset that cfg needs.
func lookTools(cfg *Config) error {
	var err error
	if cfg.GoServer == "" && cfg.Go == "" {
		if cfg.Go, err = exec.LookPath("go"); err != nil {
			return fmt.Errorf("go is needed to build ./goserver (or pass -go-server): %w", err)
		}
	}
	for _, s := range cfg.Servers {
		if s == "node" && cfg.Node == "" {
			if cfg.Node, err = exec.LookPath("node"); err != nil {
				return fmt.Errorf("node (Node.js 20+) is needed for the node server: %w", err)
			}
			if _, err := os.Stat(filepath.Join(cfg.Dir, "node", "node_modules", "socket.io", "package.json")); err != nil {
				return fmt.Errorf("socket.io is not installed: run `npm ci --prefix loadtest/node` from the repository root (%w)", err)
			}
		}
	}
	if cfg.ServerCPUs != "" || cfg.ClientCPUs != "" {
		if cfg.taskset, err = exec.LookPath("taskset"); err != nil {
			fmt.Fprintln(cfg.Log, "wsbench: taskset not found: servers and the load tool are not pinned")
			cfg.ServerCPUs, cfg.ClientCPUs = "", ""
		}
	}
	return nil
}
