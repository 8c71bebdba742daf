package guidance

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	busevents "github.com/classwaves/classwaves/pkg/events"
)

// FuzzSplitSpeaker: any text splits without panicking, and the text is kept (less the label).
func FuzzSplitSpeaker(f *testing.F) {
	for _, s := range []string{"Maria: hi", "Speaker 2: yes", "a:b", ": x", "\xff: y", "A B C D: e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, rest := splitSpeaker(s)
		if len(sp) > maxSpeakerLabel {
			t.Errorf("label %q too long", sp)
		}
		if sp == "" && rest != strings.TrimSpace(s) {
			t.Errorf("text changed without a label: %q -> %q", s, rest)
		}
		_ = wordCount(rest)
	})
}

// FuzzEventDecoding: whatever a producer puts on the bus, reading it never panics and a
// malformed event is refused before it reaches the store.
func FuzzEventDecoding(f *testing.F) {
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	good := &eventsv1.Event{Type: busevents.Transcript, SessionId: "s", GroupId: "g",
		Payload: &eventsv1.Event_TranscriptReady{TranscriptReady: &eventsv1.TranscriptReady{TranscriptId: "t", Text: "A: hi",
			WindowStart: ts(base), WindowEnd: ts(base.Add(15 * time.Second))}}}
	b, _ := proto.Marshal(good)
	f.Add(b)
	act := &eventsv1.Event{Type: busevents.SpeechActivity, SessionId: "s", GroupId: "g",
		Payload: &eventsv1.Event_SpeechActivity{SpeechActivity: &eventsv1.SpeechActivity{WindowId: "w", WindowStart: ts(base), WindowEnd: ts(base)}}}
	b, _ = proto.Marshal(act)
	f.Add(b)
	f.Add([]byte{0x0a, 0xff})
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev := &eventsv1.Event{}
		if proto.Unmarshal(payload, ev) != nil {
			return
		}
		if tr, ok := turnFromEvent(ev, ev.GetTranscriptReady()); ok {
			if tr.ID == "" || tr.WindowEnd.Before(tr.WindowStart) {
				t.Errorf("accepted turn %+v", tr)
			}
		}
		if a, ok := activityFromEvent(ev, ev.GetSpeechActivity()); ok {
			if a.WindowID == "" || a.SpeechSeconds < 0 || a.SilenceSeconds != a.SilenceSeconds {
				t.Errorf("accepted activity %+v", a)
			}
		}
	})
}
