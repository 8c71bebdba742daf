package analyzer

import guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"

// Alert thresholds: the default Tier 1 alert policy (README.md, "Alert thresholds"). They are tuned
// for Tier 1 spans of about 30 s.
const (
	// OffTaskAlertRatio: off_task when at least this share of the span's words is off-task talk.
	OffTaskAlertRatio = 0.3
	// LowFocusThreshold: low_focus when topical focus is below this (and off_task did not fire).
	LowFocusThreshold = 0.3
	// SilenceAlertSeconds: silence when the span holds at least this many seconds without speech.
	SilenceAlertSeconds = 20.0
	// ConfusionAlertMarkers: confusion when the span has at least this many confusion markers.
	ConfusionAlertMarkers = 3
	// DominanceBalanceThreshold: dominance when participation balance is below this. Without
	// speaker labels balance never falls below 0.5, so only labelled talk raises it.
	DominanceBalanceThreshold = 0.4
)

// Alert categories raised by the Tier 1 policy.
const (
	AlertOffTask   = "off_task"
	AlertLowFocus  = "low_focus"
	AlertSilence   = "silence"
	AlertConfusion = "confusion"
	AlertDominance = "dominance"
)

// AlertCategories answers all alert categories, in the order Tier1AlertCategories answers them.
func AlertCategories() []string {
	return []string{AlertOffTask, AlertLowFocus, AlertSilence, AlertConfusion, AlertDominance}
}

// Tier1AlertCategories applies the alert thresholds to one Tier 1 insight's metrics. hasTurns says
// whether the span had any transcript: focus, off-task and dominance are not judged on silence.
// The answer is never nil and follows the order of AlertCategories.
//
//   - off_task:  hasTurns and off_task_ratio ≥ OffTaskAlertRatio
//   - low_focus: hasTurns, not off_task, and topical_focus < LowFocusThreshold
//   - silence:   silence_seconds ≥ SilenceAlertSeconds
//   - confusion: confusion_markers ≥ ConfusionAlertMarkers
//   - dominance: hasTurns and participation_balance < DominanceBalanceThreshold
func Tier1AlertCategories(m *guidancev1.Tier1Metrics, hasTurns bool) []string {
	out := []string{}
	if m == nil {
		return out
	}
	offTask := hasTurns && m.GetOffTaskRatio() >= OffTaskAlertRatio
	if offTask {
		out = append(out, AlertOffTask)
	}
	if hasTurns && !offTask && m.GetTopicalFocus() < LowFocusThreshold {
		out = append(out, AlertLowFocus)
	}
	if m.GetSilenceSeconds() >= SilenceAlertSeconds {
		out = append(out, AlertSilence)
	}
	if m.GetConfusionMarkers() >= ConfusionAlertMarkers {
		out = append(out, AlertConfusion)
	}
	if hasTurns && m.GetParticipationBalance() < DominanceBalanceThreshold {
		out = append(out, AlertDominance)
	}
	return out
}
