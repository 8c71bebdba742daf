package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Report is the outcome of a run: what was run where, and each server's figures.
type Report struct {
	Time    time.Time          `json:"time"`
	Config  ReportConfig       `json:"config"`
	Env     Env                `json:"env"`
	Order   []string           `json:"order"`
	Results map[string]*Result `json:"results"`
}

// ReportConfig is the part of Config that describes the workload.
type ReportConfig struct {
	Sockets       int     `json:"sockets"`
	Broadcasts    int     `json:"broadcasts"`
	PayloadBytes  int     `json:"payloadBytes"`
	ChunkClients  int     `json:"chunkClients"`
	ChunkBytes    int     `json:"chunkBytes"`
	ChunkWindow   int     `json:"chunkWindow"`
	IngestSeconds float64 `json:"ingestSeconds"`
	PingInterval  string  `json:"pingInterval"`
	PingTimeout   string  `json:"pingTimeout"`
	Hold          string  `json:"hold"`
	GoGC          string  `json:"goGOGC"` // "" = the environment's
	Command       string  `json:"command"`
}

func reportConfig(c Config) ReportConfig {
	return ReportConfig{
		Sockets: c.Sockets, Broadcasts: c.Broadcasts, PayloadBytes: c.PayloadSize,
		ChunkClients: c.ChunkClients, ChunkBytes: c.ChunkSize, ChunkWindow: c.ChunkWindow,
		IngestSeconds: c.Duration.Seconds(), PingInterval: c.PingInterval.String(),
		PingTimeout: c.PingTimeout.String(), Hold: c.Hold.String(), GoGC: c.GoGC,
		Command: strings.Join(os.Args, " "),
	}
}

// Env describes the machine.
type Env struct {
	CPU              string `json:"cpu"`
	NumCPU           int    `json:"numCPU"`
	GOOS             string `json:"goos"`
	GOARCH           string `json:"goarch"`
	GoVersion        string `json:"goVersion"`
	NodeVersion      string `json:"nodeVersion,omitempty"`
	ServerCPUs       string `json:"serverCPUs"`
	ClientCPUs       string `json:"clientCPUs"`
	ClientGOMAXPROCS int    `json:"clientGOMAXPROCS"`
	OpenFilesLimit   int64  `json:"openFilesLimit"`
}

// Result is one server's figures.
type Result struct {
	Server         string  `json:"server"`
	Version        string  `json:"version"`
	OpenFilesLimit int64   `json:"openFilesLimit"`
	Sockets        int     `json:"sockets"`
	Connected      int     `json:"connected"`
	RampSeconds    float64 `json:"rampSeconds"`
	DialRetries    int64   `json:"dialRetries"` // connection attempts that failed and were retried
	ConnectsPerSec float64 `json:"connectsPerSec"`
	Held           int     `json:"held"`      // open after the hold
	HeldAtEnd      int     `json:"heldAtEnd"` // open after every phase
	MinPings       int     `json:"minPings"`  // fewest pings a socket answered by the end of the hold
	ServerSockets  int64   `json:"serverSockets"`
	ServerJoins    int64   `json:"serverJoins"`

	RSSBaseline  int64   `json:"rssBaseline"`
	RSSLoaded    int64   `json:"rssLoaded"`
	RSSPerConn   float64 `json:"rssPerConn"`
	HeapBaseline int64   `json:"heapBaseline"`
	HeapLoaded   int64   `json:"heapLoaded"`
	HeapPerConn  float64 `json:"heapPerConn"`
	RSSPeak      int64   `json:"rssPeak"`
	// MemoryLoaded is the server's own memory breakdown (/stats) while holding the sockets.
	MemoryLoaded map[string]float64 `json:"memoryLoaded"`
	// The same after the server ran a full garbage collection (live memory rather than memory held).
	RSSBaselineGC int64   `json:"rssBaselineGC"`
	RSSLoadedGC   int64   `json:"rssLoadedGC"`
	RSSPerConnGC  float64 `json:"rssPerConnGC"`

	WarmUp     *RoundResult  `json:"warmUp"`
	Broadcast  *RoundResult  `json:"broadcast"`
	StrayTicks int64         `json:"strayTicks"`
	Ingest     *IngestResult `json:"ingest"`

	ClientErrors []string `json:"clientErrors,omitempty"`
}

