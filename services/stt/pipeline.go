package stt

import (
	"context"
	"strings"
	"time"
	"unicode"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	"github.com/classwaves/classwaves/services/stt/audio"
	"github.com/classwaves/classwaves/services/stt/whisper"
)

const (
	// minSpeech is the least detected speech for which a PCM/WAV window is transcribed when
	// STT_SKIP_SILENT_WINDOWS is on.
	minSpeech = 300 * time.Millisecond
	// promptBytes is how much of the previous transcript is sent as prompt (Whisper reads the
	// last 224 tokens of a prompt; 200 bytes is well within).
	promptBytes = 200
	// storeTimeout bounds storing a transcript, which happens even when the drain gave up on
	// the group: the transcription was paid for.
	storeTimeout = 5 * time.Second
)

// windowJob is a closed window on its way: speech activity, then (in the group's order)
// budget, transcription, filtering, storage and publication. The job owns the window's audio and
// releases it as soon as it is transcribed, or dropped.
type windowJob struct {
	id                        string
	g                         *group
	school, language, traceID string
	win                       *audio.Window
	start, end                time.Time
	closedAt                  time.Time
	// transcribe is false when the provider is off or the group's backlog is full.
	transcribe bool
	ctx        context.Context
	// prev and prevAct are the previous job's done and actDone (nil for the first).
	prev, prevAct <-chan struct{}
	done, actDone chan struct{}
	ttftStart     time.Time
}

// run processes j; it is the job's goroutine.
func (s *Service) run(j *windowJob) {
	defer s.jobs.Done()
	defer s.finish(j)
	g := j.g
	act := j.win.Activity // measured as the chunks arrived: nothing to compute here
	s.publishActivity(j, act)
	if !j.transcribe {
		if s.transcriber == nil {
			s.m.windows.WithLabelValues(outcomeProviderOff).Inc()
		}
		return
	}
	if s.cfg.SkipSilentWindows && act != nil && act.Speech < minSpeech {
		s.m.windows.WithLabelValues(outcomeSilent).Inc()
		return
	}
	waitStart := time.Now()
	select {
	case <-orClosed(j.prev):
	case <-j.ctx.Done():
		s.m.windows.WithLabelValues(outcomeDrain).Inc()
		return
	}
	wait := time.Since(waitStart)
	today, ok, err := s.budget.reserve(j.ctx, j.school, j.win.Duration, j.traceID)
	switch {
	case err != nil && j.ctx.Err() != nil:
		s.m.windows.WithLabelValues(outcomeDrain).Inc()
		return
	case err != nil:
		s.logger.Warn("stt: budget unavailable; window dropped", "err", err, "sessionId", g.key.session, "groupId", g.key.group)
		s.m.windows.WithLabelValues(outcomeError).Inc()
		return
	case !ok:
		s.m.windows.WithLabelValues(outcomeBudget).Inc()
		return
	}
	g.mu.Lock()
	prompt := g.prompt
	g.mu.Unlock()
	callStart := time.Now()
	resp, err := s.transcriber.Transcribe(j.ctx, whisper.Request{
		Audio:    j.win.File,
		Filename: j.win.Filename(),
		Language: j.language,
		Prompt:   prompt,
	})
	call := time.Since(callStart)
	j.win.Release() // the audio is not needed any more
	if err != nil {
		s.budget.refund(j.ctx, j.school, today, j.win.Duration)
		if j.ctx.Err() != nil {
			s.m.windows.WithLabelValues(outcomeDrain).Inc()
			return
		}
		s.logger.Warn("stt: transcription failed; window dropped", "err", err, "sessionId", g.key.session,
			"groupId", g.key.group, "windowId", j.id, "requestId", j.traceID)
		s.m.windows.WithLabelValues(outcomeError).Inc()
		return
	}
	tr := whisper.Clean(resp)
	if tr.Text == "" {
		s.m.windows.WithLabelValues(outcomeEmpty).Inc()
		return
	}
	lang := j.language
	if lang == "" {
		lang = resp.Language
	}
	rec := Transcript{
		ID:          j.id,
		SessionID:   g.key.session,
		GroupID:     g.key.group,
		SchoolID:    j.school,
		WindowStart: j.start.UTC().Truncate(time.Microsecond),
		WindowEnd:   j.end.UTC().Truncate(time.Microsecond),
		Text:        tr.Text,
		Confidence:  tr.Confidence,
		Language:    lang,
		CreatedAt:   s.now().UTC().Truncate(time.Microsecond),
	}
	if act != nil {
		rec.SpeechSeconds = act.Speech.Seconds()
	}
	for _, seg := range tr.Segments {
		rec.Segments = append(rec.Segments, Segment{
			Start: seg.Start, End: seg.End, Text: strings.TrimSpace(seg.Text), Confidence: seg.Confidence,
			AvgLogprob: seg.AvgLogprob, NoSpeechProb: seg.NoSpeechProb,
		})
	}
	s.publish(j.ctx, &eventsv1.Event{
		Type:      EventTranscript,
		Key:       g.key.group,
		TraceId:   j.traceID,
		SchoolId:  j.school,
		SessionId: g.key.session,
		GroupId:   g.key.group,
		Payload: &eventsv1.Event_TranscriptReady{TranscriptReady: &eventsv1.TranscriptReady{
			TranscriptId: j.id,
			Text:         rec.Text,
			Confidence:   rec.Confidence,
			WindowStart:  timestamppb.New(rec.WindowStart),
			WindowEnd:    timestamppb.New(rec.WindowEnd),
			WordCount:    int32(wordCount(rec.Text)),
		}},
	})
	closeToPublish := max(time.Since(j.closedAt)-call, 0)
	s.m.closeToPublish.Observe(ms(closeToPublish))
	if s.published != nil {
		s.published(closeToPublish, wait)
	}
	// Stored after it went out live: the teacher's view does not wait for the database. The
	// job (and so FlushGroups and Stop) still waits for the record.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(j.ctx), storeTimeout)
	err = s.store.InsertTranscript(sctx, rec)
	cancel()
	outcome := outcomeTranscribed
	if err != nil {
		// The transcript went out live; only the record is missing.
		s.logger.Error("stt: storing a transcript", "err", err, "sessionId", g.key.session, "groupId", g.key.group, "windowId", j.id)
		outcome = outcomeStoreFailure
	}
	s.m.windows.WithLabelValues(outcome).Inc()
	g.mu.Lock()
	g.prompt = whisper.PromptTail(rec.Text, promptBytes)
	first := !g.ttftDone && g.ttftStart.Equal(j.ttftStart) && !j.ttftStart.IsZero()
	if first {
		g.ttftDone = true
	}
	g.mu.Unlock()
	if first {
		s.m.ttft.WithLabelValues(j.school).Observe(ms(time.Since(j.ttftStart)))
	}
}

