package llmanalyzer

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	"github.com/classwaves/classwaves/pkg/llm"
	"github.com/classwaves/classwaves/services/guidance/analyzer"
)

// tier2Answer is the answer the Tier 2 schema describes.
type tier2Answer struct {
	Groups          []groupAnswer          `json:"groups"`
	Recommendations []recommendationAnswer `json:"recommendations"`
	Summary         string                 `json:"summary"`
	Confidence      float64                `json:"confidence"`
}

type groupAnswer struct {
	GroupID               string           `json:"group_id"`
	Argumentation         argumentation    `json:"argumentation"`
	CollaborationPatterns []string         `json:"collaboration_patterns"`
	LearningSignals       []string         `json:"learning_signals"`
	Evidence              []evidenceAnswer `json:"evidence"`
}

type argumentation struct {
	Claims    float64 `json:"claims"`
	Evidence  float64 `json:"evidence"`
	Reasoning float64 `json:"reasoning"`
}

type recommendationAnswer struct {
	GroupID  string `json:"group_id"`
	Text     string `json:"text"`
	Priority string `json:"priority"`
	Category string `json:"category"`
}

// tier2Prompt is one Tier 2 request.
type tier2Prompt struct {
	user        string
	lb          *labeller
	groups      map[string]string // label -> real group id
	groupLabels []string
	maxEvidence int
	maxRecs     int
	// empty: no group has anything to analyse.
	empty bool
}

// tier1Lines is how many of a group's latest Tier 1 insights are summarized.
const tier1Lines = 3

func newTier2Prompt(in analyzer.Tier2Input, maxChars int) *tier2Prompt {
	p := &tier2Prompt{lb: newLabeller(), groups: map[string]string{}, maxEvidence: 3, maxRecs: 5, empty: true}
	if in.Depth == "comprehensive" {
		p.maxEvidence, p.maxRecs = 5, 8
	}
	var b strings.Builder
	objectivesBlock(&b, in.Objectives, nil, in.Names)
	withTurns := 0
	for _, g := range in.Groups {
		if len(g.Turns) > 0 {
			withTurns++
		}
	}
	perGroup, perGroupLines := maxChars, maxTier2Lines
	if withTurns > 0 {
		perGroup = max(maxChars/withTurns, 400)
		perGroupLines = max(maxTier2Lines/withTurns, 4)
	}
	for _, g := range in.Groups {
		if len(g.Turns) == 0 && len(g.Activity) == 0 && len(g.Tier1) == 0 {
			continue
		}
		p.empty = false
		label := "g" + strconv.Itoa(len(p.groupLabels)+1)
		p.groups[label] = g.GroupID
		p.groupLabels = append(p.groupLabels, label)
		fmt.Fprintf(&b, "\nGroup %s:\n", label)
		tier1Summary(&b, g.Tier1, in.Names)
		if a := activitySummary(g.Activity); a != "" {
			fmt.Fprintf(&b, "Voice activity: %s.\n", a)
		}
		var tr strings.Builder
		p.lb.transcript(&tr, g.Turns, in.Names, g.GroupID, perGroup, perGroupLines)
		if tr.Len() > 0 {
			b.WriteString("Recent transcript (label, speaker when known, text):\n")
			b.WriteString(tr.String())
		} else {
			b.WriteString("No transcript.\n")
		}
	}
	p.user = b.String()
	return p
}

// tier1Summary renders a group's latest Tier 1 insights.
func tier1Summary(b *strings.Builder, insights []*guidancev1.Tier1Insight, names []string) {
	if len(insights) == 0 {
		return
	}
	b.WriteString("Tier 1 measures so far (oldest first):\n")
	for _, ins := range insights[max(len(insights)-tier1Lines, 0):] {
		m := ins.GetMetrics()
		fmt.Fprintf(b, "- topical focus %.2f, participation balance %.2f, uptake %.2f, off-task %.2f, questions %d, confusion markers %d, silence %.0f s",
			m.GetTopicalFocus(), m.GetParticipationBalance(), m.GetUptake(), m.GetOffTaskRatio(), m.GetQuestionCount(), m.GetConfusionMarkers(), m.GetSilenceSeconds())
		var obs []string
		for _, o := range ins.GetObservations() {
			if o = oneLine(llm.Redact(o, names)); o != "" {
				obs = append(obs, truncateRunes(o, maxObservationRunes))
			}
		}
		if len(obs) > 0 {
			fmt.Fprintf(b, "; observed: %s", strings.Join(obs, " / "))
		}
		b.WriteByte('\n')
	}
}

