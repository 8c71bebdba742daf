package llm

import (
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Placeholders Redact puts in place of what it removes.
const (
	StudentPlaceholder = "[student]"
	EmailPlaceholder   = "[email]"
)

var (
	emailRE = regexp.MustCompile(`[\p{L}\p{N}._%+\-]+@[\p{L}\p{N}\-]+(?:\.[\p{L}\p{N}\-]+)+`)
	// spokenEmailRE is an address as a transcript writes it: "maria dot lopez at gmail dot com".
	spokenEmailRE = regexp.MustCompile(`(?i)[\p{L}\p{N}._%+\-]+(?:\s+dot\s+[\p{L}\p{N}\-]+)*\s+at\s+[\p{L}\p{N}\-]+(?:\s+dot\s+[\p{L}\p{N}\-]+)*\s+dot\s+(?:com|org|net|edu|gov|io|us|uk|ca|au|k12)\b`)
)

// nameParticles are parts of multi-word names that are not names on their own.
var nameParticles = map[string]bool{
	"de": true, "da": true, "das": true, "do": true, "dos": true, "del": true, "della": true, "di": true,
	"du": true, "la": true, "le": true, "van": true, "von": true, "der": true, "den": true, "ter": true,
	"ten": true, "bin": true, "ibn": true, "bint": true, "y": true, "e": true, "st": true, "mc": true,
	"jr": true, "sr": true, "ii": true, "iii": true, "iv": true,
}

// commonWords are names that are also everyday English words. Alone they are removed only where
// written with a capital ("Will", not "will"), so that a student called Will does not erase every
// "will" from the transcript. Whisper capitalizes names; the cost is that a capitalized word at
// the start of a sentence is removed too, which errs on the side of privacy.
var commonWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`will may june april august art bill mark grace hope joy faith rose
		summer autumn winter dawn sky ray jack rich sandy max pat chase hunter lily iris ivy ruby amber
		page miles dean frank gene guy drew sonny penny holly violet jade crystal destiny honey sunny
		river stone brook glen cliff rob sue sage reed wade ward hall bell young green brown white black
		king long short hill wood woods park lane rock star storm rain snow true sol ace al bo jo ed
		cody lee an so is it in on at to me we us he she his her by no my ok ben don nick sam tom tim
		jim kim van ken ali ash bay beau blue bud cash clay cole crew dale earl fox gray grey jay jean
		kit lane lark love marsh mason moss oak paris pearl pierce price rex rush scout sterling
		tanner taylor tucker victory wren york angel august colt ember harmony journey justice
		kingston legend lyric marina noble patience rebel reign royal saint serenity shepherd skye
		sparrow spring sunday sylvan trinity trust unity zion carter cooper baker fisher porter walker
		parker miller mills smith wells banks rivers fields brooks bush best rose`) {
		commonWords[w] = true
	}
}

// namePattern is one name (or name part) to remove: its words, folded.
type namePattern struct {
	words []string
	// capital: a word of the pattern that is a common word must be written with a capital.
	capital []bool
}

