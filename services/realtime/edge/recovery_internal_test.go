package edge

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/pkg/authn"
)

func TestConnCodecRoundTrip(t *testing.T) {
	c := newConn(authn.Principal{Subject: "student-1", Role: authn.RoleStudent, SchoolID: "s", SessionID: "sess", GroupID: "g"}, "trace-1")
	c.sessions["sess"] = "s"
	c.groups["g"] = "sess"
	b, err := encodeConn(c)
	if err != nil {
		t.Fatal(err)
	}
	v, err := decodeConn(b)
	if err != nil {
		t.Fatal(err)
	}
	got := v.(*conn)
	if got.principal != c.principal || got.traceID != c.traceID {
		t.Errorf("principal %+v trace %q, want %+v %q", got.principal, got.traceID, c.principal, c.traceID)
	}
	if diff := cmp.Diff(c.sessions, got.sessions); diff != "" {
		t.Errorf("sessions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(c.groups, got.groups); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	if got.audio == nil {
		t.Error("decoded connection has no audio map")
	}
}

func TestConnCodecRefusesBadInput(t *testing.T) {
	for _, v := range []any{nil, "x", (*conn)(nil)} {
		if _, err := encodeConn(v); err == nil {
			t.Errorf("encodeConn(%#v) succeeded", v)
		}
	}
	for _, b := range []string{"", "null", "[]", `{"sub":"x"}`, `{"role":"teacher"}`, `{"sub":1,"role":"teacher"}`, `{"sub":"x","role":"teacher","sessions":[1]}`} {
		if _, err := decodeConn([]byte(b)); err == nil {
			t.Errorf("decodeConn(%q) succeeded", b)
		}
	}
}

func FuzzDecodeConn(f *testing.F) {
	f.Add([]byte(`{"sub":"t","role":"teacher","sessions":{"a":"b"},"groups":{"g":"a"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeConn(b)
		if err == nil {
			if c, ok := v.(*conn); !ok || c.principal.Subject == "" {
				t.Fatalf("decodeConn(%q) = %#v without error", b, v)
			}
		}
	})
}
