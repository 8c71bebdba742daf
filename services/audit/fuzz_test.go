package audit

import (
	"testing"
	"unicode/utf8"

	"buf.build/go/protovalidate"

	"github.com/classwaves/classwaves/pkg/logging"
)

// FuzzDecodeEvent feeds arbitrary stream payloads to the worker's decoder: it never panics, and
// whatever it accepts is fit to store: valid by the proto's rules, clean text (nothing left for
// the redactor), no NUL, and a count of at least 1.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"id":"0b3c8a3e-2f6d-4a53-9a59-5f2a4e0c1d2b","occurredAt":"2026-01-01T00:00:00Z","actorId":"x","actorType":"system","eventType":"e","eventCategory":"c"}`))
	f.Add([]byte(`{"id":"0b3c8a3e-2f6d-4a53-9a59-5f2a4e0c1d2b","occurredAt":"2026-01-01T00:00:00Z","actorId":"a@b.co","actorType":"admin","eventType":"e","eventCategory":"c","description":"from 10.0.0.1 \u0000","metadata":{"ip":"1.2.3.4","k":"v"},"count":-3,"priority":"critical"}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`{}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, payload []byte) {
		rec, reason := decodeEvent(payload)
		if reason != "" {
			if !utf8.ValidString(reason) || len(reason) > maxReasonLen+3 {
				t.Errorf("reason %q is not valid UTF-8 or too long", reason)
			}
			return
		}
		ev := recordToProto(rec)
		if err := protovalidate.Validate(ev); err != nil {
			t.Errorf("accepted an event that does not validate: %v", err)
		}
		if rec.Count < 1 {
			t.Errorf("count %d", rec.Count)
		}
		texts := []string{rec.ActorID, rec.ActorType, rec.EventType, rec.Category, rec.ResourceType, rec.ResourceID,
			rec.SchoolID, rec.SessionID, rec.Description, rec.UserAgentHash, rec.ComplianceBasis, rec.Priority}
		for k, v := range rec.Metadata {
			texts = append(texts, k, v)
			if logging.SensitiveKey(k) {
				t.Errorf("metadata key %q is sensitive", k)
			}
		}
		for _, s := range texts {
			if logging.Redact(s) != s {
				t.Errorf("text %q is not clean", s)
			}
			for i := 0; i < len(s); i++ {
				if s[i] == 0 {
					t.Errorf("text %q holds NUL", s)
				}
			}
		}
	})
}

// FuzzDecodePageToken: a client's page token never panics the decoder, and a token it accepts
// is the canonical encoding of the cursor it yields.
func FuzzDecodePageToken(f *testing.F) {
	f.Add(EncodePageToken(Cursor{ID: testID(1)}))
	f.Add("djF8MXwy")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := DecodePageToken(tok)
		if err != nil {
			return
		}
		again, err := DecodePageToken(EncodePageToken(c))
		if err != nil || again != c {
			t.Errorf("re-encoded cursor %+v decodes to %+v, %v", c, again, err)
		}
	})
}
