package socketio

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// placeholder stands for a binary attachment in a packet's JSON payload.
type placeholder struct {
	Placeholder bool `json:"_placeholder"`
	Num         int  `json:"num"`
}

// decodeJSON decodes data into a generic value, keeping numbers as json.Number so that they round-trip
// exactly.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// asPlaceholder reports whether v is a placeholder object and returns its number. Like the reference
// parser, only objects with "_placeholder": true are placeholders.
func asPlaceholder(v any) (num int, isPlaceholder bool, err error) {
	m, ok := v.(map[string]any)
	if !ok || m["_placeholder"] != true {
		return 0, false, nil
	}
	n, ok := m["num"].(json.Number)
	if !ok {
		return 0, true, invalid("illegal attachments")
	}
	i, err := n.Int64()
	if err != nil || i < 0 || i > 1<<30 {
		return 0, true, invalid("illegal attachments")
	}
	return int(i), true, nil
}

// replacePlaceholders returns v with every placeholder replaced by repl(num); it fails on a placeholder
// whose number is not below count.
func replacePlaceholders(v any, count int, repl func(int) any) (any, error) {
	if num, ok, err := asPlaceholder(v); ok || err != nil {
		if err != nil {
			return nil, err
		}
		if num >= count {
			return nil, invalid("illegal attachments")
		}
		return repl(num), nil
	}
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			r, err := replacePlaceholders(e, count, repl)
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
	case map[string]any:
		for k, e := range x {
			r, err := replacePlaceholders(e, count, repl)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
	}
	return v, nil
}

// Args are the arguments of a received event or acknowledgement. Values decode lazily: use Decode for
// typed access, Bytes for a binary argument, or Values for generic values (JSON numbers as json.Number,
// binary attachments as []byte).
//
// The []byte values of binary attachments (from Bytes, Attachment, Value, Values, and Decode into a
// *[]byte or an *any) are the received attachments themselves, not copies. In the Args of an event
// handled by a handler set with OnBorrowed they are valid only until the handler returns; elsewhere they
// are the receiver's to keep.
type Args struct {
	raw         []json.RawMessage
	attachments [][]byte
	binary      bool
}

// newArgs splits a JSON array payload into arguments, skipping the first skip elements (the event name).
func newArgs(p *Packet, skip int) (Args, error) {
	raw := p.elems
	if raw == nil && p.Data != nil {
		// Not split by DecodePacket, which splits every EVENT and ACK payload.
		var ok bool
		if raw, ok = splitArray(p.Data, nil); !ok {
			return Args{}, invalid("payload is not an array")
		}
	}
	if len(raw) < skip {
		return Args{}, invalid("payload too short")
	}
	return Args{raw: raw[skip:], attachments: p.Attachments, binary: p.Type.isBinary()}, nil
}

// Len returns the number of arguments.
func (a Args) Len() int { return len(a.raw) }

// Raw returns argument i as sent (binary attachments appear as placeholders).
func (a Args) Raw(i int) json.RawMessage { return a.raw[i] }

// Value returns argument i as a generic value: nil, bool, string, json.Number, []any, map[string]any, or
// []byte for a binary attachment.
func (a Args) Value(i int) any {
	v, err := decodeJSON(a.raw[i])
	if err != nil {
		return nil // validated on receipt; unreachable
	}
	if !a.binary {
		return v
	}
	v, _ = replacePlaceholders(v, len(a.attachments), func(n int) any { return a.attachments[n] })
	return v
}

// Values returns every argument as Value does.
func (a Args) Values() []any {
	vs := make([]any, len(a.raw))
	for i := range a.raw {
		vs[i] = a.Value(i)
	}
	return vs
}

// Bytes returns argument i when it is a binary attachment.
func (a Args) Bytes(i int) ([]byte, bool) {
	if !a.binary || i >= len(a.raw) {
		return nil, false
	}
	v, err := decodeJSON(a.raw[i])
	if err != nil {
		return nil, false
	}
	num, ok, err := asPlaceholder(v)
	if !ok || err != nil || num >= len(a.attachments) {
		return nil, false
	}
	return a.attachments[num], true
}

// Attachment returns the binary attachment raw stands for, when raw (a value taken from inside an
// argument, e.g. one field of an object) is a placeholder of this event. It lets a handler take a
// Buffer out of an object without Decode's base64 round trip of the attachment.
func (a Args) Attachment(raw json.RawMessage) ([]byte, bool) {
	if !a.binary || !bytes.Contains(raw, []byte("_placeholder")) {
		return nil, false
	}
	num, ok := placeholderNum(raw)
	if !ok || num < 0 || num >= len(a.attachments) {
		return nil, false
	}
	return a.attachments[num], true
}

