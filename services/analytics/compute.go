package analytics

import (
	"math"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
)

// Engagement score weights (see EngagementScore).
const (
	weightParticipation = 0.4
	weightSpeaking      = 0.3
	weightOnTopic       = 0.2
	weightQuestions     = 0.1
	// questionsTarget is the questions per group per 10 minutes that earn the full questions term.
	questionsTarget = 3.0
)

// EngagementScore is a session's engagement, 0..100:
//
//	engagement = 100 × (0.4 × P + 0.3 × S + 0.2 × T + 0.1 × Q)
//
//	P = participation rate / 100: joined students / rostered students
//	S = speaking share of the measured audio: speaking seconds / (speaking + silence seconds),
//	    over every group's speech-activity windows (0 when no audio was measured)
//	T = on-topic ratio: Tier 1 analyses judged on topic / all Tier 1 analyses, session-wide
//	    (0 when there was none)
//	Q = min(1, questions per group per 10 minutes / 3): the Tier 1 question count over the
//	    session's groups and active duration (pauses excluded); 0 without groups or duration
//
// Each term is clamped to 0..1 and the result rounded to two decimals. The README's "Engagement
// score" section documents the same formula.
func EngagementScore(participationRate, speakingSeconds, silenceSeconds float64, tier1, onTopic, questions int64, groups int, durationSeconds int64) float64 {
	p := clamp01(participationRate / 100)
	s := 0.0
	if audio := speakingSeconds + silenceSeconds; audio > 0 {
		s = clamp01(speakingSeconds / audio)
	}
	t := 0.0
	if tier1 > 0 {
		t = clamp01(float64(onTopic) / float64(tier1))
	}
	q := 0.0
	if groups > 0 && durationSeconds > 0 {
		perGroupPer10Min := float64(questions) / float64(groups) / (float64(durationSeconds) / 600)
		q = clamp01(perGroupPer10Min / questionsTarget)
	}
	return round2(100 * (weightParticipation*p + weightSpeaking*s + weightOnTopic*t + weightQuestions*q))
}

// Gini is the normalized Gini coefficient of xs: 0 when every value is equal, 1 when one value
// holds everything:
//
//	G = Σᵢ Σⱼ |xᵢ − xⱼ| / (2 (n − 1) Σ x)
//
// (the population Gini scaled by n/(n−1), so one voice among n reads 1 whatever n). Fewer than
// two values, or a zero total, give 0. Negative values are treated as 0.
func Gini(xs []float64) float64 {
	n := len(xs)
	if n < 2 {
		return 0
	}
	total := 0.0
	for _, x := range xs {
		total += max(x, 0)
	}
	if total <= 0 {
		return 0
	}
	diff := 0.0
	for _, a := range xs {
		for _, b := range xs {
			diff += math.Abs(max(a, 0) - max(b, 0))
		}
	}
	return clamp01(diff / (2 * float64(n-1) * total))
}

// giniUnknown is GroupMetrics.participation_gini when speakers cannot be told apart.
const giniUnknown = -1

