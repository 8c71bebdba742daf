package guidance

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	"github.com/classwaves/classwaves/services/guidance/analyzer"
)

// Bounds on what one analysis reads.
const (
	// maxSpanTurns is the most turns a Tier 1 span gives the analyzer (the newest).
	maxSpanTurns = 200
	// contextTurns are the earlier turns a Tier 1 analysis gets for uptake across the boundary.
	contextTurns = 3
	// maxTier2Turns and maxTier2Insights bound each group's share of a Tier 2 analysis.
	maxTier2Turns    = 200
	maxTier2Insights = 50
)

// errNothingToAnalyse is a span or session with no content.
var errNothingToAnalyse = errors.New("nothing to analyse")

// analysisError is an analyzer's failure (as opposed to the store's).
type analysisError struct {
	tier int
	err  error
}

func (e *analysisError) Error() string { return fmt.Sprintf("tier %d analysis: %v", e.tier, e.err) }
func (e *analysisError) Unwrap() error { return e.err }

// tier1Result is a stored Tier 1 analysis.
type tier1Result struct {
	insight *guidancev1.Tier1Insight
	// stored is false when another replica analysed the span first (nothing was stored).
	stored bool
	// skipped says the span had too few words and no silence signal: the cursor moved past it.
	skipped bool
}

// silenceSignal says whether a span's activity calls for analysis however few words it holds:
// activity without any transcript, or enough silence to raise the silence alert
// (analyzer.SilenceAlertSeconds).
func silenceSignal(acts []Activity, turns int) bool {
	if len(acts) == 0 {
		return false
	}
	if turns == 0 {
		return true
	}
	var silence float64
	for _, a := range acts {
		silence += a.SilenceSeconds
	}
	return silence >= analyzer.SilenceAlertSeconds
}

// minTranscribableSpeech is the speech in a window below which no transcript is expected.
const minTranscribableSpeech = 1.0 // seconds

// awaitingTranscript says whether a span should wait for transcripts still on their way: stt
// publishes a window's speech activity when the window closes and its transcript only after the
// transcription call (seconds later), so a window with speech, no transcript overlapping it, that
// closed less than grace ago, is most likely being transcribed. Analysing then would report
// "speech but nothing transcribed" and move the cursor past the words. After grace (transcription
// off, failed or over budget) the span is analysed with what it has.
func awaitingTranscript(acts []Activity, turns []Turn, now time.Time, grace time.Duration) bool {
	if grace <= 0 {
		return false
	}
	for _, a := range acts {
		if a.SpeechSeconds < minTranscribableSpeech || now.Sub(a.WindowEnd) >= grace {
			continue
		}
		covered := false
		for _, t := range turns {
			if t.WindowStart.Before(a.WindowEnd) && t.WindowEnd.After(a.WindowStart) {
				covered = true
				break
			}
		}
		if !covered {
			return true
		}
	}
	return false
}

func toAnalyzerTurns(ts []Turn) []analyzer.Turn {
	out := make([]analyzer.Turn, len(ts))
	for i, t := range ts {
		out[i] = analyzer.Turn{WindowID: t.ID, Text: t.Text, Start: t.WindowStart, End: t.WindowEnd, Speaker: t.Speaker}
	}
	return out
}

func toAnalyzerActivity(as []Activity) []analyzer.Activity {
	out := make([]analyzer.Activity, len(as))
	for i, a := range as {
		out[i] = analyzer.Activity{WindowID: a.WindowID, Start: a.WindowStart, End: a.WindowEnd, SpeechSeconds: a.SpeechSeconds,
			SilenceSeconds: a.SilenceSeconds, LongestSilenceSeconds: a.LongestSilenceSeconds}
	}
	return out
}

// spanRequest is one Tier 1 analysis of a group's stored discussion.
type spanRequest struct {
	groupID string
	// from and to select the windows ending in (from, to] (from zero: since the first); start is
	// the span's start as reported (from, or the first window's start).
	from, start, to time.Time
	// moveCursor moves the group's cursor from from to to with the insight (compare-and-set).
	moveCursor bool
	// force analyses a thin span anyway (an on-demand request).
	force   bool
	focus   []string
	traceID string
}

