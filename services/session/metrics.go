package session

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/classwaves/classwaves/pkg/telemetry"
)

type metrics struct {
	transitions *prometheus.CounterVec
	joins       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		transitions: telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "session_lifecycle_transitions_total", Help: "Session lifecycle requests by action and result (ok, refused).",
		}, []string{"action", "result"})),
		joins: telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "session_student_joins_total", Help: "Student joins by result (ok, refused, coppa_refused, token_failed).",
		}, []string{"result"})),
	}
}