func (p *tier2Prompt) schema() json.RawMessage {
	groupEnum := p.groupLabels
	recGroup := append([]string{""}, p.groupLabels...)
	return mustJSON(object(map[string]any{
		"groups": map[string]any{"type": "array", "maxItems": len(p.groupLabels), "items": object(map[string]any{
			"group_id": map[string]any{"type": "string", "enum": groupEnum},
			"argumentation": object(map[string]any{
				"claims":    unitNumber("how much the group states claims"),
				"evidence":  unitNumber("how much it backs claims with evidence"),
				"reasoning": unitNumber("how much it explains why"),
			}),
			"collaboration_patterns": stringArray(maxListItems, map[string]any{"type": "string", "enum": patterns}),
			"learning_signals":       stringArray(maxListItems, map[string]any{"type": "string", "enum": signals}),
			"evidence":               evidenceSchema(p.lb.labels(), p.maxEvidence),
		})},
		"recommendations": stringArray(p.maxRecs, object(map[string]any{
			"group_id": map[string]any{"type": "string", "enum": recGroup, "description": `"" for the whole class`},
			"text":     map[string]any{"type": "string", "description": "at most 300 characters"},
			"priority": map[string]any{"type": "string", "enum": priorities},
			"category": map[string]any{"type": "string", "enum": categories},
		})),
		"summary":    map[string]any{"type": "string", "description": "at most 1000 characters"},
		"confidence": unitNumber("confidence in this analysis"),
	}))
}

// insight checks ans beyond the schema and converts it.
func (p *tier2Prompt) insight(ans *tier2Answer) (*guidancev1.Tier2Insight, error) {
	if err := unit("confidence", ans.Confidence, 0, 1); err != nil {
		return nil, err
	}
	if err := checkText(ans.Summary, maxSummaryRunes); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	out := &guidancev1.Tier2Insight{Summary: strings.TrimSpace(ans.Summary), Confidence: ans.Confidence}
	if len(ans.Groups) > len(p.groupLabels) {
		return nil, fmt.Errorf("%d groups, more than the %d sent", len(ans.Groups), len(p.groupLabels))
	}
	seen := map[string]bool{}
	for i, g := range ans.Groups {
		id, ok := p.groups[g.GroupID]
		if !ok {
			return nil, fmt.Errorf("groups[%d]: group %q was not sent", i, g.GroupID)
		}
		if seen[g.GroupID] {
			return nil, fmt.Errorf("groups[%d]: group %s twice", i, g.GroupID)
		}
		seen[g.GroupID] = true
		a := g.Argumentation
		for _, c := range []struct {
			name string
			v    float64
		}{{"claims", a.Claims}, {"evidence", a.Evidence}, {"reasoning", a.Reasoning}} {
			if err := unit(fmt.Sprintf("groups[%d].argumentation.%s", i, c.name), c.v, 0, 1); err != nil {
				return nil, err
			}
		}
		if err := checkSet(g.CollaborationPatterns, patterns); err != nil {
			return nil, fmt.Errorf("groups[%d].collaboration_patterns: %w", i, err)
		}
		if err := checkSet(g.LearningSignals, signals); err != nil {
			return nil, fmt.Errorf("groups[%d].learning_signals: %w", i, err)
		}
		ev, err := p.lb.evidenceList(g.Evidence, p.maxEvidence, id)
		if err != nil {
			return nil, fmt.Errorf("groups[%d].%w", i, err)
		}
		out.Groups = append(out.Groups, &guidancev1.GroupAnalysis{
			GroupId:               id,
			Argumentation:         &guidancev1.Argumentation{Claims: a.Claims, Evidence: a.Evidence, Reasoning: a.Reasoning},
			CollaborationPatterns: slices.Clone(g.CollaborationPatterns),
			LearningSignals:       slices.Clone(g.LearningSignals),
			Evidence:              ev,
		})
	}
	if len(ans.Recommendations) > p.maxRecs {
		return nil, fmt.Errorf("%d recommendations, more than %d", len(ans.Recommendations), p.maxRecs)
	}
	texts := map[string]bool{}
	for i, r := range ans.Recommendations {
		id := ""
		if r.GroupID != "" {
			var ok bool
			if id, ok = p.groups[r.GroupID]; !ok {
				return nil, fmt.Errorf("recommendations[%d]: group %q was not sent", i, r.GroupID)
			}
		}
		if err := checkText(r.Text, maxRecommendationLen); err != nil {
			return nil, fmt.Errorf("recommendations[%d].text: %w", i, err)
		}
		if !slices.Contains(priorities, r.Priority) {
			return nil, fmt.Errorf("recommendations[%d]: priority %q is not one of %v", i, r.Priority, priorities)
		}
		if !slices.Contains(categories, r.Category) {
			return nil, fmt.Errorf("recommendations[%d]: category %q is not one of %v", i, r.Category, categories)
		}
		text := strings.TrimSpace(r.Text)
		if key := strings.ToLower(id + "\x00" + text); texts[key] {
			return nil, fmt.Errorf("recommendations[%d] repeats another", i)
		} else {
			texts[key] = true
		}
		out.Recommendations = append(out.Recommendations, &guidancev1.Recommendation{GroupId: id, Text: text, Priority: r.Priority, Category: r.Category})
	}
	return out, nil
}

// checkSet checks that values are distinct members of allowed.
func checkSet(values, allowed []string) error {
	if len(values) > len(allowed) {
		return fmt.Errorf("%d values, more than the %d allowed", len(values), len(allowed))
	}
	seen := map[string]bool{}
	for _, v := range values {
		if !slices.Contains(allowed, v) {
			return fmt.Errorf("%q is not one of %v", v, allowed)
		}
		if seen[v] {
			return fmt.Errorf("%q twice", v)
		}
		seen[v] = true
	}
	return nil
}
