package audit

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/classwaves/classwaves/pkg/telemetry"
)

// metrics are the audit worker's Prometheus collectors.
type metrics struct {
	processed  prometheus.Counter
	stored     prometheus.Counter
	sampled    prometheus.Counter
	rollups    prometheus.Counter
	dlq        *prometheus.CounterVec
	dbFailures prometheus.Counter
	cooldown   prometheus.Gauge
	queueDepth prometheus.Gauge
	batch      prometheus.Histogram
	replayed   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		processed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audit_worker_processed_total",
			Help: "Audit stream entries the worker finished with (stored, sampled into a rollup, or dead-lettered).",
		}),
		stored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audit_worker_stored_total",
			Help: "Audit rows newly stored (events and rollups; duplicates of stored ids are not counted).",
		}),
		sampled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audit_worker_sampled_total",
			Help: "Noisy-category audit events dropped by sampling and counted in rollup rows instead.",
		}),
		rollups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audit_worker_rollups_total",
			Help: "Rollup rows (event type suffix _rollup) written.",
		}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audit_worker_dlq_total",
			Help: "Audit entries moved to the dead-letter stream, by reason (malformed, invalid, db_unavailable, db_rejected).",
		}, []string{"reason"}),
		dbFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audit_worker_db_failures_total",
			Help: "Batch inserts that failed because the database was unavailable (each starts a cooldown).",
		}),
		cooldown: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "audit_worker_db_cooldown",
			Help: "1 while the worker leaves the database alone after a failure, else 0.",
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "audit_worker_queue_depth",
			Help: "Audit stream backlog (bus Len) after the last batch.",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "audit_worker_batch_duration_seconds",
			Help:    "Time to handle one batch: decode, sample, insert, dead-letter.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14), // 1 ms .. 8 s
		}),
		replayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audit_dlq_replayed_total",
			Help: "Dead-lettered audit events replayed, by mode (stream, db).",
		}, []string{"mode"}),
	}
	if reg == nil {
		return m
	}
	m.processed = telemetry.Register(reg, m.processed)
	m.stored = telemetry.Register(reg, m.stored)
	m.sampled = telemetry.Register(reg, m.sampled)
	m.rollups = telemetry.Register(reg, m.rollups)
	m.dlq = telemetry.Register(reg, m.dlq)
	m.dbFailures = telemetry.Register(reg, m.dbFailures)
	m.cooldown = telemetry.Register(reg, m.cooldown)
	m.queueDepth = telemetry.Register(reg, m.queueDepth)
	m.batch = telemetry.Register(reg, m.batch)
	m.replayed = telemetry.Register(reg, m.replayed)
	return m
}
