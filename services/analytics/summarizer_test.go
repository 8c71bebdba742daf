package analytics

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
)

func TestRepresentativeSentences(t *testing.T) {
	t.Parallel()
	// Three sentences about photosynthesis share terms; the off-topic ones share none with
	// anything, so they are the least central.
	sents := sentences([]string{
		"Plants need sunlight for photosynthesis. My dog likes pizza a lot.",
		"Photosynthesis turns sunlight and water into sugar! Ok.",
		"The leaves capture sunlight for photosynthesis? Tomorrow we play football outside.",
	})
	want := []string{"Plants need sunlight for photosynthesis.", "My dog likes pizza a lot.", "Photosynthesis turns sunlight and water into sugar!",
		"The leaves capture sunlight for photosynthesis?", "Tomorrow we play football outside."}
	if diff := cmp.Diff(want, sents); diff != "" {
		t.Fatalf("sentences mismatch (-want +got):\n%s", diff)
	}
	got := representative(sents, 3)
	wantPicked := []string{"Plants need sunlight for photosynthesis.", "Photosynthesis turns sunlight and water into sugar!", "The leaves capture sunlight for photosynthesis?"}
	if diff := cmp.Diff(wantPicked, got); diff != "" {
		t.Errorf("representative mismatch (-want +got):\n%s", diff)
	}
	if got := representative(nil, 3); got != nil {
		t.Errorf("representative(nil) = %v", got)
	}
	if got := topTerms([][]string{sents}, 2); !cmp.Equal(got, []string{"photosynthesis", "sunlight"}) {
		t.Errorf("topTerms = %v", got)
	}
}

func TestBuiltinSummarizer(t *testing.T) {
	t.Parallel()
	quiet := &analyticsv1.GroupMetrics{GroupId: "g2", GroupName: "Quiet ones", MemberCount: 0, SpeakingSeconds: 10, SilenceSeconds: 110,
		LongestSilenceSeconds: 75, WordCount: 12, TurnCount: 2, InsightCount: 2, OnTopicRatio: 0.25, ParticipationGini: -1}
	busy := &analyticsv1.GroupMetrics{GroupId: "g1", GroupName: "Busy", MemberCount: 3, SpeakingSeconds: 250, SilenceSeconds: 50,
		LongestSilenceSeconds: 8, WordCount: 600, TurnCount: 20, InsightCount: 4, OnTopicRatio: 1, QuestionCount: 5, ParticipationGini: 0.7}
	in := SummaryInput{
		SessionID: "s", Title: "Fractions", Objectives: []string{"Compare fractions"},
		Analytics: &analyticsv1.SessionAnalytics{GroupCount: 2, StudentCount: 8, JoinedStudentCount: 3, ParticipationRate: 37.5,
			DurationSeconds: 1800, EngagementScore: 41.2, SpeakingSeconds: 260, WordCount: 612, InsightCount: 7, PromptCount: 3,
			PromptsAcknowledged: 1, Groups: []*analyticsv1.GroupMetrics{busy, quiet}},
		Groups: []GroupSummaryInput{
			{GroupID: "g1", Name: "Busy", Metrics: busy, Transcript: []string{"A half is bigger than a third. We compared the fractions with pictures."}},
			{GroupID: "g2", Name: "Quiet ones", Metrics: quiet},
		},
	}
	sum, groups, err := BuiltinSummarizer{}.Summarize(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	again, groups2, _ := BuiltinSummarizer{}.Summarize(context.Background(), in)
	if !cmp.Equal(sum, again, protocmp.Transform()) || !cmp.Equal(groups, groups2, protocmp.Transform()) {
		t.Error("the built-in summarizer is not deterministic")
	}
	wantSession := &analyticsv1.SessionSummary{
		SessionId: "s", Summarizer: "builtin",
		Text: "Fractions: 2 groups; 3 of 8 students joined (38% participation). Active for 30m 00s; engagement score 41/100." +
			" Most talkative: Busy (4m 10s); quietest: Quiet ones (10s).",
		Highlights: []string{
			"Key terms: bigger, compared, fractions, half, pictures.",
			"4m 20s of talk across groups; 612 words transcribed.",
			"7 insights; 3 teacher prompts, 1 acknowledged.",
			"Most focused: Busy (100% on topic).",
		},
		NextSteps: []string{
			"Check in with Busy: a few voices dominated the talk (Gini 0.70).",
			"Check in with Quiet ones: no student joined this group.",
			"Revisit the objective \"Compare fractions\" with the 1 group that drifted off topic.",
			"Review the 2 teacher prompts not acknowledged.",
			"Follow up with the 5 students who did not join.",
		},
	}
	if diff := cmp.Diff(wantSession, sum, protocmp.Transform()); diff != "" {
		t.Errorf("session summary mismatch (-want +got):\n%s", diff)
	}
	wantQuiet := &analyticsv1.GroupSummary{
		GroupId: "g2", Summarizer: "builtin",
		Text:      "Quiet ones: 0 students spoke for 10s in 2 turns (12 words); 25% of the analysed discussion was on topic and 0 questions were asked.",
		KeyPoints: []string{"0 students; spoke for 10s in 2 turns (12 words); 0 questions."},
		Concerns: []string{
			"No student joined this group.",
			"The group spoke during only 8% of the recorded time.",
			"A silence of 1m 15s suggests the group stalled.",
			"Only 25% of the analysed discussion was on topic.",
			"No questions were asked in the analysed discussion.",
		},
	}
	if diff := cmp.Diff(wantQuiet, groups[1], protocmp.Transform()); diff != "" {
		t.Errorf("quiet group summary mismatch (-want +got):\n%s", diff)
	}
	if got := groups[0].GetKeyPoints(); !cmp.Equal(got, []string{"A half is bigger than a third.", "We compared the fractions with pictures."}) {
		t.Errorf("busy key points = %q", got)
	}
	if err := checkSummaries(in, sum, groups); err != nil {
		t.Errorf("checkSummaries of the built-in answer: %v", err)
	}
	if err := checkSummaries(in, sum, groups[:1]); err == nil {
		t.Error("checkSummaries accepted a missing group")
	}
}

func TestExportCSVInjection(t *testing.T) {
	t.Parallel()
	a := &analyticsv1.SessionAnalytics{SessionId: "s", Status: "live", Groups: []*analyticsv1.GroupMetrics{
		{GroupId: "g", GroupName: `=HYPERLINK("http://x","click")`},
		{GroupId: "h", GroupName: "Group, \"quoted\"\nnewline"},
	}}
	data, err := exportCSV(a)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || len(rows[1]) != len(csvHeader) || len(rows[3]) != len(csvHeader) {
		t.Fatalf("rows = %q", rows)
	}
	if got := rows[1][4]; !strings.HasPrefix(got, "'=") {
		t.Errorf("formula cell = %q, want it neutralized", got)
	}
	if got := rows[2][4]; got != "Group, \"quoted\"\nnewline" {
		t.Errorf("quoted cell = %q", got)
	}
}
