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
)

// Event types (classwaves.events.v1.Event.type).
const (
	SessionStatusChanged = "session.status_changed"
	GroupStatusChanged   = "session.group_status_changed"
	GroupMemberJoined    = "session.group_member_joined"
	Transcript           = "stt.transcript"
	SpeechActivity       = "stt.speech_activity"
	BudgetAlert          = "stt.budget_alert"
)
