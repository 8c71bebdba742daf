package telemetry

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg, or returns the collector already registered under the same
// descriptor: every service of a monolithic process (and a second instance of one, such as the
// replay-dlq command next to a running worker) shares its metrics instead of failing. A conflicting
// registration (same name, other labels) is a programming error and panics at start. A nil reg
// registers nothing (tools and tests that do not export metrics).
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("telemetry: registering metrics: %v", err))
	}
	return c
}
