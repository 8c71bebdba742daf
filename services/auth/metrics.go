package auth

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/classwaves/classwaves/pkg/telemetry"
)

// metrics are the auth service's Prometheus collectors.
type metrics struct {
	// devFallback is the seed's classwaves_auth_dev_fallback_total{environment,trigger}.
	devFallback *prometheus.CounterVec
	signIns     *prometheus.CounterVec
	refreshes   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		devFallback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "classwaves_auth_dev_fallback_total",
			Help: "Sign-ins of the seeded dev teacher by the dev fallback (never in production), by environment and trigger (flag, google_not_configured).",
		}, []string{"environment", "trigger"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "classwaves_auth_sign_ins_total",
			Help: "Sign-in attempts by method (google_id_token, google_code, google_redirect, dev_fallback) and outcome (success or the error reason, lower case).",
		}, []string{"method", "outcome"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "classwaves_auth_refresh_total",
			Help: "Refresh token exchanges by outcome (success or the error reason, lower case; refresh_token_reused is reuse detection).",
		}, []string{"outcome"}),
	}
	if reg == nil {
		return m
	}
	m.devFallback = telemetry.Register(reg, m.devFallback)
	m.signIns = telemetry.Register(reg, m.signIns)
	m.refreshes = telemetry.Register(reg, m.refreshes)
	return m
}

// outcome is the outcome label of err.
func outcome(err error) string {
	if err == nil {
		return "success"
	}
	return strings.ToLower(reasonOf(err))
}

func (m *metrics) signIn(method string, err error) {
	m.signIns.WithLabelValues(method, outcome(err)).Inc()
}

func (m *metrics) refresh(err error) { m.refreshes.WithLabelValues(outcome(err)).Inc() }
