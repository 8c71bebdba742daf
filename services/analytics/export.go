package analytics

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
)

// csvContentType is the export's content type.
const csvContentType = "text/csv; charset=utf-8"

// csvHeader are the export's columns: a row per group (record "group", the session columns empty)
// and a last row for the session (record "session", the group columns empty).
var csvHeader = []string{
	"record", "session_id", "status", "group_id", "group_name", "member_count",
	"speaking_seconds", "silence_seconds", "longest_silence_seconds", "word_count", "turn_count",
	"participation_gini", "on_topic_ratio", "question_count", "insight_count", "first_join_at", "ready_at",
	"participation_rate", "engagement_score", "duration_seconds", "group_count", "student_count",
	"joined_student_count", "prompt_count", "prompts_acknowledged", "group_balance_gini", "computed_at", "finalized_at",
}

// exportCSV renders a as CSV (RFC 4180). Text cells that a spreadsheet would run as a formula
// (starting with =, +, -, @, tab or carriage return) are prefixed with an apostrophe.
func exportCSV(a *analyticsv1.SessionAnalytics) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(csvHeader); err != nil {
		return nil, err
	}
	for _, g := range a.GetGroups() {
		row := []string{
			"group", a.GetSessionId(), a.GetStatus(), cell(g.GetGroupId()), cell(g.GetGroupName()), itoa(int64(g.GetMemberCount())),
			ftoa(g.GetSpeakingSeconds()), ftoa(g.GetSilenceSeconds()), ftoa(g.GetLongestSilenceSeconds()),
			itoa(g.GetWordCount()), itoa(g.GetTurnCount()), ftoa(g.GetParticipationGini()), ftoa(g.GetOnTopicRatio()),
			itoa(int64(g.GetQuestionCount())), itoa(int64(g.GetInsightCount())), tstr(g.GetFirstJoinAt()), tstr(g.GetReadyAt()),
		}
		row = append(row, make([]string, len(csvHeader)-len(row))...)
		if err := w.Write(row); err != nil {
			return nil, err
		}
	}
	row := []string{
		"session", a.GetSessionId(), a.GetStatus(), "", "", "",
		ftoa(a.GetSpeakingSeconds()), ftoa(a.GetSilenceSeconds()), "", itoa(a.GetWordCount()), "",
		"", "", "", itoa(int64(a.GetInsightCount())), "", "",
		ftoa(a.GetParticipationRate()), ftoa(a.GetEngagementScore()), itoa(a.GetDurationSeconds()), itoa(int64(a.GetGroupCount())),
		itoa(int64(a.GetStudentCount())), itoa(int64(a.GetJoinedStudentCount())), itoa(int64(a.GetPromptCount())),
		itoa(int64(a.GetPromptsAcknowledged())), ftoa(a.GetGroupBalanceGini()), tstr(a.GetComputedAt()), tstr(a.GetFinalizedAt()),
	}
	if err := w.Write(row); err != nil {
		return nil, err
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// cell neutralizes spreadsheet formulas (CSV injection).
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func itoa(n int64) string   { return strconv.FormatInt(n, 10) }
func ftoa(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

func tstr(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().UTC().Format(time.RFC3339Nano)
}
