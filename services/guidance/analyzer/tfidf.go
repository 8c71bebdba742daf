package analyzer

import (
	"math"
	"slices"
)

// vocab interns the stems of one analysis into dense ids (in order of first appearance, so every
// result is independent of map order) and counts document frequencies for IDF.
type vocab struct {
	ids   map[string]int32
	df    []int32
	stamp []int32 // the last document (1-based) that counted each term
	docs  int
	idf   []float64
}

func newVocab(capacity int) *vocab {
	return &vocab{ids: make(map[string]int32, capacity)}
}

// id interns term.
func (v *vocab) id(term string) int32 {
	if id, ok := v.ids[term]; ok {
		return id
	}
	id := int32(len(v.df))
	v.ids[term] = id
	v.df = append(v.df, 0)
	v.stamp = append(v.stamp, 0)
	return id
}

// lookup answers term's id, or -1 when the analysis has not seen it.
func (v *vocab) lookup(term string) int32 {
	if id, ok := v.ids[term]; ok {
		return id
	}
	return -1
}

// addDoc counts one document's distinct terms in the document frequencies.
func (v *vocab) addDoc(terms []int32) {
	v.docs++
	for _, t := range terms {
		if v.stamp[t] != int32(v.docs) {
			v.stamp[t] = int32(v.docs)
			v.df[t]++
		}
	}
}

// finish computes the smoothed inverse document frequency of every term:
//
//	idf(t) = ln((1 + N) / (1 + df(t))) + 1
//
// where N is the number of documents. Smoothing keeps idf > 0, so a term present in every document
// still counts.
func (v *vocab) finish() {
	v.idf = make([]float64, len(v.df))
	n := float64(1 + v.docs)
	for i, df := range v.df {
		v.idf[i] = math.Log(n/float64(1+df)) + 1
	}
}

// entry is one non-zero component of a sparse vector.
type entry struct {
	id int32
	w  float64
}

// vec is a sparse vector sorted by term id, of unit length (or empty).
type vec []entry

// vectorize builds the unit TF-IDF vector of a bag of terms, with sublinear term frequency:
//
//	w(t) = (1 + ln tf(t)) · idf(t),  then divided by the Euclidean norm.
//
// scratch is reused between calls to avoid allocation; the answer does not alias it.
func (v *vocab) vectorize(terms []int32, scratch *[]int32) vec {
	if len(terms) == 0 {
		return nil
	}
	s := append((*scratch)[:0], terms...)
	slices.Sort(s)
	*scratch = s
	out := make(vec, 0, len(s))
	var norm float64
	for i := 0; i < len(s); {
		j := i + 1
		for j < len(s) && s[j] == s[i] {
			j++
		}
		w := (1 + math.Log(float64(j-i))) * v.idf[s[i]]
		out = append(out, entry{s[i], w})
		norm += w * w
		i = j
	}
	norm = math.Sqrt(norm)
	for i := range out {
		out[i].w /= norm
	}
	return out
}

// cosine is the cosine similarity of two unit vectors, in [0, 1] (weights are never negative).
func cosine(a, b vec) float64 {
	var dot float64
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i].id < b[j].id:
			i++
		case a[i].id > b[j].id:
			j++
		default:
			dot += a[i].w * b[j].w
			i++
			j++
		}
	}
	return clamp01(dot)
}

func clamp01(x float64) float64 {
	switch {
	case x < 0 || math.IsNaN(x):
		return 0
	case x > 1:
		return 1
	}
	return x
}
