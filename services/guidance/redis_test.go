package guidance

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/redisbus"
	"github.com/classwaves/classwaves/pkg/store/storetest"
	"github.com/classwaves/classwaves/pkg/testenv"
)

// TestRedisRedeliveryNeverAnalysesTwice runs two replicas on Redis Streams and PostgreSQL. The
// replica that analyses a span "crashes" before acknowledging its batch: Redis delivers the
// batch again, and the span is not analysed, stored or published a second time.
func TestRedisRedeliveryNeverAnalysesTwice(t *testing.T) {
	t.Parallel()
	env := testenv.Redis(t)
	rb, err := redisbus.New(redisbus.Options{Prefix: env.Prefix, LeaseTTL: 2 * time.Second}, env.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rb.Close() })
	g := golden(t, "confused")
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	in := g.Tier1Input(base)
	span := in.SpanEnd.Sub(in.SpanStart)

	var (
		crashed       atomic.Bool
		maxDeliveries atomic.Int64
	)
	h := newHarness(t, func(c *Config) { c.Tier1Interval = span }, withBus(rb), withDB(storetest.OpenPostgres(t)), deferStart())
	h.prep = func(s *Service) {
		s.afterKey = func(msgs []bus.Message) error {
			for _, m := range msgs {
				if d := int64(m.Deliveries); d > maxDeliveries.Load() {
					maxDeliveries.Store(d)
				}
			}
			// Crash once, right after the batch whose span was analysed.
			if h.an.calls1.Load() > 0 && !crashed.Swap(true) {
				return errors.New("crashed before the acknowledgement")
			}
			return nil
		}
	}
	sess := newSession(teacher1, schoolA, 1, g.Objectives...)
	h.sessions.put(sess)
	h.feedGolden(sess, sess.Groups[0].Id, g, base)
	h.consumer = "replica-1"
	h.start()
	first := h.svc
	h.consumer = "replica-2"
	h.start()
	h.svc = first

	testenv.Eventually(t, "the redelivery", func() bool { return crashed.Load() && maxDeliveries.Load() >= 2 })
	h.drained(h.cfg.STTTopic)
	if n := h.an.calls1.Load(); n != 1 {
		t.Errorf("the analyzer ran %d times, want 1", n)
	}
	if n := len(h.events.insights(sess.Id, 1)); n != 1 {
		t.Errorf("%d insights published, want 1", n)
	}
	stored, err := h.client.GetInsights(as(authn.RoleTeacher, teacher1, schoolA), &guidancev1.GetInsightsRequest{SessionId: sess.Id})
	if err != nil || len(stored.GetTier1()) != 1 || len(stored.GetPrompts()) != 1 {
		t.Errorf("stored %d insights and %d prompts (%v); want 1 and 1", len(stored.GetTier1()), len(stored.GetPrompts()), err)
	}
	if d := h.counter("guidance_bus_events_total", map[string]string{"outcome": outcomeDuplicate}); d < 1 {
		t.Errorf("no duplicate counted after the redelivery")
	}
}
