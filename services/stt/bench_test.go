package stt

import (
	"context"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	"github.com/classwaves/classwaves/pkg/bus/inproc"
	"github.com/classwaves/classwaves/pkg/logging"
	"github.com/classwaves/classwaves/pkg/store/storetest"
	"github.com/classwaves/classwaves/services/stt/audio/audiotest"
	"github.com/classwaves/classwaves/services/stt/openaitest"
)

// Benchmark knobs. The defaults are a quick run (100 groups, 2 windows each, audio sent at 10x
// real time, about 5 s); the figures in the README come from
//
//	go test ./services/stt -run '^$' -bench ConcurrentGroups -benchtime 1x \
//	    -stt.bench.groups 1000 -stt.bench.speed 1 -stt.bench.windows 3
var (
	benchGroups  = flag.Int("stt.bench.groups", 100, "concurrent groups streaming")
	benchWindows = flag.Int("stt.bench.windows", 2, "15 s windows each group streams")
	benchSpeed   = flag.Float64("stt.bench.speed", 10, "audio sent at this multiple of real time (1: real time)")
	benchChunk   = flag.Duration("stt.bench.chunk", 100*time.Millisecond, "audio per chunk")
	benchConc    = flag.Int("stt.bench.concurrency", 1000, "OPENAI_WHISPER_CONCURRENCY")
	benchSpread  = flag.Duration("stt.bench.spread", 15*time.Second, "groups start spread evenly over this much audio time (0: all within one chunk, so every window closes at once)")
)

