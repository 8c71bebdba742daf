// Command goserver is the Go side of the realtime load benchmark: the product's Socket.IO package
// (services/realtime/socketio over engineio, on net/http) doing the same work as the reference server
// loadtest/node/server.mjs, so that loadtest/wsbench can measure both side by side.
//
//	goserver [-addr 127.0.0.1:3000] [-ping-interval 25s] [-ping-timeout 20s] [-chunk-decode struct|value]
//
// (or PORT, HOST, PING_INTERVAL_MS, PING_TIMEOUT_MS, CHUNK_DECODE; the first four as the Node server). Settings are the package's
// defaults (which follow socket.io's) except those stated; WebSocket compression is never negotiated.
//
// Namespace /bench:
//
//	"join" {room}                -> joins room, acks {ok: true, room}      (bad room: {ok: false, error})
//	"chunk" {groupId, audioData} -> counts the chunk and its bytes, acks () (no binary: {ok: false, error})
//
// HTTP:
//
//	GET  /stats                                  -> counters and memory, JSON
//	POST /broadcast?room=R&count=M&size=S&from=F -> emits "tick" {seq, payload} M times to room R as fast as
//	                                                it can (seq F..F+M-1, payload S bytes), then answers
//	                                                {emitted, emitMillis}
//	POST /gc                                     -> collects garbage (runtime.GC, debug.FreeOSMemory)
//	GET  /debug/pprof/...                        -> net/http/pprof, for profiling under load
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/classwaves/classwaves/loadtest/internal/wire"
	"github.com/classwaves/classwaves/services/realtime/engineio"
	"github.com/classwaves/classwaves/services/realtime/socketio"
)

// Limits of the control endpoint and the events, the same as the Node server's.
const (
	maxRoom       = 128
	maxBroadcasts = 1_000_000
	maxPayload    = 1_000_000
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "goserver:", err)
		os.Exit(1)
	}
}

// envOr returns the environment variable name, or def when it is unset or empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// envMillis returns the environment variable name read as milliseconds, or def.
func envMillis(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 0 || ms > 3_600_000 {
		return 0, fmt.Errorf("%s must be milliseconds in [0, 3600000], got %q", name, v)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("goserver", flag.ContinueOnError)
	pingInterval, err := envMillis("PING_INTERVAL_MS", 25*time.Second)
	if err != nil {
		return err
	}
	pingTimeout, err := envMillis("PING_TIMEOUT_MS", 20*time.Second)
	if err != nil {
		return err
	}
	addr := fs.String("addr", net.JoinHostPort(envOr("HOST", "127.0.0.1"), envOr("PORT", "3000")), "listen address")
	fs.DurationVar(&pingInterval, "ping-interval", pingInterval, "Engine.IO ping interval")
	fs.DurationVar(&pingTimeout, "ping-timeout", pingTimeout, "Engine.IO ping timeout")
	decode := fs.String("chunk-decode", envOr("CHUNK_DECODE", decodeStruct),
		"how chunk events are decoded: struct (raw fields and Args.Attachment, as the realtime edge does) or value (Args.Value)")
	perConn := fs.Bool("goroutine-per-connection", envOr("GOROUTINE_PER_CONNECTION", "") == "1",
		"keep a reading goroutine per WebSocket connection (engineio.Config.GoroutinePerConnection) instead of parking idle ones")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if pingInterval <= 0 || pingTimeout <= 0 {
		return errors.New("-ping-interval and -ping-timeout must be positive")
	}
	if *decode != decodeStruct && *decode != decodeValue {
		return fmt.Errorf("-chunk-decode must be %s or %s, got %q", decodeStruct, decodeValue, *decode)
	}

	b, err := newBench(socketio.Config{Engine: engineio.Config{
		PingInterval: pingInterval, PingTimeout: pingTimeout, GoroutinePerConnection: *perConn,
	}})
	if err != nil {
		return err
	}
	b.decodeValue = *decode == decodeValue
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return errors.Join(err, b.sio.Close())
	}
	hs := &http.Server{Handler: b.handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Printf("listening http://%s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case err := <-errc:
		return errors.Join(err, b.sio.Close())
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Close the Socket.IO server first: its WebSockets would otherwise hold Shutdown.
	closeErr := b.sio.Close()
	return errors.Join(closeErr, hs.Shutdown(shutdownCtx))
}

// The ways chunk events can be decoded.
const (
	decodeStruct = "struct"
	decodeValue  = "value"
)

// bench is the benchmark application: the /bench namespace and its counters.
type bench struct {
	sio         *socketio.Server
	ns          *socketio.Namespace
	decodeValue bool // decode chunks with Args.Value instead of Args.Decode
	sockets     atomic.Int64

	joins, badJoins, chunks, chunkBytes, badChunks, broadcasts atomic.Int64
}

func newBench(cfg socketio.Config) (*bench, error) {
	cfg.Logger = slog.New(slog.DiscardHandler)
	sio, err := socketio.NewServer(cfg)
	if err != nil {
		return nil, err
	}
	b := &bench{sio: sio, ns: sio.Of("/bench")}
	b.ns.OnConnection(b.onConnection)
	return b, nil
}

type joinReply struct {
	OK    bool   `json:"ok"`
	Room  string `json:"room,omitempty"`
	Error string `json:"error,omitempty"`
}

func (b *bench) onConnection(s *socketio.Socket) {
	b.sockets.Add(1)
	s.OnDisconnect(func(string) { b.sockets.Add(-1) })
	s.On("join", func(e *socketio.Event) {
		var p struct {
			Room string `json:"room"`
		}
		if e.Args.Len() < 1 || e.Args.Decode(0, &p) != nil || p.Room == "" || utf8.RuneCountInString(p.Room) > maxRoom {
			b.badJoins.Add(1)
			_ = e.Ack(joinReply{Error: "ROOM_REQUIRED"})
			return
		}
		s.Join(p.Room)
		b.joins.Add(1)
		_ = e.Ack(joinReply{OK: true, Room: p.Room})
	})
	// The chunk is only measured, never kept: it borrows the connection's read buffer, as the
	// realtime edge's audio:chunk does.
	s.OnBorrowed("chunk", func(e *socketio.Event) {
		data, ok := b.chunkData(e)
		if !ok {
			b.badChunks.Add(1)
			_ = e.Ack(joinReply{Error: "AUDIO_DATA_REQUIRED"})
			return
		}
		b.chunks.Add(1)
		b.chunkBytes.Add(int64(len(data)))
		_ = e.Ack()
	})
}

// chunkData returns the binary audioData of a chunk event.
func (b *bench) chunkData(e *socketio.Event) ([]byte, bool) {
	if e.Args.Len() < 1 {
		return nil, false
	}
	if b.decodeValue {
		m, _ := e.Args.Value(0).(map[string]any)
		data, ok := m["audioData"].([]byte)
		return data, ok
	}
	// As the realtime edge decodes audio:chunk (services/realtime/edge/audio.go): the object's
	// fields as raw JSON, the Buffer taken as is.
	var p struct {
		GroupID string          `json:"groupId"`
		Audio   json.RawMessage `json:"audioData"`
	}
	if json.Unmarshal(e.Args.Raw(0), &p) != nil {
		return nil, false
	}
	return e.Args.Attachment(p.Audio)
}

func (b *bench) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", b.sio)
	mux.HandleFunc("GET /stats", b.serveStats)
	mux.HandleFunc("POST /broadcast", b.serveBroadcast)
	mux.HandleFunc("POST /gc", serveGC)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{
			"error": "NOT_FOUND", "message": "no route " + r.Method + " " + r.URL.Path,
		})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error":"INTERNAL"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func (b *bench) serveStats(w http.ResponseWriter, _ *http.Request) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ := selfRSS()
	writeJSON(w, http.StatusOK, wire.Stats{
		Server:     "go",
		Version:    runtime.Version() + ", GOMAXPROCS " + strconv.Itoa(runtime.GOMAXPROCS(0)),
		PID:        os.Getpid(),
		Sockets:    b.sockets.Load(),
		Joins:      b.joins.Load(),
		BadJoins:   b.badJoins.Load(),
		Chunks:     b.chunks.Load(),
		ChunkBytes: b.chunkBytes.Load(),
		BadChunks:  b.badChunks.Load(),
		Broadcasts: b.broadcasts.Load(),
		Memory: map[string]float64{
			"rss": float64(rss), "heapInuse": float64(ms.HeapInuse), "heapAlloc": float64(ms.HeapAlloc),
			"stackInuse": float64(ms.StackInuse), "sys": float64(ms.Sys), "goroutines": float64(runtime.NumGoroutine()),
			"numGC": float64(ms.NumGC),
		},
	})
}

