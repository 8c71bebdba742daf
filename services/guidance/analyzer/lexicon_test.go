package analyzer

import "testing"

func countIn(m *matcher, text string) int {
	tx := tokenize(text)
	n := 0
	for _, s := range tx.sents {
		n += m.count(tx.tokens[s.from:s.to])
	}
	return n
}

func TestMatcher(t *testing.T) {
	m := newMatcher("i dont understand", "dont understand", "what does * mean", "if * then", "like * said")
	tests := []struct {
		in   string
		want int
	}{
		{"I don't understand.", 1},                     // the longest phrase wins, no double count
		{"I don't understand. I don't understand!", 2}, // every occurrence counts
		{"What does chlorophyll mean?", 1},             // one-token gap
		{"What does the word carbon dioxide mean?", 1}, // several tokens
		{"What does. Mean?", 0},                        // a gap never crosses a sentence
		{"What does a b c d e f g h i mean", 0},        // more than maxGap tokens
		{"If the light is gone then no glucose", 1},    // gap, then the rest
		{"Like Maya said, it's the light.", 1},         // name in the gap
		{"I like the light.", 0},                       // "like" alone is not uptake
		{"", 0},
	}
	for _, tt := range tests {
		if got := countIn(m, tt.in); got != tt.want {
			t.Errorf("count(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestHedgesAndConfusion(t *testing.T) {
	tests := []struct {
		in                string
		hedges, confusion int
	}{
		{"Maybe it's the light, I guess. I'm not sure.", 3, 0},
		{"I think plants probably kind of need water.", 3, 0},
		{"Plants need light to make glucose.", 0, 0},
		{"I don't get it. What does photosynthesis mean? I'm so confused.", 0, 3},
		{"This doesn't make sense, I have no idea.", 0, 2},
		{"I dunno, maybe?", 1, 1}, // "i dunno" is confusion only once, "maybe" a hedge
	}
	for _, tt := range tests {
		if got := countIn(hedges, tt.in); got != tt.hedges {
			t.Errorf("hedges(%q) = %d, want %d", tt.in, got, tt.hedges)
		}
		if got := countIn(confusionPhrases, tt.in); got != tt.confusion {
			t.Errorf("confusion(%q) = %d, want %d", tt.in, got, tt.confusion)
		}
	}
}

func TestArgumentMarkers(t *testing.T) {
	tests := []struct {
		in                         string
		claim, evidence, reasoning bool
	}{
		{"I think the light matters.", true, false, false},
		{"Because the dark plants were 3 cm shorter.", false, true, false},
		{"For example the leaves turned yellow.", false, true, false},
		{"So that means no light gives no glucose.", false, false, true},
		{"If there is no light then there is no glucose.", false, false, true},
		{"The answer is light because the data shows it, which means light is needed.", true, true, true},
		{"Did you see the game?", false, false, false},
	}
	for _, tt := range tests {
		a := analyze([]string{"light"}, nil, []Turn{{Text: tt.in}}, nil, zeroTime, zeroTime)
		var claim, evidence, reasoning bool
		for _, f := range a.docs[0].sents {
			claim, evidence, reasoning = claim || f.claim, evidence || f.evidence, reasoning || f.reasoning
		}
		if claim != tt.claim || evidence != tt.evidence || reasoning != tt.reasoning {
			t.Errorf("%q: claim, evidence, reasoning = %v, %v, %v, want %v, %v, %v",
				tt.in, claim, evidence, reasoning, tt.claim, tt.evidence, tt.reasoning)
		}
	}
}

func TestLexiconPhrasesAreTokenized(t *testing.T) {
	// A phrase written with an apostrophe or upper case would never match: every phrase's words
	// must already be in tokenized form.
	for _, m := range []*matcher{offTaskPhrases, hedges, confusionPhrases, uptakePhrases, openQuestionCues,
		claimMarkers, evidenceMarkers, reasoningMarkers, correctionPhrases} {
		for first, list := range m.byFirst {
			for _, p := range list {
				for _, w := range p {
					if w == "*" {
						continue
					}
					if toks := tokenize(w).tokens; len(toks) != 1 || toks[0] != w {
						t.Errorf("phrase %v (first %q): word %q is not a token", p, first, w)
					}
				}
			}
		}
	}
	for _, set := range []wordSet{stopwords, offTaskWords, commonLong, yesNoStarters, whWords, leadIns} {
		for w := range set {
			if toks := tokenize(w).tokens; len(toks) != 1 || toks[0] != w {
				t.Errorf("word %q is not a token", w)
			}
		}
	}
}

func TestScanMatchesMatchers(t *testing.T) {
	// The one-pass index scan must count exactly what each lexicon's matcher counts.
	texts := []string{
		"I don't get it, I don't understand, what does glucose even mean? Maybe, I guess, kind of.",
		"I think it's because the data shows 3 cm, which means if the light goes then the plant dies.",
		"Did you see the game last night? Like Maya said, I agree with her, building on that.",
		"That's not right, actually it's the other way around. I thought so.",
		"if if if then then what does what does mean mean",
	}
	for _, text := range texts {
		tx := tokenize(text)
		for _, s := range tx.sents {
			toks := tx.tokens[s.from:s.to]
			got := scan(toks, lookupWords(toks))
			for lex, m := range lexicons {
				if want := m.count(toks); got[lex] != want {
					t.Errorf("%q lexicon %d: scan %d, matcher %d", toks, lex, got[lex], want)
				}
			}
		}
	}
}
