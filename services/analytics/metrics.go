package analytics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/classwaves/classwaves/pkg/telemetry"
)

// Event outcomes (the status label of analytics_events_processed_total).
const (
	eventApplied   = "applied"   // applied to the live measures
	eventDuplicate = "duplicate" // its id was applied before (a redelivery): nothing changed
	eventInvalid   = "invalid"   // malformed or out of range: acknowledged and dropped
	eventIgnored   = "ignored"   // a type analytics does not use
	eventFailed    = "failed"    // the store failed: left for redelivery
)

// Finalization outcomes (the status label of analytics_finalizations_total).
const (
	finalFinalized  = "finalized"
	finalFailed     = "failed"
	finalDuplicate  = "already_finalized"
	finalInProgress = "in_progress"
	finalLost       = "claim_lost"
)

// metrics are the service's Prometheus collectors.
type metrics struct {
	events          *prometheus.CounterVec
	finalizations   *prometheus.CounterVec
	finalizeLatency prometheus.Histogram
	summaries       *prometheus.CounterVec
	eventLag        prometheus.Gauge
	publishFailures *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "analytics_events_processed_total",
			Help: "Consumed bus events by type and outcome (applied, duplicate, invalid, ignored, failed).",
		}, []string{"type", "status"}),
		finalizations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "analytics_finalizations_total",
			Help: "Finalization attempts by outcome (finalized, failed, already_finalized, in_progress, claim_lost).",
		}, []string{"status"}),
		finalizeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "analytics_finalization_duration_ms",
			Help:    "Duration of a claimed finalization (session context, computation, write), in milliseconds.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 15), // 1 ms .. 16 s
		}),
		summaries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "analytics_summaries_total",
			Help: "Summary builds by outcome (ready, failed, fallback: the LLM summarizer failed and the built-in one answered).",
		}, []string{"status"}),
		eventLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "analytics_event_lag_seconds",
			Help: "Time from the last applied event's occurrence to its handling, in seconds.",
		}),
		publishFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "analytics_publish_failures_total",
			Help: "Events that could not be published to the bus (retried by the sweeper), by type.",
		}, []string{"type"}),
	}
	if reg == nil {
		return m
	}
	m.events = telemetry.Register(reg, m.events)
	m.finalizations = telemetry.Register(reg, m.finalizations)
	m.finalizeLatency = telemetry.Register(reg, m.finalizeLatency)
	m.summaries = telemetry.Register(reg, m.summaries)
	m.eventLag = telemetry.Register(reg, m.eventLag)
	m.publishFailures = telemetry.Register(reg, m.publishFailures)
	return m
}
