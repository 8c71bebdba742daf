package guidance

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/classwaves/classwaves/pkg/telemetry"
)

// Label values.
const (
	statusOK      = "ok"
	statusFailed  = "failed"
	statusSkipped = "skipped" // Tier 1: too few words and no silence signal; Tier 2: nothing to analyse

	// guidance_emits_failed_total{type}.
	emitTier1           = "tier1"
	emitTier2           = "tier2"
	emitAlerts          = "alerts"
	emitRecommendations = "recommendations"
)

// metrics are the service's Prometheus collectors. The first seven are the seed's names.
type metrics struct {
	tier1Delivered     *prometheus.CounterVec
	tier2Delivered     *prometheus.CounterVec
	emitsFailed        *prometheus.CounterVec
	promptGenLatency   *prometheus.HistogramVec
	promptDelivLatency *prometheus.HistogramVec
	promptGenerated    *prometheus.CounterVec
	promptDelivered    *prometheus.CounterVec
	analyses           *prometheus.CounterVec
	analysisDuration   *prometheus.HistogramVec
	promptsSuppressed  *prometheus.CounterVec
	eventsHandled      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	latency := prometheus.ExponentialBuckets(1, 2, 16) // 1 ms .. 33 s
	m := &metrics{
		tier1Delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guidance_tier1_insight_delivered_total",
			Help: "Tier 1 insights published for delivery (ai:tier1:insight), by school.",
		}, []string{"school"}),
		tier2Delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guidance_tier2_insight_delivered_total",
			Help: "Tier 2 insights published for delivery (ai:tier2:insight), by school.",
		}, []string{"school"}),
		emitsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guidance_emits_failed_total",
			Help: "Guidance events that could not be published, by type (tier1, tier2, alerts, recommendations).",
		}, []string{"type"}),
		promptGenLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "guidance_prompt_generation_latency_ms",
			Help:    "Time from an insight's creation to its prompt being stored, in milliseconds.",
			Buckets: latency,
		}, []string{"tier"}),
		promptDelivLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "guidance_prompt_delivery_latency_ms",
			Help:    "Time from an insight's creation to its prompt being published, in milliseconds.",
			Buckets: latency,
		}, []string{"tier"}),
		promptGenerated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guidance_prompt_generation_total",
			Help: "Prompts generated (stored), by tier and status (ok, failed).",
		}, []string{"tier", "status"}),
		promptDelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guidance_prompt_delivery_total",
			Help: "Prompts published for delivery, by tier, status (ok, failed) and school.",
		}, []string{"tier", "status", "school"}),
		analyses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guidance_analyses_total",
			Help: "Analyses run, by tier and status (ok, failed, skipped).",
		}, []string{"tier", "status"}),
		analysisDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "guidance_analysis_duration_ms",
			Help:    "Duration of the analyzer call, by tier and analyzer, in milliseconds.",
			Buckets: prometheus.ExponentialBuckets(0.25, 2, 18), // 0.25 ms .. 33 s
		}, []string{"tier", "analyzer"}),
		promptsSuppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guidance_prompts_suppressed_total",
			Help: "Prompt candidates not raised, by tier and reason (cooldown, acknowledged, dismissed).",
		}, []string{"tier", "reason"}),
		eventsHandled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guidance_bus_events_total",
			Help: "Bus events read by the guidance service, by type and outcome (handled, duplicate, ignored, malformed, retry).",
		}, []string{"type", "outcome"}),
	}
	if reg == nil {
		return m
	}
	m.tier1Delivered = telemetry.Register(reg, m.tier1Delivered)
	m.tier2Delivered = telemetry.Register(reg, m.tier2Delivered)
	m.emitsFailed = telemetry.Register(reg, m.emitsFailed)
	m.promptGenLatency = telemetry.Register(reg, m.promptGenLatency)
	m.promptDelivLatency = telemetry.Register(reg, m.promptDelivLatency)
	m.promptGenerated = telemetry.Register(reg, m.promptGenerated)
	m.promptDelivered = telemetry.Register(reg, m.promptDelivered)
	m.analyses = telemetry.Register(reg, m.analyses)
	m.analysisDuration = telemetry.Register(reg, m.analysisDuration)
	m.promptsSuppressed = telemetry.Register(reg, m.promptsSuppressed)
	m.eventsHandled = telemetry.Register(reg, m.eventsHandled)
	return m
}

// tierLabel is the tier label value: "tier1" or "tier2".
func tierLabel(tier int) string { return "tier" + strconv.Itoa(tier) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
