package analyzer

import (
	"sort"
	"strings"
)

// maxGap is how many tokens a "*" in a lexicon phrase may stand for (at least one).
const maxGap = 8

// matcher finds the phrases of one lexicon in a sentence's tokens. Phrases are written in
// tokenized form (lower case, apostrophes dropped: "dont understand"); a "*" stands for 1..maxGap
// tokens of the same sentence ("what does * mean", "if * then").
type matcher struct {
	// byFirst indexes phrases by their first token; each list is longest first, then in lexicon
	// order, so that matching is deterministic and prefers the most specific phrase.
	byFirst map[string][][]string
}

func newMatcher(phrases ...string) *matcher {
	m := &matcher{byFirst: make(map[string][][]string, len(phrases))}
	for _, p := range phrases {
		words := tokenize(p).tokens
		// A "*" is not a word rune: restore it from the source phrase's fields.
		if strings.Contains(p, "*") {
			words = words[:0:0]
			for _, f := range strings.Fields(p) {
				if f == "*" {
					words = append(words, "*")
					continue
				}
				words = append(words, tokenize(f).tokens...)
			}
		}
		if len(words) == 0 || words[0] == "*" {
			panic("analyzer: bad lexicon phrase " + p)
		}
		m.byFirst[words[0]] = append(m.byFirst[words[0]], words)
	}
	for _, list := range m.byFirst {
		sort.SliceStable(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	}
	return m
}

// count counts non-overlapping occurrences in toks (one sentence), scanning left to right and
// taking the longest phrase that matches at each position.
func (m *matcher) count(toks []string) int {
	n := 0
	for i := 0; i < len(toks); {
		if end := m.matchAt(toks, i); end > i {
			n++
			i = end
			continue
		}
		i++
	}
	return n
}

// first answers the token index of the first match in toks, or -1.
func (m *matcher) first(toks []string) int {
	for i := range toks {
		if m.matchAt(toks, i) > i {
			return i
		}
	}
	return -1
}

// matchAt answers the end of the phrase matching at toks[i], or i when none does.
func (m *matcher) matchAt(toks []string, i int) int {
	for _, p := range m.byFirst[toks[i]] {
		if end := matchFrom(p, toks, i); end > i {
			return end
		}
	}
	return i
}

// matchFrom matches pattern p against toks starting at i; "*" takes the fewest tokens that let the
// rest match. It answers the end index of the match, or i when p does not match.
func matchFrom(p, toks []string, i int) int {
	j := i
	for k := 0; k < len(p); k++ {
		if p[k] != "*" {
			if j >= len(toks) || toks[j] != p[k] {
				return i
			}
			j++
			continue
		}
		rest := p[k+1:]
		if len(rest) == 0 { // a trailing "*" takes one token
			if j < len(toks) {
				return j + 1
			}
			return i
		}
		for gap := 1; gap <= maxGap && j+gap < len(toks); gap++ {
			if end := matchFrom(rest, toks, j+gap); end > j+gap {
				return end
			}
		}
		return i
	}
	return j
}

// wordSet is a set of single tokens (or, for stemmed sets, stems).
type wordSet map[string]struct{}

func newWordSet(words ...string) wordSet {
	s := make(wordSet, len(words))
	for _, w := range words {
		s[w] = struct{}{}
	}
	return s
}

func (s wordSet) has(w string) bool {
	_, ok := s[w]
	return ok
}
