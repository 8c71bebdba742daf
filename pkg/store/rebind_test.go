package store

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var (
	dollarN       = regexp.MustCompile(`\$[0-9]+`)
	questionDigit = regexp.MustCompile(`\?[0-9]`)
)

// FuzzRebind checks that PostgreSQL placeholders replace question marks and nothing else: turning
// every $n back into ? gives the query back, and the placeholders are numbered 1, 2, 3...
func FuzzRebind(f *testing.F) {
	for _, s := range []string{"SELECT ?", `'?' ? "?"`, "-- ?\n?", "/* ? */ ?", "'it''s' ?", "?-?--?", "/*/ ? */?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if strings.Contains(q, "$") || questionDigit.MatchString(q) {
			return // outside the property: $ or ?<digit> in the input would make the inverse ambiguous
		}
		got := rebindDollar(q)
		if back := dollarN.ReplaceAllString(got, "?"); back != q {
			t.Fatalf("rebindDollar(%q) = %q, which does not map back", q, got)
		}
		for i, m := range dollarN.FindAllString(got, -1) {
			if want := "$" + strconv.Itoa(i+1); m != want {
				t.Fatalf("rebindDollar(%q) = %q: placeholder %d is %s, want %s", q, got, i+1, m, want)
			}
		}
	})
}
