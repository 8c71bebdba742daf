package auditlog_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/classwaves/classwaves/pkg/api/classwaves/audit/v1"
	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/inproc"
	"github.com/classwaves/classwaves/pkg/config"
)

const (
	stream = "audit:log"
	id1    = "0b3c8a3e-2f6d-4a53-9a59-5f2a4e0c1d2b"
)

var when = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func newInproc(t *testing.T, opts inproc.Options) *inproc.Bus {
	t.Helper()
	b, err := inproc.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// drops records the drop hook's calls.
type drops struct {
	mu sync.Mutex
	m  map[string]string
}

func (d *drops) hook(id, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string]string{}
	}
	d.m[id] = reason
}

func (d *drops) get() map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]string{}
	for k, v := range d.m {
		out[k] = v
	}
	return out
}

func testEvent() auditlog.Event {
	return auditlog.Event{
		ID: id1, OccurredAt: when, ActorID: "t-1", ActorType: "teacher", EventType: "session.start",
		Category: auditlog.CategorySession, SchoolID: "school-1", SessionID: "session-1",
		Description: "started by ana@school.org", UserAgent: "UA",
	}
}

func TestLogPublishesTheSanitizedEvent(t *testing.T) {
	b := newInproc(t, inproc.Options{})
	reg := prometheus.NewRegistry()
	c := auditlog.New(auditlog.DefaultConfig(), b, reg)
	defer c.Close()

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the request went away: the action still gets audited
	c.Log(ctx, testEvent())

	msgs, err := b.Replay(context.Background(), stream, "0", 10)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Replay = %d messages, %v; want 1", len(msgs), err)
	}
	m := msgs[0]
	if m.Key != "session-1" {
		t.Errorf("key = %q, want the session id", m.Key)
	}
	if diff := cmp.Diff(map[string]string{"content-type": "application/json", "schema": "classwaves.audit.v1.AuditEvent"}, m.Headers); diff != "" {
		t.Errorf("headers mismatch (-want +got):\n%s", diff)
	}
	got := &auditv1.AuditEvent{}
	if err := protojson.Unmarshal(m.Payload, got); err != nil {
		t.Fatalf("payload is not protojson of AuditEvent: %v", err)
	}
	want := &auditv1.AuditEvent{
		Id: id1, OccurredAt: timestamppb.New(when), ActorId: "t-1", ActorType: "teacher",
		EventType: "session.start", EventCategory: "session", SchoolId: "school-1", SessionId: "session-1",
		Description: "started by [REDACTED_EMAIL]", Priority: "normal", Count: 1,
		UserAgentHash: sha256hex("UA"),
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("payload mismatch (-want +got):\n%s", diff)
	}
	if got := value(t, reg, "audit_log_enqueued_total"); got != 1 {
		t.Errorf("audit_log_enqueued_total = %v, want 1", got)
	}
}

// stubBus is a bus whose Publish and Len behave as the test says: a stand-in for a broken or slow
// transport (the client's drop paths), not for a database.
type stubBus struct {
	bus.Bus
	publish func(ctx context.Context) error
}

func (s stubBus) Publish(ctx context.Context, topic string, msg bus.Outgoing) (string, error) {
	return "1-0", s.publish(ctx)
}

func (s stubBus) Len(context.Context, string) (int64, error) { return 0, nil }

func TestLogDropsAndCounts(t *testing.T) {
	tests := []struct {
		name       string
		cfg        func(*auditlog.Config)
		bus        func(t *testing.T) bus.Bus
		close      bool
		wantReason string
	}{
		{
			name: "timeout",
			cfg:  func(c *auditlog.Config) { c.EnqueueTimeout = 5 * time.Millisecond },
			bus: func(*testing.T) bus.Bus {
				return stubBus{publish: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}
			},
			wantReason: auditlog.DropTimeout,
		},
		{
			name: "bus error",
			bus: func(*testing.T) bus.Bus {
				return stubBus{publish: func(context.Context) error { return errors.New("connection refused") }}
			},
			wantReason: auditlog.DropError,
		},
		{
			name: "bus panics",
			bus: func(*testing.T) bus.Bus {
				return stubBus{publish: func(context.Context) error { panic("adapter bug") }}
			},
			wantReason: auditlog.DropError,
		},
		{
			name: "backlog full (adapter refuses)",
			cfg:  func(c *auditlog.Config) { c.MaxBacklog = 0 },
			bus: func(t *testing.T) bus.Bus {
				b := newInproc(t, inproc.Options{Topics: map[string]inproc.TopicOptions{stream: {MaxLen: 1, Overflow: inproc.RejectNew}}})
				if _, err := b.Publish(context.Background(), stream, bus.Outgoing{Payload: []byte("x")}); err != nil {
					t.Fatal(err)
				}
				return b
			},
			wantReason: auditlog.DropBacklogFull,
		},
		{
			name: "bus closed",
			bus: func(t *testing.T) bus.Bus {
				b := newInproc(t, inproc.Options{})
				_ = b.Close()
				return b
			},
			wantReason: auditlog.DropClosed,
		},
		{
			name:       "client closed",
			bus:        func(t *testing.T) bus.Bus { return newInproc(t, inproc.Options{}) },
			close:      true,
			wantReason: auditlog.DropClosed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := auditlog.DefaultConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			var d drops
			reg := prometheus.NewRegistry()
			c := auditlog.New(cfg, tt.bus(t), reg, auditlog.WithDropHook(d.hook))
			if tt.close {
				_ = c.Close()
			}
			c.Log(context.Background(), testEvent()) // must return, not panic
			_ = c.Close()
			if diff := cmp.Diff(map[string]string{id1: tt.wantReason}, d.get()); diff != "" {
				t.Errorf("drops mismatch (-want +got):\n%s", diff)
			}
			if got := value(t, reg, "audit_log_enqueue_dropped_total", "reason", tt.wantReason); got != 1 {
				t.Errorf("audit_log_enqueue_dropped_total{reason=%q} = %v, want 1", tt.wantReason, got)
			}
		})
	}
}

