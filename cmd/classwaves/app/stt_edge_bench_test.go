package app

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/classwaves/classwaves/services/stt/audio/audiotest"
	"github.com/classwaves/classwaves/services/stt/openaitest"
)

// Knobs of BenchmarkSTTThroughEdge. The defaults are a quick run (50 groups, two 10 s windows each,
// starts spread over one window: about 35 s); the README's figures come from
//
//	go test ./cmd/classwaves/app -run '^$' -bench STTThroughEdge -benchtime 1x -timeout 30m \
//	    -edge.bench.groups 1000 -edge.bench.window-seconds 15 -edge.bench.windows 3
//
// and, for every window closing at once, the same with -edge.bench.burst.
var (
	edgeBenchGroups     = flag.Int("edge.bench.groups", 50, "groups streaming at once, one student socket each")
	edgeBenchPerSession = flag.Int("edge.bench.groups-per-session", 10, "groups per session (1 to 50), one teacher socket per session")
	edgeBenchWindows    = flag.Int("edge.bench.windows", 2, "windows each group streams")
	edgeBenchWindowSecs = flag.Int("edge.bench.window-seconds", 10, "STT_WINDOW_SECONDS (10 to 20)")
	edgeBenchChunk      = flag.Duration("edge.bench.chunk", 100*time.Millisecond, "audio per audio:chunk (must divide the window)")
	edgeBenchSpread     = flag.Duration("edge.bench.spread", -1, "group starts spread evenly over this much time (negative: one window)")
	edgeBenchBurst      = flag.Bool("edge.bench.burst", false, "every group starts within 100 ms, so all windows close at once (overrides -edge.bench.spread)")
	edgeBenchConc       = flag.Int("edge.bench.whisper-concurrency", 1000, "OPENAI_WHISPER_CONCURRENCY")
	edgeBenchSetupConc  = flag.Int("edge.bench.setup-concurrency", 16, "REST calls and socket handshakes in flight during setup")
	edgeBenchTrace      = flag.Bool("edge.bench.trace", false, "log every second the audio bytes sent by the clients, accepted by the edge and by stt, and the process's CPU use (diagnosis)")
	edgeBenchStallDump  = flag.String("edge.bench.stall-dump", "", "write every goroutine's stack to this file the first time a client falls 2 s behind its schedule (diagnosis)")
	edgeBenchWindowsOut = flag.String("edge.bench.windows-out", "", "write one CSV line per window to this file: group, window, and the times in ms since the process started of its close, the request, the answer and the emit (diagnosis, to set beside GODEBUG=gctrace=1)")
)

// edgeBenchProcessStart is about when the runtime started (GODEBUG=gctrace=1 times its lines from then).
var edgeBenchProcessStart = time.Now()

// The transcription server's answer time: uniform in [edgeBenchAnswerMin, edgeBenchAnswerMax).
const (
	edgeBenchAnswerMin = time.Second
	edgeBenchAnswerMax = 2 * time.Second
	edgeBenchRate      = 16000
	// edgeBenchMarker starts the four samples that open every window's audio: marker, group,
	// window, checksum. The transcription server reads them back, so each transcript names the
	// window it is for without relying on order.
	edgeBenchMarker = 0x7A5A
)

// BenchmarkSTTThroughEdge runs the real all-in-one process (SQLite, in-process bus) and streams 16 kHz
// PCM16 from many groups at real-time rate through the realtime edge: one Socket.IO client per group
// over WebSocket (a student who joined the session over REST, its token authorizing the group)
// sends audio:start, audio:chunk events with the audio as a binary attachment, and audio:stop. The
// edge streams each group to stt over gRPC; stt transcribes each window through a local server
// speaking the OpenAI transcription API that answers after 1 to 2 s; the transcript goes over the
// bus back to the edge, which emits transcription:group:new to the session's room, where one teacher
// socket per session receives it.
//
// Reported: groups held (every window's transcript received, no audio refused), windows closed,
// transcripts received and dropped, as stt's metrics count them and as the clients see them; the
// time from window close to transcript emitted, excluding the transcription call, per window:
// (teacher receipt - client send of the window's last chunk) - (server answer - server receipt)
// (p50, p99, max), with its two parts (close to the request reaching the server: edge ingress, window
// close, upload start; answer to teacher: response read, publish, bus, edge fan-out, WebSocket);
// stt's own close-to-publish histogram (p99 bucket); the clients' lag behind the real-time schedule;
// the live heap after setup, at the end of each window and after the run (after a GC), the peak of
// the runtime's memory and of the RSS; goroutines before and after; the bytes allocated per second
// and the collections the runtime started while streaming. Clients, edge, services and the
// transcription server share the process and its cores.
func BenchmarkSTTThroughEdge(b *testing.B) {
	for b.Loop() {
		runSTTThroughEdge(b)
	}
}

type edgeBenchConfig struct {
	groups, perSession, windows int
	window, chunk, spread       time.Duration
	chunksPerWindow             int
}

