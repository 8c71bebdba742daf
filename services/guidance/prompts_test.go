package guidance

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
)

// TestPromptPolicy is the feedback rule, case by case.
func TestPromptPolicy(t *testing.T) {
	t.Parallel()
	pp := promptPolicy{cooldown: 2 * time.Minute, dismissFactor: 3, ttl: 10 * time.Minute}
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	prompt := func(status, prio string, created, acted time.Time) *Prompt {
		return &Prompt{Status: status, Priority: prio, CreatedAt: created, ExpiresAt: created.Add(pp.ttl), ActedAt: acted}
	}
	high := candidate{Kind: KindAlert, Category: CategoryOffTask, Priority: PriorityHigh}
	persisting := high
	persisting.Persisting = true
	tests := []struct {
		name       string
		c          candidate
		last       *Prompt
		prio, supp string
	}{
		{"first", high, nil, PriorityHigh, ""},
		{"pending inside the cooldown", high, prompt(StatusPending, PriorityHigh, ago(time.Minute), time.Time{}), "", suppressCooldown},
		{"pending after the cooldown", high, prompt(StatusPending, PriorityHigh, ago(3*time.Minute), time.Time{}), PriorityHigh, ""},
		{"expired long ago", high, prompt(StatusPending, PriorityHigh, ago(time.Hour), time.Time{}), PriorityHigh, ""},
		{"dismissed inside 3x", high, prompt(StatusDismissed, PriorityHigh, ago(time.Hour), ago(5*time.Minute)), "", suppressDismissed},
		{"dismissed after 3x", high, prompt(StatusDismissed, PriorityHigh, ago(time.Hour), ago(7*time.Minute)), PriorityHigh, ""},
		{"acknowledged inside the cooldown", high, prompt(StatusAcknowledged, PriorityHigh, ago(time.Hour), ago(time.Minute)), "", suppressAcknowledged},
		{"acknowledged, persisting", persisting, prompt(StatusAcknowledged, PriorityHigh, ago(time.Hour), ago(3*time.Minute)), PriorityMedium, ""},
		{"acknowledged, came back", high, prompt(StatusAcknowledged, PriorityHigh, ago(time.Hour), ago(3*time.Minute)), PriorityHigh, ""},
		{"lowered stays lowered while persisting", persisting, prompt(StatusPending, PriorityMedium, ago(3*time.Minute), time.Time{}), PriorityMedium, ""},
		{"lowered, came back", high, prompt(StatusPending, PriorityMedium, ago(3*time.Minute), time.Time{}), PriorityHigh, ""},
	}
	for _, tt := range tests {
		prio, supp := pp.decide(tt.c, tt.last, now)
		if prio != tt.prio || supp != tt.supp {
			t.Errorf("%s: decide = %q, %q; want %q, %q", tt.name, prio, supp, tt.prio, tt.supp)
		}
	}
}

func TestAlertWording(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	ins := &guidancev1.Tier1Insight{GroupId: "g", WindowStart: timestamppb.New(start), WindowEnd: timestamppb.New(start.Add(30 * time.Second)),
		Metrics: &guidancev1.Tier1Metrics{OffTaskRatio: 0.72, TopicalFocus: 0.18, SilenceSeconds: 24.4, ConfusionMarkers: 4, ParticipationBalance: 0.21}}
	cands := tier1Candidates(ins, []string{CategoryOffTask, CategoryLowFocus, CategorySilence, CategoryConfusion, CategoryDominance, "new_thing"},
		[]string{CategorySilence}, "Group A", true)
	want := map[string]string{
		CategoryOffTask:   "72% of the last 30 s was off topic",
		CategoryLowFocus:  "topical focus on the objectives was 18% over the last 30 s",
		CategorySilence:   "24 s of silence in the last 30 s",
		CategoryConfusion: `4 signs of confusion (such as "I don't get it") in the last 30 s`,
		CategoryDominance: "participation balance was 0.21 (1 is even) over the last 30 s",
		"new_thing":       "the analysis flagged new thing in the last 30 s",
	}
	for _, c := range cands {
		if c.Reason != want[c.Category] {
			t.Errorf("%s reason %q, want %q", c.Category, c.Reason, want[c.Category])
		}
		if c.Message == "" || c.GroupID != "g" || c.Kind != KindAlert {
			t.Errorf("%s candidate %+v", c.Category, c)
		}
		if c.Persisting != (c.Category == CategorySilence) {
			t.Errorf("%s persisting = %v", c.Category, c.Persisting)
		}
	}
	if got := spanWords(3 * time.Minute); got != "3 min" {
		t.Errorf("spanWords(3m) = %q", got)
	}
	info := &sessionInfo{Groups: map[string]string{"g": "Group A"}}
	t2 := &guidancev1.Tier2Insight{Summary: "Groups are mostly on task.", Recommendations: []*guidancev1.Recommendation{
		{GroupId: "g", Text: "Ask them to justify", Priority: "high", Category: "Deepen"},
		{GroupId: "other", Text: "Regroup", Priority: "urgent"},
		{Text: "  "},
	}}
	rc := tier2Candidates(t2, info)
	if len(rc) != 2 || rc[0].GroupID != "g" || rc[0].Category != "deepen" || rc[0].Priority != PriorityHigh ||
		rc[1].GroupID != "" || rc[1].Category != categoryGeneral || rc[1].Priority != PriorityMedium || rc[0].Reason != t2.Summary {
		t.Errorf("tier 2 candidates %+v", rc)
	}
}
