package analytics

import (
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestGini(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		xs   []float64
		want float64
	}{
		{"none", nil, 0},
		{"one", []float64{5}, 0},
		{"even", []float64{3, 3, 3}, 0},
		{"all zero", []float64{0, 0}, 0},
		// Two values: |30 − 10| / (30 + 10) = 0.5.
		{"two", []float64{30, 10}, 0.5},
		// One voice of three: Σ|xi−xj| = 4 × 6 = 24; 24 / (2 × 2 × 6) = 1.
		{"one voice", []float64{6, 0, 0}, 1},
		// 1, 2, 3: pairs |1−2|,|1−3|,|2−3| = 1+2+1 = 4, doubled 8; 8 / (2 × 2 × 6) = 1/3.
		{"ramp", []float64{1, 2, 3}, 1.0 / 3},
		{"negative counts as zero", []float64{-4, 4}, 1},
	}
	for _, tt := range tests {
		if got := Gini(tt.xs); !near(got, tt.want) {
			t.Errorf("%s: Gini(%v) = %v, want %v", tt.name, tt.xs, got, tt.want)
		}
	}
}

func TestEngagementScore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                  string
		rate, speak, silence  float64
		tier1, onTopic, quest int64
		groups                int
		duration              int64
		want                  float64
	}{
		{"nothing", 0, 0, 0, 0, 0, 0, 0, 0, 0},
		// 100 × (0.4 × 1 + 0.3 × 1 + 0.2 × 1 + 0.1 × min(1, 30/1/(600/600)/3)) = 100.
		{"everything", 100, 60, 0, 4, 4, 30, 1, 600, 100},
		// P 0.5, S 20/(20+60) = 0.25, T 1/4, Q = 3/3/(1200/600)/3 = 1/6:
		// 100 × (0.2 + 0.075 + 0.05 + 0.016667) = 34.1667 → 34.17.
		{"mixed", 50, 20, 60, 4, 1, 3, 3, 1200, 34.17},
		// Participation only: 100 × 0.4 × 0.75 = 30.
		{"no audio, no analyses", 75, 0, 0, 0, 0, 5, 0, 600, 30},
		// Over 100 % participation is clamped.
		{"clamped", 150, 0, 0, 0, 0, 0, 2, 0, 40},
	}
	for _, tt := range tests {
		got := EngagementScore(tt.rate, tt.speak, tt.silence, tt.tier1, tt.onTopic, tt.quest, tt.groups, tt.duration)
		if !near(got, tt.want) {
			t.Errorf("%s: EngagementScore = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestComputeFallbacks(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	g := newID()
	// No roster in the context (members unknown, student_count 0): participation is joined /
	// (target group size × groups) = 3 / (4 × 2) = 37.5 %.
	ctx := &sessionv1.Session{Id: "s", TargetGroupSize: 4, Groups: []*sessionv1.Group{{Id: g, Name: "A", GroupNumber: 1}, {Id: newID(), Name: "B", GroupNumber: 2}},
		ActualStart: timestamppb.New(now.Add(-10 * time.Minute)), ActualEnd: timestamppb.New(now)}
	members := []Member{{GroupID: g, StudentID: "x", JoinedAt: now}, {GroupID: g, StudentID: "y", JoinedAt: now.Add(-time.Minute)}, {GroupID: g, StudentID: "z", JoinedAt: now}}
	a := computeAnalytics(computeInput{SessionID: "s", Context: ctx, Members: members, Now: now})
	if a.ParticipationRate != 37.5 || a.StudentCount != 3 || a.JoinedStudentCount != 3 || a.GroupCount != 2 {
		t.Errorf("participation %v students %d joined %d groups %d", a.ParticipationRate, a.StudentCount, a.JoinedStudentCount, a.GroupCount)
	}
	// No duration_seconds: actual end − start = 600 s.
	if a.DurationSeconds != 600 {
		t.Errorf("duration = %d, want 600", a.DurationSeconds)
	}
	if got := a.Groups[0].GetFirstJoinAt().AsTime(); !got.Equal(now.Add(-time.Minute)) || a.Groups[0].MemberCount != 3 {
		t.Errorf("first join %v members %d", got, a.Groups[0].MemberCount)
	}

	// Without a context (the session service was unreachable), the stored state stands in.
	start := now.Add(-5 * time.Minute)
	a = computeAnalytics(computeInput{SessionID: "s", State: SessionState{StudentCount: 6, StartedAt: &start, SessionInsights: 2, Prompts: 1},
		Groups: []GroupState{{GroupID: g, Name: "A", SpeakingSeconds: 3, Words: 4, Tier1: 2, OnTopic: 1, Insights: 2,
			SpeakerWords: map[string]int64{"p": 30, "q": 10}}}, Members: members, Now: now})
	if a.StudentCount != 6 || a.ParticipationRate != 50 || a.DurationSeconds != 300 || a.InsightCount != 4 || a.PromptCount != 1 {
		t.Errorf("from stored state: %v", a)
	}
	// Speakers told apart: |30 − 10| / 40 = 0.5.
	if got := a.Groups[0].ParticipationGini; got != 0.5 {
		t.Errorf("within-group Gini = %v, want 0.5", got)
	}
	if a.Groups[0].GroupName != "A" || a.Groups[0].OnTopicRatio != 0.5 {
		t.Errorf("group = %v", a.Groups[0])
	}
}
