package guidance

import (
	"context"
	"slices"
	"testing"
	"time"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	"github.com/classwaves/classwaves/pkg/bus"
	busevents "github.com/classwaves/classwaves/pkg/events"
	"google.golang.org/protobuf/proto"
)

// BenchmarkTranscriptToInsight measures the service's part of "transcript event to
// ai:tier1:insight": from a TranscriptReady published on the in-process bus to the
// InsightProduced the service publishes, observed by a fan-out subscriber (as the realtime edge
// observes it). Each transcript closes a span of AI_TIER1_INTERVAL, so each is analysed by the
// built-in analyzer on SQLite, the monolithic defaults. Reports p50 and p99 in ms besides ns/op.
func BenchmarkTranscriptToInsight(b *testing.B) {
	const window = 15 * time.Second
	h := newHarness(b, func(c *Config) { c.Tier1Interval = window })
	g := golden(b, "on_topic_collaborative")
	sess := newSession(teacher1, schoolA, 1, g.Objectives...)
	h.sessions.put(sess)
	group := sess.Groups[0].Id
	seen := make(chan struct{}, 1)
	sub, err := h.bus.FanOut(context.Background(), h.cfg.EventsTopic, func(_ context.Context, m bus.Message) {
		ev := &eventsv1.Event{}
		if proto.Unmarshal(m.Payload, ev) == nil && ev.GetType() == busevents.InsightProduced && ev.GetInsightProduced().GetTier() == 1 {
			seen <- struct{}{}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Close() })
	start := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	lat := make([]time.Duration, 0, b.N)
	i := 0
	b.ResetTimer()
	for b.Loop() {
		tr := g.Turns[i%len(g.Turns)]
		ws := start.Add(time.Duration(i) * window)
		t0 := time.Now()
		h.transcript(sess, group, newID(), tr.Speaker+": "+tr.Text, ws, ws.Add(window))
		select {
		case <-seen:
		case <-time.After(waitTimeout):
			b.Fatalf("no insight for transcript %d", i)
		}
		lat = append(lat, time.Since(t0))
		i++
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return ms(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
