// Package telemetry sets up OpenTelemetry tracing and metrics and the Prometheus registry served at
// /metrics, and provides the seed's HTTP metrics (http_requests_total, http_request_duration_seconds).
//
// Metrics and the OTel global providers are the process's only permitted global state; everything
// else here is passed explicitly (the registry in particular), so tests get their own.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/classwaves/classwaves/pkg/config"
)

// Config is the telemetry component's configuration.
type Config struct {
	// ServiceName is OTEL_SERVICE_NAME, the service.name resource attribute.
	ServiceName string
	// OTLPEndpoint is OTEL_EXPORTER_OTLP_ENDPOINT, the OTLP/gRPC collector URL (http:// means no
	// TLS). Empty means spans are created (trace ids exist) but not exported.
	OTLPEndpoint string
	// SampleRatio is OTEL_TRACES_SAMPLER_ARG, the fraction of new traces sampled (0..1); a
	// sampled parent is always followed.
	SampleRatio float64
	// DefaultMetricsDisabled is METRICS_DEFAULT_DISABLED: leave the Go runtime and process
	// collectors out of the registry (the seed used it to keep tests free of open handles).
	DefaultMetricsDisabled bool
}

// RegisterFlags registers the telemetry flags with their seed/OpenTelemetry environment names.
func (c *Config) RegisterFlags(f *config.FlagSet) {
	f.String(&c.ServiceName, "telemetry.service-name", "OTEL_SERVICE_NAME", "classwaves", "service name reported in traces and metrics")
	f.String(&c.OTLPEndpoint, "telemetry.otlp-endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP gRPC endpoint URL for traces, e.g. http://otel-collector:4317; empty disables export")
	f.Float64(&c.SampleRatio, "telemetry.sample-ratio", "OTEL_TRACES_SAMPLER_ARG", 1, "fraction of new traces to sample, 0 to 1")
	f.Bool(&c.DefaultMetricsDisabled, "metrics.default-disabled", "METRICS_DEFAULT_DISABLED", false, "leave out the Go runtime and process metrics")
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var endpoint error
	if c.OTLPEndpoint != "" {
		endpoint = config.URL("OTEL_EXPORTER_OTLP_ENDPOINT", c.OTLPEndpoint)
	}
	return config.Join(
		config.Required("OTEL_SERVICE_NAME", c.ServiceName),
		endpoint,
		config.Range("OTEL_TRACES_SAMPLER_ARG", c.SampleRatio, 0, 1),
	)
}

// NewRegistry returns a registry holding the Go runtime and process collectors, unless
// cfg.DefaultMetricsDisabled.
func NewRegistry(cfg Config) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	if !cfg.DefaultMetricsDisabled {
		reg.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
	}
	return reg
}

// MetricsHandler serves reg in the Prometheus text format (OpenMetrics when the scraper asks for
// it, which carries trace exemplars). Methods other than GET and HEAD get 405.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		// A failing collector must not hide every other metric.
		ErrorHandling: promhttp.ContinueOnError,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Setup installs the global OpenTelemetry providers and propagator:
//   - a tracer provider that always creates real spans (so trace ids exist) and exports them over
//     OTLP/gRPC only when cfg.OTLPEndpoint is set;
//   - a meter provider whose instruments (otelhttp, otelgrpc, ...) are exported through the OTel
//     Prometheus exporter into reg, next to the native Prometheus metrics;
//   - the W3C tracecontext and baggage propagator.
//
// The returned shutdown flushes pending spans, stops both providers and removes the exporter from
// reg; call it once at process stop.
func Setup(ctx context.Context, cfg Config, reg *prometheus.Registry) (shutdown func(context.Context) error, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		return nil, errors.New("telemetry: Setup needs a Prometheus registry")
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES
		resource.WithAttributes(attribute.String("service.name", cfg.ServiceName)),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}

	tpOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	}
	if cfg.OTLPEndpoint != "" {
		// The gRPC connection is made lazily: a collector that is down costs dropped spans, not a
		// failed start.
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(cfg.OTLPEndpoint))
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP trace exporter for %s: %w", cfg.OTLPEndpoint, err)
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)

	rr := &recordingRegisterer{Registerer: reg}
	promExp, err := otelprom.New(otelprom.WithRegisterer(rr))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("telemetry: Prometheus exporter: %w", err), tp.Shutdown(ctx))
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(promExp))

	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	return func(ctx context.Context) error {
		errs := []error{tp.Shutdown(ctx), mp.Shutdown(ctx)}
		for _, c := range rr.registered {
			reg.Unregister(c)
		}
		return errors.Join(errs...)
	}, nil
}

// recordingRegisterer remembers what the OTel exporter registers so shutdown can remove it.
type recordingRegisterer struct {
	prometheus.Registerer
	registered []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	r.registered = append(r.registered, c)
	return nil
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// standardMethods bounds the method label: anything else is counted as OTHER.
var standardMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodConnect: true,
	http.MethodOptions: true, http.MethodTrace: true,
}

func methodLabel(m string) string {
	if standardMethods[m] {
		return m
	}
	if u := strings.ToUpper(m); standardMethods[u] {
		return u
	}
	return "OTHER"
}
