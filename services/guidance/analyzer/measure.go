package analyzer

import (
	"math"
	"slices"
	"time"
	"unicode/utf8"
)

// Measurement constants (README.md, "Tier 1 measures"). The alert thresholds the guidance policy
// uses are in alerts.go.
const (
	// FocusCosineScale is the TF-IDF cosine between a turn and the objectives that counts as fully
	// on topic: relevance = min(1, cosine / FocusCosineScale). Lexical cosines of short spoken turns
	// against a handful of objectives rarely pass 0.4 even when the talk is squarely on topic.
	FocusCosineScale = 0.25
	// CohesionCosineScale plays the same part when there are no objectives and focus is measured
	// as each turn's cosine to the rest of the discussion.
	CohesionCosineScale = 0.25
	// OffTaskSimilarity is the "near-zero" similarity below which a sentence with off-task words is
	// off-task.
	OffTaskSimilarity = 0.05
	// UptakeSimilarity is the TF-IDF cosine to the previous turn above which a turn takes up its ideas.
	UptakeSimilarity = 0.15
	// LongWordRunes is the length from which a content word counts as a (probable) domain concept.
	LongWordRunes = 9
	// MinWordsForBalance is the least talk from which participation balance is measured; below it the
	// balance is the neutral 0.5.
	MinWordsForBalance = 30
	// WordsPerMinute estimates a span's length from its words when the input carries no times.
	WordsPerMinute = 150
	// ConfidentWords is the amount of talk from which the text factor of confidence is 1.
	ConfidentWords = 150
)

// sentFeat are the lexical features of one sentence.
type sentFeat struct {
	words      int
	terms      []int32
	rel        float64
	offTaskCue bool
	offTask    bool
	question   questionKind
	confusion  int
	hedges     int
	uptake     bool
	claim      bool
	evidence   bool
	reasoning  bool
	correction bool
}

// doc is one analysed turn (of the span or of its context).
type doc struct {
	turn   Turn
	inSpan bool
	t      text
	// infos are the token index entries of t.tokens; termAt their term ids (-1: not a content word).
	infos  []*wordInfo
	termAt []int32
	terms  []int32
	words  int
	vec    vec
	rel    float64
	sents  []sentFeat
	// uptake is set when the turn takes up the previous turn's ideas; uptakeEligible when it could
	// (it has a predecessor or an uptake phrase).
	uptake, uptakeEligible bool
}

// analysis is everything the built-in analyzer measured about a span.
type analysis struct {
	objectives    bool
	docs          []doc // context first, then span, oldest first
	firstSpan     int   // index of the first span doc
	words         int   // words in the span
	contentWords  int
	conceptWords  int
	spanSeconds   float64
	timed         bool // span length came from times, not a words estimate
	speakersKnown bool
	speakers      []speakerWords // by first appearance
	coverage      float64        // share of the span covered by activity windows
	speechSeconds float64

	focus, density, balance, turnRate, uptake, offTask, silence, hedgeRate, repetition float64
	questions, focusing, funneling, confusion                                          int
}

type speakerWords struct {
	name  string
	words int
}

// span answers the span docs.
func (a *analysis) span() []doc { return a.docs[a.firstSpan:] }

// hasTalk reports whether the span has any words.
func (a *analysis) hasTalk() bool { return a.words > 0 }

