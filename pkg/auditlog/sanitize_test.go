package auditlog

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"buf.build/go/protovalidate"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/classwaves/classwaves/pkg/api/classwaves/audit/v1"
	"github.com/classwaves/classwaves/pkg/logging"
)

var fixedNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestSanitize(t *testing.T) {
	const id = "0b3c8a3e-2f6d-4a53-9a59-5f2a4e0c1d2b"
	ua := "Mozilla/5.0 (X11; Linux x86_64)"
	base := func() Event {
		return Event{
			ID: id, OccurredAt: fixedNow, ActorID: "t-1", ActorType: "teacher",
			EventType: "session.start", Category: CategorySession,
		}
	}
	want := func(mod func(*auditv1.AuditEvent)) *auditv1.AuditEvent {
		ev := &auditv1.AuditEvent{
			Id: id, OccurredAt: timestamppb.New(fixedNow), ActorId: "t-1", ActorType: "teacher",
			EventType: "session.start", EventCategory: CategorySession, Priority: PriorityNormal, Count: 1,
		}
		if mod != nil {
			mod(ev)
		}
		return ev
	}
	tests := []struct {
		name string
		san  Sanitizer
		in   func(*Event)
		want *auditv1.AuditEvent
	}{
		{"plain", Sanitizer{HashUserAgent: true}, nil, want(nil)},
		{
			"user agent hashed", Sanitizer{HashUserAgent: true},
			func(e *Event) { e.UserAgent = ua },
			want(func(ev *auditv1.AuditEvent) { ev.UserAgentHash = sha(ua) }),
		},
		{
			"user agent kept when hashing is off, cut to 128", Sanitizer{},
			func(e *Event) { e.UserAgent = strings.Repeat("a", 200) },
			want(func(ev *auditv1.AuditEvent) { ev.UserAgentHash = strings.Repeat("a", 128) }),
		},
		{
			"user agent from metadata hashed and moved out", Sanitizer{HashUserAgent: true},
			func(e *Event) { e.Metadata = map[string]string{"User-Agent": ua, "route": "/x"} },
			want(func(ev *auditv1.AuditEvent) {
				ev.UserAgentHash = sha(ua)
				ev.Metadata = map[string]string{"route": "/x"}
			}),
		},
		{
			"emails and IPs redacted everywhere", Sanitizer{HashUserAgent: true},
			func(e *Event) {
				e.Description = "invited ana.b@school.org from 10.1.2.3 and ::1"
				e.ResourceID = "ana@x.io"
				e.Metadata = map[string]string{"note": "cc bob@x.org", "host": "2001:db8::1"}
			},
			want(func(ev *auditv1.AuditEvent) {
				ev.Description = "invited [REDACTED_EMAIL] from [REDACTED_IP] and [REDACTED_IP]"
				ev.ResourceId = "[REDACTED_EMAIL]"
				ev.Metadata = map[string]string{"note": "cc [REDACTED_EMAIL]", "host": "[REDACTED_IP]"}
			}),
		},
		{
			"sensitive metadata keys dropped", Sanitizer{HashUserAgent: true},
			func(e *Event) {
				e.Metadata = map[string]string{
					"ip": "10.0.0.1", "clientIp": "x", "x-forwarded-for": "1.1.1.1", "email": "a",
					"accessToken": "t", "password": "p", "reason": "ok",
				}
			},
			want(func(ev *auditv1.AuditEvent) { ev.Metadata = map[string]string{"reason": "ok"} }),
		},
		{
			"no metadata left is nil", Sanitizer{},
			func(e *Event) { e.Metadata = map[string]string{"ip": "10.0.0.1"} },
			want(nil),
		},
		{
			"controls and invalid UTF-8 cleaned", Sanitizer{},
			func(e *Event) { e.Description = "a\x00b\x1bc\td\ne\xff" },
			want(func(ev *auditv1.AuditEvent) { ev.Description = "abc\td\ne\uFFFD" }),
		},
		{
			"sizes bounded by characters", Sanitizer{},
			func(e *Event) {
				e.Description = strings.Repeat("é", 1500)
				e.ActorID = strings.Repeat("x", 100)
			},
			want(func(ev *auditv1.AuditEvent) {
				ev.Description = strings.Repeat("é", 1000)
				ev.ActorId = strings.Repeat("x", 64)
			}),
		},
		{
			"cutting that exposes an IP is redacted again", Sanitizer{},
			func(e *Event) { e.Description = strings.Repeat("x", 991) + " 1.2.3.4567" },
			want(func(ev *auditv1.AuditEvent) { ev.Description = strings.Repeat("x", 991) + " [REDACTE" }),
		},
		{
			"priority and actor type normalised", Sanitizer{},
			func(e *Event) { e.Priority = " CRITICAL "; e.ActorType = "Teacher" },
			want(func(ev *auditv1.AuditEvent) { ev.Priority = PriorityCritical }),
		},
		{
			"uppercase uuid canonicalised", Sanitizer{},
			func(e *Event) { e.ID = strings.ToUpper(id) },
			want(nil),
		},
		{
			"non-uuid id mapped to a stable uuid", Sanitizer{},
			func(e *Event) { e.ID = "request-42" },
			want(func(ev *auditv1.AuditEvent) { ev.Id = uuid.NewSHA1(idNamespace, []byte("request-42")).String() }),
		},
		{
			"missing time is now", Sanitizer{Now: func() time.Time { return fixedNow.Add(time.Hour) }},
			func(e *Event) { e.OccurredAt = time.Time{} },
			want(func(ev *auditv1.AuditEvent) { ev.OccurredAt = timestamppb.New(fixedNow.Add(time.Hour)) }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := base()
			if tt.in != nil {
				tt.in(&e)
			}
			got := tt.san.Sanitize(e)
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("Sanitize() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSanitizeAssignsNewIDs(t *testing.T) {
	a := Sanitizer{}.Sanitize(Event{})
	b := Sanitizer{}.Sanitize(Event{})
	for _, ev := range []*auditv1.AuditEvent{a, b} {
		u, err := uuid.Parse(ev.GetId())
		if err != nil || u.Version() != 7 {
			t.Errorf("id = %q (version %v, err %v), want a UUIDv7", ev.GetId(), u.Version(), err)
		}
	}
	if a.GetId() == b.GetId() {
		t.Errorf("two events got the same id %q", a.GetId())
	}
}

func TestSanitizeKeepsAtMost32MetadataPairs(t *testing.T) {
	md := map[string]string{}
	for i := range 50 {
		md[fmt.Sprintf("k%02d", i)] = "v"
	}
	got := Sanitizer{}.Sanitize(Event{Metadata: md}).GetMetadata()
	if len(got) != MaxMetadataPairs {
		t.Fatalf("len(metadata) = %d, want %d", len(got), MaxMetadataPairs)
	}
	for i := range MaxMetadataPairs { // the first 32 by sorted key
		if _, ok := got[fmt.Sprintf("k%02d", i)]; !ok {
			t.Errorf("metadata lacks k%02d", i)
		}
	}
}

// keep maps s onto alphabet so the fuzzer's bytes steer the shape of a planted value.
func keep(s, alphabet, def string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(alphabet[int(s[i])%len(alphabet)])
	}
	if b.Len() == 0 {
		return def
	}
	return b.String()
}

// stringFields lists an AuditEvent's string fields with their limits.
func stringFields(ev *auditv1.AuditEvent) map[string]struct {
	v   string
	max int
} {
	type f = struct {
		v   string
		max int
	}
	out := map[string]f{
		"actor_id": {ev.GetActorId(), 64}, "actor_type": {ev.GetActorType(), 20},
		"event_type": {ev.GetEventType(), 100}, "event_category": {ev.GetEventCategory(), 50},
		"resource_type": {ev.GetResourceType(), 50}, "resource_id": {ev.GetResourceId(), 64},
		"school_id": {ev.GetSchoolId(), 64}, "session_id": {ev.GetSessionId(), 64},
		"description": {ev.GetDescription(), 1000}, "user_agent_hash": {ev.GetUserAgentHash(), 128},
		"compliance_basis": {ev.GetComplianceBasis(), 50}, "priority": {ev.GetPriority(), 10},
	}
	for k, v := range ev.GetMetadata() {
		out["metadata key "+k] = f{k, 64}
		out["metadata["+k+"]"] = f{v, 512}
	}
	return out
}

// FuzzSanitize checks, for any input, that Sanitize never panics; that every string it returns is
// valid UTF-8 without NUL, within its limit and already clean (nothing left for logging.Redact);
// that an e-mail address or IPv4 address planted in the description, a metadata value or an id
// never survives; that scrubbing again changes nothing; that the result always encodes; and that
// validation can only fail for a missing or unknown actor, type, category or priority, never for a
// size, the id or the metadata.
func FuzzSanitize(f *testing.F) {
	f.Add("hello", "note", "value", "Mozilla/5.0", "t-1", "", "ana", "school", "org", byte(10), byte(1), false)
	f.Add("from 10.0.0.1 ::1 Bearer abc", "ip", "1.2.3.4", "", "", "not-a-uuid", "a.b+c", "k12", "us", byte(192), byte(168), true)
	f.Add(strings.Repeat("1.2.3.4567 ", 120), "k\x00", "\xff\xfe", "\x00", strings.Repeat("é", 80), "0B3C8A3E-2F6D-4A53-9A59-5F2A4E0C1D2B", "'", "a", "b", byte(0), byte(255), false)
	f.Fuzz(func(t *testing.T, text, mdKey, mdVal, ua, actor, id, local, host, tld string, o1, o2 byte, hash bool) {
		email := keep(local, "abcxyz019._+-'", "a") + "@" + keep(host, "abcxyz019-", "b") + "." + keep(tld, "abcxyz019", "c")
		ip := fmt.Sprintf("%d.%d.%d.%d", o1, o2, o1^o2, o2/2)
		e := Event{
			ID: id, ActorID: actor + " " + email, ActorType: actor, EventType: text, Category: mdKey,
			Description: text + " " + email + " " + text + " " + ip + " " + text,
			SessionID:   ip, UserAgent: ua,
			Metadata: map[string]string{mdKey: mdVal, "planted": mdVal + " " + email + " " + ip + " ", "ip": ip},
		}
		ev := Sanitizer{HashUserAgent: hash, Now: func() time.Time { return fixedNow }}.Sanitize(e)

		for name, f := range stringFields(ev) {
			switch {
			case !utf8.ValidString(f.v):
				t.Errorf("%s = %q is not valid UTF-8", name, f.v)
			case strings.ContainsRune(f.v, 0):
				t.Errorf("%s = %q contains NUL", name, f.v)
			case utf8.RuneCountInString(f.v) > f.max:
				t.Errorf("%s has %d characters, limit %d", name, utf8.RuneCountInString(f.v), f.max)
			case logging.Redact(f.v) != f.v:
				t.Errorf("%s = %q is not clean: Redact gives %q", name, f.v, logging.Redact(f.v))
			}
		}
		js, err := protojson.Marshal(ev)
		if err != nil {
			t.Fatalf("protojson.Marshal: %v", err)
		}
		if strings.Contains(string(js), email) {
			t.Errorf("planted email %q survived: %s", email, js)
		}
		if strings.Contains(string(js), " "+ip+" ") || ev.GetSessionId() == ip || ev.GetMetadata()["ip"] != "" {
			t.Errorf("planted IP %q survived: %s", ip, js)
		}
		again := proto.Clone(ev).(*auditv1.AuditEvent)
		Scrub(again)
		if diff := cmp.Diff(ev, again, protocmp.Transform()); diff != "" {
			t.Errorf("Scrub is not idempotent (-first +again):\n%s", diff)
		}
		if err := protovalidate.Validate(ev); err != nil {
			verr, ok := err.(*protovalidate.ValidationError)
			if !ok {
				t.Fatalf("Validate: %v", err)
			}
			allowed := map[string]bool{"actor_id": true, "actor_type": true, "event_type": true, "event_category": true, "priority": true}
			for _, v := range verr.Violations {
				if path := protovalidate.FieldPathString(v.Proto.GetField()); !allowed[path] {
					t.Errorf("unexpected violation on %s: %s", path, v.Proto.GetMessage())
				}
			}
		}
	})
}