// analyseSpan runs Tier 1 over a span of the group's stored windows, stores the insight (moving
// the cursor when asked), publishes it and raises its prompts. The caller holds the group's lock.
func (s *Service) analyseSpan(ctx context.Context, info *sessionInfo, r spanRequest) (tier1Result, error) {
	groupID, from, to, force := r.groupID, r.from, r.to, r.force
	turns, err := s.store.Turns(ctx, info.ID, groupID, from, to, maxSpanTurns)
	if err != nil {
		return tier1Result{}, err
	}
	acts, err := s.store.Activity(ctx, info.ID, groupID, from, to, maxSpanTurns)
	if err != nil {
		return tier1Result{}, err
	}
	if len(turns) == 0 && len(acts) == 0 {
		return tier1Result{}, errNothingToAnalyse
	}
	if !force && r.moveCursor && awaitingTranscript(acts, turns, s.now(), s.cfg.TranscriptGrace) {
		return tier1Result{}, errNothingToAnalyse // the transcript's event schedules the group again
	}
	words := 0
	for _, t := range turns {
		words += t.WordCount
	}
	if !force && r.moveCursor && words < s.cfg.Tier1MinWords && !silenceSignal(acts, len(turns)) {
		if _, err := s.store.AdvanceCursor(ctx, info.ID, groupID, from, to); err != nil {
			return tier1Result{}, err
		}
		s.m.analyses.WithLabelValues(tierLabel(1), statusSkipped).Inc()
		return tier1Result{skipped: true}, nil
	}
	var prev []Turn
	if boundary := from; !boundary.IsZero() {
		if prev, err = s.store.TurnsBefore(ctx, info.ID, groupID, boundary, contextTurns); err != nil {
			return tier1Result{}, err
		}
	}
	in := analyzer.Tier1Input{
		SessionID: info.ID, GroupID: groupID, SchoolID: info.SchoolID, Objectives: info.Objectives,
		Turns: toAnalyzerTurns(turns), Context: toAnalyzerTurns(prev), Activity: toAnalyzerActivity(acts),
		FocusAreas: r.focus, SpanStart: r.start, SpanEnd: to, Names: info.Names,
	}
	ins, err := s.callTier1(ctx, in)
	if errors.Is(err, analyzer.ErrNoContent) {
		if r.moveCursor && !force {
			if _, err := s.store.AdvanceCursor(ctx, info.ID, groupID, from, to); err != nil {
				return tier1Result{}, err
			}
		}
		return tier1Result{skipped: true}, nil
	}
	if err != nil {
		return tier1Result{}, err
	}
	alerts := alertCategories(ins.GetMetrics(), len(turns) > 0)
	stored := false
	if r.moveCursor {
		if stored, err = s.store.SaveTier1(ctx, ins, info.SchoolID, alerts, from, to); err != nil {
			return tier1Result{}, err
		}
		if !stored && !force {
			return tier1Result{insight: ins}, nil // another replica or delivery analysed this span
		}
	}
	if !stored {
		// On demand without moving the cursor: the teacher asked for this analysis; keep it.
		if _, err := s.store.SaveTier1(ctx, ins, info.SchoolID, alerts, time.Time{}, time.Time{}); err != nil {
			return tier1Result{}, err
		}
	}
	s.deliverTier1(ctx, info, ins, alerts, len(turns) > 0, r.traceID)
	return tier1Result{insight: ins, stored: true}, nil
}

// deliverTier1 publishes a stored Tier 1 insight and raises its alert prompts.
func (s *Service) deliverTier1(ctx context.Context, info *sessionInfo, ins *guidancev1.Tier1Insight, alerts []string, hasTurns bool, traceID string) {
	s.publishTier1(ctx, ins, info.SchoolID, traceID)
	if len(alerts) == 0 {
		return
	}
	prev, _, err := s.store.PreviousAlerts(ctx, info.ID, ins.GetGroupId(), ins.GetId())
	if err != nil {
		s.logger.Warn("guidance: reading previous alerts", "err", err, "sessionId", info.ID, "groupId", ins.GetGroupId())
	}
	cands := tier1Candidates(ins, alerts, prev, info.groupName(ins.GetGroupId()), hasTurns)
	s.raisePrompts(ctx, info, 1, ins.GetId(), ins.GetCreatedAt().AsTime(), cands, traceID)
}

// callTier1 runs the Tier 1 analyzer, times and counts it, and fills what the caller owns.
func (s *Service) callTier1(ctx context.Context, in analyzer.Tier1Input) (*guidancev1.Tier1Insight, error) {
	s.t1.queue.Add(1)
	defer s.t1.queue.Add(-1)
	start := time.Now()
	ins, err := s.tier1.Tier1(ctx, in)
	s.m.analysisDuration.WithLabelValues(tierLabel(1), s.tier1.Name()).Observe(ms(time.Since(start)))
	switch {
	case errors.Is(err, analyzer.ErrNoContent):
		s.m.analyses.WithLabelValues(tierLabel(1), statusSkipped).Inc()
		return nil, err
	case err == nil && ins == nil:
		err = errors.New("the analyzer answered no insight")
	}
	if err != nil {
		s.m.analyses.WithLabelValues(tierLabel(1), statusFailed).Inc()
		s.t1.record(s.now(), true)
		return nil, &analysisError{tier: 1, err: err}
	}
	s.m.analyses.WithLabelValues(tierLabel(1), statusOK).Inc()
	now := s.now()
	s.t1.record(now, false)
	ins.Id = uuid.Must(uuid.NewV7()).String()
	ins.SessionId, ins.GroupId = in.SessionID, in.GroupID
	ins.WindowStart, ins.WindowEnd = timestamppb.New(in.SpanStart), timestamppb.New(in.SpanEnd)
	ins.CreatedAt = timestamppb.New(now)
	if ins.Metrics == nil {
		ins.Metrics = &guidancev1.Tier1Metrics{}
	}
	if ins.Analyzer == "" {
		ins.Analyzer = s.tier1.Name()
	}
	return ins, nil
}

