package analytics

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	"github.com/classwaves/classwaves/pkg/bus"
	busevents "github.com/classwaves/classwaves/pkg/events"
)

func message(t testing.TB, ev *eventsv1.Event) bus.Message {
	t.Helper()
	b, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return bus.Message{ID: "1-0", Payload: b}
}

func TestDecodeChange(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	session, group, student := newID(), newID(), newID()
	base := func(typ string) *eventsv1.Event {
		return &eventsv1.Event{Id: newID(), Type: typ, SessionId: session, GroupId: group, SchoolId: schoolA, OccurredAt: ts(now.Add(-time.Second))}
	}
	with := func(typ string, fn func(*eventsv1.Event)) *eventsv1.Event {
		ev := base(typ)
		fn(ev)
		return ev
	}
	speech := func(sp, si, lo float64) *eventsv1.Event {
		return with(busevents.SpeechActivity, func(e *eventsv1.Event) {
			e.Payload = &eventsv1.Event_SpeechActivity{SpeechActivity: &eventsv1.SpeechActivity{SpeechSeconds: sp, SilenceSeconds: si, LongestSilenceSeconds: lo}}
		})
	}
	transcript := func(text string, words int32, start, end time.Time) *eventsv1.Event {
		return with(busevents.Transcript, func(e *eventsv1.Event) {
			e.Payload = &eventsv1.Event_TranscriptReady{TranscriptReady: &eventsv1.TranscriptReady{TranscriptId: newID(), Text: text, WordCount: words,
				WindowStart: ts(start), WindowEnd: ts(end)}}
		})
	}
	tests := []struct {
		name    string
		payload []byte
		ev      *eventsv1.Event
		want    error // nil: decoded
		check   func(Change) bool
	}{
		{name: "garbage", payload: []byte{0xff, 0xff, 0xff}, want: errInvalid},
		{name: "budget alert", ev: base(busevents.BudgetAlert), want: errIgnored},
		{name: "own event", ev: base(busevents.AnalyticsFinalized), want: errIgnored},
		{name: "no id", ev: with(busevents.SpeechActivity, func(e *eventsv1.Event) { e.Id = "" }), want: errInvalid},
		{name: "session not a uuid", ev: with(busevents.SpeechActivity, func(e *eventsv1.Event) { e.SessionId = "s'; DROP TABLE x;--" }), want: errInvalid},
		{name: "group not a uuid", ev: with(busevents.SpeechActivity, func(e *eventsv1.Event) { e.GroupId = "g" }), want: errInvalid},
		{name: "no payload", ev: base(busevents.SpeechActivity), want: errInvalid},
		{name: "wrong payload", ev: with(busevents.SpeechActivity, func(e *eventsv1.Event) {
			e.Payload = &eventsv1.Event_PromptActed{PromptActed: &eventsv1.PromptActed{PromptId: "p", Status: "acknowledged"}}
		}), want: errInvalid},
		{name: "negative speech", ev: speech(-1, 1, 1), want: errInvalid},
		{name: "NaN speech", ev: speech(math.NaN(), 1, 1), want: errInvalid},
		{name: "infinite silence", ev: speech(1, math.Inf(1), 1), want: errInvalid},
		{name: "longest above silence", ev: speech(1, 2, 3), want: errInvalid},
		{name: "speech", ev: speech(4.5, 10.5, 6), check: func(c Change) bool {
			return c.Kind == kindSpeech && c.Speech == 4.5 && c.Silence == 10.5 && c.LongestSilence == 6 && c.At.Equal(now.Add(-time.Second))
		}},
		{name: "speech without a group", ev: with(busevents.SpeechActivity, func(e *eventsv1.Event) {
			e.GroupId = ""
			e.Payload = &eventsv1.Event_SpeechActivity{SpeechActivity: &eventsv1.SpeechActivity{SpeechSeconds: 1}}
		}), want: errInvalid},
		{name: "transcript counts words when the producer did not", ev: transcript("  one two  three ", 0, now, now.Add(15*time.Second)), check: func(c Change) bool {
			return c.Kind == kindTranscript && c.Words == 3 && c.Seconds == 15 && c.Text == "one two  three"
		}},
		{name: "transcript window backwards", ev: transcript("a", 1, now, now.Add(-time.Second)), want: errInvalid},
		{name: "transcript window of a day", ev: transcript("a", 1, now, now.Add(24*time.Hour)), want: errInvalid},
		{name: "session status unknown", ev: with(busevents.SessionStatusChanged, func(e *eventsv1.Event) {
			e.Payload = &eventsv1.Event_SessionStatusChanged{SessionStatusChanged: &eventsv1.SessionStatusChanged{Status: "exploded"}}
		}), want: errInvalid},
		{name: "session ended", ev: with(busevents.SessionStatusChanged, func(e *eventsv1.Event) {
			e.GroupId = ""
			e.OccurredAt = nil
			e.Payload = &eventsv1.Event_SessionStatusChanged{SessionStatusChanged: &eventsv1.SessionStatusChanged{Status: "ended", TeacherId: teacher1}}
		}), check: func(c Change) bool {
			return c.Kind == kindSessionStatus && c.Status == "ended" && c.TeacherID == teacher1 && c.At.Equal(now)
		}},
		{name: "member without a uuid", ev: with(busevents.GroupMemberJoined, func(e *eventsv1.Event) {
			e.Payload = &eventsv1.Event_GroupMemberJoined{GroupMemberJoined: &eventsv1.GroupMemberJoined{StudentId: "bob"}}
		}), want: errInvalid},
		{name: "member", ev: with(busevents.GroupMemberJoined, func(e *eventsv1.Event) {
			e.Payload = &eventsv1.Event_GroupMemberJoined{GroupMemberJoined: &eventsv1.GroupMemberJoined{StudentId: student}}
		}), check: func(c Change) bool { return c.Kind == kindMemberJoined && c.StudentID == student }},
		{name: "insight tier 3", ev: with(busevents.InsightProduced, func(e *eventsv1.Event) {
			e.Payload = &eventsv1.Event_InsightProduced{InsightProduced: &eventsv1.InsightProduced{Tier: 3}}
		}), want: errInvalid},
		{name: "insight negative questions", ev: with(busevents.InsightProduced, func(e *eventsv1.Event) {
			e.Payload = &eventsv1.Event_InsightProduced{InsightProduced: &eventsv1.InsightProduced{Tier: 1, QuestionCount: -2}}
		}), want: errInvalid},
		{name: "prompt acted oddly", ev: with(busevents.PromptActed, func(e *eventsv1.Event) {
			e.Payload = &eventsv1.Event_PromptActed{PromptActed: &eventsv1.PromptActed{PromptId: "p", Status: "ignored"}}
		}), want: errInvalid},
		{name: "prompt without id", ev: with(busevents.PromptRaised, func(e *eventsv1.Event) {
			e.Payload = &eventsv1.Event_PromptRaised{PromptRaised: &eventsv1.PromptRaised{}}
		}), want: errInvalid},
		{name: "prompt id too long", ev: with(busevents.PromptRaised, func(e *eventsv1.Event) {
			e.Payload = &eventsv1.Event_PromptRaised{PromptRaised: &eventsv1.PromptRaised{PromptId: strings.Repeat("p", 500)}}
		}), want: errInvalid},
	}
	for _, tt := range tests {
		msg := bus.Message{Payload: tt.payload}
		if tt.ev != nil {
			msg = message(t, tt.ev)
		}
		c, _, err := decodeChange(msg, true, now)
		switch {
		case tt.want != nil && !errors.Is(err, tt.want):
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		case tt.want == nil && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.check != nil && !tt.check(c):
			t.Errorf("%s: change = %+v", tt.name, c)
		}
	}
	// Without summaries, no text is kept.
	c, _, err := decodeChange(message(t, transcript("secret words here", 3, now, now.Add(time.Second))), false, now)
	if err != nil || c.Text != "" {
		t.Errorf("text kept with summaries off: %q %v", c.Text, err)
	}
}

