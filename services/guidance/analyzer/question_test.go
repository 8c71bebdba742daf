package analyzer

import "testing"

func TestClassifyQuestion(t *testing.T) {
	tests := []struct {
		in   string
		want questionKind
	}{
		{"Why do plants need light?", questionFocusing},
		{"How does the light turn into food?", questionFocusing},
		{"What if they forgot to water them?", questionFocusing},
		{"What do you think happens to the consumers?", questionFocusing},
		{"Can you explain why the leaves turned yellow?", questionFocusing},
		{"So how come the roots kept growing?", questionFocusing},
		{"Is it the light or the water?", questionFunneling},
		{"Do plants need sunlight?", questionFunneling},
		{"It's the chlorophyll, right?", questionFunneling},
		{"Plants make their own food, don't they?", questionFunneling},
		{"Why is it green, right?", questionFunneling}, // a tag closes even an open start
		{"So the plant eats sunlight?", questionFunneling},
		{"What is the green stuff called?", questionOther},
		{"How many plants were in the box?", questionOther},
		{"Where does the glucose come from?", questionOther},
		{"Plants need light.", questionNone},
		{"why do plants need light", questionFocusing}, // unpunctuated transcript
		{"the plants need light", questionNone},
		{"is it the light", questionFunneling},
	}
	for _, tt := range tests {
		tx := tokenize(tt.in)
		if len(tx.sents) != 1 {
			t.Fatalf("%q: %d sentences, want 1", tt.in, len(tx.sents))
		}
		s := tx.sents[0]
		if got := classifyQuestion(tx.tokens[s.from:s.to], s); got != tt.want {
			t.Errorf("classifyQuestion(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
