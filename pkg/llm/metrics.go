package llm

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/classwaves/classwaves/pkg/telemetry"
)

// clientMetrics are a client's collectors, shared by every client of a registry and told apart
// by the client label.
type clientMetrics struct {
	name     string
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	tokens   *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

// WithMetrics registers the client's metrics on reg (once per registry: clients of one registry
// share them) and labels them client=name (e.g. "tier1", "tier2", "summarizer"):
//
//   - llm_requests_total{client,status}: attempts by outcome: the HTTP status, or "timeout",
//     "network", "canceled";
//   - llm_request_duration_ms{client}: each attempt's duration;
//   - llm_tokens_total{client,kind}: tokens the server reported, kind "prompt" or "completion";
//   - llm_rejected_total{client,reason}: answers rejected ("malformed", "refused", "truncated")
//     and calls refused before sending ("budget").
func WithMetrics(reg prometheus.Registerer, name string) Option {
	return func(c *Client) { c.met = newClientMetrics(reg, name) }
}

func newClientMetrics(reg prometheus.Registerer, name string) *clientMetrics {
	m := &clientMetrics{
		name: name,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_requests_total",
			Help: "LLM chat completion attempts by client and outcome (HTTP status, timeout, network, canceled).",
		}, []string{"client", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "llm_request_duration_ms",
			Help:    "Duration of each LLM chat completion attempt, in milliseconds.",
			Buckets: prometheus.ExponentialBuckets(50, 2, 12), // 50 ms .. 102 s
		}, []string{"client"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_tokens_total",
			Help: "Tokens reported by the LLM server, by client and kind (prompt, completion).",
		}, []string{"client", "kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_rejected_total",
			Help: "LLM answers rejected (malformed, refused, truncated) and calls refused for budget, by client and reason.",
		}, []string{"client", "reason"}),
	}
	m.requests = telemetry.Register(reg, m.requests)
	m.duration = telemetry.Register(reg, m.duration)
	m.tokens = telemetry.Register(reg, m.tokens)
	m.rejected = telemetry.Register(reg, m.rejected)
	return m
}