// Decode decodes argument i into v with encoding/json. Binary attachments decode into []byte fields
// (anywhere in the value); into an *any they decode as Value does.
func (a Args) Decode(i int, v any) error {
	if i < 0 || i >= len(a.raw) {
		return fmt.Errorf("socketio: argument %d of %d", i, len(a.raw))
	}
	if p, ok := v.(*any); ok {
		*p = a.Value(i)
		return nil
	}
	if !a.binary || !bytes.Contains(a.raw[i], []byte("_placeholder")) {
		return json.Unmarshal(a.raw[i], v)
	}
	if b, ok := v.(*[]byte); ok {
		if data, ok := a.Bytes(i); ok {
			*b = data
			return nil
		}
	}
	// encoding/json decodes a base64 string into a []byte: substitute each attachment by its base64 text.
	g, err := decodeJSON(a.raw[i])
	if err != nil {
		return err
	}
	g, err = replacePlaceholders(g, len(a.attachments), func(n int) any {
		return base64.StdEncoding.EncodeToString(a.attachments[n])
	})
	if err != nil {
		return err
	}
	data, err := json.Marshal(g)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encodePayload encodes values as a JSON array (without HTML escaping, like JSON.stringify), replacing
// every []byte found at the top level or inside map[string]any and []any values by a placeholder and
// returning those as attachments. Other values, including structs, are encoded by encoding/json (a
// []byte field of a struct becomes base64 text); json.RawMessage values are copied as they are.
func encodePayload(values []any) (json.RawMessage, [][]byte, error) {
	var attachments [][]byte
	out := values
	if hasBinary(values) {
		out = extractBinary(values, &attachments).([]any)
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, nil, fmt.Errorf("socketio: encoding arguments: %w", err)
	}
	data := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return append(json.RawMessage(nil), data...), attachments, nil
}

// hasBinary reports whether v holds a []byte, directly or inside []any and map[string]any values.
func hasBinary(v any) bool {
	switch x := v.(type) {
	case []byte:
		return true
	case []any:
		for _, e := range x {
			if hasBinary(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if hasBinary(e) {
				return true
			}
		}
	}
	return false
}

// extractBinary returns a copy of v with every []byte replaced by a placeholder, appended to attachments
// in document order (object keys in sorted order, as encoding/json writes them).
func extractBinary(v any, attachments *[][]byte) any {
	if !hasBinary(v) {
		return v
	}
	switch x := v.(type) {
	case []byte:
		*attachments = append(*attachments, x)
		return placeholder{Placeholder: true, Num: len(*attachments) - 1}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = extractBinary(e, attachments)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			out[k] = extractBinary(x[k], attachments)
		}
		return out
	}
	return v
}

// A Field is one field of the struct that Args.UnmarshalFields decodes an object argument into: its JSON
// name and the variable its value goes to. Make one with StringField or RawField.
type Field struct {
	name string
	str  *string
	raw  *json.RawMessage
}

// StringField is a field of type string named name (as in a json:"name" tag), decoded into *dst.
func StringField(name string, dst *string) Field { return Field{name: name, str: dst} }

// RawField is a field of type json.RawMessage named name (as in a json:"name" tag), set to the member's
// value as sent. The value is a sub-slice of the argument, not a copy as encoding/json makes, capped so
// that appending to it cannot overwrite what follows.
func RawField(name string, dst *json.RawMessage) Field { return Field{name: name, raw: dst} }

// UnmarshalFields decodes argument i into fields as json.Unmarshal(a.Raw(i), &s) decodes it into a
// struct s that has those fields, in that order, but without encoding/json: it allocates only the strings
// of string fields (and, for a string with escapes or invalid UTF-8, what encoding/json allocates to
// decode it). The fields must be as a struct's are, of distinct names and variables. A handler that needs
// a few members of an object argument reads them so: audio arrives as events ten times a second per
// student, and encoding/json's reflection and copies were most of what the edge's handler allocated per
// chunk, which drives the collector.
//
// The rules are encoding/json's. A member's key, unescaped, selects the field of that exact name, else
// the first field whose name equals it case-insensitively (with the Unicode folding of bytes.EqualFold,
// as encoding/json's foldName); members of other keys are ignored; when a key repeats, the last value
// wins. A null value leaves a string field as it was and sets a RawField to null. A value that is not a
// string makes a string field fail, but the other members are still decoded, as encoding/json does
// before returning its first UnmarshalTypeError. An argument that is null decodes into nothing, without
// error; any other that is not an object fails. The error is not encoding/json's: only whether there is
// one is the same.
//
// Like json.Unmarshal of a.Raw(i), it does not replace placeholders: a binary attachment reads as its
// placeholder (see Attachment).
func (a Args) UnmarshalFields(i int, fields ...Field) error {
	if i < 0 || i >= len(a.raw) {
		return fmt.Errorf("socketio: argument %d of %d", i, len(a.raw))
	}
	return unmarshalFields(a.raw[i], fields)
}

var errNotJSON = errors.New("socketio: argument is not JSON")

// unmarshalFields decodes data into fields as UnmarshalFields does. Like json.Unmarshal, it changes no
// field when data is not JSON: it notes the last value of each field on the way and sets the fields at
// the end. data need not be valid JSON.
func unmarshalFields(data []byte, fields []Field) error {
	w := jsonWalker{data: data}
	w.skipSpace()
	if w.i >= len(data) || data[w.i] != '{' {
		start := w.i
		w.value()
		if w.end(); w.bad {
			return errNotJSON
		}
		if data[start] == 'n' {
			return nil // json.Unmarshal of null into a struct leaves it as it is
		}
		return fmt.Errorf("socketio: a JSON %s is not an object", jsonKind(data[start]))
	}
	// last[j] is the last value that sets field j (nil for none): every value of a RawField, the strings
	// of a string field.
	var buf [8][]byte
	var last [][]byte
	if len(fields) <= len(buf) {
		last = buf[:len(fields)]
	} else {
		last = make([][]byte, len(fields))
	}
	badField, badKind := -1, byte(0) // the first value that is not a string, for a string field
	w.depth = 1
	for more := w.open('}'); more; more = w.next('}') {
		key, v, ok := w.member()
		if !ok {
			break
		}
		j := fieldFor(fields, key)
		if j < 0 {
			continue
		}
		switch {
		case fields[j].raw != nil || v[0] == '"':
			last[j] = v
		case v[0] == 'n':
			// null leaves a string as it was.
		case badField < 0:
			badField, badKind = j, v[0]
		}
	}
	if w.end(); w.bad {
		return errNotJSON
	}
	for j, v := range last {
		switch f := fields[j]; {
		case v == nil:
		case f.raw != nil:
			*f.raw = v
		case f.str != nil:
			*f.str = stringValue(v)
		}
	}
	if badField >= 0 {
		// The field's name is cloned for the error so that the fields (and the caller's variables they
		// point to) do not escape to the heap.
		return fmt.Errorf("socketio: field %q: a JSON %s is not a string", strings.Clone(fields[badField].name), jsonKind(badKind))
	}
	return nil
}

// fieldFor returns the index of the field a member with key raw (as sent, between the quotes) decodes
// into, or -1 for none: as encoding/json does, the field named exactly as the unescaped key, else the
// first whose name folds to it.
func fieldFor(fields []Field, raw []byte) int {
	key := raw
	if bytes.IndexByte(raw, '\\') >= 0 || !utf8.Valid(raw) {
		key = []byte(decodeKey(raw)) // rare: escapes resolved, invalid UTF-8 replaced
	}
	for j := range fields {
		if string(key) == fields[j].name {
			return j
		}
	}
	for j := range fields {
		// bytes.EqualFold is encoding/json's folding too (foldName); a field name of up to 32 bytes
		// converts on the stack.
		if bytes.EqualFold(key, []byte(fields[j].name)) {
			return j
		}
	}
	return -1
}

// stringValue returns the JSON string v (quotes included) as encoding/json decodes it: as it is when it
// has no escapes and is valid UTF-8, else by encoding/json itself, which resolves escapes and replaces
// invalid UTF-8 with U+FFFD.
func stringValue(v []byte) string {
	s := v[1 : len(v)-1]
	if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return string(s)
	}
	return unquote(v)
}

// unquote decodes the JSON string v with encoding/json. It is a function of its own so that the string
// it decodes into is allocated only when it is called.
func unquote(v []byte) string {
	var s string
	_ = json.Unmarshal(v, &s) // v is a valid JSON string
	return s
}

// jsonKind names the kind of the JSON value starting with c, as encoding/json's errors do.
func jsonKind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}
