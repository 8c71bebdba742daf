package guidance

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	"github.com/classwaves/classwaves/services/guidance/analyzer"
)

// Prompt priorities.
const (
	PriorityLow    = "low"
	PriorityMedium = "medium"
	PriorityHigh   = "high"
)

// Alert categories (analyzer.Tier1AlertCategories decides which a Tier 1 insight raises).
const (
	CategoryOffTask   = "off_task"
	CategoryLowFocus  = "low_focus"
	CategorySilence   = "silence"
	CategoryConfusion = "confusion"
	CategoryDominance = "dominance"
	// categoryGeneral is a Tier 2 recommendation's category when the analyzer names none.
	categoryGeneral = "general"
)

// candidate is a prompt the policy would raise, before dedupe and cooldown.
type candidate struct {
	Kind     string
	Category string
	GroupID  string
	Priority string
	Message  string
	Reason   string
	// Persisting says the condition was present in the group's previous analysis too.
	Persisting bool
}

// alertWording is a category's default priority and teacher wording.
type alertWording struct {
	priority string
	// message is a Printf format taking the group's name.
	message string
	reason  func(m *guidancev1.Tier1Metrics, span string, hasTurns bool) string
}

func pct(v float64) int { return int(math.Round(100 * math.Max(0, math.Min(1, v)))) }

var alertWordings = map[string]alertWording{
	CategoryOffTask: {PriorityHigh, "%s seems off task. Consider checking in to bring them back to the task.",
		func(m *guidancev1.Tier1Metrics, span string, _ bool) string {
			return fmt.Sprintf("%d%% of the last %s was off topic", pct(m.GetOffTaskRatio()), span)
		}},
	CategoryLowFocus: {PriorityMedium, "%s is drifting from the learning objectives. A focusing question may help.",
		func(m *guidancev1.Tier1Metrics, span string, _ bool) string {
			return fmt.Sprintf("topical focus on the objectives was %d%% over the last %s", pct(m.GetTopicalFocus()), span)
		}},
	CategorySilence: {PriorityHigh, "%s has gone quiet. Check whether they are stuck or need a prompt to restart.",
		func(m *guidancev1.Tier1Metrics, span string, hasTurns bool) string {
			if !hasTurns {
				return fmt.Sprintf("nothing was said in the last %s", span)
			}
			return fmt.Sprintf("%s of silence in the last %s", seconds(m.GetSilenceSeconds()), span)
		}},
	CategoryConfusion: {PriorityMedium, "%s may be confused. Consider stopping by to clarify.",
		func(m *guidancev1.Tier1Metrics, span string, _ bool) string {
			n := m.GetConfusionMarkers()
			sign := "signs"
			if n == 1 {
				sign = "sign"
			}
			return fmt.Sprintf("%d %s of confusion (such as \"I don't get it\") in the last %s", n, sign, span)
		}},
	CategoryDominance: {PriorityLow, "One voice is dominating %s. Invite the quieter members to contribute.",
		func(m *guidancev1.Tier1Metrics, span string, _ bool) string {
			return fmt.Sprintf("participation balance was %.2f (1 is even) over the last %s", m.GetParticipationBalance(), span)
		}},
}

// seconds renders a duration in seconds for a teacher: "24 s".
func seconds(v float64) string { return fmt.Sprintf("%d s", int(math.Round(v))) }

// spanWords renders an analysed span for a teacher: "30 s", "2 min".
func spanWords(d time.Duration) string {
	if d < 2*time.Minute {
		return seconds(d.Seconds())
	}
	return fmt.Sprintf("%d min", int(math.Round(d.Minutes())))
}

// tier1Candidates turns a Tier 1 insight's alert categories into alert prompts for its group.
// previous are the categories of the group's previous insight (for Persisting).
func tier1Candidates(ins *guidancev1.Tier1Insight, alerts, previous []string, groupName string, hasTurns bool) []candidate {
	span := spanWords(ins.GetWindowEnd().AsTime().Sub(ins.GetWindowStart().AsTime()))
	out := make([]candidate, 0, len(alerts))
	for _, cat := range alerts {
		w, ok := alertWordings[cat]
		if !ok { // a category this policy has no wording for yet
			w = alertWording{PriorityMedium, "%s may need attention.", func(*guidancev1.Tier1Metrics, string, bool) string {
				return fmt.Sprintf("the analysis flagged %s in the last %s", strings.ReplaceAll(cat, "_", " "), span)
			}}
		}
		out = append(out, candidate{
			Kind: KindAlert, Category: cat, GroupID: ins.GetGroupId(), Priority: w.priority,
			Message: fmt.Sprintf(w.message, groupName), Reason: w.reason(ins.GetMetrics(), span, hasTurns),
			Persisting: slices.Contains(previous, cat),
		})
	}
	return out
}

// maxReasonRunes bounds a recommendation's reason (the Tier 2 summary).
const maxReasonRunes = 280