// analyze measures a span. It never fails: empty input gives zero measures.
func analyze(objectives []string, context, turns []Turn, activity []Activity, spanStart, spanEnd time.Time) *analysis {
	a := &analysis{}
	v := newVocab(256)

	// Objectives: each one a document for IDF; together, the objective vector.
	var objTerms []int32
	for _, o := range objectives {
		ot := tokenize(o)
		var terms []int32
		for _, tok := range ot.tokens {
			if s, ok := contentStem(tok, wordIndex[tok]); ok && !objectiveGeneric.has(s) {
				terms = append(terms, v.id(s))
			}
		}
		if len(terms) > 0 {
			v.addDoc(terms)
			objTerms = append(objTerms, terms...)
		}
	}
	a.objectives = len(objTerms) > 0
	nObjTerms := len(v.df)

	a.docs = make([]doc, 0, len(context)+len(turns))
	add := func(ts []Turn, inSpan bool) {
		for _, tr := range ts {
			d := doc{turn: tr, inSpan: inSpan, t: tokenize(tr.Text)}
			d.words = len(d.t.tokens)
			d.infos = lookupWords(d.t.tokens)
			d.termAt = make([]int32, len(d.t.tokens))
			d.terms = make([]int32, 0, len(d.t.tokens))
			for k, tok := range d.t.tokens {
				d.termAt[k] = -1
				if st, ok := contentStem(tok, d.infos[k]); ok {
					d.termAt[k] = v.id(st)
					d.terms = append(d.terms, d.termAt[k])
				}
			}
			// Sentence terms are sub-slices of the turn's terms (content words keep their order).
			d.sents = make([]sentFeat, len(d.t.sents))
			at := 0
			for si, s := range d.t.sents {
				f := &d.sents[si]
				f.words = s.to - s.from
				from := at
				for _, id := range d.termAt[s.from:s.to] {
					if id >= 0 {
						at++
					}
				}
				f.terms = d.terms[from:at:at]
			}
			if len(d.terms) > 0 {
				v.addDoc(d.terms)
			}
			a.docs = append(a.docs, d)
		}
	}
	add(context, false)
	a.firstSpan = len(a.docs)
	add(turns, true)
	v.finish()

	isObj := func(id int32) bool { return int(id) < nObjTerms }
	var scratch []int32
	objVec := v.vectorize(objTerms, &scratch)
	for i := range a.docs {
		a.docs[i].vec = v.vectorize(a.docs[i].terms, &scratch)
	}

	a.measureRelevance(v, objVec, &scratch)
	a.measureSentences()
	a.measureWords(isObj)
	a.measureParticipation()
	a.measureTime(activity, spanStart, spanEnd)
	a.measureUptake()
	a.measureRepetition()
	return a
}

// contentStem answers the stem of a content word: a token with a letter, of two bytes or more, that
// is not a stopword. info is the token's index entry.
func contentStem(tok string, info *wordInfo) (string, bool) {
	if len(tok) < 2 || info.is(flagStop) || !hasLetter(tok) {
		return "", false
	}
	return stem(tok), true
}

// measureRelevance sets each doc's and sentence's relevance: cosine to the objective vector, or,
// without objectives, cosine to the rest of the discussion (the TF-IDF vector of all other turns'
// terms together; a sentence is compared with the rest of its turn's discussion).
func (a *analysis) measureRelevance(v *vocab, objVec vec, scratch *[]int32) {
	var loo *leaveOneOut
	if !a.objectives {
		loo = newLeaveOneOut(v, a.docs)
	}
	for i := range a.docs {
		d := &a.docs[i]
		if loo != nil {
			loo.exclude(d.terms)
		}
		rel := func(x vec) float64 {
			if loo != nil {
				return loo.cosine(x)
			}
			return cosine(x, objVec)
		}
		d.rel = rel(d.vec)
		for si := range d.sents {
			f := &d.sents[si]
			if len(f.terms) > 0 {
				f.rel = rel(v.vectorize(f.terms, scratch))
			}
		}
		if loo != nil {
			loo.restore(d.terms)
		}
	}
}

// leaveOneOut computes cosines against "every turn but one" without building that vector per turn:
// it keeps the term counts of all turns and their squared TF-IDF norm, and while one turn is
// excluded it corrects the counts and the norm for that turn's terms only. Cost O(|turn|) per turn.
type leaveOneOut struct {
	v      *vocab
	counts []int32
	normSq float64
	// restSq is the squared norm with the current turn excluded.
	restSq float64
}

func newLeaveOneOut(v *vocab, docs []doc) *leaveOneOut {
	l := &leaveOneOut{v: v, counts: make([]int32, len(v.df))}
	for _, d := range docs {
		for _, t := range d.terms {
			l.counts[t]++
		}
	}
	for t, c := range l.counts {
		w := l.weight(int32(t), c)
		l.normSq += w * w
	}
	l.restSq = l.normSq
	return l
}

// weight is the sublinear TF-IDF weight of a term said c times.
func (l *leaveOneOut) weight(t, c int32) float64 {
	if c <= 0 {
		return 0
	}
	return (1 + math.Log(float64(c))) * l.v.idf[t]
}

// exclude removes one turn's terms from the counts.
func (l *leaveOneOut) exclude(terms []int32) {
	for _, t := range terms {
		before := l.weight(t, l.counts[t])
		l.counts[t]--
		after := l.weight(t, l.counts[t])
		l.restSq += after*after - before*before
	}
}

