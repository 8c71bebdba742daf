package analyzer

import "slices"

// questionKind classifies a sentence as a question.
type questionKind int8

const (
	questionNone questionKind = iota
	// questionFocusing is an open question that asks for thinking: why, how, what if, explain.
	questionFocusing
	// questionFunneling is a closed or leading question: yes/no, either/or, "..., right?".
	questionFunneling
	// questionOther is a question that is neither (a factual "what is it called?").
	questionOther
)

// unpunctuatedStarters open a question in a transcript without punctuation.
var unpunctuatedStarters = newWordSet("what", "which", "who", "where", "when", "why", "how", "whats",
	"is", "are", "do", "does", "did", "can", "could", "would", "will", "should", "isnt", "arent")

// classifyQuestion applies the question rules of README.md ("Questions") to one sentence:
//
//  1. A sentence is a question when it ends with '?', or, when it has no end punctuation at all,
//     when its first word (after lead-ins like "so", "wait") is a question word or auxiliary.
//  2. Funneling if it ends with a tag ("right", "isn't it", "don't you think", ...).
//  3. Focusing if it has an open cue anywhere ("why", "how does", "what if", "what do you think",
//     "explain", ...). "How many" and "how much" are not open cues.
//  4. Funneling if its first word is a yes/no starter (is, are, do, can, ...), if it offers
//     alternatives ("... or ..."), or if it is a statement said as a question ("So plants eat
//     sunlight?"), which leads toward an answer.
//  5. Otherwise other (what/which/who/where/when asking for a fact).
func classifyQuestion(toks []string, s sentence) questionKind {
	if len(toks) == 0 {
		return questionNone
	}
	first := firstWord(toks)
	if !s.question && (s.terminated || !unpunctuatedStarters.has(first)) {
		return questionNone
	}
	for _, tag := range tagQuestionEndings {
		if len(toks) > len(tag) && slices.Equal(toks[len(toks)-len(tag):], tag) {
			return questionFunneling
		}
	}
	if openQuestionCues.first(toks) >= 0 {
		return questionFocusing
	}
	switch {
	case yesNoStarters.has(first), slices.Contains(toks, "or"), !whWords.has(first):
		return questionFunneling
	}
	return questionOther
}

// firstWord answers the first token that is not a lead-in ("so", "wait", "um", ...).
func firstWord(toks []string) string {
	for _, t := range toks {
		if !leadIns.has(t) {
			return t
		}
	}
	return toks[0]
}
