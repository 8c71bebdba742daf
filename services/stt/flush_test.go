package stt

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	"github.com/classwaves/classwaves/pkg/testenv"
	"github.com/classwaves/classwaves/services/stt/audio/audiotest"
	"github.com/classwaves/classwaves/services/stt/openaitest"
)

func TestFlushGroups(t *testing.T) {
	t.Parallel()
	for _, queue := range []bool{false, true} {
		name := "sequential"
		if queue {
			name = "queued"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *Config) { c.QueueEnabled, c.QueueWorkers = queue, 2 })
			h.openai.Respond(func(r openaitest.Request) openaitest.Reply {
				return openaitest.Reply{Delay: 20 * time.Millisecond, Response: openaitest.Said("flushed", r.Info.Duration.Seconds())}
			})
			session, other := newID(), newID()
			groups := []string{newID(), newID(), newID()}
			var streams []*audioStream
			for _, g := range groups {
				s := h.open(t, pcmStart(session, g, schoolA, 16000))
				s.send(audiotest.Speech(16000, 4*time.Second))
				s.waitAnswers(1)
				streams = append(streams, s)
			}
			o := h.open(t, pcmStart(other, newID(), schoolA, 16000))
			o.send(audiotest.Speech(16000, 4*time.Second))
			o.waitAnswers(1)

			resp, err := h.client.FlushGroups(context.Background(), &sttv1.FlushGroupsRequest{SessionId: session, TimeoutMs: 30000})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetWindowsFlushed() != 3 || len(resp.GetTimedOutGroupIds()) != 0 {
				t.Errorf("FlushGroups = %v, want 3 windows flushed, none timed out", resp)
			}
			// Drained means published: the transcripts are out when FlushGroups returns.
			var got []string
			for _, ev := range h.events.of(EventTranscript) {
				got = append(got, ev.GetGroupId())
			}
			slices.Sort(got)
			want := slices.Clone(groups)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("transcripts at return mismatch (-want +got):\n%s", diff)
			}
			// The other session's window is still open; the streams go on.
			if n := len(h.openai.Requests()); n != 3 {
				t.Errorf("%d requests, want 3", n)
			}
			for _, s := range append(streams, o) {
				if err := s.finish(); err != nil {
					t.Fatal(err)
				}
			}
			testenv.Eventually(t, "the other session's transcript", func() bool { return len(h.events.of(EventTranscript)) == 4 })

			// Naming groups flushes only those; an unknown session flushes nothing.
			resp, err = h.client.FlushGroups(context.Background(), &sttv1.FlushGroupsRequest{SessionId: newID()})
			if err != nil || resp.GetWindowsFlushed() != 0 {
				t.Errorf("FlushGroups(unknown session) = %v, %v", resp, err)
			}
		})
	}
}

func TestFlushGroupsTimesOutAndDropsTheAudio(t *testing.T) {
	t.Parallel()
	for _, queue := range []bool{false, true} {
		t.Run(map[bool]string{false: "sequential", true: "queued"}[queue], func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *Config) { c.QueueEnabled, c.QueueWorkers = queue, 1 })
			h.openai.Respond(func(openaitest.Request) openaitest.Reply { return openaitest.Reply{Hang: true} })
			session := newID()
			groups := []string{newID(), newID()}
			for _, g := range groups {
				s := h.open(t, pcmStart(session, g, schoolA, 16000))
				s.send(audiotest.Speech(16000, 2*time.Second))
				s.waitAnswers(1)
			}
			resp, err := h.client.FlushGroups(context.Background(), &sttv1.FlushGroupsRequest{SessionId: session, TimeoutMs: 100})
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Clone(resp.GetTimedOutGroupIds())
			slices.Sort(got)
			want := slices.Clone(groups)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("timed out groups mismatch (-want +got):\n%s", diff)
			}
			// Both windows are dropped (cancelled in flight, or never started with the queue's
			// single worker); nothing is published and every buffer is released.
			testenv.Eventually(t, "the windows dropped", func() bool { return h.windowCount(outcomeDrain) == 2 })
			if n := len(h.events.of(EventTranscript)); n != 0 {
				t.Errorf("%d transcripts published after a timed-out drain", n)
			}
			testenv.Eventually(t, "buffers released", func() bool { return testutil.ToFloat64(h.svc.m.windowBytes) == 0 })
			// Usage of abandoned windows is refunded.
			h.svc.budget.save(context.Background())
			u, err := h.store.Usage(context.Background(), schoolA, day(h.clock()))
			if err != nil {
				t.Fatal(err)
			}
			if u.Seconds != 0 {
				t.Errorf("usage %v s after abandoned windows, want 0", u.Seconds)
			}
		})
	}
}

func TestStopDrainsOpenWindows(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := h.open(t, pcmStart(newID(), newID(), schoolA, 16000))
	s.send(audiotest.Speech(16000, 3*time.Second))
	s.waitAnswers(1)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := h.svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.windowCount(outcomeTranscribed); got != 1 {
		t.Errorf("stt_windows_total{transcribed} = %d after Stop, want the open window's", got)
	}
	testenv.Eventually(t, "the transcript event", func() bool { return len(h.events.of(EventTranscript)) == 1 })
	// After Stop, new streams are refused.
	if _, err := h.svc.OpenStream(StreamStart{SessionID: newID(), GroupID: newID(), SchoolID: schoolA, Format: 1, SampleRate: 16000}); err == nil {
		t.Error("OpenStream after Stop succeeded")
	}
}

func TestStopAbandonsWhatTheDrainTimeoutCannotFinish(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.DrainTimeout = 100 * time.Millisecond })
	h.openai.Respond(func(openaitest.Request) openaitest.Reply { return openaitest.Reply{Hang: true} })
	s := h.open(t, pcmStart(newID(), newID(), schoolA, 16000))
	s.send(audiotest.Speech(16000, 3*time.Second))
	s.waitAnswers(1)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := h.svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.windowCount(outcomeDrain); got != 1 {
		t.Errorf("stt_windows_total{dropped_drain} = %d, want 1", got)
	}
}
