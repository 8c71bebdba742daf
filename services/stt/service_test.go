package stt

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/testenv"
	"github.com/classwaves/classwaves/services/stt/audio"
	"github.com/classwaves/classwaves/services/stt/audio/audiotest"
	"github.com/classwaves/classwaves/services/stt/openaitest"
)

func TestPCMStreamIsWindowedTranscribedStoredAndPublished(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	session, group := newID(), newID()
	s := h.open(t, pcmStart(session, group, schoolA, 16000))
	// 32 s of speech in 250 ms chunks: windows close at 15 s and 30 s, the last 2 s at the end.
	audioData := audiotest.Speech(16000, 32*time.Second)
	s.sendAll(audioData, 8000)
	if err := s.finish(); err != nil {
		t.Fatalf("stream ended with %v", err)
	}
	if got := len(s.refused()); got != 0 {
		t.Errorf("%d chunks refused", got)
	}
	testenv.Eventually(t, "three transcripts", func() bool { return len(h.events.of(EventTranscript)) == 3 })

	wins := s.windows()
	if len(wins) != 3 {
		t.Fatalf("WindowClosed x %d, want 3", len(wins))
	}
	var gotDur []time.Duration
	for _, w := range wins {
		gotDur = append(gotDur, w.GetWindowEnd().AsTime().Sub(w.GetWindowStart().AsTime()))
	}
	if diff := cmp.Diff([]time.Duration{15 * time.Second, 15 * time.Second, 2 * time.Second}, gotDur); diff != "" {
		t.Errorf("window durations mismatch (-want +got):\n%s", diff)
	}
	if !wins[1].GetWindowStart().AsTime().Equal(wins[0].GetWindowEnd().AsTime()) {
		t.Errorf("continuous audio: window 2 starts at %v, window 1 ends at %v", wins[1].GetWindowStart().AsTime(), wins[0].GetWindowEnd().AsTime())
	}

	// The server got three valid WAV files, each with the previous transcript as prompt.
	reqs := h.openai.Requests()
	var prompts, files []string
	for _, r := range reqs {
		prompts = append(prompts, r.Prompt)
		files = append(files, r.Filename+" "+r.Info.Duration.String()+" "+r.Language+" "+r.ResponseFormat)
	}
	if diff := cmp.Diff([]string{"", "window 1", "window 2"}, prompts); diff != "" {
		t.Errorf("prompts mismatch (-want +got):\n%s", diff)
	}
	wantFiles := []string{"window.wav 15s en verbose_json", "window.wav 15s en verbose_json", "window.wav 2s en verbose_json"}
	if diff := cmp.Diff(wantFiles, files); diff != "" {
		t.Errorf("requests mismatch (-want +got):\n%s", diff)
	}
	// Each file holds exactly the audio sent in its window (the server receives every chunk of a
	// stream into one reused buffer).
	bounds := []int{0, 15 * 32000, 30 * 32000, len(audioData)}
	for i, r := range reqs {
		if i+1 < len(bounds) && !bytes.Equal(r.Audio, audio.EncodeWAV(audioData[bounds[i]:bounds[i+1]], 16000)) {
			t.Errorf("request %d: the file is not the WAV of the window's audio", i)
		}
	}

	// Events: in window order, keyed by group.
	var texts []string
	for i, ev := range h.events.of(EventTranscript) {
		tr := ev.GetTranscriptReady()
		texts = append(texts, tr.GetText())
		if ev.GetKey() != group || ev.GetSessionId() != session || ev.GetSchoolId() != schoolA || ev.GetTraceId() != "trace-1" {
			t.Errorf("event %d: key %q session %q school %q trace %q", i, ev.GetKey(), ev.GetSessionId(), ev.GetSchoolId(), ev.GetTraceId())
		}
		if tr.GetTranscriptId() != wins[i].GetWindowId() || tr.GetWordCount() != 2 || tr.GetConfidence() <= 0.7 {
			t.Errorf("event %d: %v", i, tr)
		}
	}
	if diff := cmp.Diff([]string{"window 1", "window 2", "window 3"}, texts); diff != "" {
		t.Errorf("transcript texts mismatch (-want +got):\n%s", diff)
	}
	acts := h.events.of(EventSpeechActivity)
	if len(acts) != 3 {
		t.Fatalf("SpeechActivity x %d, want 3", len(acts))
	}
	if sa := acts[0].GetSpeechActivity(); sa.GetSpeechSeconds() < 13 || sa.GetLongestSilenceSeconds() > 0.2 {
		t.Errorf("speech activity of window 1: %v", sa)
	}

	// Stored, and listed over gRPC in window order.
	resp, err := h.client.ListTranscripts(as(authn.RoleTeacher, schoolA), &sttv1.ListTranscriptsRequest{SessionId: session})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, tr := range resp.GetTranscripts() {
		listed = append(listed, tr.GetId()+" "+tr.GetText())
		if len(tr.GetSegments()) != 1 || tr.GetLanguage() != "en" || tr.GetSpeechSeconds() == 0 {
			t.Errorf("transcript %s: %v", tr.GetId(), tr)
		}
	}
	want := []string{wins[0].GetWindowId() + " window 1", wins[1].GetWindowId() + " window 2", wins[2].GetWindowId() + " window 3"}
	if diff := cmp.Diff(want, listed); diff != "" {
		t.Errorf("listed mismatch (-want +got):\n%s", diff)
	}
	if got := h.windowCount(outcomeTranscribed); got != 3 {
		t.Errorf("stt_windows_total{transcribed} = %d, want 3", got)
	}
	testenv.Eventually(t, "buffers released", func() bool { return testutil.ToFloat64(h.svc.m.windowBytes) == 0 })
}

func TestContainerFormatsEndToEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file   string
		format sttv1.AudioFormat
		// chunk is the size the file is cut into (MediaRecorder blobs fall anywhere).
		chunk int
		want  time.Duration
	}{
		{"speech.webm", sttv1.AudioFormat_AUDIO_FORMAT_WEBM_OPUS, 700, 5600 * time.Millisecond},
		{"speech_live.webm", sttv1.AudioFormat_AUDIO_FORMAT_WEBM_OPUS, 333, 5600 * time.Millisecond},
		{"speech.ogg", sttv1.AudioFormat_AUDIO_FORMAT_OGG_OPUS, 500, 5600 * time.Millisecond},
		{"speech_8k_u8.wav", sttv1.AudioFormat_AUDIO_FORMAT_WAV, 4000, 2702500 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			s := h.open(t, &sttv1.AudioStart{SessionId: newID(), GroupId: newID(), SchoolId: schoolA, Format: tt.format})
			s.sendAll(fixture(t, tt.file), tt.chunk)
			s.stop()
			if err := s.finish(); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, "the transcript", func() bool { return len(h.events.of(EventTranscript)) == 1 })
			reqs := h.openai.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			// The fake server checked the upload is one complete valid file (audio.Inspect).
			fmtWant := map[sttv1.AudioFormat]audio.Format{
				sttv1.AudioFormat_AUDIO_FORMAT_WEBM_OPUS: audio.FormatWebMOpus,
				sttv1.AudioFormat_AUDIO_FORMAT_OGG_OPUS:  audio.FormatOggOpus,
				sttv1.AudioFormat_AUDIO_FORMAT_WAV:       audio.FormatWAV,
			}[tt.format]
			if diff := cmp.Diff(audio.Info{Format: fmtWant, Duration: tt.want}, reqs[0].Info); diff != "" {
				t.Errorf("uploaded file mismatch (-want +got):\n%s", diff)
			}
			wantActs := 0
			if tt.format == sttv1.AudioFormat_AUDIO_FORMAT_WAV {
				wantActs = 1 // Opus is not decoded here: no voice activity
			}
			if got := len(h.events.of(EventSpeechActivity)); got != wantActs {
				t.Errorf("SpeechActivity x %d, want %d", got, wantActs)
			}
		})
	}
}