func edgeBenchSettings(b *testing.B) edgeBenchConfig {
	c := edgeBenchConfig{
		groups: *edgeBenchGroups, perSession: *edgeBenchPerSession, windows: *edgeBenchWindows,
		window: time.Duration(*edgeBenchWindowSecs) * time.Second, chunk: *edgeBenchChunk, spread: *edgeBenchSpread,
	}
	switch {
	case c.groups < 1 || c.groups > math.MaxUint16:
		b.Fatalf("-edge.bench.groups must be between 1 and %d", math.MaxUint16)
	case c.perSession < 1 || c.perSession > 50:
		b.Fatal("-edge.bench.groups-per-session must be between 1 and 50")
	case c.windows < 1 || c.windows > math.MaxUint16:
		b.Fatalf("-edge.bench.windows must be between 1 and %d", math.MaxUint16)
	case c.chunk < 10*time.Millisecond || c.window%c.chunk != 0 || (c.chunk*edgeBenchRate)%time.Second != 0:
		b.Fatalf("-edge.bench.chunk (%v) must be at least 10ms, a whole number of samples, and divide the window (%v)", c.chunk, c.window)
	}
	if c.spread < 0 {
		c.spread = c.window
	}
	if *edgeBenchBurst {
		c.spread = 100 * time.Millisecond
	}
	c.chunksPerWindow = int(c.window / c.chunk)
	return c
}

// edgeBenchWindow is what the benchmark learns about one window of one group.
type edgeBenchWindow struct {
	closedAt   time.Time // the client sent the window's last chunk
	seq        int       // the transcription server's request number (0: no request)
	received   time.Time // the server got the request
	answered   time.Time // the server wrote its answer
	emittedAt  time.Time // the teacher socket got the transcript
	duplicates int
}

