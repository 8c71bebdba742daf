package analyzer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// text is a tokenized transcript: lower-cased word tokens and the sentences they form.
type text struct {
	raw    string
	tokens []string
	sents  []sentence
}

// sentence is a run of tokens [from,to) and the bytes [start,end) of the raw text it came from.
type sentence struct {
	from, to   int
	start, end int
	// question is set when the sentence ends with '?'.
	question bool
	// terminated is set when the sentence ends with '.', '!' or '?' (not at a line break or the end of
	// the text): unpunctuated transcripts are classified by their first word instead.
	terminated bool
}

// isApostrophe reports the apostrophe forms speech-to-text output uses.
func isApostrophe(r rune) bool {
	return r == '\'' || r == '’' || r == '‘' || r == 'ʼ'
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// tokenize splits raw into lower-cased tokens of letters and digits. Apostrophes inside a word are
// dropped ("don't" -> "dont", "plant's" -> "plants"), a '.' or ',' between digits stays in the number
// ("3.5"), everything else separates tokens. Sentences end at '.', '!', '?', '…' and line breaks.
func tokenize(raw string) text {
	t := text{raw: raw}
	// Lower-cased token bytes go to one buffer converted to a string once; tokens are slices of it.
	buf := make([]byte, 0, len(raw))
	type span struct{ from, to int }
	spans := make([]span, 0, len(raw)/5+1)

	tokStart := -1 // start of the current token in buf
	sentFrom, sentStart := 0, -1
	closeToken := func() {
		if tokStart >= 0 {
			spans = append(spans, span{tokStart, len(buf)})
			tokStart = -1
		}
	}
	closeSentence := func(end int, question, terminated bool) {
		closeToken()
		if len(spans) > sentFrom {
			t.sents = append(t.sents, sentence{
				from: sentFrom, to: len(spans), start: sentStart, end: end,
				question: question, terminated: terminated,
			})
		}
		sentFrom, sentStart = len(spans), -1
	}

	for i := 0; i < len(raw); {
		r, size := utf8.DecodeRuneInString(raw[i:])
		next, _ := utf8.DecodeRuneInString(raw[i+size:])
		switch {
		case isWordRune(r):
			if tokStart < 0 {
				tokStart = len(buf)
				if sentStart < 0 {
					sentStart = i
				}
			}
			if r < utf8.RuneSelf {
				if 'A' <= r && r <= 'Z' {
					r += 'a' - 'A'
				}
				buf = append(buf, byte(r))
			} else {
				buf = utf8.AppendRune(buf, unicode.ToLower(r))
			}
		case isApostrophe(r) && tokStart >= 0 && unicode.IsLetter(next):
			// inside a word: dropped
		case (r == '.' || r == ',') && tokStart >= 0 && len(buf) > 0 && isDigitByte(buf[len(buf)-1]) && unicode.IsDigit(next):
			buf = append(buf, byte(r))
		case r == '?':
			closeSentence(i+size, true, true)
		case r == '.' || r == '!' || r == '…':
			closeSentence(i+size, false, true)
		case r == '\n' || r == '\r':
			closeSentence(i, false, false)
		default:
			closeToken()
		}
		i += size
	}
	closeSentence(len(raw), false, false)

	norm := string(buf)
	t.tokens = make([]string, len(spans))
	for i, s := range spans {
		t.tokens[i] = norm[s.from:s.to]
	}
	// Trim trailing spaces of sentences that ended at a line break or the end of the text.
	for i := range t.sents {
		s := &t.sents[i]
		s.end = s.start + len(strings.TrimRightFunc(t.raw[s.start:s.end], unicode.IsSpace))
	}
	return t
}

func isDigitByte(b byte) bool { return '0' <= b && b <= '9' }

// hasLetter reports whether a token contains a letter (numbers are not content words).
func hasLetter(tok string) bool {
	for _, r := range tok {
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}

// hasDigit reports whether a token contains a digit.
func hasDigit(tok string) bool {
	for i := 0; i < len(tok); i++ {
		if isDigitByte(tok[i]) {
			return true
		}
	}
	return false
}

// irregular maps irregular plurals met in school science talk to their singular.
var irregular = map[string]string{
	"leaves": "leaf", "wolves": "wolf", "lives": "life", "knives": "knife", "halves": "half",
	"shelves": "shelf", "children": "child", "mice": "mouse", "geese": "goose", "teeth": "tooth",
	"feet": "foot", "men": "man", "women": "woman", "people": "person", "fungi": "fungus",
	"bacteria": "bacterium", "data": "data", "phenomena": "phenomenon", "criteria": "criterion",
}

// stem is a light, deterministic English suffix stripper (documented in README.md, "Stemming"): it
// maps the inflections that matter for matching talk to objectives (plurals, -ing, -ed, a final -e)
// to one form. It is not a full Porter stemmer: both sides of every comparison go through it, so it
// only has to be consistent. Words with non-ASCII letters are left as they are.
func stem(w string) string {
	for i := 0; i < len(w); i++ {
		if w[i] >= utf8.RuneSelf {
			return w
		}
	}
	if s, ok := irregular[w]; ok {
		return s
	}
	n := len(w)
	// Plurals and third person.
	switch {
	case n > 4 && strings.HasSuffix(w, "sses"):
		w = w[:n-2]
	case n > 4 && strings.HasSuffix(w, "ies"):
		w = w[:n-3] + "y"
	case n > 4 && strings.HasSuffix(w, "es") && endsWithAny(w[:n-2], "s", "x", "z", "ch", "sh"):
		w = w[:n-2]
	case n > 3 && w[n-1] == 's' && !endsWithAny(w, "ss", "us", "is"):
		w = w[:n-1]
	}
	// Progressive and past.
	n = len(w)
	switch {
	case n-3 >= 3 && strings.HasSuffix(w, "ing") && hasVowel(w[:n-3]):
		w = undouble(w[:n-3])
	case n-2 >= 4 && strings.HasSuffix(w, "ed") && hasVowel(w[:n-2]):
		w = undouble(w[:n-2])
	}
	// A final silent e, so that "produce", "produces", "produced" and "producing" meet.
	if n = len(w); n > 4 && w[n-1] == 'e' {
		w = w[:n-1]
	}
	return w
}

func endsWithAny(w string, suffixes ...string) bool {
	for _, s := range suffixes {
		if strings.HasSuffix(w, s) {
			return true
		}
	}
	return false
}

func hasVowel(w string) bool { return strings.ContainsAny(w, "aeiouy") }

// undouble turns a doubled final consonant into one ("stopp" -> "stop"), except l, s and z.
func undouble(w string) string {
	n := len(w)
	if n >= 2 && w[n-1] == w[n-2] && !strings.ContainsRune("aeiouylsz", rune(w[n-1])) {
		return w[:n-1]
	}
	return w
}