// TestLogDropsWhenBacklogFull: with AUDIT_LOG_MAX_BACKLOG set, the client compares the stream's
// length (probed in the background, at most once a second) with it and drops new events instead of
// growing the stream.
func TestLogDropsWhenBacklogFull(t *testing.T) {
	b := newInproc(t, inproc.Options{})
	for range 3 {
		if _, err := b.Publish(context.Background(), stream, bus.Outgoing{Payload: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := auditlog.DefaultConfig()
	cfg.MaxBacklog = 3
	var d drops
	c := auditlog.New(cfg, b, nil, auditlog.WithDropHook(d.hook))
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for n := 0; ; n++ {
		e := testEvent()
		e.ID = ""
		c.Log(context.Background(), e)
		if len(d.get()) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no drop after %d events with a full backlog", n)
		}
		time.Sleep(time.Millisecond)
	}
	for id, reason := range d.get() {
		if reason != auditlog.DropBacklogFull {
			t.Errorf("event %s dropped for %q, want %q", id, reason, auditlog.DropBacklogFull)
		}
	}
}

func TestNilClient(t *testing.T) {
	var c *auditlog.Client
	c.Log(context.Background(), testEvent())
	if err := c.Close(); err != nil {
		t.Errorf("Close on nil = %v", err)
	}
}

func TestClientsShareMetrics(t *testing.T) {
	b := newInproc(t, inproc.Options{})
	reg := prometheus.NewRegistry()
	a := auditlog.New(auditlog.DefaultConfig(), b, reg)
	c := auditlog.New(auditlog.DefaultConfig(), b, reg)
	a.Log(context.Background(), testEvent())
	c.Log(context.Background(), testEvent())
	if got := value(t, reg, "audit_log_enqueued_total"); got != 2 {
		t.Errorf("audit_log_enqueued_total = %v, want 2", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*auditlog.Config)
		want string
	}{
		{"defaults", func(*auditlog.Config) {}, ""},
		{"no stream", func(c *auditlog.Config) { c.StreamKey = " " }, "AUDIT_LOG_STREAM_KEY is required"},
		{"negative backlog", func(c *auditlog.Config) { c.MaxBacklog = -1 }, "AUDIT_LOG_MAX_BACKLOG must not be negative, got -1"},
		{"zero timeout", func(c *auditlog.Config) { c.EnqueueTimeout = 0 }, "AUDIT_LOG_ENQUEUE_TIMEOUT_MS must be positive, got 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := auditlog.DefaultConfig()
			tt.mod(&cfg)
			err := cfg.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

// value returns the value of the counter name with the given label pairs, 0 when absent.
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestRegisterFlagsReadsTheSeedEnv(t *testing.T) {
	env := map[string]string{
		"AUDIT_LOG_STREAM_KEY": "cw:audit", "AUDIT_LOG_MAX_BACKLOG": "10",
		"AUDIT_LOG_ENQUEUE_TIMEOUT_MS": "75", "AUDIT_HASH_USER_AGENT": "0",
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		want auditlog.Config
	}{
		{"defaults", nil, auditlog.Config{StreamKey: "audit:log", MaxBacklog: 50000, EnqueueTimeout: 50 * time.Millisecond, HashUserAgent: true}},
		{"env", env, auditlog.Config{StreamKey: "cw:audit", MaxBacklog: 10, EnqueueTimeout: 75 * time.Millisecond, HashUserAgent: false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got auditlog.Config
			f := config.NewFlagSet("test", config.MapEnv(tt.env))
			got.RegisterFlags(f)
			if err := f.Parse(nil); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