// publishActivity publishes the window's speech activity, after the group's previous window's.
// Opus windows have none (this service does not decode Opus); they still keep the order.
func (s *Service) publishActivity(j *windowJob, act *audio.Activity) {
	defer close(j.actDone)
	select {
	case <-orClosed(j.prevAct):
	case <-j.ctx.Done():
		return
	}
	if act == nil {
		return
	}
	g := j.g
	s.publish(j.ctx, &eventsv1.Event{
		Type:      EventSpeechActivity,
		Key:       g.key.group,
		TraceId:   j.traceID,
		SchoolId:  j.school,
		SessionId: g.key.session,
		GroupId:   g.key.group,
		Payload: &eventsv1.Event_SpeechActivity{SpeechActivity: &eventsv1.SpeechActivity{
			WindowId:              j.id,
			WindowStart:           timestamppb.New(j.start),
			WindowEnd:             timestamppb.New(j.end),
			SpeechSeconds:         act.Speech.Seconds(),
			SilenceSeconds:        act.Silence.Seconds(),
			LongestSilenceSeconds: act.LongestSilence.Seconds(),
		}},
	})
}

// finish ends j: its audio is released, its successors may go on, and the group is forgotten
// when nothing else holds it.
func (s *Service) finish(j *windowJob) {
	j.win.Release()
	close(j.done)
	g := j.g
	g.mu.Lock()
	g.pending--
	g.mu.Unlock()
	s.tryRemove(g)
}

// closedChan is a closed channel: waiting on it returns at once.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func orClosed(c <-chan struct{}) <-chan struct{} {
	if c == nil {
		return closedChan
	}
	return c
}

func wordCount(s string) int {
	return len(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) }))
}
