package analyzer

import (
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
)

// Observation thresholds (README.md, "Observations").
const (
	highFocus        = 0.6  // "stays close to the objectives"
	balancedShare    = 0.7  // participation balance from which talk is "shared evenly"
	highUptake       = 0.5  // "build on each other's ideas"
	lowUptake        = 0.2  // "rarely respond to each other"
	highHedgeRate    = 4.0  // hedges per 100 words: "sound unsure"
	highRepetition   = 0.25 // "repeats itself"
	highDensity      = 0.3  // "uses the key vocabulary"
	lowDensity       = 0.1  // "little key vocabulary"
	offTaskMention   = 0.1  // off-task share worth mentioning
	silentShare      = 0.5  // silence share of the span worth mentioning
	maxExcerptRunes  = 200
	minWordsForNotes = 20 // below this, only the plainest observations are made
)

// observations are short teacher-readable sentences about the span, in a fixed order.
func (a *analysis) observations() []string {
	var out []string
	if !a.hasTalk() {
		if a.speechSeconds >= SpeechWithoutTranscriptSeconds {
			return append(out, fmt.Sprintf("Speech was detected for %s but none of it has been transcribed yet.", secs(a.speechSeconds)))
		}
		if a.timed {
			return append(out, fmt.Sprintf("The group has been silent: no talk in the last %s.", secs(a.spanSeconds)))
		}
		return append(out, "The group has been silent: no talk was transcribed.")
	}
	if a.words < minWordsForNotes {
		out = append(out, fmt.Sprintf("Very little talk so far (%d words); the measures are tentative.", a.words))
	}
	if !a.objectives {
		out = append(out, "No learning objectives are set, so focus measures how closely the talk stays on one shared topic.")
	}
	switch {
	case a.offTask >= OffTaskAlertRatio:
		// The off-task observation below says it better.
	case a.focus >= highFocus && a.objectives:
		out = append(out, "The talk stays close to the learning objectives.")
	case a.focus >= highFocus:
		out = append(out, "The talk stays on a shared topic.")
	case a.focus < LowFocusThreshold && a.objectives:
		out = append(out, "The talk has drifted away from the learning objectives.")
	case a.focus < LowFocusThreshold:
		out = append(out, "The talk jumps between unrelated topics.")
	case a.objectives:
		out = append(out, "The talk touches the learning objectives only in part.")
	}
	if a.offTask >= offTaskMention {
		msg := fmt.Sprintf("About %d%% of the talk is off-task", pct(a.offTask))
		if cues := a.offTaskCues(2); len(cues) > 0 {
			msg += " (" + strings.Join(cues, ", ") + ")"
		}
		out = append(out, msg+".")
	}
	switch {
	case !a.speakersKnown:
		out = append(out, "Speakers are not identified, so participation balance is only estimated from how talk is spread over time.")
	case a.words < MinWordsForBalance:
	case len(a.speakers) == 1:
		out = append(out, "Only one student is talking.")
	case a.balance < DominanceBalanceThreshold:
		top := a.topSpeaker()
		out = append(out, fmt.Sprintf("One student is doing most of the talking (%d%% of the words).", pct(float64(top.words)/float64(a.words))))
	case a.balance >= balancedShare:
		out = append(out, fmt.Sprintf("Talk is shared evenly among %d students.", len(a.speakers)))
	}
	eligible := 0
	for _, d := range a.span() {
		if d.uptakeEligible {
			eligible++
		}
	}
	switch {
	case eligible >= 2 && a.uptake >= highUptake:
		out = append(out, "Students are building on each other's ideas.")
	case eligible >= 3 && a.uptake < lowUptake:
		out = append(out, "Students rarely respond to each other's ideas.")
	}
	if a.questions > 0 {
		out = append(out, fmt.Sprintf("The group asked %s: %d open (why/how), %d closed or leading.",
			plural(a.questions, "question"), a.focusing, a.funneling))
	}
	if a.confusion > 0 {
		out = append(out, fmt.Sprintf("%s of confusion (e.g. \"I don't get it\", \"what does that mean\").",
			capitalize(plural(a.confusion, "sign"))))
	}
	if a.silence >= SilenceAlertSeconds || (a.spanSeconds > 0 && a.silence/a.spanSeconds >= silentShare) {
		out = append(out, fmt.Sprintf("The group was silent for %s of the %s span.", secs(a.silence), secs(a.spanSeconds)))
	}
	if a.words >= minWordsForNotes {
		if a.hedgeRate >= highHedgeRate {
			out = append(out, "Students sound unsure of themselves (many \"maybe\", \"I guess\", \"I think\").")
		}
		if a.repetition >= highRepetition {
			out = append(out, "The talk repeats itself; the group may be going in circles.")
		}
		switch {
		case a.density >= highDensity:
			out = append(out, "Students are using the key vocabulary of the topic.")
		case a.density < lowDensity && a.objectives && a.offTask < OffTaskAlertRatio:
			out = append(out, "Little of the lesson's key vocabulary is being used.")
		}
	}
	return out
}