// restore puts back what exclude removed.
func (l *leaveOneOut) restore(terms []int32) {
	for _, t := range terms {
		l.counts[t]++
	}
	l.restSq = l.normSq
}

// cosine is the cosine of a unit vector with the current "rest" vector.
func (l *leaveOneOut) cosine(x vec) float64 {
	if l.restSq <= 1e-12 {
		return 0
	}
	var dot float64
	for _, e := range x {
		dot += e.w * l.weight(e.id, l.counts[e.id])
	}
	return clamp01(dot / math.Sqrt(l.restSq))
}

// measureSentences finds the lexical markers of every span sentence: questions, confusion, hedges,
// uptake phrases, argumentation and off-task talk.
func (a *analysis) measureSentences() {
	prevOffTask := false
	for i := a.firstSpan; i < len(a.docs); i++ {
		d := &a.docs[i]
		for si, s := range d.t.sents {
			f := &d.sents[si]
			toks := d.t.tokens[s.from:s.to]
			n := scan(toks, d.infos[s.from:s.to])
			f.question = classifyQuestion(toks, s)
			f.confusion = n[lexConfusion]
			f.hedges = n[lexHedge]
			f.uptake = n[lexUptake] > 0
			f.claim = n[lexClaim] > 0
			f.evidence = n[lexEvidence] > 0
			f.reasoning = n[lexReasoning] > 0
			f.correction = n[lexCorrection] > 0
			f.offTaskCue = n[lexOffTask] > 0
			for k, tok := range toks {
				f.offTaskCue = f.offTaskCue || d.infos[s.from+k].is(flagOffTask)
				f.evidence = f.evidence || hasDigit(tok)
			}
			// Off-task: an off-task cue with near-zero similarity to the objectives, or near-zero
			// similarity right after off-task talk (the chatter goes on). Without objectives there
			// is no topic to compare with: the cue alone decides.
			low := f.rel < OffTaskSimilarity
			switch {
			case !a.objectives:
				f.offTask = f.offTaskCue || (prevOffTask && low)
			default:
				f.offTask = low && (f.offTaskCue || prevOffTask)
			}
			prevOffTask = f.offTask
		}
	}
}

// measureWords computes topical focus, conceptual density, off-task ratio, questions, confusion and
// hedges over the span.
func (a *analysis) measureWords(isObj func(int32) bool) {
	scale := FocusCosineScale
	if !a.objectives {
		scale = CohesionCosineScale
	}
	var focusSum, offTaskTalk float64
	hedgeCount := 0
	for _, d := range a.span() {
		a.words += d.words
		focusSum += float64(d.words) * math.Min(1, d.rel/scale)
		for si, s := range d.t.sents {
			f := d.sents[si]
			if f.offTask {
				offTaskTalk += float64(f.words)
			}
			switch f.question {
			case questionFocusing:
				a.focusing++
			case questionFunneling:
				a.funneling++
			}
			if f.question != questionNone {
				a.questions++
			}
			a.confusion += f.confusion
			hedgeCount += f.hedges
			for k := s.from; k < s.to; k++ {
				id := d.termAt[k]
				if id < 0 {
					continue
				}
				a.contentWords++
				if (a.objectives && isObj(id)) ||
					(len(d.t.tokens[k]) >= LongWordRunes && utf8.RuneCountInString(d.t.tokens[k]) >= LongWordRunes &&
						!d.infos[k].is(flagCommonLong|flagOffTask)) {
					a.conceptWords++
				}
			}
		}
	}
	if a.words == 0 {
		return
	}
	w := float64(a.words)
	a.focus = clamp01(focusSum / w)
	a.offTask = clamp01(offTaskTalk / w)
	a.hedgeRate = float64(hedgeCount) * 100 / w
	if a.contentWords > 0 {
		a.density = clamp01(float64(a.conceptWords) / float64(a.contentWords))
	}
}