// speakerLine is a "Label: text" line: a speaker label of one to three words (letters, digits,
// dots, hyphens), as speaker-labelled transcripts and the frontend's transcript lines write it.
var speakerLine = regexp.MustCompile(`^\s*([\p{L}\p{N}][\p{L}\p{N}.\-]*(?: [\p{L}\p{N}][\p{L}\p{N}.\-]*){0,2})\s*:\s+(\S.*?)\s*$`)

// maxSpeakerLabel bounds a speaker label, in bytes.
const maxSpeakerLabel = 30

// splitSpeaker reads a speaker label off a one-line text ("Maria: I think..." or "Speaker 2:
// ..."); text without one is answered trimmed, with no speaker.
func splitSpeaker(text string) (speaker, rest string) {
	text = strings.TrimSpace(text)
	if strings.ContainsAny(text, "\r\n") {
		return "", text
	}
	if m := speakerLine.FindStringSubmatch(text); m != nil && len(m[1]) <= maxSpeakerLabel {
		return m[1], m[2]
	}
	return "", text
}

// linesToTurns makes turns of the transcript lines a client sent, spread evenly over span ending
// at end. A "Name: text" line names its speaker; blank lines are dropped.
func linesToTurns(lines []string, end time.Time, span time.Duration) []analyzer.Turn {
	var kept []string
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			kept = append(kept, l)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	step := span / time.Duration(len(kept))
	start := end.Add(-span)
	out := make([]analyzer.Turn, 0, len(kept))
	for i, l := range kept {
		t := analyzer.Turn{WindowID: fmt.Sprintf("line-%d", i+1),
			Start: start.Add(time.Duration(i) * step), End: start.Add(time.Duration(i+1) * step)}
		t.Speaker, t.Text = splitSpeaker(l)
		out = append(out, t)
	}
	return out
}

// analyseLines runs Tier 1 over transcript lines a client sent (not the stored transcripts): the
// insight is stored and published but raises no prompts and moves no cursor.
func (s *Service) analyseLines(ctx context.Context, info *sessionInfo, groupID string, lines, focus []string, traceID string) (*guidancev1.Tier1Insight, error) {
	end := s.now()
	turns := linesToTurns(lines, end, s.cfg.Tier1Interval)
	if len(turns) == 0 {
		return nil, errNothingToAnalyse
	}
	in := analyzer.Tier1Input{
		SessionID: info.ID, GroupID: groupID, SchoolID: info.SchoolID, Objectives: info.Objectives, Turns: turns,
		FocusAreas: focus, SpanStart: turns[0].Start, SpanEnd: end, Names: info.Names,
	}
	ins, err := s.callTier1(ctx, in)
	if errors.Is(err, analyzer.ErrNoContent) {
		return nil, errNothingToAnalyse
	}
	if err != nil {
		return nil, err
	}
	alerts := alertCategories(ins.GetMetrics(), true)
	if _, err := s.store.SaveTier1(ctx, ins, info.SchoolID, alerts, time.Time{}, time.Time{}); err != nil {
		return nil, err
	}
	s.publishTier1(ctx, ins, info.SchoolID, traceID)
	return ins, nil
}

