// Package auditlog is the client every ClassWaves service uses to write the compliance audit log
// (FERPA/COPPA) without putting it on the request's hot path.
//
// Client.Log sanitizes an Event (user agent hashed, e-mail addresses and IP addresses redacted,
// sizes bounded), gives it an id and a time when it has none, and publishes it as protojson of
// classwaves.audit.v1.AuditEvent to the audit stream (AUDIT_LOG_STREAM_KEY) within
// AUDIT_LOG_ENQUEUE_TIMEOUT_MS. It never fails or holds the caller longer than that: an event it
// cannot enqueue is dropped and counted (audit_log_enqueue_dropped_total{reason}). The audit
// service's worker reads the stream, samples noisy categories, and stores the events in batches.
package auditlog

import "time"

// Priorities. A critical event is never sampled out, and when the database cannot take it the
// worker moves it to the dead-letter queue instead of leaving it in the stream.
const (
	PriorityNormal   = "normal"
	PriorityCritical = "critical"
)

// Event categories. The audit worker samples the noisy ones (CategorySessionActivity,
// CategoryDataAccessRead) and never samples CategoryCompliance.
const (
	CategoryAuthentication = "authentication"
	CategorySession        = "session"
	CategoryDataAccess     = "data_access"
	CategoryConfiguration  = "configuration"
	CategoryCompliance     = "compliance"
	CategoryAIAnalysis     = "ai_analysis"
	// CategorySessionActivity is high-volume session telemetry (joins, heartbeats, group moves).
	CategorySessionActivity = "session_activity"
	// CategoryDataAccessRead is high-volume reads of records (list and get calls).
	CategoryDataAccessRead = "data_access_read"
)

// Actor types (AuditEvent.actor_type accepts exactly these).
const (
	ActorTeacher    = "teacher"
	ActorStudent    = "student"
	ActorAdmin      = "admin"
	ActorSuperAdmin = "super_admin"
	ActorSystem     = "system"
)

// Event is one audited action as a service reports it. Only ActorID, ActorType, EventType and
// Category are required; the rest is optional.
//
// There is deliberately no IP address field: the audit log never stores one. IP addresses found in
// the text fields are redacted and metadata under IP-like keys is dropped.
type Event struct {
	// ID makes storing idempotent. Empty: a new UUIDv7. A non-UUID value is mapped to a stable
	// UUIDv5, so a caller retrying with the same value still gets one record.
	ID string
	// OccurredAt defaults to the time of the Log call.
	OccurredAt time.Time
	ActorID    string
	// ActorType is one of the Actor* constants.
	ActorType string
	// EventType says what happened, e.g. "session.start", "auth.login".
	EventType string
	// Category is one of the Category* constants (or another short lower_snake name).
	Category     string
	ResourceType string
	ResourceID   string
	SchoolID     string
	SessionID    string
	Description  string
	// UserAgent is the raw User-Agent header; only its SHA-256 is kept (AUDIT_HASH_USER_AGENT=1).
	UserAgent string
	// ComplianceBasis is e.g. "legitimate_interest", "consent", "legal_obligation".
	ComplianceBasis string
	// Priority is PriorityNormal (default) or PriorityCritical.
	Priority string
	// Metadata is small context; values under sensitive keys (tokens, passwords, e-mail, IP) are
	// dropped, e-mail and IP addresses in values redacted, at most 32 pairs kept.
	Metadata map[string]string
}
