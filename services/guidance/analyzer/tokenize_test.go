package analyzer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTokenize(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		tokens    []string
		sentences []string
		questions []bool
	}{
		{
			name:      "apostrophes, case and punctuation",
			in:        "I don’t GET it. Plant's leaves?",
			tokens:    []string{"i", "dont", "get", "it", "plants", "leaves"},
			sentences: []string{"I don’t GET it.", "Plant's leaves?"},
			questions: []bool{false, true},
		},
		{
			name:      "numbers keep decimal points and commas",
			in:        "It grew 3.5 cm, then 1,200 more. Wow!",
			tokens:    []string{"it", "grew", "3.5", "cm", "then", "1,200", "more", "wow"},
			sentences: []string{"It grew 3.5 cm, then 1,200 more.", "Wow!"},
			questions: []bool{false, false},
		},
		{
			name:      "line breaks end sentences without punctuation",
			in:        "why is it green  \n\n  because of chlorophyll",
			tokens:    []string{"why", "is", "it", "green", "because", "of", "chlorophyll"},
			sentences: []string{"why is it green", "because of chlorophyll"},
			questions: []bool{false, false},
		},
		{
			name:      "empty and punctuation only",
			in:        " ?!... ",
			tokens:    []string{},
			sentences: []string{},
			questions: []bool{},
		},
		{
			name:      "unicode letters are lower-cased",
			in:        "Élodie dit ÇA",
			tokens:    []string{"élodie", "dit", "ça"},
			sentences: []string{"Élodie dit ÇA"},
			questions: []bool{false},
		},
		{
			name:      "invalid utf-8 separates tokens",
			in:        "ab\xffcd",
			tokens:    []string{"ab", "cd"},
			sentences: []string{"ab\xffcd"},
			questions: []bool{false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tokenize(tt.in)
			if diff := cmp.Diff(tt.tokens, got.tokens); diff != "" {
				t.Errorf("tokens (-want +got):\n%s", diff)
			}
			sents, qs := []string{}, []bool{}
			for _, s := range got.sents {
				sents = append(sents, got.raw[s.start:s.end])
				qs = append(qs, s.question)
			}
			if diff := cmp.Diff(tt.sentences, sents); diff != "" {
				t.Errorf("sentences (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.questions, qs); diff != "" {
				t.Errorf("questions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStem(t *testing.T) {
	// Pairs that must meet, and the form they meet at.
	tests := []struct{ words []string }{
		{[]string{"plant", "plants", "planted", "planting"}},
		{[]string{"produce", "produces", "produced", "producing"}},
		{[]string{"leaf", "leaves"}},
		{[]string{"process", "processes"}},
		{[]string{"study", "studies"}},
		{[]string{"grow", "grows", "growing"}},
		{[]string{"stop", "stopped", "stopping", "stops"}},
		{[]string{"box", "boxes"}},
		{[]string{"glucose", "glucoses"}},
		{[]string{"consumer", "consumers"}},
	}
	for _, tt := range tests {
		want := stem(tt.words[0])
		for _, w := range tt.words[1:] {
			if got := stem(w); got != want {
				t.Errorf("stem(%q) = %q, want %q (as stem(%q))", w, got, want, tt.words[0])
			}
		}
	}
	// Words that must be left alone.
	for _, w := range []string{"gas", "photosynthesis", "process", "us", "need", "seed", "élodie", "is"} {
		if got := stem(w); got != w {
			t.Errorf("stem(%q) = %q, want it unchanged", w, got)
		}
	}
}