func TestBadChunksAreRefusedAndTheStreamGoesOn(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	webm := fixture(t, "speech_live.webm")
	s := h.open(t, &sttv1.AudioStart{SessionId: newID(), GroupId: newID(), SchoolId: schoolA, Format: sttv1.AudioFormat_AUDIO_FORMAT_WEBM_OPUS})
	s.sendAll(webm[:3000], 1000)
	s.send([]byte("this is not audio at all, just text")) // seq 4
	s.send(fixture(t, "speech.ogg"))                      // seq 5: another format
	s.sendAll(webm[3000:], 1000)
	s.stop()
	if err := s.finish(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range s.refused() {
		got = append(got, r.GetReason())
		if r.GetMessage() == "" {
			t.Errorf("refusal of chunk %d has no message", r.GetSeq())
		}
	}
	if diff := cmp.Diff([]string{"AUDIO_CORRUPT", "AUDIO_CORRUPT"}, got); diff != "" {
		t.Errorf("refusals mismatch (-want +got):\n%s", diff)
	}
	testenv.Eventually(t, "the transcript", func() bool { return len(h.events.of(EventTranscript)) == 1 })
	if d := h.openai.Requests()[0].Info.Duration; d != 5600*time.Millisecond {
		t.Errorf("the window holds %v, want all 5.6s of the good chunks", d)
	}
}

func TestStreamProtocol(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	type answer struct {
		Code   codes.Code
		Reason string
	}
	run := func(msgs ...*sttv1.StreamAudioRequest) answer {
		stream, err := h.client.StreamAudio(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if err := stream.Send(m); err != nil {
				break
			}
		}
		_ = stream.CloseSend()
		for {
			if _, err := stream.Recv(); err != nil {
				st := status.Convert(err)
				if st.Code() == codes.OK || err.Error() == "EOF" {
					return answer{}
				}
				return answer{st.Code(), apperr.ReasonOf(st)}
			}
		}
	}
	start := func(a *sttv1.AudioStart) *sttv1.StreamAudioRequest {
		return &sttv1.StreamAudioRequest{Message: &sttv1.StreamAudioRequest_Start{Start: a}}
	}
	chunk := &sttv1.StreamAudioRequest{Message: &sttv1.StreamAudioRequest_Chunk{Chunk: &sttv1.AudioChunk{Data: []byte{1, 2}}}}
	tests := []struct {
		name string
		msgs []*sttv1.StreamAudioRequest
		want answer
	}{
		{"chunk before start", []*sttv1.StreamAudioRequest{chunk}, answer{codes.FailedPrecondition, "AUDIO_START_REQUIRED"}},
		{"PCM16 without a rate", []*sttv1.StreamAudioRequest{start(pcmStart(newID(), newID(), schoolA, 0))}, answer{codes.InvalidArgument, "VALIDATION_ERROR"}},
		{"no school", []*sttv1.StreamAudioRequest{start(pcmStart(newID(), newID(), "", 16000))}, answer{codes.InvalidArgument, "VALIDATION_ERROR"}},
		{"unknown format", []*sttv1.StreamAudioRequest{start(&sttv1.AudioStart{SessionId: newID(), GroupId: newID(), SchoolId: schoolA})}, answer{codes.InvalidArgument, "VALIDATION_ERROR"}},
		{"two starts", []*sttv1.StreamAudioRequest{start(pcmStart(newID(), newID(), schoolA, 16000)), start(pcmStart(newID(), newID(), schoolA, 16000))}, answer{codes.FailedPrecondition, "AUDIO_ALREADY_STARTED"}},
		{"start and end", []*sttv1.StreamAudioRequest{start(pcmStart(newID(), newID(), schoolA, 16000)), chunk}, answer{}},
	}
	for _, tt := range tests {
		if got := run(tt.msgs...); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}

	// A second stream for a group supersedes the first: the first's open window is closed (and
	// transcribed), and its next chunk ends it.
	session, group := newID(), newID()
	first := h.open(t, pcmStart(session, group, schoolA, 16000))
	first.send(audiotest.Speech(16000, 2*time.Second))
	first.waitAnswers(1)
	second := h.open(t, pcmStart(session, group, schoolA, 16000))
	second.send(audiotest.Speech(16000, time.Second))
	second.waitAnswers(1)
	first.send(audiotest.Speech(16000, time.Second))
	err := first.finish()
	if st := status.Convert(err); st.Code() != codes.Aborted || apperr.ReasonOf(st) != "AUDIO_STREAM_SUPERSEDED" {
		t.Errorf("superseded stream ended with %v", err)
	}
	if err := second.finish(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "both windows", func() bool { return len(h.events.of(EventTranscript)) == 2 })
}

func TestProviderOffStillPublishesSpeechActivity(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.Provider = ProviderOff })
	s := h.open(t, pcmStart(newID(), newID(), schoolA, 8000))
	s.sendAll(append(audiotest.Speech(8000, 16*time.Second), silence(8000, 4*time.Second)...), 4000)
	if err := s.finish(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "speech activity", func() bool { return len(h.events.of(EventSpeechActivity)) == 2 })
	var got [][3]float64
	for _, ev := range h.events.of(EventSpeechActivity) {
		a := ev.GetSpeechActivity()
		got = append(got, [3]float64{a.GetSpeechSeconds(), a.GetSilenceSeconds(), a.GetLongestSilenceSeconds()})
	}
	// Window 1: 15 bursts of 0.9 s with 0.1 s pauses (filled by the hangover, but for the last
	// one, which ends the window); window 2: one burst, then the 4 s of silence.
	want := [][3]float64{{14.9, 0.1, 0.1}, {0.9, 4.1, 4.1}}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 0.05)); diff != "" {
		t.Errorf("speech activity mismatch (-want +got):\n%s", diff)
	}
	if n := len(h.openai.Requests()); n != 0 {
		t.Errorf("%d transcription requests with STT_PROVIDER=off", n)
	}
	if got := h.windowCount(outcomeProviderOff); got != 2 {
		t.Errorf("stt_windows_total{dropped_off} = %d, want 2", got)
	}
}

