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
	w := jsonWalker{data: data, placeholders: true, count: count}
	w.skipSpace()
	err := w.value()
	if w.bad {
		return invalid("payload is not JSON")
	}
	return err
}

var errIllegalAttachments = invalid("illegal attachments")

// placeholderObject walks an object, checking it as a placeholder when it is one.
func (w *jsonWalker) placeholderObject() error {
	var (
		errs        []memberError // errors inside members, the last value of each key only
		placeholder []byte        // the last "_placeholder" value
		num         []byte        // the last "num" value
	)
	for more := w.open('}'); more; more = w.next('}') {
		key := w.key()
		if w.bad {
			break
		}
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

// placeholderFields are the fields of the placeholder struct, for fieldFor (no variables: placeholderNum
// reads the values itself).
var placeholderFields = []Field{{name: "_placeholder"}, {name: "num"}}

// placeholderNum reports whether raw is a placeholder as Args.Attachment has always read one: as
// encoding/json decodes it into a placeholder struct without error, with Placeholder true. It returns
// the struct's Num, which a placeholder without a "num" member leaves 0. Those rules are not the
// reference parser's (nor checkPlaceholders'): keys match case-insensitively, a null value leaves a
// field as it was, and a value of the wrong type anywhere fails the whole object, even when a later
// duplicate key replaces it. raw must be JSON, whitespace around it allowed.
func placeholderNum(raw []byte) (num int, ok bool) {
	w := jsonWalker{data: raw, depth: 1}
	w.skipSpace()
	if w.i >= len(raw) || raw[w.i] != '{' {
		return 0, false // null decodes into nothing, anything else fails
	}
	placeholder, typeErr := false, false
	for more := w.open('}'); more; more = w.next('}') {
		key, v, ok := w.member()
		if !ok {
			break
		}
		switch fieldFor(placeholderFields, key) {
		case 0: // _placeholder
			switch string(v) {
			case "true":
				placeholder = true
			case "false":
				placeholder = false
			case "null":
			default:
				typeErr = true
			}
		case 1: // num
			switch {
			case string(v) == "null":
			case v[0] == '-' || (v[0] >= '0' && v[0] <= '9'):
				n, err := strconv.ParseInt(string(v), 10, strconv.IntSize)
				if err != nil {
					typeErr = true // a fraction, an exponent, or out of range
					break
				}
				num = int(n)
			default:
				typeErr = true
			}
		}
	}
	if w.end(); w.bad || typeErr || !placeholder {
		return 0, false
	}
	return num, true
}