// FuzzDecodeChange: no payload panics the decoder, and what it accepts is within bounds.
func FuzzDecodeChange(f *testing.F) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for _, ev := range []*eventsv1.Event{
		{Id: "1", Type: busevents.SpeechActivity, SessionId: newID(), GroupId: newID(), Payload: &eventsv1.Event_SpeechActivity{SpeechActivity: &eventsv1.SpeechActivity{SpeechSeconds: 3}}},
		{Id: "2", Type: busevents.Transcript, SessionId: newID(), GroupId: newID(), Payload: &eventsv1.Event_TranscriptReady{TranscriptReady: &eventsv1.TranscriptReady{Text: "a b c"}}},
		{Id: "3", Type: busevents.SessionStatusChanged, SessionId: newID(), Payload: &eventsv1.Event_SessionStatusChanged{SessionStatusChanged: &eventsv1.SessionStatusChanged{Status: "ended"}}},
	} {
		b, _ := proto.Marshal(ev)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, _, err := decodeChange(bus.Message{Payload: payload}, true, now)
		if err != nil {
			return
		}
		if c.EventID == "" || !isUUID(c.SessionID) || c.Kind == 0 {
			t.Fatalf("accepted %+v", c)
		}
		for _, v := range []float64{c.Speech, c.Silence, c.LongestSilence, c.Seconds} {
			if math.IsNaN(v) || v < 0 || v > maxWindowSeconds {
				t.Fatalf("accepted seconds %v", v)
			}
		}
		if c.Words < 0 || c.Words > maxWordsPerEvent || c.Questions < 0 || len(c.Text) > maxKeptText {
			t.Fatalf("accepted %+v", c)
		}
	})
}
