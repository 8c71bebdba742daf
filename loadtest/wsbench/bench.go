package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/classwaves/classwaves/loadtest/internal/wire"
	"github.com/classwaves/classwaves/pkg/retry"
)

// dialAttempts is how many times a socket tries to connect during the ramp.
const dialAttempts = 3

// loadRun is the client side of one server's run: the connections and the shared counters.
type loadRun struct {
	closing     atomic.Bool // the run is closing its connections: read errors are expected
	round       atomic.Pointer[round]
	strayTicks  atomic.Int64 // ticks outside any round, or of an unknown seq
	chunksSent  atomic.Int64
	chunksAcked atomic.Int64

	clients []*client
}

// round is one broadcast round: count messages with seq from..from+count-1, each to every socket.
type round struct {
	from       int64
	count      int
	expected   int64
	seen       [][]uint64 // per client, one bit per seq (written by that client's reader only)
	received   atomic.Int64
	duplicates atomic.Int64
	last       atomic.Int64 // UnixNano of the delivery that completed the round
	done       chan struct{}
}

// Run benchmarks each server of cfg in turn and returns the report. An error means a run could not be
// carried out; failed invariants are in the report (Report.Violations).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Log == nil {
		cfg.Log = os.Stderr
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var err error
	if cfg.Dir, err = findDir(cfg.Dir); err != nil {
		return nil, err
	}
	if cfg.Hold == 0 {
		cfg.Hold = cfg.PingInterval*5/2 + 500*time.Millisecond
	}
	if err := lookTools(&cfg); err != nil {
		return nil, err
	}
	limit, err := raiseOpenFiles()
	if err != nil {
		return nil, fmt.Errorf("raising RLIMIT_NOFILE: %w", err)
	}
	if need := uint64(cfg.Sockets) + 256; limit < need {
		return nil, fmt.Errorf("RLIMIT_NOFILE hard limit is %d, %d sockets need at least %d: raise `ulimit -Hn`",
			limit, cfg.Sockets, need)
	}
	rep := &Report{Time: time.Now().UTC(), Config: reportConfig(cfg), Env: environment(cfg), Results: map[string]*Result{}}
	rep.Env.OpenFilesLimit = int64(limit)
	if cfg.ClientCPUs != "" {
		n, err := pinSelf(cfg.taskset, cfg.ClientCPUs)
		if err != nil {
			return nil, err
		}
		rep.Env.ClientGOMAXPROCS = n
	} else {
		rep.Env.ClientGOMAXPROCS = runtime.GOMAXPROCS(0)
	}
	goBin := cfg.GoServer
	if slices.Contains(cfg.Servers, "go") && goBin == "" {
		tmp, err := os.MkdirTemp("", "wsbench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		logf(cfg, "building ./goserver")
		if goBin, err = buildGoServer(ctx, &cfg, tmp); err != nil {
			return nil, err
		}
	}
	for _, name := range cfg.Servers {
		res, err := runServer(ctx, &cfg, name, goBin)
		if res != nil {
			rep.Results[name] = res
			rep.Order = append(rep.Order, name)
		}
		if err != nil {
			return rep, fmt.Errorf("%s server: %w", name, err)
		}
	}
	if cfg.JSONOut != "" {
		if err := rep.WriteJSON(cfg.JSONOut); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func logf(cfg Config, format string, args ...any) {
	fmt.Fprintf(cfg.Log, "wsbench: "+format+"\n", args...)
}

// runServer runs every phase against one server.
func runServer(ctx context.Context, cfg *Config, name, goBin string) (*Result, error) {
	logf(*cfg, "%s: starting the server", name)
	srv, err := startServer(ctx, cfg, name, goBin)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	res := &Result{Server: name, Sockets: cfg.Sockets}
	lr := &loadRun{}
	defer func() {
		lr.closing.Store(true)
		var wg sync.WaitGroup
		for _, c := range lr.clients {
			wg.Go(func() { _ = c.ws.Close() })
		}
		wg.Wait()
	}()

	if res.OpenFilesLimit, err = openFilesLimit(srv.pid); err != nil {
		return res, err
	}
	if res.OpenFilesLimit < int64(cfg.Sockets)+64 {
		return res, fmt.Errorf("the server's open files limit is %d, too low for %d sockets", res.OpenFilesLimit, cfg.Sockets)
	}

	// Baseline memory, once the server has settled.
	if err := retry.Sleep(ctx, time.Second); err != nil {
		return res, err
	}
	st, err := srv.stats(ctx)
	if err != nil {
		return res, err
	}
	res.Version = st.Version
	if res.RSSBaseline, err = rss(srv.pid); err != nil {
		return res, err
	}
	res.HeapBaseline = heapOf(st)
	if err := srv.gc(ctx); err != nil {
		return res, err
	}
	if res.RSSBaselineGC, err = rss(srv.pid); err != nil {
		return res, err
	}

	if err := ramp(ctx, cfg, srv, lr, res); err != nil {
		return res, err
	}
	if err := hold(ctx, cfg, srv, lr, res); err != nil {
		return res, err
	}
	if err := broadcastPhase(ctx, cfg, srv, lr, res); err != nil {
		return res, err
	}
	if err := ingestPhase(ctx, cfg, srv, lr, res); err != nil {
		return res, err
	}

	// Every socket must have survived the phases.
	for _, c := range lr.clients {
		if !c.closed.Load() {
			res.HeldAtEnd++
		}
		if err := c.Err(); err != nil && len(res.ClientErrors) < 5 {
			res.ClientErrors = append(res.ClientErrors, err.Error())
		}
	}
	if m, err := procStatus(srv.pid, "VmHWM"); err == nil {
		res.RSSPeak = m["VmHWM"]
	}
	if !srv.alive() {
		return res, fmt.Errorf("the server exited: %v: %s", srv.err, srv.stderrText())
	}
	return res, nil
}

// heapOf returns the managed heap figure of a server's stats: Go's HeapInuse+StackInuse, Node's
// heapUsed+external.
func heapOf(st *wire.Stats) int64 {
	if st.Server == "go" {
		return int64(st.Memory["heapInuse"] + st.Memory["stackInuse"])
	}
	return int64(st.Memory["heapUsed"] + st.Memory["external"])
}

// ramp connects cfg.Sockets sockets with cfg.Dialers concurrent attempts; each joins the room.
func ramp(ctx context.Context, cfg *Config, srv *serverProc, lr *loadRun, res *Result) error {
	logf(*cfg, "%s: connecting %d sockets", srv.name, cfg.Sockets)
	wsURL, err := socketURL(srv.base)
	if err != nil {
		return err
	}
	d := newDialer()
	lr.clients = make([]*client, cfg.Sockets)
	var next atomic.Int64
	var failed, retries atomic.Int64
	var firstErr atomic.Pointer[error]
	var pingInterval atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range min(cfg.Dialers, cfg.Sockets) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Sockets || ctx.Err() != nil {
					return
				}
				// A busy machine can make a handshake time out: retry as a client would, a few times.
				var c *client
				var open *openPacket
				var err error
				for attempt := range dialAttempts {
					if attempt > 0 {
						retries.Add(1)
						if retry.Sleep(ctx, time.Duration(attempt)*500*time.Millisecond) != nil {
							return
						}
					}
					if c, open, err = dial(ctx, d, wsURL, cfg.Room, i, lr); err == nil {
						break
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				pingInterval.Store(open.PingInterval)
				lr.clients[i] = c
				go c.readLoop()
			}
		})
	}
	wg.Wait()
	res.RampSeconds = time.Since(start).Seconds()
	lr.clients = slices.DeleteFunc(lr.clients, func(c *client) bool { return c == nil })
	res.Connected = len(lr.clients)
	res.DialRetries = retries.Load()
	res.ConnectsPerSec = float64(res.Connected) / res.RampSeconds
	if p := firstErr.Load(); p != nil {
		res.ClientErrors = append(res.ClientErrors, fmt.Sprintf("%d connections failed, first: %v", failed.Load(), *p))
	}
	if got := pingInterval.Load(); res.Connected > 0 && got != cfg.PingInterval.Milliseconds() {
		return fmt.Errorf("the server announces pingInterval %d ms, want %d", got, cfg.PingInterval.Milliseconds())
	}
	logf(*cfg, "%s: %d sockets connected in %.1fs (%d attempts retried)", srv.name, res.Connected, res.RampSeconds, res.DialRetries)
	return ctx.Err()
}