// RoundResult is one broadcast round.
type RoundResult struct {
	Messages          int     `json:"messages"`
	Recipients        int     `json:"recipients"`
	Expected          int64   `json:"expected"`
	Received          int64   `json:"received"`
	Duplicates        int64   `json:"duplicates"`
	SocketsIncomplete int     `json:"socketsIncomplete"`
	TimedOut          bool    `json:"timedOut"`
	Seconds           float64 `json:"seconds"`
	DeliveriesPerSec  float64 `json:"deliveriesPerSec"`
	EmitMillis        float64 `json:"emitMillis"`
	ServerCPU         float64 `json:"serverCPU"` // cores used on average
	ToolCPU           float64 `json:"toolCPU"`
	OtherCPU          float64 `json:"otherCPU"`     // other processes on the machine
	ServerWrites      int64   `json:"serverWrites"` // write system calls of the server during the round
	// DeliveriesPerCPUSec is deliveries per second of server CPU time: the server's efficiency, which
	// other load on the machine disturbs less than the rate.
	DeliveriesPerCPUSec float64 `json:"deliveriesPerCPUSec"`
}

// IngestResult is the chunk ingest phase.
type IngestResult struct {
	Clients         int     `json:"clients"`
	ChunkSize       int     `json:"chunkSize"`
	Window          int     `json:"window"`
	Seconds         float64 `json:"seconds"`
	Sent            int64   `json:"sent"`
	Acked           int64   `json:"acked"`
	ServerChunks    int64   `json:"serverChunks"`
	ServerBytes     int64   `json:"serverBytes"`
	ServerBadChunks int64   `json:"serverBadChunks"`
	ChunksPerSec    float64 `json:"chunksPerSec"`
	MBPerSec        float64 `json:"mbPerSec"`
	ServerCPU       float64 `json:"serverCPU"`
	ToolCPU         float64 `json:"toolCPU"`
	OtherCPU        float64 `json:"otherCPU"`
	ChunksPerCPUSec float64 `json:"chunksPerCPUSec"`
}

