package analytics

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
	busevents "github.com/classwaves/classwaves/pkg/events"
	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/store/storetest"
)

// BenchmarkApply measures applying events (one transaction each: the event id recorded, the
// group's counters incremented), the work per consumed event.
func BenchmarkApply(b *testing.B) {
	for _, p := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		b.Run(p.name, func(b *testing.B) {
			st := newSQLStore(p.open(b))
			if err := st.Migrate(context.Background()); err != nil {
				b.Fatal(err)
			}
			s, groups := newID(), []string{newID(), newID(), newID(), newID()}
			now := time.Now()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				c := Change{EventID: newID(), Kind: kindSpeech, Type: busevents.SpeechActivity, SessionID: s, GroupID: groups[i%len(groups)],
					At: now, Speech: 10, Silence: 5, LongestSilence: 2}
				if _, err := st.Apply(context.Background(), c); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkBuiltinSummarizer measures the built-in summarizer on a session of 8 groups with 60
// transcribed windows each (15 minutes of 15 s windows).
func BenchmarkBuiltinSummarizer(b *testing.B) {
	words := strings.Fields("plants use sunlight water carbon dioxide to make glucose and oxygen in the leaves chlorophyll captures light energy why are leaves green what happens at night roots absorb minerals")
	in := SummaryInput{SessionID: "s", Title: "Photosynthesis", Analytics: &analyticsv1.SessionAnalytics{GroupCount: 8}}
	for g := range 8 {
		m := &analyticsv1.GroupMetrics{GroupId: fmt.Sprint(g), GroupName: fmt.Sprintf("Group %d", g+1), MemberCount: 4, SpeakingSeconds: 300}
		gi := GroupSummaryInput{GroupID: m.GroupId, Name: m.GroupName, Metrics: m}
		for w := range 60 {
			var sb strings.Builder
			for k := range 24 {
				sb.WriteString(words[(g*7+w*5+k*3)%len(words)])
				if k%8 == 7 {
					sb.WriteString(". ")
				} else {
					sb.WriteByte(' ')
				}
			}
			gi.Transcript = append(gi.Transcript, sb.String())
		}
		in.Analytics.Groups = append(in.Analytics.Groups, m)
		in.Groups = append(in.Groups, gi)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := (BuiltinSummarizer{}).Summarize(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}
