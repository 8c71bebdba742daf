package llmanalyzer

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/classwaves/classwaves/pkg/llm"
	"github.com/classwaves/classwaves/services/guidance/analyzer"
)

// line is one transcript line as sent.
type line struct {
	label string
	text  string // redacted, one line
	norm  normText
}

// window is a transcript window as sent: its label, its real id and its lines.
type window struct {
	label string
	id    string
	group string // real group id (Tier 2)
	start time.Time
	lines []*line
}

// labeller hands out window labels w1, w2, ... over one prompt, and speaker labels per group.
type labeller struct {
	next    int
	windows map[string]*window // by label
	byID    map[string]*window // by real window id, within the current transcript
}

func newLabeller() *labeller { return &labeller{windows: map[string]*window{}} }

// transcript renders turns (oldest first) as labelled lines, the newest first to be kept
// within maxChars of text and maxLines lines (which also bounds the schema's label enum). It
// answers the number of words sent.
func (lb *labeller) transcript(b *strings.Builder, turns []analyzer.Turn, names []string, group string, maxChars, maxLines int) (words int) {
	texts := make([]string, len(turns))
	first := len(turns)
	total, lines := 0, 0
	for i := len(turns) - 1; i >= 0 && lines < maxLines; i-- {
		t := oneLine(llm.Redact(turns[i].Text, names))
		if t == "" {
			continue
		}
		lines++
		if total+len(t) > maxChars {
			if first == len(turns) { // the newest turn alone is too long: keep its end
				t = tail(t, maxChars)
				texts[i], first = t, i
			}
			break
		}
		total += len(t)
		texts[i], first = t, i
	}
	speakers := map[string]string{}
	lb.byID = map[string]*window{}
	for i := first; i < len(turns); i++ {
		if texts[i] == "" {
			continue
		}
		turn := turns[i]
		w := lb.byID[turn.WindowID]
		if w == nil {
			lb.next++
			w = &window{label: "w" + strconv.Itoa(lb.next), id: turn.WindowID, group: group, start: turn.Start}
			lb.byID[turn.WindowID] = w
			lb.windows[w.label] = w
		}
		l := &line{label: w.label, text: texts[i], norm: normalize(texts[i])}
		w.lines = append(w.lines, l)
		words += len(strings.Fields(l.norm.s))
		fmt.Fprintf(b, "[%s] ", w.label)
		if turn.Speaker != "" {
			sp, ok := speakers[turn.Speaker]
			if !ok {
				sp = speakerLabel(len(speakers))
				speakers[turn.Speaker] = sp
			}
			fmt.Fprintf(b, "(%s) ", sp)
		}
		b.WriteString(l.text)
		b.WriteByte('\n')
	}
	return words
}

// context renders earlier turns without labels, newest kept within maxChars.
func contextLines(b *strings.Builder, turns []analyzer.Turn, names []string, maxChars int) {
	var keep []string
	total := 0
	for i := len(turns) - 1; i >= 0; i-- {
		t := oneLine(llm.Redact(turns[i].Text, names))
		if t == "" {
			continue
		}
		if total+len(t) > maxChars {
			break
		}
		total += len(t)
		keep = append(keep, t)
	}
	for i := len(keep) - 1; i >= 0; i-- {
		b.WriteString("- ")
		b.WriteString(keep[i])
		b.WriteByte('\n')
	}
}

func speakerLabel(i int) string {
	s := ""
	for {
		s = string(rune('A'+i%26)) + s
		i = i/26 - 1
		if i < 0 {
			return s
		}
	}
}

// labels returns the window labels handed out so far, in order.
func (lb *labeller) labels() []string {
	out := make([]string, 0, lb.next)
	for i := 1; i <= lb.next; i++ {
		if _, ok := lb.windows["w"+strconv.Itoa(i)]; ok {
			out = append(out, "w"+strconv.Itoa(i))
		}
	}
	return out
}