func runSTTThroughEdge(b *testing.B) {
	cfg := edgeBenchSettings(b)
	windows := make([]edgeBenchWindow, cfg.groups*cfg.windows)
	var winMu sync.Mutex
	at := func(g, k int) *edgeBenchWindow { return &windows[g*cfg.windows+k] }

	// The transcription server: it reads the window's marker and answers after 1 to 2 s with a
	// transcript naming the window.
	srv := openaitest.New(b)
	srv.DiscardAudio = true
	rng := rand.New(rand.NewPCG(7, 11)) // used under the server's lock
	var unmarked atomic.Int64
	srv.Respond(func(r openaitest.Request) openaitest.Reply {
		delay := edgeBenchAnswerMin + time.Duration(rng.Int64N(int64(edgeBenchAnswerMax-edgeBenchAnswerMin)))
		g, k, ok := readMarker(r.Audio)
		if !ok || g >= cfg.groups || k >= cfg.windows {
			unmarked.Add(1)
			return openaitest.Reply{Delay: delay, Response: openaitest.Said("an unmarked window", r.Info.Duration.Seconds())}
		}
		winMu.Lock()
		if w := at(g, k); w.seq == 0 {
			w.seq, w.received = r.Seq, r.Received
		}
		winMu.Unlock()
		return openaitest.Reply{Delay: delay, Response: openaitest.Said(
			fmt.Sprintf("group %d window %d the group is talking about plants and water", g, k), r.Info.Duration.Seconds())}
	})

	a, logs, _ := start(b, map[string]string{
		"LOG_LEVEL":                    "warn",
		"STT_PROVIDER":                 "openai",
		"OPENAI_BASE_URL":              srv.URL,
		"OPENAI_API_KEY":               "sk-bench",
		"OPENAI_WHISPER_CONCURRENCY":   strconv.Itoa(*edgeBenchConc),
		"OPENAI_WHISPER_MAX_RETRIES":   "0",
		"STT_WINDOW_SECONDS":           strconv.Itoa(*edgeBenchWindowSecs),
		"WS_SCHOOL_AUDIO_LIMIT":        strconv.Itoa(1 << 30),
		"WS_SESSION_AUDIO_LIMIT":       strconv.Itoa(1 << 30),
		"RATE_LIMIT_MAX_REQUESTS":      "1000000",
		"RATE_LIMIT_AUTH_MAX_REQUESTS": "1000000",
	})
	base := "http://" + a.Addrs().HTTP
	wsURL := "ws://" + a.Addrs().HTTP + "/socket.io/?EIO=4&transport=websocket"
	token := devSignIn(b, base)

	// Sessions and groups over REST, one student per group joined by access code.
	setup := time.Now()
	type benchSession struct {
		id, code string
		groups   []string
	}
	nSessions := (cfg.groups + cfg.perSession - 1) / cfg.perSession
	sessions := make([]benchSession, nSessions)
	parallel(b, nSessions, *edgeBenchSetupConc, func(s int) error {
		n := min(cfg.perSession, cfg.groups-s*cfg.perSession)
		var groups []string
		for i := range n {
			groups = append(groups, fmt.Sprintf(`{"name":"Group %d","maxSize":4}`, i+1))
		}
		code, body := do(b, "POST", base+"/api/v1/sessions",
			fmt.Sprintf(`{"title":"Edge bench %d","groups":[%s]}`, s, strings.Join(groups, ",")), token)
		data, _ := body["data"].(map[string]any)
		sess, _ := data["session"].(map[string]any)
		id, _ := sess["id"].(string)
		accessCode, _ := sess["accessCode"].(string)
		gs, _ := sess["groups"].([]any)
		if code != 200 || id == "" || len(gs) != n {
			return fmt.Errorf("create session %d = %d %v", s, code, body)
		}
		sessions[s] = benchSession{id: id, code: accessCode}
		for _, g := range gs {
			gid, _ := g.(map[string]any)["id"].(string)
			sessions[s].groups = append(sessions[s].groups, gid)
			if code, body := do(b, "POST", base+"/api/v1/sessions/"+id+"/groups/"+gid+"/status",
				`{"status":"ready","isReady":true}`, token); code != 200 {
				return fmt.Errorf("mark group ready = %d %v", code, body)
			}
		}
		if code, body := do(b, "POST", base+"/api/v1/sessions/"+id+"/start", `{}`, token); code != 200 {
			return fmt.Errorf("start session = %d %v", code, body)
		}
		return nil
	})
	students := make([]*edgeBenchStudent, cfg.groups)
	parallel(b, cfg.groups, *edgeBenchSetupConc, func(g int) error {
		s := sessions[g/cfg.perSession]
		st := &edgeBenchStudent{sessionID: s.id, groupID: s.groups[g%cfg.perSession]}
		code, body := do(b, "POST", base+"/api/v1/sessions/join",
			fmt.Sprintf(`{"accessCode":%q,"displayName":"Student %d","groupId":%q}`, s.code, g, st.groupID), "")
		data, _ := body["data"].(map[string]any)
		st.token, _ = data["token"].(string)
		if code != 200 || st.token == "" {
			return fmt.Errorf("join group %d = %d %v", g, code, body)
		}
		students[g] = st
		return nil
	})

	// Sockets: a teacher per session in its session room, a student per group in its group with
	// its audio stream started.
	var emitted, foreign atomic.Int64
	teachers := make([]*eioClient, nSessions)
	parallel(b, nSessions, *edgeBenchSetupConc, func(s int) error {
		c, err := dialEIO(wsURL, token, func(name string, payload json.RawMessage) {
			if name != "transcription:group:new" {
				return
			}
			now := time.Now()
			var p struct{ Text string }
			_ = json.Unmarshal(payload, &p)
			var g, k int
			if n, _ := fmt.Sscanf(p.Text, "group %d window %d", &g, &k); n != 2 || g >= cfg.groups || k >= cfg.windows {
				foreign.Add(1)
				return
			}
			emitted.Add(1)
			winMu.Lock()
			if w := at(g, k); w.emittedAt.IsZero() {
				w.emittedAt = now
			} else {
				w.duplicates++
			}
			winMu.Unlock()
		})
		if err != nil {
			return err
		}
		teachers[s] = c
		if ack, err := c.call("session:join", map[string]any{"sessionId": sessions[s].id}); err != nil || ack["ok"] != true {
			return fmt.Errorf("session:join = %v, %v", ack, err)
		}
		return nil
	})
	defer func() {
		for _, c := range teachers {
			if c != nil {
				c.close()
			}
		}
	}()
	parallel(b, cfg.groups, *edgeBenchSetupConc, func(g int) error {
		st := students[g]
		c, err := dialEIO(wsURL, st.token, st.onEvent)
		if err != nil {
			return err
		}
		st.c = c
		if ack, err := c.call("group:join", map[string]any{"groupId": st.groupID, "sessionId": st.sessionID}); err != nil || ack["ok"] != true {
			return fmt.Errorf("group:join = %v, %v", ack, err)
		}
		if ack, err := c.call("audio:start", map[string]any{"groupId": st.groupID, "format": "pcm16", "sampleRate": edgeBenchRate}); err != nil || ack["ok"] != true {
			return fmt.Errorf("audio:start = %v, %v", ack, err)
		}
		return nil
	})
	defer func() {
		for _, st := range students {
			if st != nil && st.c != nil {
				st.c.close()
			}
		}
	}()
	setupTime := time.Since(setup)

	// Memory: the live heap (as of the last GC), the runtime's total and the RSS, sampled.
	runtime.GC()
	before := sampleMemory()
	sampler := newMemorySampler(250 * time.Millisecond)
	cpuBefore := processCPU()
	schedBefore := schedLatencies()
	gcBefore := readGCCounters()

	pcm := audiotest.Speech(edgeBenchRate, cfg.window)
	chunkBytes := int(cfg.chunk.Seconds()*edgeBenchRate) * 2
	streamStart := time.Now().Add(200 * time.Millisecond)
	var wg sync.WaitGroup
	var sendErrs atomic.Int64
	var stallDump sync.Once
	var sentBytes atomic.Int64
	if *edgeBenchTrace {
		stopTrace := make(chan struct{})
		defer close(stopTrace)
		go traceRates(a, &sentBytes, stopTrace)
	}
	lags := make([][]time.Duration, cfg.groups)
	for g, st := range students {
		wg.Go(func() {
			t0 := streamStart.Add(time.Duration(g) * cfg.spread / time.Duration(cfg.groups))
			lag := make([]time.Duration, 0, cfg.windows*cfg.chunksPerWindow)
			marked := make([]byte, chunkBytes)
			for k := range cfg.windows {
				for j := range cfg.chunksPerWindow {
					n := k*cfg.chunksPerWindow + j
					due := t0.Add(time.Duration(n) * cfg.chunk)
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
					data := pcm[j*chunkBytes : (j+1)*chunkBytes]
					if j == 0 {
						copy(marked, data)
						putMarker(marked, g, k)
						data = marked
					}
					now := time.Now()
					lag = append(lag, now.Sub(due))
					if now.Sub(due) > 2*time.Second {
						stallDump.Do(dumpGoroutines)
					}
					if j == cfg.chunksPerWindow-1 {
						winMu.Lock()
						at(g, k).closedAt = now
						winMu.Unlock()
					}
					if err := st.c.emitBinary("audio:chunk", st.groupID, data); err != nil {
						sendErrs.Add(1)
						return
					}
					sentBytes.Add(int64(len(data)))
				}
			}
			if ack, err := st.c.call("audio:stop", map[string]any{"groupId": st.groupID}); err != nil || ack["ok"] != true {
				sendErrs.Add(1)
			}
			lags[g] = lag
		})
	}
	// The live heap after the end of each window (the last group's, and its transcription), to
	// show it does not grow.
	windowHeap := make([]float64, cfg.windows)
	lastStart := streamStart.Add(time.Duration(cfg.groups-1) * cfg.spread / time.Duration(cfg.groups))
	var heapSampled sync.WaitGroup
	heapSampled.Go(func() {
		for k := range cfg.windows {
			time.Sleep(time.Until(lastStart.Add(time.Duration(k+1)*cfg.window + edgeBenchAnswerMax)))
			windowHeap[k] = float64(sampleMemory().live) / (1 << 20)
		}
	})
	wg.Wait()
	streamed := time.Since(streamStart)

	// Wait for every transcript (or give up after a while).
	want := cfg.groups * cfg.windows
	deadline := time.Now().Add(edgeBenchAnswerMax + 30*time.Second)
	for emitted.Load() < int64(want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(edgeBenchAnswerMax) // any window closed late, and duplicates
	heapSampled.Wait()
	peak := sampler.stop()
	cpuUsed := processCPU() - cpuBefore
	gcAfter := readGCCounters()
	schedP99 := schedLatencyQuantile(schedBefore, schedLatencies(), 0.99)
	busyFor := time.Since(streamStart)
	load := loadAverage()
	stt := gatherSTT(b, a)

	for _, c := range teachers {
		c.close()
	}
	for _, st := range students {
		st.c.close()
	}
	time.Sleep(500 * time.Millisecond) // the edge sees the disconnects and drops the streams
	runtime.GC()
	after := sampleMemory()

	// Per window: close to emit, minus the server's time.
	reqs := srv.Requests()
	var lat, ingress, egress []time.Duration
	perWindow := make([][]time.Duration, cfg.windows)
	var missing, dups int
	groupOK := make([]bool, cfg.groups)
	for g := range groupOK {
		groupOK[g] = students[g].refused.Load() == 0 && students[g].errors.Load() == 0
	}
	winMu.Lock()
	for i := range windows {
		w := &windows[i]
		dups += w.duplicates
		if w.seq > 0 && w.seq <= len(reqs) {
			w.answered = reqs[w.seq-1].Answered
		}
		if w.emittedAt.IsZero() || w.closedAt.IsZero() || w.seq == 0 || w.answered.IsZero() {
			missing++
			groupOK[i/cfg.windows] = false
			continue
		}
		call := w.answered.Sub(w.received)
		lat = append(lat, w.emittedAt.Sub(w.closedAt)-call)
		perWindow[i%cfg.windows] = append(perWindow[i%cfg.windows], w.emittedAt.Sub(w.closedAt)-call)
		ingress = append(ingress, w.received.Sub(w.closedAt))
		egress = append(egress, w.emittedAt.Sub(w.answered))
	}
	winMu.Unlock()
	if *edgeBenchWindowsOut != "" {
		writeWindowsCSV(b, *edgeBenchWindowsOut, windows, cfg.windows)
	}
	held := 0
	for _, ok := range groupOK {
		if ok {
			held++
		}
	}
	var allLag []time.Duration
	var refused, audioErrs int64
	codes := map[string]int{}
	for g, st := range students {
		allLag = append(allLag, lags[g]...)
		refused += st.refused.Load()
		audioErrs += st.errors.Load()
		st.mu.Lock()
		for c, n := range st.codes {
			codes[c] += n
		}
		st.mu.Unlock()
	}

	if missing > 0 || sendErrs.Load() > 0 || len(codes) > 0 {
		b.Logf("%d windows without a transcript, %d send errors, audio:error codes %v; logs:\n%s",
			missing, sendErrs.Load(), codes, tail(logs.String()))
	}
	b.ReportMetric(float64(cfg.groups), "groups")
	b.ReportMetric(float64(held), "groups_held")
	b.ReportMetric(float64(nSessions), "sessions")
	b.ReportMetric(float64(want), "windows_expected")
	b.ReportMetric(stt.closed, "stt_windows_closed")
	b.ReportMetric(stt.transcribed, "stt_windows_transcribed")
	b.ReportMetric(stt.dropped, "stt_windows_dropped")
	b.ReportMetric(float64(len(reqs)), "server_requests")
	b.ReportMetric(float64(unmarked.Load()), "server_unmarked")
	b.ReportMetric(float64(emitted.Load()), "transcripts_emitted")
	b.ReportMetric(float64(missing), "windows_missing")
	b.ReportMetric(float64(dups+int(foreign.Load())), "transcripts_unexpected")
	b.ReportMetric(stt.edgeDrops, "edge_chunks_dropped")
	b.ReportMetric(float64(refused), "chunks_refused")
	b.ReportMetric(float64(audioErrs+sendErrs.Load()), "stream_errors")
	b.ReportMetric(percentileMS(lat, 50), "close_to_emit_p50_ms")
	b.ReportMetric(percentileMS(lat, 99), "close_to_emit_p99_ms")
	b.ReportMetric(percentileMS(lat, 100), "close_to_emit_max_ms")
	// Per window of the groups: the first windows also pay for the first connections to the
	// transcription server and the first use of every buffer.
	for k, l := range perWindow {
		b.ReportMetric(percentileMS(l, 99), fmt.Sprintf("close_to_emit_window%d_p99_ms", k+1))
	}
	b.ReportMetric(percentileMS(ingress, 99), "close_to_request_p99_ms")
	b.ReportMetric(percentileMS(egress, 99), "answer_to_emit_p99_ms")
	b.ReportMetric(stt.closeToPublishP99, "stt_close_to_publish_p99_le_ms")
	b.ReportMetric(percentileMS(allLag, 99), "client_lag_p99_ms")
	b.ReportMetric(percentileMS(allLag, 100), "client_lag_max_ms")
	b.ReportMetric(float64(before.live)/(1<<20), "heap_live_start_MB")
	for k, h := range windowHeap {
		b.ReportMetric(h, fmt.Sprintf("heap_live_window%d_MB", k+1))
	}
	b.ReportMetric(float64(after.live)/(1<<20), "heap_live_end_MB")
	b.ReportMetric(float64(peak.total)/(1<<20), "peak_runtime_MB")
	b.ReportMetric(float64(before.rss)/(1<<20), "rss_start_MB")
	b.ReportMetric(float64(peak.rss)/(1<<20), "peak_rss_MB")
	b.ReportMetric(float64(after.rss)/(1<<20), "rss_end_MB")
	b.ReportMetric(float64(before.goroutines), "goroutines_start")
	b.ReportMetric(float64(after.goroutines), "goroutines_end")
	b.ReportMetric(stt.openWindowBytes, "stt_open_window_bytes_end")
	// The process's CPU use while streaming, in cores, and the machine's load (other processes
	// on the machine share its cores).
	b.ReportMetric(cpuUsed.Seconds()/busyFor.Seconds(), "process_cores_used")
	// The garbage: what the process allocated per second and the collections it set off (each
	// mark phase stalls the audio path for about 100 ms on 2 cores: the latency tail).
	b.ReportMetric(float64(gcAfter.allocated-gcBefore.allocated)/busyFor.Seconds()/1e6, "alloc_MB_per_s")
	b.ReportMetric(float64(gcAfter.cycles-gcBefore.cycles), "gc_cycles")
	b.ReportMetric(load, "machine_load_1m")
	// How long runnable goroutines waited for a core (Go's /sched/latencies histogram over the
	// run): the floor under every latency above when the cores are short.
	b.ReportMetric(schedP99*1000, "sched_latency_p99_ms")
	b.ReportMetric(setupTime.Seconds(), "setup_s")
	b.ReportMetric(streamed.Seconds(), "stream_s")
}

// writeWindowsCSV writes what the benchmark learnt about each window, its times in ms since the
// process started (0: never happened).
func writeWindowsCSV(b *testing.B, path string, windows []edgeBenchWindow, perGroup int) {
	var buf bytes.Buffer
	buf.WriteString("group,window,closed_ms,request_ms,answer_ms,emit_ms\n")
	ms := func(t time.Time) string {
		if t.IsZero() {
			return "0"
		}
		return strconv.FormatFloat(float64(t.Sub(edgeBenchProcessStart))/1e6, 'f', 3, 64)
	}
	for i, w := range windows {
		fmt.Fprintf(&buf, "%d,%d,%s,%s,%s,%s\n", i/perGroup, i%perGroup, ms(w.closedAt), ms(w.received), ms(w.answered), ms(w.emittedAt))
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Error(err)
	}
}

// parallel runs fn(0..n-1) with at most conc in flight and fails b on the first error.
func parallel(b *testing.B, n, conc int, fn func(i int) error) {
	b.Helper()
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		errMu sync.Mutex
		first error
	)
	for range max(1, min(conc, n)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				errMu.Lock()
				failed := first != nil
				errMu.Unlock()
				if failed {
					return
				}
				if err := fn(i); err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		b.Fatal(first)
	}
}

