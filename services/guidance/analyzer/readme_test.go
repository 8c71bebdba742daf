package analyzer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeListsEveryLexiconEntry keeps README.md's "Lexicons" section in step with the code:
// every word and phrase the analyzer uses is quoted there.
func TestReadmeListsEveryLexiconEntry(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(filepath.Dir(GoldenDir()), "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	check := func(list, entry string) {
		if !strings.Contains(readme, "`"+entry+"`") {
			t.Errorf("README.md: %s entry `%s` is not listed", list, entry)
		}
	}
	sets := map[string]wordSet{
		"stopwords": stopwords, "commonLong": commonLong, "offTaskWords": offTaskWords, "yesNoStarters": yesNoStarters,
		"whWords": whWords, "leadIns": leadIns, "unpunctuatedStarters": unpunctuatedStarters,
	}
	for name, set := range sets {
		for w := range set {
			check(name, w)
		}
	}
	for _, w := range objectiveGenericWords {
		check("objectiveGeneric", w)
	}
	for lex, m := range lexicons {
		for _, list := range m.byFirst {
			for _, p := range list {
				check(string(rune('0'+lex))+" lexicon", strings.Join(p, " "))
			}
		}
	}
	for _, list := range openQuestionCues.byFirst {
		for _, p := range list {
			check("openQuestionCues", strings.Join(p, " "))
		}
	}
	for _, tag := range tagQuestionEndings {
		check("tagQuestionEndings", strings.Join(tag, " "))
	}
	for k, v := range irregular {
		check("irregular", k+"`→`"+v)
	}
	// The alert constants are documented with their values.
	for _, s := range []string{"`off_task_ratio ≥ 0.3`", "`topical_focus < 0.3`", "`silence_seconds ≥ 20`", "`confusion_markers ≥ 3`", "`participation_balance < 0.4`"} {
		check("alert thresholds", strings.Trim(s, "`"))
	}
	if OffTaskAlertRatio != 0.3 || LowFocusThreshold != 0.3 || SilenceAlertSeconds != 20 || ConfusionAlertMarkers != 3 || DominanceBalanceThreshold != 0.4 {
		t.Error("alert constants changed: update README.md's alert thresholds table and this test")
	}
}