// Violations lists the invariants a run broke: every socket connected, held and still open at the end,
// every broadcast delivered to every socket exactly once, every chunk sent counted and acknowledged.
func (r *Report) Violations() []string {
	var out []string
	for _, name := range r.Order {
		res := r.Results[name]
		bad := func(format string, args ...any) { out = append(out, name+": "+fmt.Sprintf(format, args...)) }
		if res.Connected != res.Sockets {
			bad("%d of %d sockets connected", res.Connected, res.Sockets)
		}
		if res.Held != res.Connected || res.HeldAtEnd != res.Connected {
			bad("sockets open: %d after the hold, %d at the end, of %d", res.Held, res.HeldAtEnd, res.Connected)
		}
		if res.ServerSockets != int64(res.Connected) || res.ServerJoins != int64(res.Connected) {
			bad("the server counts %d sockets and %d joins, want %d", res.ServerSockets, res.ServerJoins, res.Connected)
		}
		if res.MinPings < 2 {
			bad("a socket answered only %d pings during the hold, want 2 or more", res.MinPings)
		}
		for _, rr := range []*RoundResult{res.WarmUp, res.Broadcast} {
			if rr == nil {
				bad("broadcast phase missing")
				continue
			}
			if rr.TimedOut || rr.Received != rr.Expected || rr.Duplicates != 0 || rr.SocketsIncomplete != 0 {
				bad("broadcast of %d to %d: %d of %d delivered, %d duplicates, %d sockets incomplete, timed out %v",
					rr.Messages, rr.Recipients, rr.Received, rr.Expected, rr.Duplicates, rr.SocketsIncomplete, rr.TimedOut)
			}
		}
		if res.StrayTicks != 0 {
			bad("%d ticks outside their round", res.StrayTicks)
		}
		if in := res.Ingest; in == nil {
			bad("ingest phase missing")
		} else if in.Sent == 0 || in.Sent != in.Acked || in.Sent != in.ServerChunks || in.ServerBadChunks != 0 ||
			in.ServerBytes != in.ServerChunks*int64(in.ChunkSize) {
			bad("ingest: %d chunks sent, %d acked, %d counted by the server (%d bytes), %d refused",
				in.Sent, in.Acked, in.ServerChunks, in.ServerBytes, in.ServerBadChunks)
		}
		for _, e := range res.ClientErrors {
			bad("client error: %s", e)
		}
	}
	return out
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// WriteMarkdown prints the side-by-side table: one row per metric, one column per server, and the
// Go/Node ratio when both ran.
func (r *Report) WriteMarkdown(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "\n%d sockets per server; broadcast: %d messages of %d bytes to all; ingest: %d sockets x %d-byte chunks, window %d, %gs; heartbeat %s/%s, hold %s.\n",
		c.Sockets, c.Broadcasts, c.PayloadBytes, c.ChunkClients, c.ChunkBytes, c.ChunkWindow, c.IngestSeconds,
		c.PingInterval, c.PingTimeout, c.Hold)
	pin := "not pinned"
	if r.Env.ServerCPUs != "" || r.Env.ClientCPUs != "" {
		pin = fmt.Sprintf("servers on CPU %s, load tool on CPU %s", orAll(r.Env.ServerCPUs), orAll(r.Env.ClientCPUs))
	}
	gogc := "the environment's GOGC"
	if c.GoGC != "" {
		gogc = "GOGC=" + c.GoGC
	}
	fmt.Fprintf(w, "%s, %d CPUs (%s; load tool GOMAXPROCS %d), %s (Go server %s), Node %s.\n\n", r.Env.CPU,
		r.Env.NumCPU, pin, r.Env.ClientGOMAXPROCS, r.Env.GoVersion, gogc, orNone(r.Env.NodeVersion))

	cols := r.Order
	both := r.Results["go"] != nil && r.Results["node"] != nil
	header := "| metric |"
	sep := "| --- |"
	for _, n := range cols {
		header += " " + titles[n] + " |"
		sep += " ---: |"
	}
	if both {
		header += " Go / Node |"
		sep += " ---: |"
	}
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, sep)
	row := func(label string, ratio bool, val func(*Result) (float64, bool), format func(float64) string) {
		line := "| " + label + " |"
		vals := map[string]float64{}
		for _, n := range cols {
			v, ok := val(r.Results[n])
			if !ok {
				line += " - |"
				continue
			}
			vals[n] = v
			line += " " + format(v) + " |"
		}
		if both {
			g, ok1 := vals["go"]
			n, ok2 := vals["node"]
			if ratio && ok1 && ok2 && n != 0 {
				line += fmt.Sprintf(" %.2fx |", g/n)
			} else {
				line += " |"
			}
		}
		fmt.Fprintln(w, line)
	}
	count := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	kb := func(v float64) string { return fmt.Sprintf("%.1f KB", v/1024) }
	mbs := func(v float64) string { return fmt.Sprintf("%.1f MB", v/(1<<20)) }
	rate := func(v float64) string { return fmt.Sprintf("%.0f/s", v) }
	pct := func(v float64) string { return fmt.Sprintf("%.0f%%", v*100) }
	secs := func(v float64) string { return fmt.Sprintf("%.2f s", v) }
	always := func(f func(*Result) float64) func(*Result) (float64, bool) {
		return func(res *Result) (float64, bool) { return f(res), true }
	}
	bc := func(f func(*RoundResult) float64) func(*Result) (float64, bool) {
		return func(res *Result) (float64, bool) {
			if res.Broadcast == nil {
				return 0, false
			}
			return f(res.Broadcast), true
		}
	}
	ing := func(f func(*IngestResult) float64) func(*Result) (float64, bool) {
		return func(res *Result) (float64, bool) {
			if res.Ingest == nil {
				return 0, false
			}
			return f(res.Ingest), true
		}
	}
	row("sockets connected", false, always(func(r *Result) float64 { return float64(r.Connected) }), count)
	row("sockets held (open after hold, pings answered)", false, always(func(r *Result) float64 { return float64(r.Held) }), count)
	row("sockets open at the end", false, always(func(r *Result) float64 { return float64(r.HeldAtEnd) }), count)
	row("connection attempts retried", false, always(func(r *Result) float64 { return float64(r.DialRetries) }), count)
	row("connect + join rate", true, always(func(r *Result) float64 { return r.ConnectsPerSec }), rate)
	row("RSS before connecting", true, always(func(r *Result) float64 { return float64(r.RSSBaseline) }), mbs)
	row("RSS holding the sockets", true, always(func(r *Result) float64 { return float64(r.RSSLoaded) }), mbs)
	row("**RSS per connection**", true, always(func(r *Result) float64 { return r.RSSPerConn }), kb)
	row("RSS per connection after a full GC", true, always(func(r *Result) float64 { return r.RSSPerConnGC }), kb)
	row("heap per connection (Go heap+stacks; Node heapUsed+external)", true, always(func(r *Result) float64 { return r.HeapPerConn }), kb)
	row("**broadcast deliveries/s**", true, bc(func(b *RoundResult) float64 { return b.DeliveriesPerSec }), rate)
	row("broadcast: trigger to last delivery", true, bc(func(b *RoundResult) float64 { return b.Seconds }), secs)
	row("broadcast: deliveries received", false, bc(func(b *RoundResult) float64 { return float64(b.Received) }), count)
	row("broadcast: server emit loop", true, bc(func(b *RoundResult) float64 { return b.EmitMillis / 1000 }), secs)
	row("broadcast: server write syscalls per delivery", true, bc(func(b *RoundResult) float64 {
		if b.Received == 0 {
			return 0
		}
		return float64(b.ServerWrites) / float64(b.Received)
	}), func(v float64) string { return fmt.Sprintf("%.2f", v) })
	row("broadcast: server CPU (of one core)", false, bc(func(b *RoundResult) float64 { return b.ServerCPU }), pct)
	row("broadcast: load tool CPU (of one core)", false, bc(func(b *RoundResult) float64 { return b.ToolCPU }), pct)
	row("broadcast: other processes' CPU", false, bc(func(b *RoundResult) float64 { return b.OtherCPU }), pct)
	row("broadcast deliveries per server CPU-second", true, bc(func(b *RoundResult) float64 { return b.DeliveriesPerCPUSec }), count)
	row("**chunk ingest chunks/s**", true, ing(func(i *IngestResult) float64 { return i.ChunksPerSec }), rate)
	row("chunk ingest MB/s", true, ing(func(i *IngestResult) float64 { return i.MBPerSec }), func(v float64) string { return fmt.Sprintf("%.1f", v) })
	row("chunk ingest: server CPU (of one core)", false, ing(func(i *IngestResult) float64 { return i.ServerCPU }), pct)
	row("chunk ingest: other processes' CPU", false, ing(func(i *IngestResult) float64 { return i.OtherCPU }), pct)
	row("chunks per server CPU-second", true, ing(func(i *IngestResult) float64 { return i.ChunksPerCPUSec }), count)
	row("peak RSS", true, always(func(r *Result) float64 { return float64(r.RSSPeak) }), mbs)
	fmt.Fprintln(w)
	if both {
		g, n := r.Results["go"], r.Results["node"]
		if g.Broadcast != nil && n.Broadcast != nil && n.Broadcast.DeliveriesPerSec > 0 && n.RSSPerConn > 0 {
			tput := g.Broadcast.DeliveriesPerSec / n.Broadcast.DeliveriesPerSec
			memr := g.RSSPerConn / n.RSSPerConn
			fmt.Fprintf(w, "Targets: broadcast throughput >= 3x Node: %.2fx (%s); memory per connection <= 1/3 of Node: %.2fx (%s).\n",
				tput, met(tput >= 3), memr, met(memr <= 1.0/3))
		}
	}
	for _, name := range r.Order {
		res := r.Results[name]
		busy := 0.0
		if res.Broadcast != nil {
			busy = max(busy, res.Broadcast.OtherCPU)
		}
		if res.Ingest != nil {
			busy = max(busy, res.Ingest.OtherCPU)
		}
		if busy > 0.25 {
			fmt.Fprintf(w, "\nWARNING: other processes used %.0f%% of a core during the %s run: its rates are disturbed; "+
				"compare the per-CPU-second rows, or run again on a quiet machine.\n", busy*100, name)
		}
	}
	if v := r.Violations(); len(v) > 0 {
		fmt.Fprintf(w, "\nINVARIANTS FAILED:\n- %s\n", strings.Join(v, "\n- "))
	}
}

var titles = map[string]string{"go": "Go (socketio)", "node": "Node (socket.io v4)"}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func orAll(s string) string {
	if s == "" {
		return "any"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(not run)"
	}
	return s
}