// tier2Candidates turns a Tier 2 insight's recommendations into recommendation prompts. A
// recommendation naming a group that is not the session's becomes session-wide.
func tier2Candidates(ins *guidancev1.Tier2Insight, info *sessionInfo) []candidate {
	reason := "from the session-wide analysis"
	if sum := strings.TrimSpace(ins.GetSummary()); sum != "" {
		reason = truncateRunes(sum, maxReasonRunes)
	}
	var out []candidate
	for _, r := range ins.GetRecommendations() {
		text := strings.TrimSpace(r.GetText())
		if text == "" {
			continue
		}
		cat := strings.TrimSpace(strings.ToLower(r.GetCategory()))
		if cat == "" {
			cat = categoryGeneral
		}
		prio := r.GetPriority()
		if prio != PriorityLow && prio != PriorityMedium && prio != PriorityHigh {
			prio = PriorityMedium
		}
		group := r.GetGroupId()
		if _, ok := info.Groups[group]; !ok {
			group = ""
		}
		out = append(out, candidate{
			Kind: KindRecommendation, Category: truncateRunes(cat, 64), GroupID: group, Priority: prio,
			Message: truncateRunes(text, 1000), Reason: reason,
			// A recommendation made again is a condition that persists.
			Persisting: true,
		})
	}
	return out
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// lowerPriority is one step below p.
func lowerPriority(p string) string {
	switch p {
	case PriorityHigh:
		return PriorityMedium
	default:
		return PriorityLow
	}
}

func priorityRank(p string) int {
	switch p {
	case PriorityHigh:
		return 2
	case PriorityMedium:
		return 1
	}
	return 0
}

// Suppression reasons (guidance_prompts_suppressed_total{reason}).
const (
	suppressCooldown     = "cooldown"
	suppressAcknowledged = "acknowledged"
	suppressDismissed    = "dismissed"
)

// promptPolicy decides whether a candidate becomes a prompt, given the latest prompt of its
// cooldown slot (session, group, kind, category). The feedback rule:
//
//   - Cooldown: no new prompt within PromptCooldown of the slot's last one (counted from its
//     creation while it was pending or expired). A new prompt supersedes a still-pending one.
//   - Dismissed: the teacher said it does not help. The cooldown is counted from the dismissal
//     and multiplied by DismissCooldownFactor; afterwards the prompt comes back at its normal
//     priority.
//   - Acknowledged: the teacher is on it. Nothing is raised within PromptCooldown of the
//     acknowledgement; afterwards, if the condition persisted (the group's previous analysis
//     showed it too), the prompt comes back one priority lower, and stays lowered while the
//     condition persists; a condition that went away and came back is raised at its normal
//     priority.
type promptPolicy struct {
	cooldown      time.Duration
	dismissFactor float64
	ttl           time.Duration
}

// decide answers the prompt to raise for c at now, or "" and the suppression reason.
func (pp promptPolicy) decide(c candidate, last *Prompt, now time.Time) (priority, suppressed string) {
	priority = c.Priority
	if last == nil {
		return priority, ""
	}
	switch last.effectiveStatus(now) {
	case StatusDismissed:
		cd := time.Duration(float64(pp.cooldown) * pp.dismissFactor)
		if now.Before(last.ActedAt.Add(cd)) {
			return "", suppressDismissed
		}
	case StatusAcknowledged:
		if now.Before(last.ActedAt.Add(pp.cooldown)) {
			return "", suppressAcknowledged
		}
		if c.Persisting {
			priority = lowerPriority(c.Priority)
		}
	default: // pending or expired
		if now.Before(last.CreatedAt.Add(pp.cooldown)) {
			return "", suppressCooldown
		}
		// A lowered priority (after an acknowledgement) holds while the condition persists.
		if c.Persisting && priorityRank(last.Priority) < priorityRank(c.Priority) {
			priority = lowerPriority(c.Priority)
		}
	}
	return priority, ""
}

// raisePrompts stores and publishes the prompts of an insight's candidates, each through its
// cooldown slot. insightAt is the insight's creation time (for the latency metrics).
func (s *Service) raisePrompts(ctx context.Context, info *sessionInfo, tier int, insightID string, insightAt time.Time, cands []candidate, traceID string) {
	pp := promptPolicy{cooldown: s.cfg.PromptCooldown, dismissFactor: s.cfg.DismissCooldownFactor, ttl: s.cfg.PromptTTL}
	tl := tierLabel(tier)
	for _, c := range cands {
		now := s.now()
		var suppressed string
		raised, err := s.store.RaisePrompt(ctx, PromptSlot{SessionID: info.ID, GroupID: c.GroupID, Kind: c.Kind, Category: c.Category},
			func(last *Prompt) *Prompt {
				prio, why := pp.decide(c, last, now)
				if why != "" {
					suppressed = why
					return nil
				}
				suppressed = ""
				return &Prompt{
					ID: uuid.Must(uuid.NewV7()).String(), SessionID: info.ID, GroupID: c.GroupID, SchoolID: info.SchoolID,
					TeacherID: info.TeacherID, Kind: c.Kind, Category: c.Category, Priority: prio, Message: c.Message,
					Reason: c.Reason, InsightID: insightID, Status: StatusPending, Tier: tier,
					DedupeKey: c.Kind + ":" + c.Category, CreatedAt: now, ExpiresAt: now.Add(pp.ttl),
				}
			})
		if err != nil {
			s.m.promptGenerated.WithLabelValues(tl, statusFailed).Inc()
			s.logger.Warn("guidance: storing prompt", "err", err, "sessionId", info.ID, "groupId", c.GroupID, "category", c.Category)
			continue
		}
		if raised == nil {
			s.m.promptsSuppressed.WithLabelValues(tl, suppressed).Inc()
			continue
		}
		s.m.promptGenerated.WithLabelValues(tl, statusOK).Inc()
		s.m.promptGenLatency.WithLabelValues(tl).Observe(ms(s.now().Sub(insightAt)))
		s.publishPrompt(ctx, *raised, insightAt, traceID)
	}
}

// alertCategories decides a Tier 1 insight's alerts: the documented thresholds live with the
// analyzer, so the golden discussions and the prompts agree.
var alertCategories = analyzer.Tier1AlertCategories
