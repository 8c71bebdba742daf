package stt

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/classwaves/classwaves/pkg/telemetry"
)

// Window outcomes (the outcome label of stt_windows_total).
const (
	outcomeTranscribed  = "transcribed"
	outcomeEmpty        = "empty"          // transcribed, nothing left after filtering
	outcomeProviderOff  = "dropped_off"    // STT_PROVIDER=off
	outcomeSilent       = "dropped_silent" // no speech found (STT_SKIP_SILENT_WINDOWS)
	outcomeBudget       = "dropped_budget" // the school's budget is used up
	outcomeBacklog      = "dropped_backlog"
	outcomeError        = "dropped_error" // transcription failed after retries
	outcomeDrain        = "dropped_drain" // a flush or shutdown ran out of time
	outcomeStoreFailure = "store_failed"  // transcribed and published, not stored
)

// metrics are the service's Prometheus collectors. The first four are the seed's names.
type metrics struct {
	whisperLatency  prometheus.Histogram
	whisperStatus   *prometheus.CounterVec
	windowBytes     prometheus.Gauge
	ttft            *prometheus.HistogramVec
	windows         *prometheus.CounterVec
	chunksRefused   *prometheus.CounterVec
	chunkBytes      prometheus.Counter
	streams         prometheus.Gauge
	closeToPublish  prometheus.Histogram
	budgetUsed      *prometheus.GaugeVec
	budgetAlerts    *prometheus.CounterVec
	publishFailures *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		whisperLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "whisper_latency_ms",
			Help:    "Duration of each transcription request (one attempt), in milliseconds.",
			Buckets: prometheus.ExponentialBuckets(50, 2, 11), // 50 ms .. 51 s
		}),
		whisperStatus: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whisper_status_count",
			Help: "Transcription attempts by outcome: the HTTP status, or timeout, network, malformed.",
		}, []string{"status"}),
		windowBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stt_window_bytes",
			Help: "Audio bytes held in open windows (all groups). Windows are released after transcription.",
		}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "stt_time_to_first_transcript_ms",
			Help:    "Time from a stream's first accepted chunk to its first published transcript, in milliseconds.",
			Buckets: prometheus.ExponentialBuckets(1000, 1.5, 12), // 1 s .. 86 s
		}, []string{"school"}),
		windows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stt_windows_total",
			Help: "Closed windows by outcome (transcribed, empty, dropped_off, dropped_silent, dropped_budget, dropped_backlog, dropped_error, dropped_drain, store_failed).",
		}, []string{"outcome"}),
		chunksRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stt_chunks_refused_total",
			Help: "Audio chunks refused, by reason.",
		}, []string{"reason"}),
		chunkBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stt_audio_bytes_total",
			Help: "Audio bytes accepted.",
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stt_active_streams",
			Help: "Open audio streams.",
		}),
		closeToPublish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "stt_window_close_to_publish_ms",
			Help:    "Time from a window's close to its transcript's publication, excluding the transcription call itself, in milliseconds.",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 14), // 0.5 ms .. 4 s
		}),
		budgetUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stt_budget_minutes_used",
			Help: "Transcribed minutes today (UTC) per school, as last recorded by this process.",
		}, []string{"school"}),
		budgetAlerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stt_budget_alerts_total",
			Help: "Budget alerts sent, by threshold percent.",
		}, []string{"percent"}),
		publishFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stt_publish_failures_total",
			Help: "Events that could not be published to the bus, by type.",
		}, []string{"type"}),
	}
	if reg == nil {
		return m
	}
	m.whisperLatency = telemetry.Register(reg, m.whisperLatency)
	m.whisperStatus = telemetry.Register(reg, m.whisperStatus)
	m.windowBytes = telemetry.Register(reg, m.windowBytes)
	m.ttft = telemetry.Register(reg, m.ttft)
	m.windows = telemetry.Register(reg, m.windows)
	m.chunksRefused = telemetry.Register(reg, m.chunksRefused)
	m.chunkBytes = telemetry.Register(reg, m.chunkBytes)
	m.streams = telemetry.Register(reg, m.streams)
	m.closeToPublish = telemetry.Register(reg, m.closeToPublish)
	m.budgetUsed = telemetry.Register(reg, m.budgetUsed)
	m.budgetAlerts = telemetry.Register(reg, m.budgetAlerts)
	m.publishFailures = telemetry.Register(reg, m.publishFailures)
	return m
}

// Attempt implements whisper.Observer.
func (m *metrics) Attempt(status string, latency time.Duration) {
	m.whisperStatus.WithLabelValues(status).Inc()
	m.whisperLatency.Observe(float64(latency) / float64(time.Millisecond))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