// hold keeps the sockets idle for cfg.Hold (past two ping intervals) and measures memory.
func hold(ctx context.Context, cfg *Config, srv *serverProc, lr *loadRun, res *Result) error {
	logf(*cfg, "%s: holding the sockets for %v", srv.name, cfg.Hold)
	if err := retry.Sleep(ctx, cfg.Hold); err != nil {
		return err
	}
	res.MinPings = -1
	for _, c := range lr.clients {
		if !c.closed.Load() {
			res.Held++
		}
		if p := int(c.pings.Load()); res.MinPings < 0 || p < res.MinPings {
			res.MinPings = p
		}
	}
	st, err := srv.stats(ctx)
	if err != nil {
		return err
	}
	res.ServerSockets = st.Sockets
	res.ServerJoins = st.Joins
	if res.RSSLoaded, err = rss(srv.pid); err != nil {
		return err
	}
	res.HeapLoaded = heapOf(st)
	res.MemoryLoaded = st.Memory
	srv.profile(ctx, cfg, "heap", 0)
	if err := srv.gc(ctx); err != nil {
		return err
	}
	if res.RSSLoadedGC, err = rss(srv.pid); err != nil {
		return err
	}
	if res.Connected > 0 {
		n := float64(res.Connected)
		res.RSSPerConn = float64(res.RSSLoaded-res.RSSBaseline) / n
		res.HeapPerConn = float64(res.HeapLoaded-res.HeapBaseline) / n
		res.RSSPerConnGC = float64(res.RSSLoadedGC-res.RSSBaselineGC) / n
	}
	logf(*cfg, "%s: %d held, RSS %.1f MB -> %.1f MB (%.1f KB per connection; after a full GC %.1f KB)", srv.name, res.Held,
		mb(res.RSSBaseline), mb(res.RSSLoaded), res.RSSPerConn/1024, res.RSSPerConnGC/1024)
	return nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// runRound triggers one broadcast round and waits for every delivery (or the timeout).
//
// With profile set (and cfg.Pprof), a CPU profile of the server is taken during the round.
func runRound(ctx context.Context, cfg *Config, srv *serverProc, lr *loadRun, from int64, count int, profile string) (*RoundResult, error) {
	r := &round{
		from: from, count: count, expected: int64(count) * int64(len(lr.clients)),
		seen: make([][]uint64, cfg.Sockets), done: make(chan struct{}),
	}
	for _, c := range lr.clients {
		r.seen[c.idx] = make([]uint64, (count+63)/64)
		c.got.Store(0)
	}
	lr.round.Store(r)
	defer lr.round.Store(nil)

	srvCPU0, err1 := cpuTime(srv.pid)
	toolCPU0, err2 := cpuTime(os.Getpid())
	machine0, err3 := machineCPU()
	writes0, err4 := writeSyscalls(srv.pid)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, err
	}
	var prof sync.WaitGroup
	if profile != "" {
		prof.Go(func() { srv.profile(ctx, cfg, profile, cpuProfileSeconds(r.expected)) })
	}
	start := time.Now()
	reply, err := srv.broadcast(ctx, cfg.Room, from, count, cfg.PayloadSize)
	if err != nil {
		return nil, err
	}
	defer prof.Wait()
	// Generous: even at 20,000 deliveries/s the round completes.
	timeout := 30*time.Second + time.Duration(r.expected)*time.Second/20_000
	out := &RoundResult{Messages: count, Recipients: len(lr.clients), Expected: r.expected, EmitMillis: reply.EmitMillis}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-r.done:
		end := time.Unix(0, r.last.Load())
		out.Seconds = end.Sub(start).Seconds()
	case <-timer.C:
		out.TimedOut = true
		out.Seconds = time.Since(start).Seconds()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	srvCPU1, err1 := cpuTime(srv.pid)
	toolCPU1, err2 := cpuTime(os.Getpid())
	machine1, err3 := machineCPU()
	writes1, err4 := writeSyscalls(srv.pid)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, err
	}
	out.ServerWrites = writes1 - writes0
	out.ServerCPU = (srvCPU1 - srvCPU0).Seconds() / out.Seconds
	out.ToolCPU = (toolCPU1 - toolCPU0).Seconds() / out.Seconds
	out.OtherCPU = max(0, (machine1-machine0).Seconds()/out.Seconds-out.ServerCPU-out.ToolCPU)
	// Give duplicates a moment to show up.
	if err := retry.Sleep(ctx, 200*time.Millisecond); err != nil {
		return nil, err
	}
	out.Received = r.received.Load()
	out.Duplicates = r.duplicates.Load()
	out.DeliveriesPerSec = float64(out.Received) / out.Seconds
	if cpu := (srvCPU1 - srvCPU0).Seconds(); cpu > 0 {
		out.DeliveriesPerCPUSec = float64(out.Received) / cpu
	}
	for _, c := range lr.clients {
		if int(c.got.Load()) != count {
			out.SocketsIncomplete++
		}
	}
	return out, nil
}