// edgeBenchStudent is one group's student socket.
type edgeBenchStudent struct {
	sessionID, groupID, token   string
	c                           *eioClient
	refused, errors, transcript atomic.Int64

	mu    sync.Mutex
	codes map[string]int // audio:error events by code
}

func (st *edgeBenchStudent) onEvent(name string, payload json.RawMessage) {
	switch name {
	case "audio:error":
		var p struct{ Code string }
		_ = json.Unmarshal(payload, &p)
		// Refusals of chunks (rate limits, format) versus the stream failing.
		if strings.HasPrefix(p.Code, "AUDIO_") {
			st.refused.Add(1)
		} else {
			st.errors.Add(1)
		}
		st.mu.Lock()
		if st.codes == nil {
			st.codes = map[string]int{}
		}
		st.codes[p.Code]++
		st.mu.Unlock()
	case "transcription:group:new":
		st.transcript.Add(1) // the group room gets it too
	}
}

// putMarker writes the window's marker over its first four samples.
func putMarker(pcm []byte, g, k int) {
	vals := [4]uint16{edgeBenchMarker, uint16(g), uint16(k), edgeBenchMarker ^ uint16(g) ^ uint16(k)}
	for i, v := range vals {
		binary.LittleEndian.PutUint16(pcm[2*i:], v)
	}
}