// Redact removes e-mail addresses (written or spoken: "maria at gmail dot com") and the given
// display names from text, putting EmailPlaceholder and StudentPlaceholder in their place. Names
// match case-insensitively as whole words (a word is a run of letters, digits and marks), the
// full name with any short run of spaces or punctuation between its words ("Maria-Jose Lopez",
// "J. Smith"), and each of its parts of two or more letters on its own: first names, also last
// names, but not particles such as "de" or "van". A part that is a common English word ("Will",
// "Grace", "Young") matches alone only where written with a capital. Possessives keep their "'s".
func Redact(text string, names []string) string {
	// The address patterns have no literal prefix for the regexp engine to scan for: look for
	// their anchors first, as most transcripts have none.
	if strings.Contains(text, "@") {
		text = emailRE.ReplaceAllString(text, EmailPlaceholder)
	}
	if lower := strings.ToLower(text); strings.Contains(lower, " dot ") && strings.Contains(lower, " at ") {
		text = spokenEmailRE.ReplaceAllString(text, EmailPlaceholder)
	}
	patterns := compileNames(names)
	if len(patterns) == 0 {
		return text
	}
	toks := wordTokens(text)
	var b strings.Builder
	last := 0
	buf := make([]byte, 0, 64)
	for i := 0; i < len(toks); {
		n := matchAt(text, toks, i, patterns, &buf)
		if n == 0 {
			i++
			continue
		}
		b.WriteString(text[last:toks[i].start])
		b.WriteString(StudentPlaceholder)
		last = toks[i+n-1].end
		i += n
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// compileNames turns display names into patterns keyed by their first word's fold, longest
// first.
func compileNames(names []string) map[string][]namePattern {
	out := map[string][]namePattern{}
	seen := map[string]bool{}
	add := func(words []string, alone bool) {
		p := namePattern{}
		for _, w := range words {
			f := foldKey(w)
			p.words = append(p.words, f)
			p.capital = append(p.capital, alone && commonWords[strings.ToLower(w)])
		}
		k := strings.Join(p.words, " ")
		if seen[k] {
			return
		}
		seen[k] = true
		out[p.words[0]] = append(out[p.words[0]], p)
	}
	for _, name := range names {
		var words []string
		for _, t := range wordTokens(name) {
			words = append(words, name[t.start:t.end])
		}
		if len(words) == 0 {
			continue
		}
		if len(words) > 1 {
			add(words, false)
		}
		for i, w := range words {
			if utf8.RuneCountInString(w) < 2 || !hasLetter(w) {
				continue
			}
			if i > 0 && nameParticles[strings.ToLower(w)] {
				continue
			}
			add([]string{w}, true)
		}
	}
	for k := range out {
		slices.SortStableFunc(out[k], func(a, b namePattern) int { return len(b.words) - len(a.words) })
	}
	return out
}

// matchAt answers how many tokens from toks[i] a pattern covers (0: none). buf is scratch
// space for fold keys (looked up without allocating).
func matchAt(text string, toks []token, i int, patterns map[string][]namePattern, buf *[]byte) int {
	if isPlaceholder(text, toks[i]) {
		return 0
	}
	*buf = appendFold((*buf)[:0], text[toks[i].start:toks[i].end])
	cands := patterns[string(*buf)]
	if len(cands) == 0 {
		return 0
	}
next:
	for _, p := range cands {
		if i+len(p.words) > len(toks) {
			continue
		}
		for j, w := range p.words {
			t := toks[i+j]
			word := text[t.start:t.end]
			if j > 0 {
				*buf = appendFold((*buf)[:0], word)
				if string(*buf) != w || !nameSeparator(text[toks[i+j-1].end:t.start]) {
					continue next
				}
			}
			if p.capital[j] {
				r, _ := utf8.DecodeRuneInString(word)
				if !unicode.IsUpper(r) && !unicode.IsTitle(r) {
					continue next
				}
			}
		}
		return len(p.words)
	}
	return 0
}

// isPlaceholder reports whether t is the word of a placeholder Redact wrote.
func isPlaceholder(text string, t token) bool {
	w := text[t.start:t.end]
	return (w == "student" || w == "email") && t.start > 0 && text[t.start-1] == '[' && t.end < len(text) && text[t.end] == ']'
}

// nameSeparator reports whether sep may stand between two words of one name: one to three
// spaces or punctuation marks, no line break.
func nameSeparator(sep string) bool {
	n := utf8.RuneCountInString(sep)
	return n >= 1 && n <= 3 && !strings.ContainsAny(sep, "\n\r")
}

type token struct{ start, end int }

func isWordRune(r rune) bool {
	return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r))
}

// wordTokens returns the byte ranges of the runs of letters, digits and marks in s.
func wordTokens(s string) []token {
	var toks []token
	start := -1
	for i, r := range s {
		if isWordRune(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			toks = append(toks, token{start, i})
			start = -1
		}
	}
	if start >= 0 {
		toks = append(toks, token{start, len(s)})
	}
	return toks
}

func hasLetter(s string) bool { return strings.IndexFunc(s, unicode.IsLetter) >= 0 }

// foldKey maps s to a key equal for strings that are equal under Unicode simple case folding
// (as strings.EqualFold and regexp's (?i) compare).
func foldKey(s string) string { return string(appendFold(nil, s)) }

// appendFold appends s's fold key to dst: each rune replaced by the smallest rune of its
// simple-fold orbit (for ASCII letters, the upper case: k, K and the Kelvin sign fold to K).
func appendFold(dst []byte, s string) []byte {
	for _, r := range s {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			dst = append(dst, byte(r))
			continue
		}
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		dst = utf8.AppendRune(dst, m)
	}
	return dst
}