func TestSilentWindowsAreNotSent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := h.open(t, pcmStart(newID(), newID(), schoolA, 16000))
	s.sendAll(silence(16000, 5*time.Second), 16000)
	s.stop()
	if err := s.finish(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "speech activity", func() bool { return len(h.events.of(EventSpeechActivity)) == 1 })
	testenv.Eventually(t, "the window's outcome", func() bool { return h.windowCount(outcomeSilent) == 1 })
	if n := len(h.openai.Requests()); n != 0 {
		t.Errorf("%d requests for a silent window", n)
	}
}

func TestTranscriptionFailuresDropTheWindowOnly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		replies []openaitest.Reply
		outcome string
		texts   []string
	}{
		{"server error", []openaitest.Reply{{Status: 500}}, outcomeError, []string{"window 2"}},
		{"malformed JSON", []openaitest.Reply{{Body: `{"text":`}}, outcomeError, []string{"window 2"}},
		{"rate limited", []openaitest.Reply{{Status: 429, RetryAfter: "1"}}, outcomeError, []string{"window 2"}},
		{"hallucination on noise", []openaitest.Reply{{Response: &openaitest.Verbose{Text: "Thank you for watching!", Segments: []openaitest.Segment{
			{Start: 0, End: 3, Text: " Thank you for watching!", AvgLogprob: -0.9, NoSpeechProb: 0.5, CompressionRatio: 1}}}}}, outcomeEmpty, []string{"window 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			h.openai.Script(tt.replies...)
			s := h.open(t, pcmStart(newID(), newID(), schoolA, 8000))
			s.send(audiotest.Speech(8000, 3*time.Second))
			s.stop()
			s.send(audiotest.Speech(8000, 3*time.Second))
			if err := s.finish(); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, "the second transcript", func() bool { return len(h.events.of(EventTranscript)) == 1 })
			var texts []string
			for _, ev := range h.events.of(EventTranscript) {
				texts = append(texts, ev.GetTranscriptReady().GetText())
			}
			if diff := cmp.Diff(tt.texts, texts); diff != "" {
				t.Errorf("transcripts mismatch (-want +got):\n%s", diff)
			}
			if got := h.windowCount(tt.outcome); got != 1 {
				t.Errorf("stt_windows_total{%s} = %d, want 1", tt.outcome, got)
			}
			// A failed window's minutes are refunded.
			h.svc.budget.save(context.Background())
			u, err := h.store.Usage(context.Background(), schoolA, day(h.clock()))
			if err != nil {
				t.Fatal(err)
			}
			want := 6.0
			if tt.outcome == outcomeError {
				want = 3
			}
			if u.Seconds != want {
				t.Errorf("usage %v s, want %v", u.Seconds, want)
			}
		})
	}
}

