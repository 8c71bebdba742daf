package telemetry

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterSharesExisting(t *testing.T) {
	reg := prometheus.NewRegistry()
	first := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}))
	second := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}))
	if c := Register(nil, prometheus.NewCounter(prometheus.CounterOpts{Name: "y_total", Help: "y"})); c == nil {
		t.Error("Register(nil, c) did not return c")
	}
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
