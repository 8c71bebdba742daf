package socketio

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// checkPlaceholders validates the placeholders of a binary packet's payload against its attachments:
// every object whose "_placeholder" member is true (the last one, when a key repeats) must have a
// "num" member that is an integer from 0 to below count. The members of a placeholder are not looked
// into; every other object and array is. It reads data in one pass without building it: audio arrives
// as binary packets, ten a second per student, and a decoded tree per packet was most of the edge's
// garbage after the audio itself.
func checkPlaceholders(data []byte, count int) error {
	if data == nil {
		return nil
	}
	w := placeholderWalker{data: data, count: count}
	w.skipSpace()
	err := w.value()
	if w.bad {
		return invalid("payload is not JSON")
	}
	return err
}

// placeholderWalker walks one JSON value. bad is set (and the walk stops making sense) on anything that
// is not JSON; validatePayload has normally refused such payloads already.
type placeholderWalker struct {
	data  []byte
	i     int
	count int
	depth int
	bad   bool
}

// maxJSONDepth is encoding/json's nesting limit, which validatePayload applied already.
const maxJSONDepth = 10000

var errIllegalAttachments = invalid("illegal attachments")

func (w *placeholderWalker) skipSpace() {
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// value walks the value at w.i and returns the first placeholder error inside it.
func (w *placeholderWalker) value() error {
	if w.i >= len(w.data) {
		w.bad = true
		return nil
	}
	switch c := w.data[w.i]; {
	case c == '{' || c == '[':
		if w.depth++; w.depth > maxJSONDepth {
			w.bad = true
			return nil
		}
		defer func() { w.depth-- }()
		if c == '{' {
			return w.object()
		}
		return w.array()
	case c == '"':
		w.str()
	default:
		w.scalar()
	}
	return nil
}

// str skips a string and returns its contents between the quotes (escapes left as they are).
func (w *placeholderWalker) str() []byte {
	start := w.i + 1
	for j := start; j < len(w.data); j++ {
		switch w.data[j] {
		case '\\':
			j++
		case '"':
			w.i = j + 1
			return w.data[start:j]
		}
	}
	w.bad = true
	w.i = len(w.data)
	return nil
}

// scalar skips a number, true, false or null and returns it.
func (w *placeholderWalker) scalar() []byte {
	start := w.i
	for w.i < len(w.data) {
		switch c := w.data[w.i]; {
		case c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
			w.i++
			continue
		}
		break
	}
	if w.i == start {
		w.bad = true
		w.i = len(w.data)
	}
	return w.data[start:w.i]
}

func (w *placeholderWalker) array() error {
	var first error
	for more := w.open(']'); more; more = w.next(']') {
		if err := w.value(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// open steps past the bracket or brace at w.i and reports whether a first element or member follows
// (false: the list is empty, its end read).
func (w *placeholderWalker) open(end byte) bool {
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
func (w *placeholderWalker) next(end byte) bool {
	w.skipSpace()
	if w.i >= len(w.data) {
		w.bad = true
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
	w.bad = true
	return false
}

func (w *placeholderWalker) object() error {
	var (
		errs        []memberError // errors inside members, the last value of each key only
		placeholder []byte        // the last "_placeholder" value
		num         []byte        // the last "num" value
	)
	for more := w.open('}'); more; more = w.next('}') {
		if w.i >= len(w.data) || w.data[w.i] != '"' {
			w.bad = true
			break
		}
		key := w.str()
		w.skipSpace()
		if w.i >= len(w.data) || w.data[w.i] != ':' {
			w.bad = true
			break
		}
		w.i++
		w.skipSpace()
		if len(errs) > 0 {
			// A repeated key replaces the value before it, errors and all (as in encoding/json).
			k := keyString(key)
			errs = slices.DeleteFunc(errs, func(e memberError) bool { return e.key == k })
		}
		start := w.i
		if err := w.value(); err != nil {
			errs = append(errs, memberError{keyString(key), err})
		}
		switch memberName(key) {
		case "_placeholder":
			placeholder = w.data[start:w.i]
		case "num":
			num = w.data[start:w.i]
		}
	}
	if string(placeholder) != "true" {
		if len(errs) > 0 {
			return errs[0].err
		}
		return nil
	}
	// A placeholder: its num must be a JSON number holding an integer (json.Number.Int64).
	if len(num) == 0 || (num[0] != '-' && (num[0] < '0' || num[0] > '9')) {
		return errIllegalAttachments
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || n < 0 || n > 1<<30 || n >= int64(w.count) {
		return errIllegalAttachments
	}
	return nil
}

// memberError is an error found in the value of the member key.
type memberError struct {
	key string
	err error
}

// keyString is a member's key decoded (as encoding/json decodes it: escapes resolved, invalid UTF-8
// replaced).
func keyString(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw)
	}
	return decodeKey(raw)
}

// memberName is a member's key as the names this walker looks for compare: the raw bytes when the key
// has no escapes, else the decoded string.
func memberName(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		if string(raw) == "_placeholder" {
			return "_placeholder"
		}
		if string(raw) == "num" {
			return "num"
		}
		return ""
	}
	return decodeKey(raw)
}

func decodeKey(raw []byte) string {
	var s string
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	if json.Unmarshal(quoted, &s) != nil {
		return ""
	}
	return s
}
