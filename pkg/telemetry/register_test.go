package telemetry

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterSharesExisting(t *testing.T) {
	reg := prometheus.NewRegistry()
	first := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}))
	second := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}))
	if first != second {
		t.Error("second Register did not return the collector already registered")
	}
	defer func() {
		if recover() == nil {
			t.Error("a conflicting registration did not panic")
		}
	}()
	Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_total", Help: "other"}))
}
