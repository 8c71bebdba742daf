// Package events names the bus topics and event types services exchange: the contract between
// producers (session, stt, ...) and consumers (the realtime edge, analytics, guidance), kept in one
// place because services do not import each other. Payloads are classwaves.events.v1.Event.
package events

// Topics (defaults; each service's config may rename its own).
const (
	// SessionTopic carries session lifecycle and group events (session service).
	SessionTopic = "session:events"
	// STTTopic carries transcripts, speech activity and budget alerts (stt service).
	STTTopic = "stt:events"
	// GuidanceTopic carries insights and teacher prompts (guidance service).
	GuidanceTopic = "guidance:events"
	// AnalyticsTopic carries finalization results and summaries (analytics service).
	AnalyticsTopic = "analytics:events"
)

// Event types (classwaves.events.v1.Event.type).
const (
	SessionStatusChanged = "session.status_changed"
	GroupStatusChanged   = "session.group_status_changed"
	GroupMemberJoined    = "session.group_member_joined"
	Transcript           = "stt.transcript"
	SpeechActivity       = "stt.speech_activity"
	BudgetAlert          = "stt.budget_alert"

	// InsightProduced carries a stored Tier 1 or Tier 2 insight (payload insight_produced; its
	// insight_json is the guidancev1.Tier1Insight or Tier2Insight in protojson, camelCase).
	InsightProduced = "guidance.insight_produced"
	// PromptRaised carries a new teacher prompt (payload prompt_raised).
	PromptRaised = "guidance.prompt_raised"
	// PromptActed carries a teacher's acknowledgement or dismissal (payload prompt_acted).
	PromptActed = "guidance.prompt_acted"
	// AnalyticsFinalized carries a finalization's result, ok or failed (payload analytics_finalized).
	AnalyticsFinalized = "analytics.finalized"
	// SummariesReady says a session's summaries were stored (payload summaries_ready).
	SummariesReady = "analytics.summaries_ready"
)
