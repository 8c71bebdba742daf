package auditlog

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/classwaves/classwaves/pkg/api/classwaves/audit/v1"
	"github.com/classwaves/classwaves/pkg/logging"
)

// Size bounds, in characters. The first group are AuditEvent's protovalidate limits, so a
// sanitized event never fails validation for its size.
const (
	maxIDLen           = 64
	maxActorTypeLen    = 20
	maxEventTypeLen    = 100
	maxCategoryLen     = 50
	maxResourceTypeLen = 50
	maxDescriptionLen  = 1000
	maxUserAgentLen    = 128
	maxBasisLen        = 50
	maxPriorityLen     = 10

	// MaxMetadataPairs is how many metadata pairs an event keeps (AuditEvent.metadata max_pairs).
	MaxMetadataPairs    = 32
	maxMetadataKeyLen   = 64
	maxMetadataValueLen = 512
)

// redactedText replaces a value that could not be made clean (see cleanText).
const redactedText = "[REDACTED]"

// idNamespace derives stable UUIDv5 ids from caller-supplied ids that are not UUIDs.
var idNamespace = uuid.MustParse("6f0d2c61-8a34-4d0c-9c55-2b8a3f0e7a11")

// Sanitizer turns an Event into the AuditEvent that is enqueued, removing personal data the audit
// log must not hold. The zero value keeps the user agent (truncated and redacted); the client uses
// Sanitizer{HashUserAgent: cfg.HashUserAgent}.
type Sanitizer struct {
	// HashUserAgent stores hex SHA-256 of the raw user agent (AUDIT_HASH_USER_AGENT=1). When false
	// the user agent itself, redacted and cut to 128 characters, goes in user_agent_hash.
	HashUserAgent bool
	// Now is the clock for events without a time (nil: time.Now).
	Now func() time.Time
}

// Sanitize returns the AuditEvent for e:
//   - id: e.ID when it is a UUID (canonical form), a stable UUIDv5 of it otherwise, a new UUIDv7
//     when empty; occurred_at: e.OccurredAt, or now;
//   - the user agent hashed (HashUserAgent), also when it was passed as metadata "userAgent";
//   - e-mail addresses, IP addresses, bearer tokens and JWTs in every text field and metadata value
//     replaced by [REDACTED_EMAIL], [REDACTED_IP], [REDACTED_TOKEN]; metadata under sensitive keys
//     (password, token, email, ip, cookie...) dropped;
//   - invalid UTF-8 replaced, control characters (NUL included) removed, every field cut to its
//     limit, at most MaxMetadataPairs metadata pairs;
//   - actor type and priority lower-cased, an empty priority made "normal", count 1.
//
// It never fails: a field that cannot be made clean becomes "[REDACTED]".
func (s Sanitizer) Sanitize(e Event) *auditv1.AuditEvent {
	at := e.OccurredAt
	if at.IsZero() {
		if s.Now != nil {
			at = s.Now()
		} else {
			at = time.Now()
		}
	}
	ua := e.UserAgent
	if ua == "" {
		for k, v := range e.Metadata {
			if isUserAgentKey(k) && v != "" {
				ua = v
				break
			}
		}
	}
	ev := &auditv1.AuditEvent{
		Id:              normalizeID(e.ID),
		OccurredAt:      timestamppb.New(at.UTC()),
		ActorId:         e.ActorID,
		ActorType:       strings.ToLower(strings.TrimSpace(e.ActorType)),
		EventType:       strings.TrimSpace(e.EventType),
		EventCategory:   strings.TrimSpace(e.Category),
		ResourceType:    e.ResourceType,
		ResourceId:      e.ResourceID,
		SchoolId:        e.SchoolID,
		SessionId:       e.SessionID,
		Description:     e.Description,
		UserAgentHash:   s.userAgent(ua),
		ComplianceBasis: e.ComplianceBasis,
		Priority:        strings.ToLower(strings.TrimSpace(e.Priority)),
		Metadata:        e.Metadata,
		Count:           1,
	}
	if ev.Priority == "" {
		ev.Priority = PriorityNormal
	}
	Scrub(ev)
	return ev
}

// userAgent is what user_agent_hash holds for the raw user agent ua.
func (s Sanitizer) userAgent(ua string) string {
	if ua == "" {
		return ""
	}
	if s.HashUserAgent {
		sum := sha256.Sum256([]byte(ua))
		return hex.EncodeToString(sum[:])
	}
	return ua // Scrub redacts and bounds it
}

