package analyzer

// The token index folds every word list and phrase lexicon into one map, so that analysing a token
// costs one lookup whatever the number of lexicons. It is built once from the lists in lexicon.go
// and only read afterwards.

// lexicon names a phrase lexicon.
type lexicon uint8

const (
	lexOffTask lexicon = iota
	lexHedge
	lexConfusion
	lexUptake
	lexClaim
	lexEvidence
	lexReasoning
	lexCorrection
	numLex
)

// lexicons are the phrase lexicons, indexed by lexicon.
var lexicons = [numLex]*matcher{
	lexOffTask:    offTaskPhrases,
	lexHedge:      hedges,
	lexConfusion:  confusionPhrases,
	lexUptake:     uptakePhrases,
	lexClaim:      claimMarkers,
	lexEvidence:   evidenceMarkers,
	lexReasoning:  reasoningMarkers,
	lexCorrection: correctionPhrases,
}

// wordFlags say which word lists a token is on.
type wordFlags uint8

const (
	flagStop wordFlags = 1 << iota
	flagOffTask
	flagCommonLong
)

// wordInfo is what the index knows of a token.
type wordInfo struct {
	flags wordFlags
	// phrases are the phrases starting with the token, per lexicon in lexicon order.
	phrases []lexPhrases
}

type lexPhrases struct {
	lex  lexicon
	list [][]string // longest first, as in the matcher
}

var wordIndex = buildWordIndex()

func buildWordIndex() map[string]*wordInfo {
	idx := make(map[string]*wordInfo, len(stopwords)+len(offTaskWords)+len(commonLong))
	get := func(w string) *wordInfo {
		info, ok := idx[w]
		if !ok {
			info = &wordInfo{}
			idx[w] = info
		}
		return info
	}
	for w := range stopwords {
		get(w).flags |= flagStop
	}
	for w := range offTaskWords {
		get(w).flags |= flagOffTask
	}
	for w := range commonLong {
		get(w).flags |= flagCommonLong
	}
	// One entry per (word, lexicon), appended in lexicon order: the result does not depend on the
	// order maps are iterated in.
	for lex, m := range lexicons {
		for first, list := range m.byFirst {
			info := get(first)
			info.phrases = append(info.phrases, lexPhrases{lex: lexicon(lex), list: list})
		}
	}
	return idx
}

// lookupWords answers the index entry of every token (nil for tokens on no list).
func lookupWords(toks []string) []*wordInfo {
	infos := make([]*wordInfo, len(toks))
	for i, t := range toks {
		infos[i] = wordIndex[t]
	}
	return infos
}

func (w *wordInfo) is(f wordFlags) bool { return w != nil && w.flags&f != 0 }

// scan counts, per lexicon, the non-overlapping phrase matches of one sentence: the same answer as
// each lexicon's matcher.count, in one pass.
func scan(toks []string, infos []*wordInfo) (n [numLex]int) {
	var next [numLex]int
	for i, info := range infos {
		if info == nil {
			continue
		}
		for _, lp := range info.phrases {
			if i < next[lp.lex] {
				continue
			}
			for _, p := range lp.list {
				if end := matchFrom(p, toks, i); end > i {
					n[lp.lex]++
					next[lp.lex] = end
					break
				}
			}
		}
	}
	return n
}
