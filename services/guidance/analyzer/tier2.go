package analyzer

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
)

// Tier 2 constants (README.md, "Tier 2").
const (
	// ArgumentFullShare is the share of a group's sentences carrying a marker at which a component
	// of argumentation scores 1: score = min(1, share / ArgumentFullShare).
	ArgumentFullShare = 0.25
	// ReasoningSignal is the reasoning score (or claims and evidence scores together) from which a
	// group "explains_reasoning".
	ReasoningSignal = 0.3
	// Tier2ConfusionMarkers is the number of confusion markers from which a group shows "confusion".
	Tier2ConfusionMarkers = 2
	// LowEvidence is the evidence score below which a group making claims is asked for evidence.
	LowEvidence = 0.3
)

// Collaboration patterns and learning signals of Tier 2, in the order they are answered.
const (
	PatternBuildingOnIdeas = "building_on_ideas"
	PatternParallelTalk    = "parallel_talk"
	PatternDominated       = "dominated"
	PatternBalanced        = "balanced"
	PatternSilent          = "silent"

	SignalExplainsReasoning = "explains_reasoning"
	SignalAsksQuestions     = "asks_questions"
	SignalMisconception     = "misconception"
	SignalConfusion         = "confusion"
	SignalOffTask           = "off_task"
)

// Recommendation categories and priorities.
const (
	CategoryRedirect      = "redirect"
	CategoryDeepen        = "deepen"
	CategoryParticipation = "participation"
	CategoryCollaboration = "collaboration"
	CategoryCheckIn       = "check_in"

	PriorityHigh   = "high"
	PriorityMedium = "medium"
	PriorityLow    = "low"
)

// groupState is what Tier 2 concluded about one group.
type groupState struct {
	label      string
	analysis   *guidancev1.GroupAnalysis
	status     string // summary category: "no data", "silent", "off-task", "drifting", "confused", "on task"
	confidence float64
	offTask    float64 // off-task share of the group's talk
	hasData    bool
	recs       []*guidancev1.Recommendation
}

// Tier2 analyses every group of a session: argumentation, collaboration patterns, learning signals
// and evidence per group, recommendations, a summary and a confidence. It answers ErrNoContent when
// no group has a transcript, speech activity or Tier 1 insight. "comprehensive" depth quotes up to
// five excerpts per group instead of three.
func (b *Builtin) Tier2(ctx context.Context, in Tier2Input) (*guidancev1.Tier2Insight, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	maxEvidence := 3
	if in.Depth == "comprehensive" {
		maxEvidence = 5
	}
	topic := "the topic"
	if len(in.Objectives) > 0 && strings.TrimSpace(in.Objectives[0]) != "" {
		topic = "\"" + truncateRunes(strings.TrimRight(strings.TrimSpace(in.Objectives[0]), ".!;: "), 120) + "\""
	}
	out := &guidancev1.Tier2Insight{Analyzer: BuiltinName}
	var states []groupState
	for _, g := range in.Groups {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		st := analyzeGroup(in.Objectives, g, maxEvidence, topic)
		states = append(states, st)
		out.Groups = append(out.Groups, st.analysis)
	}
	var confSum float64
	withData, drifting := 0, 0
	for _, st := range states {
		if st.hasData {
			withData++
			confSum += st.confidence
		}
		if st.status == "off-task" || st.status == "drifting" {
			drifting++
		}
	}
	if withData == 0 {
		return nil, ErrNoContent
	}
	if drifting >= 2 && 2*drifting >= withData {
		out.Recommendations = append(out.Recommendations, &guidancev1.Recommendation{
			Text:     fmt.Sprintf("%d of %d groups have drifted from the objectives: consider a short whole-class reminder of the task (%s).", drifting, withData, topic),
			Priority: PriorityHigh,
			Category: CategoryRedirect,
		})
	}
	for _, st := range states {
		out.Recommendations = append(out.Recommendations, st.recs...)
	}
	slices.SortStableFunc(out.Recommendations, func(x, y *guidancev1.Recommendation) int {
		return priorityRank(x.GetPriority()) - priorityRank(y.GetPriority())
	})
	out.Summary = summary(states, len(in.Objectives), out.Recommendations)
	out.Confidence = round4(confSum / float64(withData))
	return out, nil
}