// readMarker finds the data chunk of a WAV file and reads the marker of its first samples.
func readMarker(wav []byte) (g, k int, ok bool) {
	if len(wav) < 12 || string(wav[0:4]) != "RIFF" || string(wav[8:12]) != "WAVE" {
		return 0, 0, false
	}
	for off := 12; off+8 <= len(wav); {
		id, size := string(wav[off:off+4]), int(binary.LittleEndian.Uint32(wav[off+4:]))
		off += 8
		if id == "data" {
			if off+8 > len(wav) {
				return 0, 0, false
			}
			var v [4]uint16
			for i := range v {
				v[i] = binary.LittleEndian.Uint16(wav[off+2*i:])
			}
			if v[0] != edgeBenchMarker || v[3] != edgeBenchMarker^v[1]^v[2] {
				return 0, 0, false
			}
			return int(v[1]), int(v[2]), true
		}
		off += size + size%2
	}
	return 0, 0, false
}

// sttFigures are what the process's metrics say about the run.
type sttFigures struct {
	closed, transcribed, dropped float64
	edgeDrops                    float64
	closeToPublishP99            float64 // upper bound of the bucket holding the p99
	openWindowBytes              float64
}

func gatherSTT(b *testing.B, a *App) sttFigures {
	b.Helper()
	mfs, err := a.registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var f sttFigures
	for _, mf := range mfs {
		switch mf.GetName() {
		case "stt_windows_total":
			for _, m := range mf.GetMetric() {
				v := m.GetCounter().GetValue()
				f.closed += v
				outcome := ""
				for _, l := range m.GetLabel() {
					if l.GetName() == "outcome" {
						outcome = l.GetValue()
					}
				}
				switch outcome {
				case "transcribed", "empty", "store_failed":
					f.transcribed += v
				default:
					f.dropped += v
				}
			}
		case "ws_backpressure_drops_total":
			for _, m := range mf.GetMetric() {
				f.edgeDrops += m.GetCounter().GetValue()
			}
		case "stt_window_bytes":
			for _, m := range mf.GetMetric() {
				f.openWindowBytes += m.GetGauge().GetValue()
			}
		case "stt_window_close_to_publish_ms":
			for _, m := range mf.GetMetric() {
				h := m.GetHistogram()
				target := 0.99 * float64(h.GetSampleCount())
				f.closeToPublishP99 = math.Inf(1)
				for _, bk := range h.GetBucket() {
					if float64(bk.GetCumulativeCount()) >= target {
						f.closeToPublishP99 = bk.GetUpperBound()
						break
					}
				}
			}
		}
	}
	return f
}