// analyseLatest is an on-demand Tier 1 of a group from its stored discussion: the span not
// analysed yet when there is one (moving the cursor), else the last AI_TIER1_INTERVAL before the
// group's latest window.
func (s *Service) analyseLatest(ctx context.Context, info *sessionInfo, groupID string, focus []string, traceID string) (*guidancev1.Tier1Insight, error) {
	unlock := s.locks.lock("g:" + info.ID + "/" + groupID)
	defer unlock()
	cursor, err := s.store.Cursor(ctx, info.ID, groupID)
	if err != nil {
		return nil, err
	}
	span, found, err := s.store.PendingSpan(ctx, info.ID, groupID, cursor)
	if err != nil {
		return nil, err
	}
	if found {
		start := cursor
		if span.Start.After(cursor) {
			start = span.Start
		}
		res, err := s.analyseSpan(ctx, info, spanRequest{groupID: groupID, from: cursor, start: start, to: span.End,
			moveCursor: true, force: true, focus: focus, traceID: traceID})
		if err != nil {
			return nil, err
		}
		if res.insight != nil {
			return res.insight, nil
		}
		return nil, errNothingToAnalyse
	}
	// Nothing new: analyse again the last interval before the latest window.
	latest, found, err := s.store.PendingSpan(ctx, info.ID, groupID, time.Time{})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errNothingToAnalyse
	}
	from := latest.End.Add(-s.cfg.Tier1Interval)
	start := from
	if latest.Start.After(from) {
		from, start = time.Time{}, latest.Start
	}
	res, err := s.analyseSpan(ctx, info, spanRequest{groupID: groupID, from: from, start: start, to: latest.End,
		force: true, focus: focus, traceID: traceID})
	if err != nil {
		return nil, err
	}
	if res.insight == nil {
		return nil, errNothingToAnalyse
	}
	return res.insight, nil
}

// runTier2 analyses a session (groupIDs: all when empty), stores the insight, publishes it and
// raises its recommendation prompts. The caller holds the session's Tier 2 lock.
func (s *Service) runTier2(ctx context.Context, info *sessionInfo, groupIDs []string, depth, traceID string) (*guidancev1.Tier2Insight, error) {
	snapshot := s.now()
	ids := info.GroupOrder
	if len(groupIDs) > 0 {
		ids = groupIDs
	}
	in := analyzer.Tier2Input{SessionID: info.ID, SchoolID: info.SchoolID, Objectives: info.Objectives, Depth: depth, Names: info.Names}
	if in.Depth == "" {
		in.Depth = "standard"
	}
	content := false
	for _, g := range ids {
		turns, err := s.store.Turns(ctx, info.ID, g, time.Time{}, time.Time{}, maxTier2Turns)
		if err != nil {
			return nil, err
		}
		acts, err := s.store.Activity(ctx, info.ID, g, time.Time{}, time.Time{}, maxTier2Turns)
		if err != nil {
			return nil, err
		}
		t1, err := s.store.ListTier1(ctx, InsightQuery{SessionID: info.ID, GroupID: g, Limit: maxTier2Insights})
		if err != nil {
			return nil, err
		}
		slices.Reverse(t1) // oldest first
		if len(turns) > 0 || len(acts) > 0 || len(t1) > 0 {
			content = true
		}
		in.Groups = append(in.Groups, analyzer.GroupInput{GroupID: g, Name: info.Groups[g], Turns: toAnalyzerTurns(turns),
			Tier1: t1, Activity: toAnalyzerActivity(acts)})
	}
	if !content {
		s.m.analyses.WithLabelValues(tierLabel(2), statusSkipped).Inc()
		return nil, errNothingToAnalyse
	}
	s.t2.queue.Add(1)
	start := time.Now()
	ins, err := s.tier2.Tier2(ctx, in)
	s.t2.queue.Add(-1)
	s.m.analysisDuration.WithLabelValues(tierLabel(2), s.tier2.Name()).Observe(ms(time.Since(start)))
	switch {
	case errors.Is(err, analyzer.ErrNoContent):
		s.m.analyses.WithLabelValues(tierLabel(2), statusSkipped).Inc()
		return nil, errNothingToAnalyse
	case err == nil && ins == nil:
		err = errors.New("the analyzer answered no insight")
	}
	if err != nil {
		s.m.analyses.WithLabelValues(tierLabel(2), statusFailed).Inc()
		s.t2.record(s.now(), true)
		return nil, &analysisError{tier: 2, err: err}
	}
	s.m.analyses.WithLabelValues(tierLabel(2), statusOK).Inc()
	now := s.now()
	s.t2.record(now, false)
	ins.Id = uuid.Must(uuid.NewV7()).String()
	ins.SessionId = info.ID
	ins.CreatedAt = timestamppb.New(now)
	if ins.Analyzer == "" {
		ins.Analyzer = s.tier2.Name()
	}
	if err := s.store.SaveTier2(ctx, ins, info.SchoolID); err != nil {
		return nil, err
	}
	if err := s.store.MarkTier2(ctx, info.ID, snapshot); err != nil {
		s.logger.Warn("guidance: recording tier 2", "err", err, "sessionId", info.ID)
	}
	s.publishTier2(ctx, ins, info.SchoolID, traceID)
	s.raisePrompts(ctx, info, 2, ins.GetId(), now, tier2Candidates(ins, info), traceID)
	return ins, nil
}