func clamp01(x float64) float64 {
	switch {
	case math.IsNaN(x) || x < 0:
		return 0
	case x > 1:
		return 1
	}
	return x
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

// computeInput is what a session's analytics are computed from: the session context (nil when
// the session service could not be reached; the stored state stands in), and what the bus told.
type computeInput struct {
	SessionID string
	Context   *sessionv1.Session
	State     SessionState
	Groups    []GroupState
	Members   []Member
	Now       time.Time
}

// computeAnalytics computes a session's analytics. Status, FinalizedAt and FailureReason are the
// caller's to set.
//
// Rules, where the session context and the bus may disagree:
//   - groups are the context's (in group-number order) followed by any other group the bus
//     reported (by id);
//   - a student counts as joined when the context has their joined_at or a GroupMemberJoined
//     was seen; a group's member_count is its joined students and first_join_at the earliest join;
//   - rostered students are the context's members (or its student_count when it lists none),
//     never fewer than the joined ones; with no roster, participation is joined / (target group
//     size × groups);
//   - ready_at is the earliest readiness either reported;
//   - duration is the context's duration_seconds (pauses excluded), else actual end − start.
func computeAnalytics(in computeInput) *analyticsv1.SessionAnalytics {
	stored := map[string]GroupState{}
	for _, g := range in.Groups {
		stored[g.GroupID] = g
	}
	type groupInfo struct {
		id, name string
		ready    *time.Time
		members  map[string]time.Time // joined students -> join time
		roster   int
	}
	var groups []*groupInfo
	byID := map[string]*groupInfo{}
	add := func(id, name string) *groupInfo {
		if g, ok := byID[id]; ok {
			return g
		}
		g := &groupInfo{id: id, name: name, members: map[string]time.Time{}}
		byID[id] = g
		groups = append(groups, g)
		return g
	}
	rostered := map[string]bool{}
	joinedAt := map[string]time.Time{} // student -> earliest join
	if c := in.Context; c != nil {
		ctxGroups := slices.Clone(c.GetGroups())
		slices.SortStableFunc(ctxGroups, func(a, b *sessionv1.Group) int { return int(a.GetGroupNumber()) - int(b.GetGroupNumber()) })
		for _, cg := range ctxGroups {
			g := add(cg.GetId(), cg.GetName())
			g.ready = earliest(g.ready, tsPtr(cg.GetReadyAt()))
			for _, m := range cg.GetMembers() {
				if m.GetStudentId() == "" {
					continue
				}
				rostered[m.GetStudentId()] = true
				g.roster++
				if m.GetJoinedAt() != nil {
					t := m.GetJoinedAt().AsTime()
					g.members[m.GetStudentId()] = t
					joinedAt[m.GetStudentId()] = t
				}
			}
		}
	}
	rest := make([]string, 0, len(stored))
	for id := range stored {
		if _, ok := byID[id]; !ok {
			rest = append(rest, id)
		}
	}
	slices.Sort(rest)
	for _, id := range rest {
		add(id, stored[id].Name)
	}
	for _, m := range in.Members {
		g := add(m.GroupID, stored[m.GroupID].Name)
		if t, ok := g.members[m.StudentID]; !ok || m.JoinedAt.Before(t) {
			g.members[m.StudentID] = m.JoinedAt
		}
		if t, ok := joinedAt[m.StudentID]; !ok || m.JoinedAt.Before(t) {
			joinedAt[m.StudentID] = m.JoinedAt
		}
	}

	out := &analyticsv1.SessionAnalytics{SessionId: in.SessionID, ComputedAt: timestamppb.New(in.Now)}
	var (
		tier1, onTopic, questions int64
		perGroupSpeaking          []float64
	)
	for _, gi := range groups {
		st := stored[gi.id]
		gm := &analyticsv1.GroupMetrics{
			GroupId:               gi.id,
			GroupName:             gi.name,
			MemberCount:           int32(len(gi.members)),
			SpeakingSeconds:       st.SpeakingSeconds,
			SilenceSeconds:        st.SilenceSeconds,
			LongestSilenceSeconds: st.LongestSilenceSeconds,
			WordCount:             st.Words,
			TurnCount:             st.Turns,
			ParticipationGini:     giniUnknown,
			QuestionCount:         int32(st.Questions),
			InsightCount:          int32(st.Insights),
		}
		if gm.GroupName == "" {
			gm.GroupName = st.Name
		}
		if len(st.SpeakerWords) >= 2 {
			words := make([]float64, 0, len(st.SpeakerWords))
			for _, w := range st.SpeakerWords {
				words = append(words, float64(w))
			}
			slices.Sort(words)
			gm.ParticipationGini = Gini(words)
		}
		if st.Tier1 > 0 {
			gm.OnTopicRatio = clamp01(float64(st.OnTopic) / float64(st.Tier1))
		}
		var first *time.Time
		for _, t := range gi.members {
			first = earliest(first, &t)
		}
		if first != nil {
			gm.FirstJoinAt = timestamppb.New(*first)
		}
		if ready := earliest(gi.ready, st.ReadyAt); ready != nil {
			gm.ReadyAt = timestamppb.New(*ready)
		}
		out.Groups = append(out.Groups, gm)
		out.SpeakingSeconds += st.SpeakingSeconds
		out.SilenceSeconds += st.SilenceSeconds
		out.WordCount += st.Words
		out.InsightCount += int32(st.Insights)
		tier1 += st.Tier1
		onTopic += st.OnTopic
		questions += st.Questions
		perGroupSpeaking = append(perGroupSpeaking, st.SpeakingSeconds)
	}
	out.InsightCount += int32(in.State.SessionInsights)
	out.PromptCount = int32(in.State.Prompts)
	out.PromptsAcknowledged = int32(in.State.PromptsAcknowledged)
	out.GroupCount = int32(len(groups))
	out.GroupBalanceGini = Gini(perGroupSpeaking)

	// Roster and participation.
	roster := len(rostered)
	target := 0
	if c := in.Context; c != nil {
		if roster == 0 {
			roster = int(c.GetStudentCount())
		}
		target = int(c.GetTargetGroupSize()) * len(groups)
		if c.GetGroupCount() > out.GroupCount && len(c.GetGroups()) == 0 {
			out.GroupCount = c.GetGroupCount()
		}
	} else {
		roster = in.State.StudentCount
	}
	joined := len(joinedAt)
	rate := 0.0 // unrounded, for the engagement score
	switch {
	case roster > 0:
		rate = 100 * float64(joined) / float64(max(roster, joined))
	case target > 0:
		rate = 100 * clamp01(float64(joined)/float64(target))
	}
	out.StudentCount = int32(max(roster, joined))
	out.JoinedStudentCount = int32(joined)
	out.ParticipationRate = round2(rate)

	// Duration, pauses excluded.
	if c := in.Context; c != nil {
		out.DurationSeconds = c.GetDurationSeconds()
		if out.DurationSeconds <= 0 && c.GetActualStart() != nil && c.GetActualEnd() != nil {
			out.DurationSeconds = max(0, int64(c.GetActualEnd().AsTime().Sub(c.GetActualStart().AsTime())/time.Second))
		}
	} else if in.State.StartedAt != nil {
		end := in.Now
		if in.State.EndedAt != nil {
			end = *in.State.EndedAt
		}
		out.DurationSeconds = max(0, int64(end.Sub(*in.State.StartedAt)/time.Second))
	}

	out.EngagementScore = EngagementScore(rate, out.SpeakingSeconds, out.SilenceSeconds,
		tier1, onTopic, questions, int(out.GroupCount), out.DurationSeconds)
	return out
}

func tsPtr(ts *timestamppb.Timestamp) *time.Time {
	if ts == nil {
		return nil
	}
	t := ts.AsTime()
	return &t
}

// earliest returns the earlier of a and b, either of which may be nil.
func earliest(a, b *time.Time) *time.Time {
	switch {
	case a == nil:
		return b
	case b == nil || a.Before(*b):
		return a
	}
	return b
}
