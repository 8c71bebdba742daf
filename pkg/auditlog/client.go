package auditlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/telemetry"
)

// Wire format of a stream entry: protojson of classwaves.audit.v1.AuditEvent (camelCase names).
const (
	// HeaderContentType is the header naming the payload's encoding.
	HeaderContentType = "content-type"
	// ContentTypeJSON is the payload's encoding.
	ContentTypeJSON = "application/json"
	// HeaderSchema names the payload's message type.
	HeaderSchema = "schema"
	// Schema is the payload's message type.
	Schema = "classwaves.audit.v1.AuditEvent"
)

// Reasons an event is dropped (the reason label of audit_log_enqueue_dropped_total).
const (
	DropTimeout     = "timeout"      // not enqueued within AUDIT_LOG_ENQUEUE_TIMEOUT_MS
	DropBacklogFull = "backlog_full" // the stream holds AUDIT_LOG_MAX_BACKLOG unconsumed events
	DropError       = "error"        // the bus failed (Redis down, ...)
	DropEncode      = "encode"       // the event could not be encoded (a bug; logged)
	DropClosed      = "closed"       // Log after Close, or the bus is closed
)

// backlogProbeEvery is how often the client asks the bus for the stream's backlog when
// MaxBacklog is set. The answer is cached, so a Log call never waits for it.
const backlogProbeEvery = time.Second

// Client enqueues audit events. It is safe for concurrent use. A nil *Client drops everything
// silently, so a component built without audit logging needs no special case.
type Client struct {
	cfg    Config
	bus    bus.Bus
	san    Sanitizer
	m      *clientMetrics
	logger *slog.Logger
	onDrop func(id, reason string)

	// Backlog probing (MaxBacklog > 0): a single background probe at a time, owned by the client.
	backlogFull atomic.Bool
	lastProbe   atomic.Int64 // unix nanoseconds
	probing     atomic.Bool

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// Option configures a Client.
type Option func(*Client)

// WithLogger logs drops caused by failures (not every timeout) and encoding bugs.
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.logger = l } }

// WithDropHook calls fn (synchronously, on the caller's goroutine: keep it cheap) for every event
// that was not enqueued, with its id and the Drop* reason. Tests use it to know exactly which
// events were lost; it can also feed a local fallback.
func WithDropHook(fn func(id, reason string)) Option { return func(c *Client) { c.onDrop = fn } }

// WithClock replaces time.Now for events without a time.
func WithClock(now func() time.Time) Option { return func(c *Client) { c.san.Now = now } }