// memSample is one look at the process's memory.
type memSample struct {
	live, total, rss uint64
	goroutines       uint64
}

func sampleMemory() memSample {
	ms := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/total:bytes"}, {Name: "/sched/goroutines:goroutines"}}
	metrics.Read(ms)
	s := memSample{live: ms[0].Value.Uint64(), total: ms[1].Value.Uint64(), goroutines: ms[2].Value.Uint64()}
	if raw, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(raw)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			s.rss = pages * uint64(os.Getpagesize())
		}
	}
	return s
}

// traceRates writes to stderr, every second, the audio bytes per second sent by the clients, accepted by the
// edge and by stt, and the cores the process used.
func traceRates(a *App, sent *atomic.Int64, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	counter := func(name string) float64 {
		mfs, _ := a.registry.Gather()
		var v float64
		for _, mf := range mfs {
			if mf.GetName() == name {
				for _, m := range mf.GetMetric() {
					v += m.GetCounter().GetValue()
				}
			}
		}
		return v
	}
	var lastSent int64
	var lastEdge, lastSTT float64
	var lastAlloc uint64
	lastCPU, lastFaults, last := processCPU(), pageFaults(), time.Now()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s, e, st, cpu, faults, now := sent.Load(), counter("ws_audio_bytes_total"), counter("stt_audio_bytes_total"), processCPU(), pageFaults(), time.Now()
		el := now.Sub(last).Seconds()
		scan := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
		metrics.Read(scan)
		fmt.Fprintf(os.Stderr, "edge bench %s: sent %.1f MB/s, edge %.1f MB/s, stt %.1f MB/s, cores %.2f, page faults %.0f/s, live heap %d MB, scannable heap %d MB, stacks %d MB, allocated %.0f MB/s, goroutines %d\n",
			now.Format("15:04:05"), float64(s-lastSent)/el/1e6, (e-lastEdge)/el/1e6, (st-lastSTT)/el/1e6,
			(cpu-lastCPU).Seconds()/el, float64(faults-lastFaults)/el, sampleMemory().live>>20,
			scan[0].Value.Uint64()>>20, scan[1].Value.Uint64()>>20, float64(scan[2].Value.Uint64()-lastAlloc)/el/1e6, runtime.NumGoroutine())
		lastAlloc = scan[2].Value.Uint64()
		lastSent, lastEdge, lastSTT, lastCPU, lastFaults, last = s, e, st, cpu, faults, now
	}
}

