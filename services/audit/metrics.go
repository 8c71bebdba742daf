package audit

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
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
	m.processed = register(reg, m.processed)
	m.stored = register(reg, m.stored)
	m.sampled = register(reg, m.sampled)
	m.rollups = register(reg, m.rollups)
	m.dlq = register(reg, m.dlq)
	m.dbFailures = register(reg, m.dbFailures)
	m.cooldown = register(reg, m.cooldown)
	m.queueDepth = register(reg, m.queueDepth)
	m.batch = register(reg, m.batch)
	m.replayed = register(reg, m.replayed)
	return m
}

// register registers c on reg, or returns the collector already registered under its name (a
// second Service on one registry, e.g. the replay-dlq command next to a running one, shares them).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("audit: registering metrics: %v", err))
	}
	return c
}
