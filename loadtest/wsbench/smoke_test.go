package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testLog sends the tool's progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// smokeConfig is -quick made lighter and more tolerant, since the test shares a busy machine (CI runs
// other packages' tests meanwhile, and this one under the race detector): fewer sockets, a fast
// heartbeat with a long timeout, and no CPU pinning.
func smokeConfig(t *testing.T, server, goBin string) Config {
	cfg := QuickConfig()
	cfg.Servers = []string{server}
	cfg.Sockets = 300
	cfg.ChunkClients = 10
	cfg.PingInterval = 500 * time.Millisecond
	cfg.PingTimeout = 10 * time.Second
	cfg.ServerCPUs, cfg.ClientCPUs = "", ""
	cfg.GoServer = goBin
	cfg.JSONOut = filepath.Join(t.TempDir(), "report.json")
	cfg.Log = testLog{t}
	return cfg
}

// TestSmoke runs the tool in quick mode against each server and checks the run's invariants: every
// socket connected, held through two heartbeats and open at the end; every broadcast delivered to every
// socket exactly once; every chunk sent counted by the server and acknowledged.
func TestSmoke(t *testing.T) {
	dir, err := findDir("")
	if err != nil {
		t.Fatal(err)
	}
	goPath, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is needed to build ./goserver: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	goBin, err := buildGoServer(ctx, &Config{Go: goPath, Dir: dir}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	for _, server := range []string{"go", "node"} {
		t.Run(server, func(t *testing.T) {
			if server == "node" {
				if _, err := exec.LookPath("node"); err != nil {
					// make test needs Node anyway (the socket.io-client tests): a missing one is a failure.
					t.Fatal("node (Node.js 20+) is not installed: the reference server cannot run")
				}
				if _, err := os.Stat(filepath.Join(dir, "node", "node_modules", "socket.io")); err != nil {
					t.Fatal("socket.io is not installed for the reference server: run `npm ci --prefix loadtest/node` " +
						"from the repository root (make test does)")
				}
			}
			cfg := smokeConfig(t, server, goBin)
			rep, err := Run(ctx, cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			var table bytes.Buffer
			rep.WriteMarkdown(&table)
			t.Log(table.String())
			if v := rep.Violations(); len(v) > 0 {
				t.Fatalf("invariants failed:\n%s", strings.Join(v, "\n"))
			}
			res := rep.Results[server]
			if res == nil {
				t.Fatalf("no result for %s", server)
			}
			// The invariants above, spelled out for the record.
			if res.Connected != cfg.Sockets || res.Held != cfg.Sockets || res.ServerSockets != int64(cfg.Sockets) {
				t.Errorf("connected %d, held %d, server counts %d; want %d", res.Connected, res.Held, res.ServerSockets, cfg.Sockets)
			}
			b := res.Broadcast
			if want := int64(cfg.Broadcasts) * int64(cfg.Sockets); b.Expected != want || b.Received != want || b.Duplicates != 0 {
				t.Errorf("broadcast: %d received, %d duplicates, want exactly %d", b.Received, b.Duplicates, want)
			}
			in := res.Ingest
			if in.Sent == 0 || in.ServerChunks != in.Sent || in.Acked != in.Sent {
				t.Errorf("ingest: sent %d, acked %d, server counted %d", in.Sent, in.Acked, in.ServerChunks)
			}
			if res.RSSLoaded <= 0 || res.RSSBaseline <= 0 || b.DeliveriesPerSec <= 0 || in.ChunksPerSec <= 0 {
				t.Errorf("figures missing: %+v", res)
			}
			data, err := os.ReadFile(cfg.JSONOut)
			if err != nil || !bytes.Contains(data, []byte(`"deliveriesPerSec"`)) {
				t.Errorf("JSON report: %v, %.200s", err, data)
			}
		})
	}
}

// TestViolations checks that the invariant checker reports each kind of broken run.
func TestViolations(t *testing.T) {
	good := func() *Result {
		return &Result{
			Server: "go", Sockets: 10, Connected: 10, Held: 10, HeldAtEnd: 10, MinPings: 2, ServerSockets: 10, ServerJoins: 10,
			WarmUp:    &RoundResult{Messages: 1, Recipients: 10, Expected: 10, Received: 10},
			Broadcast: &RoundResult{Messages: 2, Recipients: 10, Expected: 20, Received: 20},
			Ingest:    &IngestResult{ChunkSize: 4, Sent: 5, Acked: 5, ServerChunks: 5, ServerBytes: 20},
		}
	}
	rep := func(r *Result) *Report { return &Report{Order: []string{"go"}, Results: map[string]*Result{"go": r}} }
	if v := rep(good()).Violations(); len(v) != 0 {
		t.Fatalf("a good run reports %v", v)
	}
	cases := map[string]func(r *Result){
		"connected":  func(r *Result) { r.Connected = 9 },
		"held":       func(r *Result) { r.Held = 9 },
		"at end":     func(r *Result) { r.HeldAtEnd = 9 },
		"server":     func(r *Result) { r.ServerSockets = 11 },
		"pings":      func(r *Result) { r.MinPings = 1 },
		"missing":    func(r *Result) { r.Broadcast.Received = 19 },
		"duplicate":  func(r *Result) { r.Broadcast.Duplicates = 1 },
		"incomplete": func(r *Result) { r.WarmUp.SocketsIncomplete = 1 },
		"timed out":  func(r *Result) { r.Broadcast.TimedOut = true },
		"stray":      func(r *Result) { r.StrayTicks = 1 },
		"unacked":    func(r *Result) { r.Ingest.Acked = 4 },
		"uncounted":  func(r *Result) { r.Ingest.ServerChunks = 4 },
		"bytes":      func(r *Result) { r.Ingest.ServerBytes = 19 },
		"none sent":  func(r *Result) { *r.Ingest = IngestResult{} },
		"refused":    func(r *Result) { r.Ingest.ServerBadChunks = 1 },
		"client err": func(r *Result) { r.ClientErrors = []string{"boom"} },
		"no ingest":  func(r *Result) { r.Ingest = nil },
	}
	for name, mutate := range cases {
		r := good()
		mutate(r)
		if v := rep(r).Violations(); len(v) == 0 {
			t.Errorf("%s: not reported", name)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (&Config{}).Validate(); err == nil {
		t.Error("the zero Config is valid")
	}
	for _, cfg := range []Config{DefaultConfig(), QuickConfig()} {
		if err := cfg.Validate(); err != nil {
			t.Errorf("Validate: %v", err)
		}
	}
	bad := map[string]func(c *Config){
		"server":   func(c *Config) { c.Servers = []string{"deno"} },
		"twice":    func(c *Config) { c.Servers = []string{"go", "go"} },
		"sockets":  func(c *Config) { c.Sockets = 0 },
		"clients":  func(c *Config) { c.ChunkClients = c.Sockets + 1 },
		"room":     func(c *Config) { c.Room = "a&b" },
		"duration": func(c *Config) { c.Duration = 0 },
		"ping":     func(c *Config) { c.PingInterval = time.Millisecond },
		"cpus":     func(c *Config) { c.ServerCPUs = "1-0" },
		"payload":  func(c *Config) { c.PayloadSize = -1 },
	}
	for name, mutate := range bad {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCLIUsage(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{{"-servers", "deno"}, {"-sockets", "-1"}, {"extra"}, {"-nope"}} {
		code, err := cli(context.Background(), args, &out)
		if code != 2 || err == nil {
			t.Errorf("cli(%q) = %d, %v; want 2 and an error", args, code, err)
		}
	}
}

func TestParsers(t *testing.T) {
	for list, want := range map[string]int{"0": 1, "1": 1, "0,1": 2, "0-3": 4, "0-1,4": 3} {
		if n, err := countCPUs(list); err != nil || n != want {
			t.Errorf("countCPUs(%q) = %d, %v; want %d", list, n, err, want)
		}
	}
	for _, list := range []string{"", "a", "2-1", "-1", "1,,2"} {
		if _, err := countCPUs(list); err == nil {
			t.Errorf("countCPUs(%q) accepted", list)
		}
	}
	for in, want := range map[string]int{"1-/bench,3[": 1, "12-[": 12} {
		if n, ok := attachmentCount([]byte(in)); !ok || n != want {
			t.Errorf("attachmentCount(%q) = %d, %v", in, n, ok)
		}
	}
	for _, in := range []string{"", "-", "x-", "1234567-", "/bench"} {
		if _, ok := attachmentCount([]byte(in)); ok {
			t.Errorf("attachmentCount(%q) accepted", in)
		}
	}
	if n, ok := parseInt([]byte("1234,")); !ok || n != 1234 {
		t.Errorf("parseInt = %d, %v", n, ok)
	}
	if _, ok := parseInt([]byte("x")); ok {
		t.Error("parseInt accepted x")
	}
}