// measureParticipation computes participation balance and counts turns for the turn-taking rate.
func (a *analysis) measureParticipation() {
	a.speakersKnown = a.words > 0
	for _, d := range a.span() {
		if d.words == 0 {
			continue
		}
		if d.turn.Speaker == "" {
			a.speakersKnown = false
			continue
		}
		k := slices.IndexFunc(a.speakers, func(s speakerWords) bool { return s.name == d.turn.Speaker })
		if k < 0 {
			a.speakers = append(a.speakers, speakerWords{name: d.turn.Speaker})
			k = len(a.speakers) - 1
		}
		a.speakers[k].words += d.words
	}
	if !a.speakersKnown {
		a.speakers = nil
	}
	switch {
	case a.words == 0:
		a.balance = 0
	case a.words < MinWordsForBalance:
		a.balance = 0.5
	case a.speakersKnown && len(a.speakers) == 1:
		a.balance = 0
	case a.speakersKnown:
		counts := make([]float64, len(a.speakers))
		for i, s := range a.speakers {
			counts[i] = float64(s.words)
		}
		a.balance = 1 - normalizedGini(counts)
	default:
		// Without speaker labels, a turn is a transcript window holding anyone's talk: only the
		// evenness of talk over the windows is visible. It is mapped to [0.5, 1] so that it never
		// suggests dominance by itself.
		var counts []float64
		for _, d := range a.span() {
			if d.words > 0 {
				counts = append(counts, float64(d.words))
			}
		}
		if len(counts) < 2 {
			a.balance = 0.5
		} else {
			a.balance = 0.5 + 0.5*(1-normalizedGini(counts))
		}
	}
}

// normalizedGini is the Gini coefficient of xs divided by its maximum (n-1)/n, in [0, 1]:
// 0 when all are equal, 1 when one holds everything.
//
//	G = Σ_i Σ_j |x_i − x_j| / (2 n Σ x),  normalized G·n/(n−1)
func normalizedGini(xs []float64) float64 {
	n := len(xs)
	if n < 2 {
		return 0
	}
	var sum, diff float64
	for i, x := range xs {
		sum += x
		for _, y := range xs[i+1:] {
			diff += math.Abs(x - y)
		}
	}
	if sum <= 0 {
		return 0
	}
	g := 2 * diff / (2 * float64(n) * sum)
	return clamp01(g * float64(n) / float64(n-1))
}

// speakerTurns counts turns for the turn-taking rate: with speakers known, runs of consecutive
// windows of the same speaker count once; otherwise every window with words counts.
func (a *analysis) speakerTurns() int {
	n := 0
	last := "\x00"
	for _, d := range a.span() {
		if d.words == 0 {
			continue
		}
		if !a.speakersKnown || d.turn.Speaker != last {
			n++
		}
		last = d.turn.Speaker
	}
	return n
}

// measureUptake marks the span turns that take up an earlier turn's ideas: TF-IDF cosine to the
// previous turn (of another speaker when speakers are known; context turns count) of at least
// UptakeSimilarity, or an uptake phrase ("building on", "I agree with", "like X said").
func (a *analysis) measureUptake() {
	eligible, taken := 0, 0
	for i := a.firstSpan; i < len(a.docs); i++ {
		d := &a.docs[i]
		if d.words == 0 {
			continue
		}
		prev := -1
		for j := i - 1; j >= 0; j-- {
			p := &a.docs[j]
			if p.words == 0 {
				continue
			}
			if a.speakersKnown && p.turn.Speaker == d.turn.Speaker {
				continue
			}
			prev = j
			break
		}
		phrase := false
		for _, f := range d.sents {
			phrase = phrase || f.uptake
		}
		d.uptakeEligible = prev >= 0 || phrase
		d.uptake = phrase || (prev >= 0 && cosine(d.vec, a.docs[prev].vec) >= UptakeSimilarity)
		if d.uptakeEligible {
			eligible++
		}
		if d.uptake {
			taken++
		}
	}
	if eligible > 0 {
		a.uptake = float64(taken) / float64(eligible)
	}
}

// measureRepetition is the share of the span's word trigrams (within sentences, stopwords kept)
// already said earlier in the span or its context. Trigrams are kept as 64-bit FNV-1a hashes: a
// collision (odds about n²/2⁶⁴) could only count one trigram as repeated.
func (a *analysis) measureRepetition() {
	seen := make(map[uint64]struct{}, min(a.words, 1024))
	total, repeated := 0, 0
	for _, d := range a.docs {
		for _, s := range d.t.sents {
			toks := d.t.tokens[s.from:s.to]
			for k := 0; k+3 <= len(toks); k++ {
				key := trigramHash(toks[k], toks[k+1], toks[k+2])
				_, dup := seen[key]
				if d.inSpan {
					total++
					if dup {
						repeated++
					}
				}
				seen[key] = struct{}{}
			}
		}
	}
	if total > 0 {
		a.repetition = float64(repeated) / float64(total)
	}
}