// evidence finds excerpt in the window labelled label (within group when group is not empty)
// and answers the transcript text it matched.
func (lb *labeller) evidence(label, excerpt, group string) (*window, string, error) {
	w := lb.windows[label]
	if w == nil {
		return nil, "", fmt.Errorf("window %q was not sent", label)
	}
	if group != "" && w.group != group {
		return nil, "", fmt.Errorf("window %q belongs to another group", label)
	}
	if err := checkText(excerpt, maxExcerptRunes); err != nil {
		return nil, "", err
	}
	ex := normalize(excerpt).s
	if utf8.RuneCountInString(ex) < 3 {
		return nil, "", fmt.Errorf("excerpt %q is too short to be evidence", excerpt)
	}
	for _, l := range w.lines {
		if m, ok := l.norm.find(l.text, ex); ok {
			return w, m, nil
		}
	}
	return nil, "", fmt.Errorf("excerpt %q does not occur in window %s", truncateRunes(excerpt, 60), label)
}

// oneLine makes text one line: control characters and runs of space become one space.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
}

// tail keeps the last max bytes of s, from a word boundary.
func tail(s string, max int) string {
	if len(s) <= max {
		return s
	}
	t := s[len(s)-max:]
	if i := strings.IndexByte(t, ' '); i >= 0 && i < len(t)-1 {
		t = t[i+1:]
	}
	for len(t) > 0 && !utf8.RuneStart(t[0]) {
		t = t[1:]
	}
	return t
}

// normText is text lower-cased down to letters and digits separated by single spaces, with the
// byte range in the source of each of its bytes.
type normText struct {
	s          string
	start, end []int
}

func normalize(src string) normText {
	var n normText
	var b strings.Builder
	space := false
	spaceAt := 0
	for i, r := range src {
		size := utf8.RuneLen(r)
		if size < 0 {
			size = 1
		}
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)) || r == utf8.RuneError {
			if !space {
				spaceAt = i
			}
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
			n.start, n.end = append(n.start, spaceAt), append(n.end, i)
		}
		space = false
		lower := strings.ToLower(string(r))
		b.WriteString(lower)
		for range len(lower) {
			n.start, n.end = append(n.start, i), append(n.end, i+size)
		}
	}
	n.s = b.String()
	return n
}

// find looks for ex (normalized) as whole words in n and answers the source text it covers.
func (n normText) find(src, ex string) (string, bool) {
	if ex == "" {
		return "", false
	}
	from := 0
	for {
		i := strings.Index(n.s[from:], ex)
		if i < 0 {
			return "", false
		}
		i += from
		j := i + len(ex)
		if (i == 0 || n.s[i-1] == ' ') && (j == len(n.s) || n.s[j] == ' ') {
			return src[n.start[i]:n.end[j-1]], true
		}
		from = i + 1
	}
}

// checkText checks a text written by the model: not empty, at most max runes, no control or
// invalid characters.
func checkText(s string, max int) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("empty text")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Errorf("text of %d characters, more than %d", n, max)
	}
	for _, r := range s {
		if r == utf8.RuneError || (unicode.IsControl(r) && r != '\n') || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("text %q holds a control or invalid character", truncateRunes(s, 40))
		}
	}
	return nil
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// unit checks that v is finite and within [lo, hi].
func unit(field string, v, lo, hi float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < lo || v > hi {
		return fmt.Errorf("%s = %v is outside %v..%v", field, v, lo, hi)
	}
	return nil
}

// activitySummary describes speech activity in one line ("" without any).
func activitySummary(acts []analyzer.Activity) string {
	if len(acts) == 0 {
		return ""
	}
	var speech, silence, longest float64
	for _, a := range acts {
		speech += max(a.SpeechSeconds, 0)
		silence += max(a.SilenceSeconds, 0)
		longest = max(longest, a.LongestSilenceSeconds)
	}
	return fmt.Sprintf("%.1f s of speech, %.1f s of silence, longest silence %.1f s, over %d audio windows", speech, silence, longest, len(acts))
}

// objectivesBlock renders the objectives (and focus areas), redacted.
func objectivesBlock(b *strings.Builder, objectives, focus, names []string) {
	b.WriteString("Learning objectives:\n")
	n := 0
	for _, o := range objectives {
		if o = oneLine(llm.Redact(o, names)); o != "" {
			fmt.Fprintf(b, "- %s\n", truncateRunes(o, 500))
			n++
		}
		if n == 10 {
			break
		}
	}
	if n == 0 {
		b.WriteString("(none given)\n")
	}
	var fs []string
	for _, f := range focus {
		if f = oneLine(llm.Redact(f, names)); f != "" {
			fs = append(fs, truncateRunes(f, 64))
		}
	}
	if len(fs) > 0 {
		fmt.Fprintf(b, "The teacher asked in particular about: %s\n", strings.Join(fs, ", "))
	}
}