// New returns a client publishing to b on cfg.StreamKey. Its metrics are registered on reg (nil:
// not registered); several clients may share one registry (they share the collectors).
func New(cfg Config, b bus.Bus, reg prometheus.Registerer, opts ...Option) *Client {
	c := &Client{
		cfg:    cfg,
		bus:    b,
		san:    Sanitizer{HashUserAgent: cfg.HashUserAgent},
		m:      newClientMetrics(reg),
		logger: slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Log enqueues e and returns. It never fails and holds the caller at most EnqueueTimeout: the
// event is sanitized (see Sanitizer.Sanitize) and published with a deadline that ignores ctx's
// cancellation (an action that happened is audited even when the request's client went away) but
// keeps its values. Whatever goes wrong, the event is dropped and counted in
// audit_log_enqueue_dropped_total{reason}.
func (c *Client) Log(ctx context.Context, e Event) {
	if c == nil {
		return
	}
	ev := c.san.Sanitize(e)
	id := ev.GetId()
	defer func() {
		if r := recover(); r != nil { // a broken bus adapter must not take the request down
			c.logger.Error("audit log: enqueue panicked", "panic", fmt.Sprint(r), "eventId", id)
			c.drop(id, DropError)
		}
	}()
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		c.drop(id, DropClosed)
		return
	}
	if c.cfg.MaxBacklog > 0 {
		c.maybeProbeBacklog()
		if c.backlogFull.Load() {
			c.drop(id, DropBacklogFull)
			return
		}
	}
	payload, err := protojson.Marshal(ev)
	if err != nil {
		c.logger.Error("audit log: encoding event", "err", err, "eventId", id)
		c.drop(id, DropEncode)
		return
	}
	key := ev.GetSessionId()
	if key == "" {
		key = ev.GetSchoolId()
	}
	if key == "" {
		key = ev.GetActorId()
	}
	timeout := c.cfg.EnqueueTimeout
	if timeout <= 0 {
		timeout = DefaultEnqueueTimeout
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	start := time.Now()
	_, err = c.bus.Publish(pctx, c.cfg.StreamKey, bus.Outgoing{
		Key:     key,
		Payload: payload,
		Headers: map[string]string{HeaderContentType: ContentTypeJSON, HeaderSchema: Schema},
	})
	timedOut := errors.Is(err, context.DeadlineExceeded) || errors.Is(pctx.Err(), context.DeadlineExceeded)
	cancel()
	c.m.latency.Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		c.m.enqueued.Inc()
	case errors.Is(err, bus.ErrBacklogFull):
		c.drop(id, DropBacklogFull)
	case errors.Is(err, bus.ErrClosed):
		c.drop(id, DropClosed)
	case timedOut:
		c.drop(id, DropTimeout)
	default:
		c.logger.Warn("audit log: enqueue failed", "err", err, "eventId", id)
		c.drop(id, DropError)
	}
}

func (c *Client) drop(id, reason string) {
	c.m.dropped.WithLabelValues(reason).Inc()
	if c.onDrop != nil {
		c.onDrop(id, reason)
	}
}

// maybeProbeBacklog starts a background backlog probe when the cached answer is stale and none is
// running. The probe's goroutine is owned by the client: Close waits for it.
func (c *Client) maybeProbeBacklog() {
	now := time.Now().UnixNano()
	if now-c.lastProbe.Load() < int64(backlogProbeEvery) || !c.probing.CompareAndSwap(false, true) {
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.probing.Store(false)
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	c.lastProbe.Store(now)
	go func() {
		defer c.wg.Done()
		defer c.probing.Store(false)
		defer func() {
			if r := recover(); r != nil {
				c.logger.Error("audit log: backlog probe panicked", "panic", fmt.Sprint(r))
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), backlogProbeEvery)
		defer cancel()
		n, err := c.bus.Len(ctx, c.cfg.StreamKey)
		if err != nil {
			return // keep the last answer; Publish will report a bus that is down
		}
		c.m.backlog.Set(float64(n))
		c.backlogFull.Store(n >= int64(c.cfg.MaxBacklog))
	}()
}

// Close stops the client: later Log calls drop their events (reason closed). It waits for a
// backlog probe in flight and does not close the bus, which the caller owns.
func (c *Client) Close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

// clientMetrics are the client's Prometheus collectors.
type clientMetrics struct {
	enqueued prometheus.Counter
	dropped  *prometheus.CounterVec
	latency  prometheus.Histogram
	backlog  prometheus.Gauge
}

func newClientMetrics(reg prometheus.Registerer) *clientMetrics {
	m := &clientMetrics{
		enqueued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audit_log_enqueued_total",
			Help: "Audit events enqueued to the audit stream.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audit_log_enqueue_dropped_total",
			Help: "Audit events that could not be enqueued, by reason (timeout, backlog_full, error, encode, closed).",
		}, []string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "audit_log_enqueue_duration_seconds",
			Help:    "Time a caller spent enqueueing an audit event.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1},
		}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "audit_log_backlog",
			Help: "Audit stream backlog as last probed by the client (only when AUDIT_LOG_MAX_BACKLOG is set).",
		}),
	}
	if reg == nil {
		return m
	}
	m.enqueued = telemetry.Register(reg, m.enqueued)
	m.dropped = telemetry.Register(reg, m.dropped)
	m.latency = telemetry.Register(reg, m.latency)
	m.backlog = telemetry.Register(reg, m.backlog)
	return m
}
