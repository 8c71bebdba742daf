package analytics

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
)

// Summarizer writes a finished session's summaries: one for the session and one per group of
// in.Groups, in that order, each group summary with its GroupId. It fills the text fields and
// Summarizer; the service sets ids and creation times. Adapters: the built-in extractive
// summarizer (BuiltinSummarizer) and the LLM summarizer (llmsummarizer.go).
type Summarizer interface {
	Name() string
	Summarize(ctx context.Context, in SummaryInput) (*analyticsv1.SessionSummary, []*analyticsv1.GroupSummary, error)
}

// SummaryInput is what a summarizer gets.
type SummaryInput struct {
	SessionID  string
	SchoolID   string
	Title      string
	Objectives []string
	// Analytics are the session's finalized analytics.
	Analytics *analyticsv1.SessionAnalytics
	Groups    []GroupSummaryInput
	// Names are the students' display names, which an LLM summarizer removes from what it sends.
	Names []string
}

// GroupSummaryInput is one group's share of SummaryInput.
type GroupSummaryInput struct {
	GroupID string
	Name    string
	// Transcript are the group's transcribed windows in order.
	Transcript []string
	Metrics    *analyticsv1.GroupMetrics
}

// BuiltinName is the built-in summarizer's name (SessionSummary.summarizer).
const BuiltinName = "builtin"

// Thresholds of the built-in summarizer's concerns.
const (
	longSilenceSeconds   = 60.0
	lowSpeakingShare     = 0.3
	minAudioForShare     = 60.0
	lowOnTopicRatio      = 0.5
	highGini             = 0.5
	keyPointsPerGroup    = 3
	maxSentencesPerGroup = 400
	maxKeyPointLen       = 240
	maxNextSteps         = 5
	keyTerms             = 5
)

// BuiltinSummarizer is the default summarizer: extractive and deterministic, offline. For each
// group it picks the most representative sentences of the transcript, those most similar (TF-IDF
// cosine) to the rest of the group's discussion, as key points, and derives concerns from the
// metrics (no speech, long silence, little speaking, low on-topic ratio, no questions, few
// voices dominating, nobody joined). The session summary states the figures, names the key terms
// of the discussion and turns the groups' concerns into next steps.
type BuiltinSummarizer struct{}

var _ Summarizer = BuiltinSummarizer{}

// Name implements Summarizer.
func (BuiltinSummarizer) Name() string { return BuiltinName }

// Summarize implements Summarizer. It never fails.
func (BuiltinSummarizer) Summarize(_ context.Context, in SummaryInput) (*analyticsv1.SessionSummary, []*analyticsv1.GroupSummary, error) {
	a := in.Analytics
	if a == nil {
		a = &analyticsv1.SessionAnalytics{}
	}
	var (
		groups   []*analyticsv1.GroupSummary
		allSents [][]string // every group's sentences, for the session's key terms
		steps    []string
	)
	for _, g := range in.Groups {
		m := g.Metrics
		if m == nil {
			m = &analyticsv1.GroupMetrics{GroupId: g.GroupID}
		}
		name := groupLabel(g.Name, g.GroupID)
		sents := sentences(g.Transcript)
		allSents = append(allSents, sents)
		points := representative(sents, keyPointsPerGroup)
		concerns := groupConcerns(m)
		gs := &analyticsv1.GroupSummary{
			GroupId:    g.GroupID,
			Text:       groupText(name, m, points),
			KeyPoints:  points,
			Concerns:   concerns,
			Summarizer: BuiltinName,
		}
		if len(gs.KeyPoints) == 0 {
			gs.KeyPoints = []string{groupFigures(m)}
		}
		groups = append(groups, gs)
		if len(concerns) > 0 {
			steps = append(steps, fmt.Sprintf("Check in with %s: %s", name, lowerFirst(concerns[0])))
		}
	}
	steps = append(steps, sessionSteps(in, a)...)
	if len(steps) > maxNextSteps {
		steps = steps[:maxNextSteps]
	}
	if len(steps) == 0 {
		steps = []string{"Build on the discussion: ask each group to share one idea with the class."}
	}
	sum := &analyticsv1.SessionSummary{
		SessionId:  in.SessionID,
		Text:       sessionText(in, a),
		Highlights: sessionHighlights(in, a, allSents),
		NextSteps:  steps,
		Summarizer: BuiltinName,
	}
	return sum, groups, nil
}