// BenchmarkConcurrentGroups streams 16 kHz PCM from many groups at once, through the real gRPC
// server (the realtime edge's side is played by this benchmark), into the service on SQLite and
// the in-process bus, with a transcription server that answers each window after 1 to 2 s.
//
// Reported: groups, windows transcribed and dropped, the time from window close to transcript
// published excluding the transcription call and the wait for the group's previous window (p50,
// p99, max; and p99 with that wait), and the Go heap at its peak and after the run (with the
// open-window bytes gauge back at zero: buffers released). The benchmark's own client streams
// run in the same process and share its two cores.
func BenchmarkConcurrentGroups(b *testing.B) {
	groups, windows := *benchGroups, *benchWindows
	for b.Loop() {
		srv := openaitest.New(b)
		srv.DiscardAudio = true
		var rngMu sync.Mutex
		rng := rand.New(rand.NewPCG(1, 2))
		srv.Respond(func(r openaitest.Request) openaitest.Reply {
			rngMu.Lock()
			d := time.Second + time.Duration(rng.Int64N(int64(time.Second)))
			rngMu.Unlock()
			return openaitest.Reply{Delay: d, Response: openaitest.Said("the group is talking about plants and water", r.Info.Duration.Seconds())}
		})
		cfg := DefaultConfig()
		cfg.OpenAIBaseURL = srv.URL
		cfg.WhisperConcurrency = *benchConc
		cfg.WhisperMaxRetries = 0
		bb, err := inproc.New(inproc.Options{Default: inproc.TopicOptions{MaxLen: 10000}})
		if err != nil {
			b.Fatal(err)
		}
		var (
			latMu        sync.Mutex
			lats, queued []time.Duration
		)
		svc, err := newService(cfg, newSQLStore(storetest.OpenSQLite(b)), bb, nil, logging.Discard(), prometheus.NewRegistry(),
			withPublished(func(d, wait time.Duration) {
				latMu.Lock()
				lats = append(lats, d-wait)
				queued = append(queued, d)
				latMu.Unlock()
			}))
		if err != nil {
			b.Fatal(err)
		}
		svc.migrate = svc.store.(*sqlStore).Migrate
		if err := svc.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		client := startServer(b, svc)
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)

		// Peak heap, sampled while the groups stream.
		var peak atomic.Uint64
		stopSampling := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-stopSampling:
					return
				case <-t.C:
				}
			}
		}()

		const rate = 16000
		pcm := audiotest.Speech(rate, 15*time.Second)
		chunkBytes := int(benchChunk.Seconds()*rate) * 2
		interval := time.Duration(float64(*benchChunk) / *benchSpeed)
		var wg sync.WaitGroup
		var refused, streamErrs atomic.Int64
		start := time.Now()
		for i := range groups {
			wg.Go(func() {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				stream, err := client.StreamAudio(ctx)
				if err != nil {
					streamErrs.Add(1)
					return
				}
				recvDone := make(chan struct{})
				go func() {
					defer close(recvDone)
					for {
						resp, err := stream.Recv()
						if err != nil {
							if !errors.Is(err, io.EOF) {
								streamErrs.Add(1)
							}
							return
						}
						if resp.GetRefused() != nil {
							refused.Add(1)
						}
					}
				}()
				_ = stream.Send(&sttv1.StreamAudioRequest{Message: &sttv1.StreamAudioRequest_Start{Start: pcmStart(newID(), newID(), schoolA, rate)}})
				// Groups start spread over -stt.bench.spread (at least one chunk interval).
				spread := max(time.Duration(float64(*benchSpread) / *benchSpeed), interval)
				time.Sleep(time.Duration(i) * spread / time.Duration(groups))
				tick := time.NewTicker(interval)
				defer tick.Stop()
				var seq int64
				for range windows {
					for off := 0; off < len(pcm); off += chunkBytes {
						<-tick.C
						seq++
						if err := stream.Send(&sttv1.StreamAudioRequest{Message: &sttv1.StreamAudioRequest_Chunk{Chunk: &sttv1.AudioChunk{
							Data: pcm[off:min(off+chunkBytes, len(pcm))], Seq: seq,
						}}}); err != nil {
							streamErrs.Add(1)
							return
						}
					}
				}
				_ = stream.CloseSend()
				<-recvDone
			})
		}
		wg.Wait()
		streamed := time.Since(start)
		want := groups * windows
		outcomes := func() (done, dropped int) {
			for _, o := range []string{outcomeTranscribed, outcomeEmpty, outcomeStoreFailure} {
				done += int(testutil.ToFloat64(svc.m.windows.WithLabelValues(o)))
			}
			for _, o := range []string{outcomeBacklog, outcomeError, outcomeDrain, outcomeBudget, outcomeSilent, outcomeProviderOff} {
				dropped += int(testutil.ToFloat64(svc.m.windows.WithLabelValues(o)))
			}
			return done, dropped
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			done, dropped := outcomes()
			if done+dropped >= want || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		close(stopSampling)
		<-sampled
		done, dropped := outcomes()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := svc.Stop(ctx); err != nil {
			b.Error(err)
		}
		cancel()
		_ = bb.Close()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)

		latMu.Lock()
		slices.Sort(lats)
		slices.Sort(queued)
		quantile := func(l []time.Duration, p float64) float64 {
			if len(l) == 0 {
				return 0
			}
			return ms2(l[min(len(l)-1, int(p*float64(len(l))))])
		}
		q := func(p float64) float64 { return quantile(lats, p) }
		b.ReportMetric(float64(groups), "groups")
		b.ReportMetric(float64(done), "windows_transcribed")
		b.ReportMetric(float64(dropped), "windows_dropped")
		b.ReportMetric(float64(want-done-dropped), "windows_missing")
		b.ReportMetric(float64(refused.Load()), "chunks_refused")
		b.ReportMetric(float64(streamErrs.Load()), "stream_errors")
		b.ReportMetric(q(0.50), "close_to_publish_p50_ms")
		b.ReportMetric(q(0.99), "close_to_publish_p99_ms")
		b.ReportMetric(q(1), "close_to_publish_max_ms")
		// Including the wait for the group's previous window to be transcribed, which happens
		// only when audio arrives faster than real time (-stt.bench.speed > 1).
		b.ReportMetric(quantile(queued, 0.99), "close_to_publish_incl_queue_p99_ms")
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak_heap_MB")
		b.ReportMetric(float64(base.HeapInuse)/(1<<20), "start_heap_MB")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "end_heap_MB")
		b.ReportMetric(testutil.ToFloat64(svc.m.windowBytes), "open_window_bytes_end")
		b.ReportMetric(streamed.Seconds(), "stream_s")
		latMu.Unlock()
	}
}

func ms2(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
