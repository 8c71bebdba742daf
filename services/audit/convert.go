package audit

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/classwaves/classwaves/pkg/api/classwaves/audit/v1"
	"github.com/classwaves/classwaves/pkg/auditlog"
)

// maxReasonLen bounds a dead-letter reason: it quotes parser and validator messages.
const maxReasonLen = 300

// Dead-letter reasons start with one of these words, so an operator (and the dlq metric) can tell
// them apart.
const (
	reasonMalformed   = "malformed"      // the payload is not an AuditEvent in protojson
	reasonInvalid     = "invalid"        // it is one, but breaks the proto's validation rules
	reasonUnavailable = "db_unavailable" // a critical event the database could not take
	reasonRejected    = "db_rejected"    // the database refused this row's content
)

var unmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}

// decodeEvent turns a stream payload into a record: protojson of auditv1.AuditEvent, scrubbed
// (producers other than auditlog.Client are not trusted to have sanitized) and validated. It
// returns a dead-letter reason instead of an error: malformed or invalid input is data, not a
// failure of the worker.
func decodeEvent(payload []byte) (rec Record, reason string) {
	defer func() {
		if r := recover(); r != nil { // no input may stop the worker
			rec, reason = Record{}, bounded(fmt.Sprintf("%s: decoder panicked: %v", reasonMalformed, r))
		}
	}()
	if len(payload) == 0 {
		return Record{}, reasonMalformed + ": empty payload"
	}
	ev := &auditv1.AuditEvent{}
	if err := unmarshal.Unmarshal(payload, ev); err != nil {
		return Record{}, bounded(reasonMalformed + ": " + err.Error())
	}
	if reason := checkEvent(ev); reason != "" {
		return Record{}, reason
	}
	return recordFromProto(ev), ""
}

// checkEvent scrubs ev in place and validates it, returning a dead-letter reason when it is not
// fit to store.
func checkEvent(ev *auditv1.AuditEvent) string {
	auditlog.Scrub(ev)
	if ev.GetCount() < 1 {
		ev.Count = 1
	}
	if err := protovalidate.Validate(ev); err != nil {
		return bounded(reasonInvalid + ": " + violations(err))
	}
	if err := ev.GetOccurredAt().CheckValid(); err != nil {
		return bounded(reasonInvalid + ": occurred_at: " + err.Error())
	}
	return ""
}

// violations renders a validation error as "field: message; ...".
func violations(err error) string {
	verr, ok := errors.AsType[*protovalidate.ValidationError](err)
	if !ok {
		return err.Error()
	}
	parts := make([]string, 0, len(verr.Violations))
	for _, v := range verr.Violations {
		parts = append(parts, protovalidate.FieldPathString(v.Proto.GetField())+": "+v.Proto.GetMessage())
	}
	return strings.Join(parts, "; ")
}

// bounded makes a reason safe to store in a header and a log line: valid UTF-8, at most
// maxReasonLen bytes (plus "...").
func bounded(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxReasonLen {
		return s
	}
	return strings.ToValidUTF8(s[:maxReasonLen], "") + "..."
}

// recordFromProto maps a validated event to a record.
func recordFromProto(ev *auditv1.AuditEvent) Record {
	prio := ev.GetPriority()
	if prio == "" {
		prio = auditlog.PriorityNormal
	}
	count := int(ev.GetCount())
	if count < 1 {
		count = 1
	}
	return Record{
		ID:              strings.ToLower(ev.GetId()),
		OccurredAt:      ev.GetOccurredAt().AsTime().UTC().Truncate(time.Microsecond),
		ActorID:         ev.GetActorId(),
		ActorType:       ev.GetActorType(),
		EventType:       ev.GetEventType(),
		Category:        ev.GetEventCategory(),
		ResourceType:    ev.GetResourceType(),
		ResourceID:      ev.GetResourceId(),
		SchoolID:        ev.GetSchoolId(),
		SessionID:       ev.GetSessionId(),
		Description:     ev.GetDescription(),
		UserAgentHash:   ev.GetUserAgentHash(),
		ComplianceBasis: ev.GetComplianceBasis(),
		Priority:        prio,
		Metadata:        maps.Clone(ev.GetMetadata()),
		Count:           count,
	}
}

// recordToProto maps a record to the API message.
func recordToProto(r Record) *auditv1.AuditEvent {
	return &auditv1.AuditEvent{
		Id:              r.ID,
		OccurredAt:      timestamppb.New(r.OccurredAt),
		ActorId:         r.ActorID,
		ActorType:       r.ActorType,
		EventType:       r.EventType,
		EventCategory:   r.Category,
		ResourceType:    r.ResourceType,
		ResourceId:      r.ResourceID,
		SchoolId:        r.SchoolID,
		SessionId:       r.SessionID,
		Description:     r.Description,
		UserAgentHash:   r.UserAgentHash,
		ComplianceBasis: r.ComplianceBasis,
		Priority:        r.Priority,
		Metadata:        maps.Clone(r.Metadata),
		Count:           int32(r.Count),
	}
}