// offTaskCues answers up to n distinct off-task words said in off-task sentences, first said first.
func (a *analysis) offTaskCues(n int) []string {
	var out []string
	for _, d := range a.span() {
		for si, s := range d.t.sents {
			if !d.sents[si].offTask {
				continue
			}
			for k := s.from; k < s.to; k++ {
				if tok := d.t.tokens[k]; d.infos[k].is(flagOffTask) && !containsString(out, tok) {
					out = append(out, tok)
					if len(out) == n {
						return out
					}
				}
			}
		}
	}
	return out
}

func (a *analysis) topSpeaker() speakerWords {
	var top speakerWords
	for _, s := range a.speakers {
		if s.words > top.words {
			top = s
		}
	}
	return top
}

// ref points at one sentence of one doc.
type ref struct{ doc, sent int }

var noRef = ref{-1, -1}

// evidence picks up to max excerpts of distinct span turns for the main observations, in this
// order: off-task talk, confusion, the dominant speaker, uptake, a focusing question, the most
// on-topic turn, the least on-topic turn.
func (a *analysis) evidence(max int) []*guidancev1.Evidence {
	if !a.hasTalk() {
		return nil
	}
	var picks []ref
	add := func(r ref) {
		if r == noRef || len(picks) >= max {
			return
		}
		for _, p := range picks {
			if p.doc == r.doc {
				return
			}
		}
		picks = append(picks, r)
	}
	if a.offTask >= offTaskMention {
		add(a.best(func(_ *doc, f *sentFeat) float64 {
			if f.offTask && f.offTaskCue {
				return float64(f.words)
			}
			return 0
		}))
	}
	if a.confusion > 0 {
		add(a.best(func(_ *doc, f *sentFeat) float64 { return float64(f.confusion) }))
	}
	if a.speakersKnown && a.words >= MinWordsForBalance && a.balance < DominanceBalanceThreshold {
		top := a.topSpeaker().name
		add(a.best(func(d *doc, f *sentFeat) float64 {
			if d.turn.Speaker == top {
				return float64(d.words) + float64(f.words)/1e3
			}
			return 0
		}))
	}
	if a.uptake >= highUptake {
		add(a.best(func(d *doc, f *sentFeat) float64 {
			if f.uptake {
				return 2
			}
			if d.uptake {
				return 1
			}
			return 0
		}))
	}
	add(a.best(func(_ *doc, f *sentFeat) float64 {
		if f.question == questionFocusing {
			return 1
		}
		return 0
	}))
	if a.offTask < OffTaskAlertRatio {
		add(a.best(func(d *doc, f *sentFeat) float64 { return d.rel + f.rel/1e3 }))
	}
	if a.focus < LowFocusThreshold {
		add(a.best(func(d *doc, f *sentFeat) float64 {
			return (1 - d.rel) * float64(f.words)
		}))
	}
	out := make([]*guidancev1.Evidence, 0, len(picks))
	for _, p := range picks {
		d := &a.docs[p.doc]
		out = append(out, &guidancev1.Evidence{
			WindowId: d.turn.WindowID,
			Excerpt:  excerpt(d, p.sent),
			At:       timestamp(d),
		})
	}
	return out
}

// best answers the span sentence with the highest positive score (the earliest on ties), or noRef.
func (a *analysis) best(score func(*doc, *sentFeat) float64) ref {
	r, top := noRef, 0.0
	for i := a.firstSpan; i < len(a.docs); i++ {
		d := &a.docs[i]
		for si := range d.sents {
			if s := score(d, &d.sents[si]); s > top {
				r, top = ref{i, si}, s
			}
		}
	}
	return r
}

// excerpt quotes a turn from sentence si on, as many whole sentences as fit in maxExcerptRunes;
// a first sentence longer than that is cut at a word boundary and marked with "…".
func excerpt(d *doc, si int) string {
	s := d.t.sents[si]
	out := strings.TrimSpace(d.t.raw[s.start:s.end])
	for _, next := range d.t.sents[si+1:] {
		longer := strings.TrimSpace(d.t.raw[s.start:next.end])
		if utf8.RuneCountInString(longer) > maxExcerptRunes {
			break
		}
		out = longer
	}
	return truncateRunes(out, maxExcerptRunes)
}

// truncateRunes cuts s to at most n runes, at a word boundary when one is near, ending with "…".
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)[:n-1]
	cut := len(runes)
	for i := len(runes) - 1; i >= len(runes)-40 && i > 0; i-- {
		if unicode.IsSpace(runes[i]) {
			cut = i
			break
		}
	}
	return strings.TrimRightFunc(string(runes[:cut]), unicode.IsSpace) + "…"
}

func pct(x float64) int { return int(math.Round(100 * x)) }

func secs(x float64) string { return fmt.Sprintf("%d s", int(math.Round(x))) }

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func capitalize(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[size:]
}

func containsString(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