func groupLabel(name, id string) string {
	if strings.TrimSpace(name) != "" {
		return strings.TrimSpace(name)
	}
	if len(id) >= 8 {
		return "Group " + id[:8]
	}
	return "Group " + id
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToLower(r[0])
	return string(r)
}

// duration renders seconds as "4m 05s" (or "45s").
func duration(seconds float64) string {
	s := int64(math.Round(max(seconds, 0)))
	if s < 60 {
		return fmt.Sprintf("%ds", s)
	}
	if s < 3600 {
		return fmt.Sprintf("%dm %02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh %02dm", s/3600, (s%3600)/60)
}

// plural renders "1 group" or "3 groups".
func plural[N ~int | ~int32 | ~int64](n N, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func pct(x float64) string { return fmt.Sprintf("%.0f%%", 100*x) }

func groupFigures(m *analyticsv1.GroupMetrics) string {
	return fmt.Sprintf("%d students; spoke for %s in %d turns (%d words); %d questions.",
		m.GetMemberCount(), duration(m.GetSpeakingSeconds()), m.GetTurnCount(), m.GetWordCount(), m.GetQuestionCount())
}

func groupText(name string, m *analyticsv1.GroupMetrics, points []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d students spoke for %s in %d turns (%d words)", name, m.GetMemberCount(),
		duration(m.GetSpeakingSeconds()), m.GetTurnCount(), m.GetWordCount())
	if m.GetInsightCount() > 0 {
		fmt.Fprintf(&b, "; %s of the analysed discussion was on topic and %d questions were asked", pct(m.GetOnTopicRatio()), m.GetQuestionCount())
	}
	b.WriteString(".")
	if len(points) > 0 {
		fmt.Fprintf(&b, " Most representative: %q", points[0])
	}
	return b.String()
}

// groupConcerns derives a group's concerns from its metrics, most serious first.
func groupConcerns(m *analyticsv1.GroupMetrics) []string {
	var out []string
	if m.GetMemberCount() == 0 {
		out = append(out, "No student joined this group.")
	}
	audio := m.GetSpeakingSeconds() + m.GetSilenceSeconds()
	if m.GetSpeakingSeconds() == 0 && m.GetWordCount() == 0 {
		out = append(out, "No speech was recorded for this group.")
	} else if audio >= minAudioForShare && m.GetSpeakingSeconds()/audio < lowSpeakingShare {
		out = append(out, fmt.Sprintf("The group spoke during only %s of the recorded time.", pct(m.GetSpeakingSeconds()/audio)))
	}
	if m.GetLongestSilenceSeconds() >= longSilenceSeconds {
		out = append(out, fmt.Sprintf("A silence of %s suggests the group stalled.", duration(m.GetLongestSilenceSeconds())))
	}
	if m.GetInsightCount() > 0 && m.GetOnTopicRatio() < lowOnTopicRatio {
		out = append(out, fmt.Sprintf("Only %s of the analysed discussion was on topic.", pct(m.GetOnTopicRatio())))
	}
	if m.GetInsightCount() > 0 && m.GetQuestionCount() == 0 {
		out = append(out, "No questions were asked in the analysed discussion.")
	}
	if m.GetParticipationGini() >= highGini {
		out = append(out, fmt.Sprintf("A few voices dominated the talk (Gini %.2f).", m.GetParticipationGini()))
	}
	return out
}

func sessionText(in SummaryInput, a *analyticsv1.SessionAnalytics) string {
	var b strings.Builder
	if t := strings.TrimSpace(in.Title); t != "" {
		fmt.Fprintf(&b, "%s: ", t)
	}
	fmt.Fprintf(&b, "%d groups; %d of %d students joined (%.0f%% participation). Active for %s; engagement score %.0f/100.",
		a.GetGroupCount(), a.GetJoinedStudentCount(), a.GetStudentCount(), a.GetParticipationRate(),
		duration(float64(a.GetDurationSeconds())), a.GetEngagementScore())
	if len(a.GetGroups()) >= 2 {
		groups := slices.Clone(a.GetGroups())
		slices.SortStableFunc(groups, func(x, y *analyticsv1.GroupMetrics) int {
			return cmpFloat(y.GetSpeakingSeconds(), x.GetSpeakingSeconds())
		})
		most, least := groups[0], groups[len(groups)-1]
		if most.GetSpeakingSeconds() > least.GetSpeakingSeconds() {
			fmt.Fprintf(&b, " Most talkative: %s (%s); quietest: %s (%s).",
				groupLabel(most.GetGroupName(), most.GetGroupId()), duration(most.GetSpeakingSeconds()),
				groupLabel(least.GetGroupName(), least.GetGroupId()), duration(least.GetSpeakingSeconds()))
		}
	}
	return b.String()
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sessionHighlights(in SummaryInput, a *analyticsv1.SessionAnalytics, groups [][]string) []string {
	var out []string
	if terms := topTerms(groups, keyTerms); len(terms) > 0 {
		out = append(out, "Key terms: "+strings.Join(terms, ", ")+".")
	}
	out = append(out, fmt.Sprintf("%s of talk across groups; %d words transcribed.", duration(a.GetSpeakingSeconds()), a.GetWordCount()))
	if a.GetInsightCount() > 0 || a.GetPromptCount() > 0 {
		out = append(out, fmt.Sprintf("%d insights; %d teacher prompts, %d acknowledged.", a.GetInsightCount(), a.GetPromptCount(), a.GetPromptsAcknowledged()))
	}
	var best *analyticsv1.GroupMetrics
	for _, g := range a.GetGroups() {
		if g.GetInsightCount() > 0 && (best == nil || g.GetOnTopicRatio() > best.GetOnTopicRatio()) {
			best = g
		}
	}
	if best != nil && best.GetOnTopicRatio() > 0 {
		out = append(out, fmt.Sprintf("Most focused: %s (%s on topic).", groupLabel(best.GetGroupName(), best.GetGroupId()), pct(best.GetOnTopicRatio())))
	}
	return out
}

func sessionSteps(in SummaryInput, a *analyticsv1.SessionAnalytics) []string {
	var out []string
	var tier1Groups, offTopic int
	for _, g := range a.GetGroups() {
		if g.GetInsightCount() > 0 {
			tier1Groups++
			if g.GetOnTopicRatio() < lowOnTopicRatio {
				offTopic++
			}
		}
	}
	if offTopic > 0 && len(in.Objectives) > 0 {
		out = append(out, fmt.Sprintf("Revisit the objective %q with the %s that drifted off topic.", strings.TrimSpace(in.Objectives[0]), plural(offTopic, "group", "groups")))
	}
	if open := a.GetPromptCount() - a.GetPromptsAcknowledged(); open > 0 {
		out = append(out, fmt.Sprintf("Review the %s not acknowledged.", plural(open, "teacher prompt", "teacher prompts")))
	}
	if a.GetStudentCount() > 0 && a.GetParticipationRate() < 75 {
		out = append(out, fmt.Sprintf("Follow up with the %s who did not join.", plural(int(a.GetStudentCount()-a.GetJoinedStudentCount()), "student", "students")))
	}
	return out
}

// sentences splits transcript windows into sentences of at least three words, at most
// maxSentencesPerGroup (taken evenly across the discussion when there are more).
func sentences(windows []string) []string {
	var out []string
	for _, w := range windows {
		start := 0
		rs := []rune(w)
		for i, r := range rs {
			end := r == '.' || r == '!' || r == '?'
			if end && (i+1 == len(rs) || unicode.IsSpace(rs[i+1])) {
				out = appendSentence(out, string(rs[start:i+1]))
				start = i + 1
			}
		}
		if start < len(rs) {
			out = appendSentence(out, string(rs[start:]))
		}
	}
	if len(out) > maxSentencesPerGroup {
		picked := make([]string, 0, maxSentencesPerGroup)
		for i := range maxSentencesPerGroup {
			picked = append(picked, out[i*len(out)/maxSentencesPerGroup])
		}
		out = picked
	}
	return out
}

func appendSentence(out []string, s string) []string {
	s = strings.Join(strings.Fields(s), " ")
	if len(strings.Fields(s)) < 3 {
		return out
	}
	return append(out, s)
}

// stopwords are frequent English words that say nothing about a discussion's content.
var stopwords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a about above after again against all also am an and any are as at be because been
		before being below between both but by can could did do does doing down during each few for from further had has
		have having he her here hers him his how i if in into is it its itself just like me more most my no nor not now of
		off on once only or other our ours out over own really right same she should so some such than that the their
		theirs them then there these they this those through to too um uh under until up very was we well were what when
		where which while who whom why will with would yeah yes you your yours okay ok gonna think know get got`) {
		m[w] = true
	}
	return m
}()

// terms are the content words of s, lower-cased.
func terms(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\'' }) {
		f = strings.Trim(f, "'")
		if len([]rune(f)) < 3 || stopwords[f] {
			continue
		}
		out = append(out, f)
	}
	return out
}

// tfidf returns each document's TF-IDF vector (term -> weight), with idf = ln((1+N)/(1+df)) + 1.
func tfidf(docs [][]string) []map[string]float64 {
	df := map[string]int{}
	for _, d := range docs {
		seen := map[string]bool{}
		for _, t := range d {
			if !seen[t] {
				seen[t] = true
				df[t]++
			}
		}
	}
	n := float64(len(docs))
	out := make([]map[string]float64, len(docs))
	for i, d := range docs {
		v := map[string]float64{}
		for _, t := range d {
			v[t]++
		}
		for t, c := range v {
			v[t] = c / float64(len(d)) * (math.Log((1+n)/(1+float64(df[t]))) + 1)
		}
		out[i] = v
	}
	return out
}

func cosine(a, b map[string]float64) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	var dot, na, nb float64
	for t, x := range a {
		dot += x * b[t]
		na += x * x
	}
	for _, y := range b {
		nb += y * y
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

// representative returns up to k sentences with the highest TF-IDF centrality (the sum of their
// cosine similarity to every other sentence), in discussion order. Ties go to the earlier one.
func representative(sents []string, k int) []string {
	if len(sents) == 0 {
		return nil
	}
	docs := make([][]string, len(sents))
	for i, s := range sents {
		docs[i] = terms(s)
	}
	vecs := tfidf(docs)
	score := make([]float64, len(sents))
	for i := range vecs {
		for j := i + 1; j < len(vecs); j++ {
			c := cosine(vecs[i], vecs[j])
			score[i] += c
			score[j] += c
		}
	}
	idx := make([]int, len(sents))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmpFloat(score[b], score[a]) })
	var picked []int
	for _, i := range idx {
		if len(docs[i]) == 0 {
			continue
		}
		picked = append(picked, i)
		if len(picked) == k {
			break
		}
	}
	slices.Sort(picked)
	out := make([]string, 0, len(picked))
	for _, i := range picked {
		out = append(out, truncateText(sents[i], maxKeyPointLen))
	}
	return out
}

// truncateText cuts s to at most n runes, ending with an ellipsis when cut.
func truncateText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

// topTerms returns the k terms with the highest summed TF-IDF weight across groups (each group's
// discussion one document), ties in alphabetical order.
func topTerms(groups [][]string, k int) []string {
	docs := make([][]string, 0, len(groups))
	for _, sents := range groups {
		var d []string
		for _, s := range sents {
			d = append(d, terms(s)...)
		}
		if len(d) > 0 {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		return nil
	}
	weight := map[string]float64{}
	for _, v := range tfidf(docs) {
		for t, w := range v {
			weight[t] += w
		}
	}
	all := make([]string, 0, len(weight))
	for t := range weight {
		all = append(all, t)
	}
	slices.SortFunc(all, func(a, b string) int {
		if c := cmpFloat(weight[b], weight[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	if len(all) > k {
		all = all[:k]
	}
	return all
}