// broadcastPhase runs a warm-up round, then the measured one.
func broadcastPhase(ctx context.Context, cfg *Config, srv *serverProc, lr *loadRun, res *Result) error {
	warm := min(10, cfg.Broadcasts)
	logf(*cfg, "%s: warm-up broadcast of %d messages", srv.name, warm)
	w, err := runRound(ctx, cfg, srv, lr, 1, warm, "")
	if err != nil {
		return err
	}
	res.WarmUp = w
	logf(*cfg, "%s: broadcasting %d messages of %d bytes to %d sockets", srv.name, cfg.Broadcasts, cfg.PayloadSize, len(lr.clients))
	r, err := runRound(ctx, cfg, srv, lr, 1_000, cfg.Broadcasts, "cpu-broadcast")
	if err != nil {
		return err
	}
	res.Broadcast = r
	res.StrayTicks = lr.strayTicks.Load()
	logf(*cfg, "%s: %d of %d deliveries in %.2fs: %.0f/s (CPU: server %.0f%%, tool %.0f%%, others %.0f%%)", srv.name,
		r.Received, r.Expected, r.Seconds, r.DeliveriesPerSec, r.ServerCPU*100, r.ToolCPU*100, r.OtherCPU*100)
	return nil
}

// ingestPhase has cfg.ChunkClients sockets send chunks for cfg.Duration, each keeping cfg.ChunkWindow
// unacknowledged, then waits for the outstanding acks. The rate is the server's count over the time from
// the first send to the last ack.
func ingestPhase(ctx context.Context, cfg *Config, srv *serverProc, lr *loadRun, res *Result) error {
	n := min(cfg.ChunkClients, len(lr.clients))
	logf(*cfg, "%s: %d sockets sending %d-byte chunks for %v", srv.name, n, cfg.ChunkSize, cfg.Duration)
	chunk := make([]byte, cfg.ChunkSize)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	pm, err := websocket.NewPreparedMessage(websocket.BinaryMessage, chunk)
	if err != nil {
		return err
	}
	before, err := srv.stats(ctx)
	if err != nil {
		return err
	}
	senders := lr.clients[:n]
	for _, c := range senders {
		c.window = make(chan struct{}, cfg.ChunkWindow)
	}
	srvCPU0, err1 := cpuTime(srv.pid)
	toolCPU0, err2 := cpuTime(os.Getpid())
	machine0, err3 := machineCPU()
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	var prof sync.WaitGroup
	prof.Go(func() { srv.profile(ctx, cfg, "cpu-ingest", int(cfg.Duration.Seconds())) })
	defer prof.Wait()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range senders {
		wg.Go(func() { c.sendChunks(stop, pm, "g"+strconv.Itoa(c.idx)) })
	}
	err = retry.Sleep(ctx, cfg.Duration)
	close(stop)
	wg.Wait()
	if err != nil {
		return err
	}
	// Drain: every chunk sent must be acknowledged.
	deadline := time.Now().Add(30 * time.Second)
	for lr.chunksAcked.Load() < lr.chunksSent.Load() && time.Now().Before(deadline) {
		if err := retry.Sleep(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
	elapsed := time.Since(start).Seconds()
	srvCPU1, err1 := cpuTime(srv.pid)
	toolCPU1, err2 := cpuTime(os.Getpid())
	machine1, err3 := machineCPU()
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	after, err := srv.stats(ctx)
	if err != nil {
		return err
	}
	in := &IngestResult{
		Clients: n, ChunkSize: cfg.ChunkSize, Window: cfg.ChunkWindow, Seconds: elapsed,
		Sent: lr.chunksSent.Load(), Acked: lr.chunksAcked.Load(),
		ServerChunks: after.Chunks - before.Chunks, ServerBytes: after.ChunkBytes - before.ChunkBytes,
		ServerBadChunks: after.BadChunks - before.BadChunks,
		ServerCPU:       (srvCPU1 - srvCPU0).Seconds() / elapsed,
		ToolCPU:         (toolCPU1 - toolCPU0).Seconds() / elapsed,
	}
	in.OtherCPU = max(0, (machine1-machine0).Seconds()/elapsed-in.ServerCPU-in.ToolCPU)
	if cpu := (srvCPU1 - srvCPU0).Seconds(); cpu > 0 {
		in.ChunksPerCPUSec = float64(in.ServerChunks) / cpu
	}
	in.ChunksPerSec = float64(in.ServerChunks) / elapsed
	in.MBPerSec = float64(in.ServerBytes) / (1 << 20) / elapsed
	res.Ingest = in
	logf(*cfg, "%s: %d chunks in %.2fs: %.0f chunks/s, %.1f MB/s (CPU: server %.0f%%, tool %.0f%%, others %.0f%%)", srv.name,
		in.ServerChunks, elapsed, in.ChunksPerSec, in.MBPerSec, in.ServerCPU*100, in.ToolCPU*100, in.OtherCPU*100)
	return nil
}

// environment describes the machine and tools of a run.
func environment(cfg Config) Env {
	e := Env{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, NumCPU: runtime.NumCPU(), GoVersion: runtime.Version()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if cfg.Node != "" {
		if out, err := exec.Command(cfg.Node, "--version").Output(); err == nil {
			e.NodeVersion = strings.TrimSpace(string(out))
		}
	}
	e.ServerCPUs, e.ClientCPUs = cfg.ServerCPUs, cfg.ClientCPUs
	return e
}