// Scrub makes an AuditEvent that came from elsewhere (the stream, the RecordEvents RPC, the DLQ)
// as clean as Sanitize makes a new one, in place: text fields redacted and bounded, metadata
// filtered. It does not touch the id, time, count or the meaning of any field, so scrubbing twice
// changes nothing. The audit worker scrubs every event before storing it: producers other than
// this package's Client are not trusted to have sanitized.
func Scrub(ev *auditv1.AuditEvent) {
	if ev == nil {
		return
	}
	ev.ActorId = cleanText(ev.ActorId, maxIDLen)
	ev.ActorType = cleanText(ev.ActorType, maxActorTypeLen)
	ev.EventType = cleanText(ev.EventType, maxEventTypeLen)
	ev.EventCategory = cleanText(ev.EventCategory, maxCategoryLen)
	ev.ResourceType = cleanText(ev.ResourceType, maxResourceTypeLen)
	ev.ResourceId = cleanText(ev.ResourceId, maxIDLen)
	ev.SchoolId = cleanText(ev.SchoolId, maxIDLen)
	ev.SessionId = cleanText(ev.SessionId, maxIDLen)
	ev.Description = cleanText(ev.Description, maxDescriptionLen)
	ev.UserAgentHash = cleanText(ev.UserAgentHash, maxUserAgentLen)
	ev.ComplianceBasis = cleanText(ev.ComplianceBasis, maxBasisLen)
	ev.Priority = cleanText(ev.Priority, maxPriorityLen)
	ev.Metadata = cleanMetadata(ev.Metadata)
}

// normalizeID returns the canonical UUID for id (see Event.ID).
func normalizeID(id string) string {
	id = strings.TrimSpace(id)
	if id == "" {
		if u, err := uuid.NewV7(); err == nil {
			return u.String()
		}
		return uuid.NewString()
	}
	if u, err := uuid.Parse(id); err == nil {
		return u.String()
	}
	return uuid.NewSHA1(idNamespace, []byte(id)).String()
}

// cleanText returns s with invalid UTF-8 replaced, control characters other than tab and newline
// removed, personal data redacted (logging.Redact) and at most max characters. Cutting can expose
// a new match ("1.2.3.4567" cut to "1.2.3.456"), and a replacement is longer than what it
// replaces, so redaction and cutting repeat until the text is stable; the result is therefore
// always a fixed point of both. Input far over the limit is first cut at a word boundary, to
// bound the work. Text that does not settle within a few rounds (none is known)
// becomes "[REDACTED]".
func cleanText(s string, max int) string {
	if s == "" {
		return ""
	}
	if budget := 8*max + 1024; len(s) > budget {
		// Bound the work on absurd input. Cut between words, so the cut cannot leave part of an
		// address behind that redaction would no longer recognise.
		n := budget
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		cut := s[:n]
		if i := strings.LastIndexAny(cut, " \t\n"); i > 0 {
			cut = cut[:i]
		}
		s = cut
	}
	s = stripControls(strings.ToValidUTF8(s, "\uFFFD"))
	for range 4 {
		r := truncate(logging.Redact(s), max)
		if r == s {
			return s
		}
		s = r
	}
	return truncate(redactedText, max)
}

// stripControls removes C0 control characters except tab and newline, and DEL. NUL in particular
// is refused by PostgreSQL text and jsonb.
func stripControls(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if isControl(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if !isControl(s[i]) {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func isControl(c byte) bool {
	return (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f
}

// truncate cuts s to at most max characters (runes), never inside a character.
func truncate(s string, max int) string {
	if len(s) <= max { // bytes >= runes
		return s
	}
	n := 0
	for i := range s {
		if n == max {
			return s[:i]
		}
		n++
	}
	return s
}

// cleanMetadata filters m: sensitive keys and user-agent keys are dropped (the user agent has its
// own field), keys and values are cleaned, empty keys dropped, and at most MaxMetadataPairs pairs
// kept, chosen by sorted key so the result does not depend on map order. It returns nil for no
// pairs.
func cleanMetadata(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]string, min(len(m), MaxMetadataPairs))
	for _, k := range keys {
		if len(out) == MaxMetadataPairs {
			break
		}
		if logging.SensitiveKey(k) || isUserAgentKey(k) {
			continue
		}
		ck := cleanText(k, maxMetadataKeyLen)
		if ck == "" || logging.SensitiveKey(ck) {
			continue
		}
		if _, dup := out[ck]; dup {
			continue
		}
		out[ck] = cleanText(m[k], maxMetadataValueLen)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// isUserAgentKey reports keys like userAgent, user-agent, User_Agent, ua.
func isUserAgentKey(k string) bool {
	if len(k) > 32 {
		return false
	}
	var buf [32]byte
	n := 0
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '-' || c == '_' || c == '.' || c == ' ':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	norm := string(buf[:n])
	return norm == "useragent" || norm == "ua"
}