func priorityRank(p string) int {
	switch p {
	case PriorityHigh:
		return 0
	case PriorityMedium:
		return 1
	}
	return 2
}

// analyzeGroup measures one group from its turns, or, without turns, from its Tier 1 insights.
func analyzeGroup(objectives []string, g GroupInput, maxEvidence int, topic string) groupState {
	st := groupState{label: groupLabel(g), analysis: &guidancev1.GroupAnalysis{
		GroupId:       g.GroupID,
		Argumentation: &guidancev1.Argumentation{},
	}}
	a := analyze(objectives, nil, g.Turns, g.Activity, time.Time{}, time.Time{})
	switch {
	case a.hasTalk():
		st.fromTalk(a, maxEvidence)
	case len(g.Activity) > 0:
		st.hasData = true
		st.confidence = a.confidence()
		st.status = "silent"
		st.analysis.CollaborationPatterns = []string{PatternSilent}
	case len(g.Tier1) > 0:
		st.fromTier1(g.Tier1, maxEvidence)
	default:
		st.status = "no data"
	}
	st.recommend(topic)
	return st
}

func groupLabel(g GroupInput) string {
	if s := strings.TrimSpace(g.Name); s != "" {
		return s
	}
	if g.GroupID != "" {
		return "Group " + g.GroupID
	}
	return "A group"
}

// fromTalk fills the group analysis from a transcript analysis.
func (st *groupState) fromTalk(a *analysis, maxEvidence int) {
	st.hasData = true
	st.confidence = a.confidence()
	st.offTask = a.offTask
	ga := st.analysis

	// Argumentation: share of sentences (of three words or more) with a claim, evidence or
	// reasoning marker that are on topic, over ArgumentFullShare.
	var sentences, claims, evidence, reasoning, onTopicQuestions, onTopicFocusing, corrections int
	for _, d := range a.span() {
		for _, f := range d.sents {
			onTopic := !f.offTask && (!a.objectives || f.rel > 0 || d.rel >= OffTaskSimilarity)
			if onTopic && f.question != questionNone {
				onTopicQuestions++
			}
			if onTopic && f.question == questionFocusing {
				onTopicFocusing++
			}
			if onTopic && f.correction {
				corrections++
			}
			if f.words < 3 {
				continue
			}
			sentences++
			if !onTopic {
				continue
			}
			if f.claim {
				claims++
			}
			if f.evidence {
				evidence++
			}
			if f.reasoning {
				reasoning++
			}
		}
	}
	score := func(n int) float64 {
		if sentences == 0 {
			return 0
		}
		return round4(math.Min(1, float64(n)/float64(sentences)/ArgumentFullShare))
	}
	ga.Argumentation = &guidancev1.Argumentation{Claims: score(claims), Evidence: score(evidence), Reasoning: score(reasoning)}

	eligible := 0
	for _, d := range a.span() {
		if d.uptakeEligible {
			eligible++
		}
	}
	silent := a.spanSeconds > 0 && a.silence/a.spanSeconds >= silentShare && a.words < MinWordsForBalance
	dominated := a.speakersKnown && a.words >= MinWordsForBalance && a.balance < DominanceBalanceThreshold
	var patterns []string
	if eligible >= 2 && a.uptake >= highUptake {
		patterns = append(patterns, PatternBuildingOnIdeas)
	}
	if eligible >= 3 && a.uptake < lowUptake && !dominated {
		patterns = append(patterns, PatternParallelTalk)
	}
	if dominated {
		patterns = append(patterns, PatternDominated)
	}
	if a.speakersKnown && len(a.speakers) >= 2 && a.words >= MinWordsForBalance && a.balance >= balancedShare {
		patterns = append(patterns, PatternBalanced)
	}
	if silent {
		patterns = append(patterns, PatternSilent)
	}
	ga.CollaborationPatterns = patterns

	arg := ga.Argumentation
	var signals []string
	if arg.Reasoning >= ReasoningSignal || (arg.Claims >= ReasoningSignal && arg.Evidence >= ReasoningSignal) {
		signals = append(signals, SignalExplainsReasoning)
	}
	if onTopicFocusing >= 1 || onTopicQuestions >= 2 {
		signals = append(signals, SignalAsksQuestions)
	}
	if corrections > 0 {
		signals = append(signals, SignalMisconception)
	}
	if a.confusion >= Tier2ConfusionMarkers {
		signals = append(signals, SignalConfusion)
	}
	if a.offTask >= OffTaskAlertRatio {
		signals = append(signals, SignalOffTask)
	}
	ga.LearningSignals = signals

	switch {
	case silent:
		st.status = "silent"
	case a.offTask >= OffTaskAlertRatio:
		st.status = "off-task"
	case a.focus < LowFocusThreshold:
		st.status = "drifting"
	case a.confusion >= Tier2ConfusionMarkers:
		st.status = "confused"
	default:
		st.status = "on task"
	}
	ga.Evidence = a.tier2Evidence(maxEvidence)
}