// serveGC collects garbage and returns freed memory to the operating system, so that the benchmark can
// measure live memory as well as the resident set as it is.
func serveGC(w http.ResponseWriter, _ *http.Request) {
	runtime.GC()
	debug.FreeOSMemory()
	rss, _ := selfRSS()
	writeJSON(w, http.StatusOK, map[string]int64{"rss": rss})
}

// tick is the broadcast event's payload; seq comes first, as in the Node server's JSON.
type tick struct {
	Seq     int64  `json:"seq"`
	Payload string `json:"payload"`
}

func (b *bench) serveBroadcast(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	room := q.Get("room")
	bad := func(msg string) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "BAD_PARAMETER", "message": msg})
	}
	if room == "" || utf8.RuneCountInString(room) > maxRoom {
		bad("room must be 1 to 128 characters")
		return
	}
	count, err := intParam(q.Get("count"), "", maxBroadcasts)
	if err != nil {
		bad("count: " + err.Error())
		return
	}
	size, err := intParam(q.Get("size"), "0", maxPayload)
	if err != nil {
		bad("size: " + err.Error())
		return
	}
	from, err := intParam(q.Get("from"), "0", 1<<53-1-maxBroadcasts)
	if err != nil {
		bad("from: " + err.Error())
		return
	}
	payload := strings.Repeat("x", int(size))
	op := b.ns.To(room)
	start := time.Now()
	var emitErr error
	for i := range count {
		if err := op.Emit("tick", tick{Seq: from + i, Payload: payload}); err != nil {
			emitErr = err
			break
		}
	}
	elapsed := time.Since(start)
	if emitErr != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "EMIT_FAILED", "message": emitErr.Error()})
		return
	}
	b.broadcasts.Add(count)
	writeJSON(w, http.StatusOK, map[string]any{"emitted": count, "emitMillis": float64(elapsed.Nanoseconds()) / 1e6})
}

// intParam parses a non-negative integer query parameter of at most max; an empty value takes def
// (an empty def makes the parameter required).
func intParam(v, def string, max int64) (int64, error) {
	if v == "" {
		v = def
	}
	if v == "" {
		return 0, errors.New("required")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > max {
		return 0, fmt.Errorf("must be an integer in [0, %d], got %q", max, v)
	}
	return n, nil
}

// selfRSS returns this process's resident set size in bytes (VmRSS of /proc/self/status).
func selfRSS() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}
