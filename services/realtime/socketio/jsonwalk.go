package socketio

import (
	"encoding/json"
)

// jsonWalker reads JSON in one pass without building it, and checks it as strictly as encoding/json does
// (json.Valid): bad is set on anything that is not JSON, and the walk stops then. The payload of every
// received event and acknowledgement goes through it, and audio arrives as events, ten a second per
// student: with encoding/json splitting the payload and decoding the event name and the placeholder,
// those decodings were the largest source of the edge's allocations per audio chunk, and so of its
// collections.
//
// With placeholders set, it also checks the placeholders of a binary packet's payload against count
// attachments (see checkPlaceholders); without, it only reads.
type jsonWalker struct {
	data         []byte
	i            int
	depth        int
	bad          bool
	placeholders bool
	count        int
}

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

// fail marks the input as not JSON and ends the walk.
func (w *jsonWalker) fail() {
	w.bad = true
	w.i = len(w.data)
}

func (w *jsonWalker) skipSpace() {
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// end checks that only whitespace follows the value just read.
func (w *jsonWalker) end() {
	w.skipSpace()
	if w.i != len(w.data) {
		w.fail()
	}
}

// value walks the value at w.i and returns the first placeholder error inside it.
func (w *jsonWalker) value() error {
	if w.i >= len(w.data) {
		w.fail()
		return nil
	}
	switch c := w.data[w.i]; c {
	case '{', '[':
		if w.depth++; w.depth > maxJSONDepth {
			w.fail()
			return nil
		}
		defer func() { w.depth-- }()
		switch {
		case c == '[':
			return w.array()
		case w.placeholders:
			return w.placeholderObject()
		}
		w.object()
	case '"':
		w.str()
	case 't':
		w.literal("true")
	case 'f':
		w.literal("false")
	case 'n':
		w.literal("null")
	default:
		w.number()
	}
	return nil
}

// str skips a string and returns its contents between the quotes (escapes left as they are). Like
// encoding/json, it refuses control characters and unknown escapes but not invalid UTF-8 (which
// decoding replaces).
func (w *jsonWalker) str() []byte {
	start := w.i + 1
	for j := start; j < len(w.data); j++ {
		switch c := w.data[j]; {
		case c == '"':
			w.i = j + 1
			return w.data[start:j]
		case c == '\\':
			n := escapeLen(w.data[j+1:])
			if n == 0 {
				w.fail()
				return nil
			}
			j += n
		case c < 0x20:
			w.fail()
			return nil
		}
	}
	w.fail()
	return nil
}

// escapeLen returns the length of the escape whose backslash b follows (1 for \n, 5 for \u00e9), or 0
// when b starts no escape that JSON has.
func escapeLen(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	switch b[0] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 1
	case 'u':
		if len(b) >= 5 && isHex(b[1]) && isHex(b[2]) && isHex(b[3]) && isHex(b[4]) {
			return 5
		}
	}
	return 0
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// literal skips lit (true, false or null).
func (w *jsonWalker) literal(lit string) {
	if len(w.data)-w.i < len(lit) || string(w.data[w.i:w.i+len(lit)]) != lit {
		w.fail()
		return
	}
	w.i += len(lit)
}

// number skips a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (w *jsonWalker) number() {
	d, i := w.data, w.i
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i += digits(d[i:])
	default:
		w.fail()
		return
	}
	if i < len(d) && d[i] == '.' {
		n := digits(d[i+1:])
		if n == 0 {
			w.fail()
			return
		}
		i += 1 + n
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		n := digits(d[i:])
		if n == 0 {
			w.fail()
			return
		}
		i += n
	}
	w.i = i
}

func (w *jsonWalker) array() error {
	var first error
	for more := w.open(']'); more; more = w.next(']') {
		if err := w.value(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// object walks an object, not looking for placeholders.
func (w *jsonWalker) object() {
	for more := w.open('}'); more; more = w.next('}') {
		if _, _, ok := w.member(); !ok {
			return
		}
	}
}

// open steps past the bracket or brace at w.i and reports whether a first element or member follows
// (false: the list is empty, its end read).
func (w *jsonWalker) open(end byte) bool {
	w.i++
	w.skipSpace()
	if w.i < len(w.data) && w.data[w.i] == end {
		w.i++
		return false
	}
	return true
}

// next reads what follows an element or member: a comma, then another one (true), or the end of the
// list (false). Anything else sets bad.
func (w *jsonWalker) next(end byte) bool {
	w.skipSpace()
	if w.i >= len(w.data) {
		w.fail()
		return false
	}
	c := w.data[w.i]
	w.i++
	switch {
	case c == ',' && !w.bad:
		w.skipSpace()
		return true
	case c == end:
		return false
	}
	w.fail()
	return false
}

// member reads an object's next member (after open or next): its key's contents between the quotes
// (escapes left as they are) and its value as sent, capped so that appending to it cannot overwrite what
// follows. ok is false when the JSON is bad (w.bad).
func (w *jsonWalker) member() (key, value []byte, ok bool) {
	if key = w.key(); w.bad {
		return nil, nil, false
	}
	start := w.i
	if w.value(); w.bad {
		return nil, nil, false
	}
	return key, w.data[start:w.i:w.i], true
}

// key reads a member's key and the colon after it, and returns the key's contents between the quotes
// (escapes left as they are). The member's value is next.
func (w *jsonWalker) key() []byte {
	if w.i >= len(w.data) || w.data[w.i] != '"' {
		w.fail()
		return nil
	}
	k := w.str()
	w.skipSpace()
	if w.i >= len(w.data) || w.data[w.i] != ':' {
		w.fail()
		return nil
	}
	w.i++
	w.skipSpace()
	return k
}

// splitArray checks that data is one JSON array, whitespace around it allowed, exactly when encoding/json
// would decode it into a []json.RawMessage, and returns its elements appended to elems (never nil when
// ok). They are the elements as encoding/json would give them, but sub-slices of data rather than copies,
// capped so that appending to one cannot overwrite the next: the payload of a received packet is its own
// (the engine never lends text messages), and nothing modifies it.
func splitArray(data []byte, elems []json.RawMessage) ([]json.RawMessage, bool) {
	w := jsonWalker{data: data, depth: 1}
	w.skipSpace()
	if w.i >= len(data) || data[w.i] != '[' {
		return nil, false
	}
	for more := w.open(']'); more; more = w.next(']') {
		start := w.i
		w.value()
		elems = append(elems, data[start:w.i:w.i])
	}
	if w.end(); w.bad {
		return nil, false
	}
	if elems == nil {
		elems = []json.RawMessage{}
	}
	return elems, true
}