// trigramHash is FNV-1a over three tokens, each followed by a 0 byte (tokens never contain one).
func trigramHash(x, y, z string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, s := range [3]string{x, y, z} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime
		}
		h *= prime // the 0 separator: h ^= 0 is a no-op
	}
	return h
}

// measureTime computes the span's length, turn-taking rate, silence and activity coverage.
func (a *analysis) measureTime(activity []Activity, spanStart, spanEnd time.Time) {
	start, end := spanStart, spanEnd
	if !end.After(start) {
		// No span bounds: the extent of the timed turns and windows.
		start, end = time.Time{}, time.Time{}
		extend := func(s, e time.Time) {
			if s.IsZero() || e.IsZero() || e.Before(s) {
				return
			}
			if start.IsZero() || s.Before(start) {
				start = s
			}
			if end.IsZero() || e.After(end) {
				end = e
			}
		}
		for _, d := range a.span() {
			extend(d.turn.Start, d.turn.End)
		}
		for _, w := range activity {
			extend(w.Start, w.End)
		}
	}
	if end.After(start) {
		a.spanSeconds = end.Sub(start).Seconds()
		a.timed = true
	} else {
		a.spanSeconds = float64(a.words) * 60 / WordsPerMinute
	}

	// Silence: each window's silence, prorated to the part of the window inside the span, plus the
	// parts of the span no window covers (no audio reached us: nobody spoke).
	var silence float64
	var cover []interval
	for _, w := range activity {
		sil, speech := finiteNonNeg(w.SilenceSeconds), finiteNonNeg(w.SpeechSeconds)
		dur := w.End.Sub(w.Start).Seconds()
		frac := 1.0
		if a.timed && dur > 0 {
			iv, ok := clip(w.Start, w.End, start, end)
			if !ok {
				continue
			}
			cover = append(cover, iv)
			frac = iv.seconds() / dur
		}
		if dur > 0 {
			sil = math.Min(sil, dur)
			speech = math.Min(speech, dur)
		}
		silence += sil * frac
		a.speechSeconds += speech * frac
	}
	if a.timed {
		covered := unionSeconds(cover)
		if len(activity) > 0 {
			a.coverage = clamp01(covered / a.spanSeconds)
		} else {
			// No activity: the transcript windows are the only sign of speech.
			for _, d := range a.span() {
				if iv, ok := clip(d.turn.Start, d.turn.End, start, end); ok && d.words > 0 {
					cover = append(cover, iv)
				}
			}
			covered = unionSeconds(cover)
		}
		if len(cover) > 0 {
			silence += math.Max(0, a.spanSeconds-covered)
		}
	} else if len(activity) > 0 {
		a.coverage = 1
	}
	a.silence = silence
	if a.spanSeconds > 0 {
		a.turnRate = float64(a.speakerTurns()) * 60 / a.spanSeconds
	}
}

func finiteNonNeg(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
		return 0
	}
	return x
}

// interval is a time interval [from, to).
type interval struct{ from, to time.Time }

func (iv interval) seconds() float64 { return iv.to.Sub(iv.from).Seconds() }

// clip answers [s,e] ∩ [lo,hi], and whether it is not empty.
func clip(s, e, lo, hi time.Time) (interval, bool) {
	if s.IsZero() || e.IsZero() {
		return interval{}, false
	}
	if s.Before(lo) {
		s = lo
	}
	if e.After(hi) {
		e = hi
	}
	if !e.After(s) {
		return interval{}, false
	}
	return interval{s, e}, true
}

// unionSeconds is the total length of the union of intervals.
func unionSeconds(ivs []interval) float64 {
	if len(ivs) == 0 {
		return 0
	}
	s := slices.Clone(ivs)
	slices.SortFunc(s, func(x, y interval) int { return x.from.Compare(y.from) })
	var total float64
	cur := s[0]
	for _, iv := range s[1:] {
		if iv.from.After(cur.to) {
			total += cur.seconds()
			cur = iv
			continue
		}
		if iv.to.After(cur.to) {
			cur.to = iv.to
		}
	}
	return total + cur.seconds()
}