// dumpGoroutines writes every goroutine's stack to -edge.bench.stall-dump, if set.
func dumpGoroutines() {
	if *edgeBenchStallDump == "" {
		return
	}
	f, err := os.Create(*edgeBenchStallDump)
	if err != nil {
		return
	}
	defer f.Close()
	_ = pprof.Lookup("goroutine").WriteTo(f, 1)
}

// gcCounters are the runtime's running totals of allocated bytes and of collections it started
// by itself (not runtime.GC).
type gcCounters struct{ allocated, cycles uint64 }

func readGCCounters() gcCounters {
	ms := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/cycles/automatic:gc-cycles"}}
	metrics.Read(ms)
	return gcCounters{allocated: ms[0].Value.Uint64(), cycles: ms[1].Value.Uint64()}
}

// schedLatencies reads the runtime's histogram of the time goroutines spent runnable before
// running.
func schedLatencies() *metrics.Float64Histogram {
	ms := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(ms)
	if ms[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return ms[0].Value.Float64Histogram()
}

// schedLatencyQuantile is the q-quantile, in seconds (a bucket's upper bound), of the latencies
// recorded between two reads of the histogram.
func schedLatencyQuantile(before, after *metrics.Float64Histogram, q float64) float64 {
	if before == nil || after == nil || len(before.Counts) != len(after.Counts) {
		return 0
	}
	var total uint64
	for i := range after.Counts {
		total += after.Counts[i] - before.Counts[i]
	}
	var seen uint64
	for i := range after.Counts {
		seen += after.Counts[i] - before.Counts[i]
		if float64(seen) >= q*float64(total) {
			if ub := after.Buckets[i+1]; !math.IsInf(ub, 1) {
				return ub
			}
			return after.Buckets[i]
		}
	}
	return 0
}

// processCPU is the CPU time (user and system) the process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pageFaults is the process's minor page faults so far.
func pageFaults() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Minflt
}

// loadAverage is the machine's 1-minute load average (0 when unknown).
func loadAverage() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// memorySampler keeps the peaks of the runtime's memory and the RSS until stopped.
type memorySampler struct {
	quit chan struct{}
	done chan memSample
}

func newMemorySampler(every time.Duration) *memorySampler {
	m := &memorySampler{quit: make(chan struct{}), done: make(chan memSample, 1)}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		var peak memSample
		for {
			s := sampleMemory()
			peak.total, peak.rss = max(peak.total, s.total), max(peak.rss, s.rss)
			select {
			case <-m.quit:
				m.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memorySampler) stop() memSample {
	close(m.quit)
	return <-m.done
}

// eioClient is a lean Socket.IO v5 client over Engine.IO v4 WebSocket, connected to the /sessions
// namespace: it answers pings, emits events (with one binary attachment when asked), waits for
// acknowledgements, and hands every event it receives to a callback (on its reader goroutine).
type eioClient struct {
	conn    *websocket.Conn
	onEvent func(name string, payload json.RawMessage)

	wmu    sync.Mutex // one writer at a time; a binary event's two frames go out together
	frames []byte     // emitBinary's frames, reused (guarded by wmu)
	text   []byte     // emitBinary's packet, reused (guarded by wmu)

	mu     sync.Mutex
	nextID int
	acks   map[int]chan map[string]any

	done      chan struct{}
	closeOnce sync.Once
}

const eioNamespace = "/sessions"

// eioTimeout bounds every wait of the client (a guard against hangs, not a measurement).
const eioTimeout = 30 * time.Second

var eioDialer = &websocket.Dialer{HandshakeTimeout: eioTimeout, ReadBufferSize: 16 << 10, WriteBufferSize: 16 << 10}

// dialEIO opens a WebSocket, reads the open packet, connects the namespace with auth {token}
// and starts the reader.
func dialEIO(rawURL, token string, onEvent func(string, json.RawMessage)) (*eioClient, error) {
	conn, resp, err := eioDialer.Dial(rawURL, nil)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			// Engine.IO answers {"code":3} when gorilla/websocket's upgrader fails, e.g. because a
			// middleware's ResponseWriter does not implement http.Hijacker.
			return nil, fmt.Errorf("dial: %w (HTTP %d %s): the WebSocket upgrade failed; every ResponseWriter wrapper on the way must implement http.Hijacker",
				err, resp.StatusCode, body)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	c := &eioClient{conn: conn, onEvent: onEvent, acks: map[int]chan map[string]any{}, done: make(chan struct{})}
	_ = conn.SetReadDeadline(time.Now().Add(eioTimeout))
	if _, open, err := conn.ReadMessage(); err != nil || !bytes.HasPrefix(open, []byte("0{")) {
		conn.Close()
		return nil, fmt.Errorf("open packet %q: %v", open, err)
	}
	auth, _ := json.Marshal(map[string]string{"token": token})
	if err := c.write(websocket.TextMessage, []byte("40"+eioNamespace+","+string(auth))); err != nil {
		conn.Close()
		return nil, err
	}
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("namespace connect: %w", err)
		}
		s := string(msg)
		switch {
		case s == "2":
			_ = c.write(websocket.TextMessage, []byte("3"))
			continue
		case strings.HasPrefix(s, "40"+eioNamespace+","):
		case strings.HasPrefix(s, "44"+eioNamespace+","):
			conn.Close()
			return nil, fmt.Errorf("namespace connect refused: %s", s)
		default:
			continue
		}
		break
	}
	_ = conn.SetReadDeadline(time.Time{})
	go c.read()
	return c, nil
}