func TestBudgetAlertsOnceAndStopsTranscription(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.BudgetMinutesPerDay = 0.5 // 30 s
		c.BudgetAlertPcts = []int{50, 90}
	})
	// Four 10 s windows for school A: 10 s (33%), 20 s (67%: the 50% alert), 30 s (100%: the 90%
	// alert, then exhausted), the fourth is dropped.
	for i := range 4 {
		s := h.open(t, pcmStart(newID(), newID(), schoolA, 8000))
		s.send(audiotest.Speech(8000, 10*time.Second))
		if err := s.finish(); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "the window's outcome", func() bool {
			return h.windowCount(outcomeTranscribed)+h.windowCount(outcomeBudget) == i+1
		})
	}
	// School B is not affected.
	s := h.open(t, pcmStart(newID(), newID(), schoolB, 8000))
	s.send(audiotest.Speech(8000, 10*time.Second))
	if err := s.finish(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "all windows", func() bool { return h.windowCount(outcomeTranscribed)+h.windowCount(outcomeBudget) == 5 })
	if got := h.windowCount(outcomeBudget); got != 1 {
		t.Errorf("stt_windows_total{dropped_budget} = %d, want 1", got)
	}
	type alert struct {
		School    string
		Percent   int32
		Used      float64
		Exhausted bool
	}
	var alerts []alert
	for _, ev := range h.events.of(EventBudgetAlert) {
		a := ev.GetBudgetAlert()
		alerts = append(alerts, alert{ev.GetSchoolId(), a.GetPercent(), a.GetMinutesUsed(), a.GetExhausted()})
		if a.GetMinutesBudget() != 0.5 || ev.GetKey() != schoolA {
			t.Errorf("alert %v", ev)
		}
	}
	want := []alert{{schoolA, 50, 20.0 / 60, false}, {schoolA, 90, 0.5, true}, {schoolA, 100, 0.5, true}}
	if diff := cmp.Diff(want, alerts, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("alerts mismatch (-want +got):\n%s", diff)
	}
	testenv.Eventually(t, "audit records", func() bool { return len(h.auditEvents()) == 3 })
	for _, rec := range h.auditEvents() {
		if !strings.Contains(rec, `"eventType":"stt.budget_alert"`) || !strings.Contains(rec, schoolA) {
			t.Errorf("audit record %s", rec)
		}
	}

	got, err := h.client.GetBudgetUsage(as(authn.RoleTeacher, schoolA), &sttv1.GetBudgetUsageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantUsage := &sttv1.GetBudgetUsageResponse{SchoolId: schoolA, Day: "2026-11-25", MinutesUsed: 0.5, MinutesBudget: 0.5,
		PercentUsed: 100, AlertsSent: []int32{50, 90, 100}, Exhausted: true}
	if diff := cmp.Diff(wantUsage, got, protocmp.Transform()); diff != "" {
		t.Errorf("GetBudgetUsage mismatch (-want +got):\n%s", diff)
	}
	// The next UTC day starts afresh.
	h.setClock(h.clock().Add(24 * time.Hour))
	s = h.open(t, pcmStart(newID(), newID(), schoolA, 8000))
	s.send(audiotest.Speech(8000, 10*time.Second))
	if err := s.finish(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "a transcript the next day", func() bool { return h.windowCount(outcomeTranscribed) == 5 })
}

func TestGetBudgetUsageAccess(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.BudgetMinutesPerDay = 10 })
	tests := []struct {
		name   string
		ctx    context.Context
		school string
		code   codes.Code
	}{
		{"teacher, own school by default", as(authn.RoleTeacher, schoolA), "", codes.OK},
		{"teacher, other school", as(authn.RoleTeacher, schoolA), schoolB, codes.PermissionDenied},
		{"super admin, any school", as(authn.RoleSuperAdmin, ""), schoolB, codes.OK},
		{"super admin without a school names none", as(authn.RoleSuperAdmin, ""), "", codes.InvalidArgument},
	}
	for _, tt := range tests {
		resp, err := h.client.GetBudgetUsage(tt.ctx, &sttv1.GetBudgetUsageRequest{SchoolId: tt.school})
		if got := status.Code(err); got != tt.code {
			t.Errorf("%s: code %v, want %v (%v)", tt.name, got, tt.code, err)
		}
		if err == nil && (resp.GetMinutesBudget() != 10 || resp.GetExhausted()) {
			t.Errorf("%s: %v", tt.name, resp)
		}
	}
}

// TestRefusalsOnly checks AudioStart.refusals_only (what the realtime edge asks for): accepted chunks get
// no answer, refused ones still do, windows are still reported and transcribed.
func TestRefusalsOnly(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	webm := fixture(t, "speech_live.webm")
	s := h.open(t, &sttv1.AudioStart{SessionId: newID(), GroupId: newID(), SchoolId: schoolA,
		Format: sttv1.AudioFormat_AUDIO_FORMAT_WEBM_OPUS, RefusalsOnly: true})
	s.sendAll(webm[:3000], 1000)
	s.send([]byte("this is not audio at all, just text")) // seq 4
	s.sendAll(webm[3000:], 1000)
	s.stop()
	if err := s.finish(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	var accepted, refused, closed int
	var refusedSeq int64
	for _, a := range s.answers {
		switch {
		case a.GetAccepted() != nil:
			accepted++
		case a.GetRefused() != nil:
			refused++
			refusedSeq = a.GetRefused().GetSeq()
		case a.GetWindowClosed() != nil:
			closed++
		}
	}
	s.mu.Unlock()
	if accepted != 0 || refused != 1 || refusedSeq != 4 || closed != 1 {
		t.Errorf("answers: %d accepted, %d refused (seq %d), %d windows closed; want 0, 1 (seq 4), 1",
			accepted, refused, refusedSeq, closed)
	}
	testenv.Eventually(t, "the transcript", func() bool { return len(h.events.of(EventTranscript)) == 1 })
}
