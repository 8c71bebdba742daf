package analyzer

import (
	"math"
	"testing"
)

func TestIDF(t *testing.T) {
	v := newVocab(4)
	a, b := v.id("a"), v.id("b")
	v.addDoc([]int32{a, a, b})
	v.addDoc([]int32{a})
	v.addDoc(nil) // an empty document still counts in N
	v.finish()
	// N = 3; df(a) = 2, df(b) = 1.
	if got, want := v.idf[a], math.Log(4.0/3.0)+1; math.Abs(got-want) > 1e-12 {
		t.Errorf("idf(a) = %v, want %v", got, want)
	}
	if got, want := v.idf[b], math.Log(4.0/2.0)+1; math.Abs(got-want) > 1e-12 {
		t.Errorf("idf(b) = %v, want %v", got, want)
	}
	if v.idf[b] <= v.idf[a] {
		t.Errorf("rarer term must weigh more: idf(b) = %v, idf(a) = %v", v.idf[b], v.idf[a])
	}
}

func TestVectorizeAndCosine(t *testing.T) {
	v := newVocab(8)
	ids := func(words ...string) []int32 {
		out := make([]int32, len(words))
		for i, w := range words {
			out[i] = v.id(w)
		}
		return out
	}
	x := ids("plant", "light", "light", "glucose")
	y := ids("glucose", "light", "plant", "light") // same bag, other order
	z := ids("game", "pizza")
	w := ids("plant", "water")
	for _, d := range [][]int32{x, y, z, w} {
		v.addDoc(d)
	}
	v.finish()
	var scratch []int32
	vx, vy, vz, vw := v.vectorize(x, &scratch), v.vectorize(y, &scratch), v.vectorize(z, &scratch), v.vectorize(w, &scratch)

	var norm float64
	for _, e := range vx {
		norm += e.w * e.w
	}
	if math.Abs(norm-1) > 1e-12 {
		t.Errorf("|x|² = %v, want 1", norm)
	}
	// Sublinear tf: "light" twice weighs (1 + ln 2)·idf, not 2·idf.
	if got := vx[1].w / vx[0].w; math.Abs(got-(1+math.Log(2))*v.idf[1]/v.idf[0]) > 1e-12 {
		t.Errorf("w(light)/w(plant) = %v, want (1+ln 2)·idf ratio", got)
	}
	if got := cosine(vx, vy); math.Abs(got-1) > 1e-12 {
		t.Errorf("cosine of the same bag = %v, want 1", got)
	}
	if got := cosine(vx, vz); got != 0 {
		t.Errorf("cosine of disjoint bags = %v, want 0", got)
	}
	if got := cosine(vx, vw); got <= 0 || got >= 1 {
		t.Errorf("cosine of overlapping bags = %v, want in (0,1)", got)
	}
	if cosine(vx, vw) != cosine(vw, vx) {
		t.Error("cosine is not symmetric")
	}
	if v.vectorize(nil, &scratch) != nil || cosine(nil, vx) != 0 {
		t.Error("empty bag must give the empty vector and cosine 0")
	}
}

func TestLeaveOneOutMatchesDirect(t *testing.T) {
	turns := []Turn{
		{Text: "plants need light to make glucose"},
		{Text: "the glucose gives the plant energy"},
		{Text: "energy flows to consumers that eat plants"},
		{Text: "did you see the game"},
	}
	a := analyze(nil, nil, turns, nil, zeroTime, zeroTime)
	// Recompute one turn's relevance by building the rest vector directly.
	v := newVocab(32)
	var docs [][]int32
	for _, tr := range turns {
		var ids []int32
		for _, tok := range tokenize(tr.Text).tokens {
			if s, ok := contentStem(tok, wordIndex[tok]); ok {
				ids = append(ids, v.id(s))
			}
		}
		docs = append(docs, ids)
		v.addDoc(ids)
	}
	v.finish()
	var scratch []int32
	for i := range turns {
		var rest []int32
		for j, d := range docs {
			if j != i {
				rest = append(rest, d...)
			}
		}
		want := cosine(v.vectorize(docs[i], &scratch), v.vectorize(rest, &scratch))
		if got := a.docs[i].rel; math.Abs(got-want) > 1e-9 {
			t.Errorf("turn %d: leave-one-out cosine = %v, direct = %v", i, got, want)
		}
	}
}