func (c *eioClient) write(typ int, data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(eioTimeout))
	return c.conn.WriteMessage(typ, data)
}

// read handles incoming packets until the connection ends.
func (c *eioClient) read() {
	defer close(c.done)
	prefixEvent, prefixAck := "42"+eioNamespace+",", "43"+eioNamespace+","
	for {
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		s := string(msg)
		switch {
		case s == "2":
			if c.write(websocket.TextMessage, []byte("3")) != nil {
				return
			}
		case strings.HasPrefix(s, prefixEvent):
			var arr []json.RawMessage
			if json.Unmarshal([]byte(s[len(prefixEvent):]), &arr) != nil || len(arr) == 0 {
				continue
			}
			var name string
			_ = json.Unmarshal(arr[0], &name)
			var payload json.RawMessage
			if len(arr) > 1 {
				payload = arr[1]
			}
			c.onEvent(name, payload)
		case strings.HasPrefix(s, prefixAck):
			rest := s[len(prefixAck):]
			i := strings.IndexByte(rest, '[')
			if i < 0 {
				continue
			}
			id, err := strconv.Atoi(rest[:i])
			if err != nil {
				continue
			}
			var args []map[string]any
			_ = json.Unmarshal([]byte(rest[i:]), &args)
			c.mu.Lock()
			ch := c.acks[id]
			delete(c.acks, id)
			c.mu.Unlock()
			if ch != nil {
				var first map[string]any
				if len(args) > 0 {
					first = args[0]
				}
				ch <- first
			}
		}
	}
}

// call emits event with payload and waits for its acknowledgement.
func (c *eioClient) call(event string, payload any) (map[string]any, error) {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan map[string]any, 1)
	c.acks[id] = ch
	c.mu.Unlock()
	body, err := json.Marshal([]any{event, payload})
	if err != nil {
		return nil, err
	}
	if err := c.write(websocket.TextMessage, append([]byte("42"+eioNamespace+","+strconv.Itoa(id)), body...)); err != nil {
		return nil, err
	}
	select {
	case ack := <-ch:
		return ack, nil
	case <-c.done:
		return nil, errors.New("connection closed before the ack")
	case <-time.After(eioTimeout):
		return nil, fmt.Errorf("no ack to %s", event)
	}
}

// emitBinary emits event {groupId, audioData: <attachment>} without asking for an ack. Its two
// WebSocket frames (the packet, then the attachment) are masked here and leave in one write, which
// halves the clients' system calls (they share the cores with the server). It allocates nothing
// once warm: the clients' garbage would make the process's collector run more often.
func (c *eioClient) emitBinary(event, groupID string, data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.text = append(append(append(append(append(c.text[:0], `451-`+eioNamespace+`,["`...), event...), `",{"groupId":"`...), groupID...),
		`","audioData":{"_placeholder":true,"num":0}}]`...)
	c.frames = appendFrame(c.frames[:0], websocket.TextMessage, c.text)
	c.frames = appendFrame(c.frames, websocket.BinaryMessage, data)
	nc := c.conn.NetConn()
	_ = nc.SetWriteDeadline(time.Now().Add(eioTimeout))
	_, err := nc.Write(c.frames)
	return err
}

// appendFrame appends one final, masked client frame (RFC 6455 section 5.2) of payload to b.
func appendFrame(b []byte, opcode int, payload []byte) []byte {
	b = append(b, 0x80|byte(opcode))
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := rand.Uint32()
	b = binary.LittleEndian.AppendUint32(b, key)
	start := len(b)
	b = append(b, payload...)
	masked := b[start:]
	// Eight bytes at a time, then the rest byte by byte.
	key64 := uint64(key) | uint64(key)<<32
	i := 0
	for ; i+8 <= len(masked); i += 8 {
		binary.LittleEndian.PutUint64(masked[i:], binary.LittleEndian.Uint64(masked[i:])^key64)
	}
	for ; i < len(masked); i++ {
		masked[i] ^= byte(key >> (8 * (i & 3)))
	}
	return b
}

// close ends the connection (once) and waits for the reader.
func (c *eioClient) close() {
	c.closeOnce.Do(func() {
		_ = c.write(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		_ = c.conn.Close()
	})
	<-c.done
}