// tier2Evidence quotes the best argument first (most marker kinds), then Tier 1's evidence choice.
func (a *analysis) tier2Evidence(max int) []*guidancev1.Evidence {
	r := a.best(func(_ *doc, f *sentFeat) float64 {
		if f.offTask {
			return 0
		}
		n := 0
		for _, b := range []bool{f.claim, f.evidence, f.reasoning} {
			if b {
				n++
			}
		}
		if n < 2 {
			return 0
		}
		return float64(n) + float64(f.words)/1e3
	})
	out := make([]*guidancev1.Evidence, 0, max)
	if r != noRef {
		d := &a.docs[r.doc]
		out = append(out, &guidancev1.Evidence{WindowId: d.turn.WindowID, Excerpt: excerpt(d, r.sent), At: timestamp(d)})
	}
	for _, e := range a.evidence(max) {
		if len(out) >= max {
			break
		}
		if slices.ContainsFunc(out, func(x *guidancev1.Evidence) bool { return x.GetWindowId() == e.GetWindowId() }) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// fromTier1 fills the group analysis from Tier 1 insights when the group has no transcript: means of
// the measures (sums of counts); argumentation needs a transcript and stays zero.
func (st *groupState) fromTier1(ins []*guidancev1.Tier1Insight, maxEvidence int) {
	var n, focus, offTask, balance, uptake, silence, conf float64
	confusion, focusing, questions := 0, 0, 0
	for _, in := range ins {
		m := in.GetMetrics()
		if m == nil {
			continue
		}
		n++
		focus += m.GetTopicalFocus()
		offTask += m.GetOffTaskRatio()
		balance += m.GetParticipationBalance()
		uptake += m.GetUptake()
		silence += m.GetSilenceSeconds()
		conf += in.GetConfidence()
		confusion += int(m.GetConfusionMarkers())
		focusing += int(m.GetFocusingQuestions())
		questions += int(m.GetQuestionCount())
	}
	if n == 0 {
		st.status = "no data"
		return
	}
	st.hasData = true
	st.confidence = clamp01(0.5 * conf / n)
	focus, offTask, balance, uptake, silence = focus/n, offTask/n, balance/n, uptake/n, silence/n
	st.offTask = offTask
	ga := st.analysis
	if uptake >= highUptake {
		ga.CollaborationPatterns = append(ga.CollaborationPatterns, PatternBuildingOnIdeas)
	}
	if balance < DominanceBalanceThreshold {
		ga.CollaborationPatterns = append(ga.CollaborationPatterns, PatternDominated)
	}
	if silence >= SilenceAlertSeconds {
		ga.CollaborationPatterns = append(ga.CollaborationPatterns, PatternSilent)
	}
	if focusing >= 1 || questions >= 2 {
		ga.LearningSignals = append(ga.LearningSignals, SignalAsksQuestions)
	}
	if confusion >= Tier2ConfusionMarkers {
		ga.LearningSignals = append(ga.LearningSignals, SignalConfusion)
	}
	if offTask >= OffTaskAlertRatio {
		ga.LearningSignals = append(ga.LearningSignals, SignalOffTask)
	}
	switch {
	case silence >= SilenceAlertSeconds:
		st.status = "silent"
	case offTask >= OffTaskAlertRatio:
		st.status = "off-task"
	case focus < LowFocusThreshold:
		st.status = "drifting"
	case confusion >= Tier2ConfusionMarkers:
		st.status = "confused"
	default:
		st.status = "on task"
	}
	// The latest insights' evidence, newest first.
	for i := len(ins) - 1; i >= 0 && len(ga.Evidence) < maxEvidence; i-- {
		for _, e := range ins[i].GetEvidence() {
			if len(ga.Evidence) < maxEvidence {
				ga.Evidence = append(ga.Evidence, e)
			}
		}
	}
}

// recommend adds up to two recommendations for the group, most urgent first (README.md, "Tier 2").
func (st *groupState) recommend(topic string) {
	ga := st.analysis
	has := func(xs []string, x string) bool { return slices.Contains(xs, x) }
	add := func(category, priority, text string) {
		if len(st.recs) < 2 {
			st.recs = append(st.recs, &guidancev1.Recommendation{GroupId: ga.GetGroupId(), Text: text, Priority: priority, Category: category})
		}
	}
	g := st.label
	arg := ga.GetArgumentation()
	switch st.status {
	case "no data":
		add(CategoryCheckIn, PriorityLow, fmt.Sprintf("Nothing has been heard from %s yet: check that their device is recording.", g))
		return
	case "silent":
		add(CategoryCheckIn, PriorityHigh, fmt.Sprintf("%s has gone quiet. Stop by and get them started: ask each student for one first idea about %s.", g, topic))
	case "off-task":
		add(CategoryRedirect, PriorityHigh, fmt.Sprintf("%s is off-task (about %d%% of their talk). Ask them to connect back to %s.", g, pct(st.offTask), topic))
	case "drifting":
		add(CategoryRedirect, PriorityMedium, fmt.Sprintf("%s has drifted from the objectives. Ask how their last idea relates to %s.", g, topic))
	}
	if has(ga.GetLearningSignals(), SignalConfusion) {
		add(CategoryCheckIn, PriorityHigh, fmt.Sprintf("%s sounds confused. Ask what they understand so far and clear up one idea at a time.", g))
	}
	if has(ga.GetLearningSignals(), SignalMisconception) {
		add(CategoryDeepen, PriorityMedium, fmt.Sprintf("%s is challenging an idea (\"I thought...\", \"that's not right\"). Ask them to test it against the evidence.", g))
	}
	if has(ga.GetCollaborationPatterns(), PatternDominated) {
		add(CategoryParticipation, PriorityMedium, fmt.Sprintf("One student is doing most of the talking in %s. Invite a quieter member: \"What do you think about what was just said?\"", g))
	}
	if has(ga.GetCollaborationPatterns(), PatternParallelTalk) && st.status != "off-task" {
		add(CategoryCollaboration, PriorityMedium, fmt.Sprintf("%s is talking past each other. Ask each student to respond to the previous idea before adding their own.", g))
	}
	if st.status != "on task" && st.status != "confused" {
		return
	}
	switch {
	case arg.GetClaims() >= ReasoningSignal && arg.GetEvidence() < LowEvidence:
		add(CategoryDeepen, PriorityMedium, fmt.Sprintf("%s makes claims without much evidence. Ask: \"How do you know? What supports that?\"", g))
	case has(ga.GetLearningSignals(), SignalExplainsReasoning):
		add(CategoryDeepen, PriorityLow, fmt.Sprintf("%s is reasoning with evidence. Extend it with a what-if question, e.g. \"What would happen if one step were missing?\"", g))
	default:
		add(CategoryDeepen, PriorityLow, fmt.Sprintf("%s is on task. Ask them to explain their thinking with an example.", g))
	}
}

// summary is one or two sentences: how many groups are in which state, and the most urgent step.
func summary(states []groupState, objectives int, recs []*guidancev1.Recommendation) string {
	order := []string{"on task", "confused", "drifting", "off-task", "silent", "no data"}
	var parts []string
	for _, s := range order {
		n := 0
		for _, st := range states {
			if st.status == s {
				n++
			}
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s analysed", capitalize(plural(len(states), "group")))
	if objectives > 0 {
		fmt.Fprintf(&b, " against %s", plural(objectives, "objective"))
	}
	fmt.Fprintf(&b, ": %s.", strings.Join(parts, ", "))
	if len(recs) > 0 && recs[0].GetPriority() == PriorityHigh {
		fmt.Fprintf(&b, " Most urgent: %s", recs[0].GetText())
	}
	return b.String()
}
