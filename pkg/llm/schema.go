package llm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds the nesting of answers and schemas.
const maxDepth = 64

// parseStrict parses exactly one JSON value (numbers kept as json.Number), refusing duplicate
// object keys, nesting deeper than maxDepth and anything after the value.
func parseStrict(b []byte) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

func parseValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError(err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, jsonError(err)
				}
				k, ok := kt.(string)
				if !ok {
					return nil, errors.New("invalid JSON: object key is not a string")
				}
				if _, dup := obj[k]; dup {
					return nil, fmt.Errorf("duplicate key %q", truncate(k, 64))
				}
				v, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				obj[k] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, jsonError(err)
			}
			return obj, nil
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, jsonError(err)
			}
			return arr, nil
		}
		return nil, fmt.Errorf("invalid JSON: unexpected %v", t)
	default:
		return t, nil // string, json.Number, bool, nil
	}
}

func jsonError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("invalid JSON: unexpected end")
	}
	return fmt.Errorf("invalid JSON: %v", err)
}

// schema is a compiled JSON schema (the subset documented on Request.Schema).
type schema struct {
	types              []string
	properties         map[string]*schema
	required           []string
	additional         *schema // nil: any
	noAdditional       bool
	items              *schema
	enum               []any
	hasConst           bool
	constVal           any
	minimum, maximum   *float64
	exclusiveMin       *float64
	exclusiveMax       *float64
	minLength          *int
	maxLength          *int
	pattern            *regexp.Regexp
	minItems, maxItems *int
	anyOf              []*schema
	ref                string
	root               *schemaRoot
}

type schemaRoot struct {
	defs map[string]*schema
	top  *schema
}

var annotations = []string{"description", "title", "$schema", "default", "examples", "format", "$comment", "$id"}

var knownTypes = []string{"object", "array", "string", "number", "integer", "boolean", "null"}

// compileSchema compiles raw, refusing keywords it would not check.
func compileSchema(raw json.RawMessage) (*schema, error) {
	if len(raw) == 0 {
		return nil, errors.New("missing")
	}
	v, err := parseStrict(raw)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	root := &schemaRoot{defs: map[string]*schema{}}
	for _, k := range []string{"$defs", "definitions"} {
		d, ok := obj[k]
		if !ok {
			continue
		}
		dm, ok := d.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s is not an object", k)
		}
		for name, sub := range dm {
			s, err := compileNode(sub, root, "#/"+k+"/"+name, 1)
			if err != nil {
				return nil, err
			}
			root.defs["#/"+k+"/"+name] = s
		}
	}
	top, err := compileNode(obj, root, "#", 0)
	if err != nil {
		return nil, err
	}
	root.top = top
	// Every reference must resolve now, not when an answer happens to use it.
	for path, s := range root.defs {
		if err := checkRefs(s, root, 0); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
	}
	if err := checkRefs(top, root, 0); err != nil {
		return nil, err
	}
	return top, nil
}

func checkRefs(s *schema, root *schemaRoot, depth int) error {
	if depth > maxDepth {
		return nil
	}
	if s.ref != "" && s.ref != "#" && root.defs[s.ref] == nil {
		return fmt.Errorf("$ref %q does not resolve", s.ref)
	}
	subs := slices.Clone(s.anyOf)
	for _, p := range s.properties {
		subs = append(subs, p)
	}
	if s.items != nil {
		subs = append(subs, s.items)
	}
	if s.additional != nil {
		subs = append(subs, s.additional)
	}
	for _, sub := range subs {
		if err := checkRefs(sub, root, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func compileNode(v any, root *schemaRoot, path string, depth int) (*schema, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%s: nested deeper than %d", path, maxDepth)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: a schema must be an object", path)
	}
	s := &schema{root: root}
	num := func(k string) (*float64, error) {
		n, ok := obj[k].(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s: %s must be a number", path, k)
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %v", path, k, err)
		}
		return &f, nil
	}
	count := func(k string) (*int, error) {
		f, err := num(k)
		if err != nil {
			return nil, err
		}
		if *f < 0 || *f != math.Trunc(*f) || *f > math.MaxInt32 {
			return nil, fmt.Errorf("%s: %s must be a non-negative integer", path, k)
		}
		n := int(*f)
		return &n, nil
	}
	for k, val := range obj {
		var err error
		switch k {
		case "type":
			switch t := val.(type) {
			case string:
				s.types = []string{t}
			case []any:
				for _, e := range t {
					es, ok := e.(string)
					if !ok {
						return nil, fmt.Errorf("%s: type must be a string or a list of strings", path)
					}
					s.types = append(s.types, es)
				}
			default:
				return nil, fmt.Errorf("%s: type must be a string or a list of strings", path)
			}
			for _, t := range s.types {
				if !slices.Contains(knownTypes, t) {
					return nil, fmt.Errorf("%s: unknown type %q", path, t)
				}
			}
		case "properties":
			props, ok := val.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: properties must be an object", path)
			}
			s.properties = map[string]*schema{}
			for name, sub := range props {
				if s.properties[name], err = compileNode(sub, root, path+"/properties/"+name, depth+1); err != nil {
					return nil, err
				}
			}
		case "required":
			list, ok := val.([]any)
			if !ok {
				return nil, fmt.Errorf("%s: required must be a list", path)
			}
			for _, e := range list {
				es, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("%s: required must list strings", path)
				}
				s.required = append(s.required, es)
			}
		case "additionalProperties":
			switch a := val.(type) {
			case bool:
				s.noAdditional = !a
			default:
				if s.additional, err = compileNode(a, root, path+"/additionalProperties", depth+1); err != nil {
					return nil, err
				}
			}
		case "items":
			if s.items, err = compileNode(val, root, path+"/items", depth+1); err != nil {
				return nil, err
			}
		case "enum":
			list, ok := val.([]any)
			if !ok || len(list) == 0 {
				return nil, fmt.Errorf("%s: enum must be a non-empty list", path)
			}
			s.enum = list
		case "const":
			s.hasConst, s.constVal = true, val
		case "minimum":
			s.minimum, err = num(k)
		case "maximum":
			s.maximum, err = num(k)
		case "exclusiveMinimum":
			s.exclusiveMin, err = num(k)
		case "exclusiveMaximum":
			s.exclusiveMax, err = num(k)
		case "minLength":
			s.minLength, err = count(k)
		case "maxLength":
			s.maxLength, err = count(k)
		case "minItems":
			s.minItems, err = count(k)
		case "maxItems":
			s.maxItems, err = count(k)
		case "pattern":
			p, ok := val.(string)
			if !ok {
				return nil, fmt.Errorf("%s: pattern must be a string", path)
			}
			if s.pattern, err = regexp.Compile(p); err != nil {
				return nil, fmt.Errorf("%s: pattern: %v", path, err)
			}
		case "anyOf":
			list, ok := val.([]any)
			if !ok || len(list) == 0 {
				return nil, fmt.Errorf("%s: anyOf must be a non-empty list", path)
			}
			for i, sub := range list {
				c, err := compileNode(sub, root, fmt.Sprintf("%s/anyOf/%d", path, i), depth+1)
				if err != nil {
					return nil, err
				}
				s.anyOf = append(s.anyOf, c)
			}
		case "$ref":
			r, ok := val.(string)
			if !ok || (r != "#" && !strings.HasPrefix(r, "#/$defs/") && !strings.HasPrefix(r, "#/definitions/")) {
				return nil, fmt.Errorf("%s: only local $ref into $defs or definitions is supported", path)
			}
			s.ref = r
		case "$defs", "definitions":
			if depth != 0 {
				return nil, fmt.Errorf("%s: %s only at the root", path, k)
			}
		default:
			if !slices.Contains(annotations, k) {
				return nil, fmt.Errorf("%s: keyword %q is not supported", path, k)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	for _, r := range s.required {
		if s.properties == nil || s.properties[r] == nil {
			if s.noAdditional {
				return nil, fmt.Errorf("%s: required %q is not a property", path, r)
			}
		}
	}
	return s, nil
}

// validate checks v (as parseStrict makes it) against s.
func (s *schema) validate(v any) error { return s.check(v, "$", 0) }

func (s *schema) check(v any, path string, depth int) error {
	if depth > 2*maxDepth {
		return fmt.Errorf("%s: nested too deep", path)
	}
	if s.ref != "" {
		target := s.root.top
		if s.ref != "#" {
			target = s.root.defs[s.ref]
		}
		if target == nil {
			return fmt.Errorf("%s: $ref %q does not resolve", path, s.ref)
		}
		if err := target.check(v, path, depth+1); err != nil {
			return err
		}
	}
	if len(s.types) > 0 && !slices.ContainsFunc(s.types, func(t string) bool { return hasType(v, t) }) {
		return fmt.Errorf("%s: %s, want %s", path, describe(v), strings.Join(s.types, " or "))
	}
	if s.enum != nil && !slices.ContainsFunc(s.enum, func(e any) bool { return equalJSON(e, v) }) {
		return fmt.Errorf("%s: %s is not one of the allowed values", path, describe(v))
	}
	if s.hasConst && !equalJSON(s.constVal, v) {
		return fmt.Errorf("%s: %s is not the constant value", path, describe(v))
	}
	switch t := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("%s: %s is not a finite number", path, truncate(string(t), 40))
		}
		switch {
		case s.minimum != nil && f < *s.minimum:
			return fmt.Errorf("%s: %v is below the minimum %v", path, f, *s.minimum)
		case s.maximum != nil && f > *s.maximum:
			return fmt.Errorf("%s: %v is above the maximum %v", path, f, *s.maximum)
		case s.exclusiveMin != nil && f <= *s.exclusiveMin:
			return fmt.Errorf("%s: %v is not above %v", path, f, *s.exclusiveMin)
		case s.exclusiveMax != nil && f >= *s.exclusiveMax:
			return fmt.Errorf("%s: %v is not below %v", path, f, *s.exclusiveMax)
		}
	case string:
		n := utf8.RuneCountInString(t)
		switch {
		case s.minLength != nil && n < *s.minLength:
			return fmt.Errorf("%s: %d characters, fewer than %d", path, n, *s.minLength)
		case s.maxLength != nil && n > *s.maxLength:
			return fmt.Errorf("%s: %d characters, more than %d", path, n, *s.maxLength)
		case s.pattern != nil && !s.pattern.MatchString(t):
			return fmt.Errorf("%s: does not match the pattern", path)
		}
	case []any:
		switch {
		case s.minItems != nil && len(t) < *s.minItems:
			return fmt.Errorf("%s: %d items, fewer than %d", path, len(t), *s.minItems)
		case s.maxItems != nil && len(t) > *s.maxItems:
			return fmt.Errorf("%s: %d items, more than %d", path, len(t), *s.maxItems)
		}
		if s.items != nil {
			for i, e := range t {
				if err := s.items.check(e, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
					return err
				}
			}
		}
	case map[string]any:
		for _, r := range s.required {
			if _, ok := t[r]; !ok {
				return fmt.Errorf("%s: missing %q", path, r)
			}
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys) // deterministic errors
		for _, k := range keys {
			sub := path + "." + truncate(k, 64)
			if p, ok := s.properties[k]; ok {
				if err := p.check(t[k], sub, depth+1); err != nil {
					return err
				}
				continue
			}
			if s.noAdditional {
				return fmt.Errorf("%s: unknown field", sub)
			}
			if s.additional != nil {
				if err := s.additional.check(t[k], sub, depth+1); err != nil {
					return err
				}
			}
		}
	}
	if len(s.anyOf) > 0 {
		var first error
		for _, alt := range s.anyOf {
			err := alt.check(v, path, depth+1)
			if err == nil {
				return nil
			}
			if first == nil {
				first = err
			}
		}
		return fmt.Errorf("matches none of anyOf (first: %v)", first)
	}
	return nil
}

func hasType(v any, t string) bool {
	switch x := v.(type) {
	case nil:
		return t == "null"
	case bool:
		return t == "boolean"
	case string:
		return t == "string"
	case json.Number:
		if t == "number" {
			return true
		}
		if t == "integer" {
			f, err := strconv.ParseFloat(string(x), 64)
			return err == nil && f == math.Trunc(f) && !math.IsInf(f, 0)
		}
		return false
	case []any:
		return t == "array"
	case map[string]any:
		return t == "object"
	}
	return false
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number:
		return "the number " + truncate(string(x), 40)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// equalJSON compares parsed JSON values; numbers by value.
func equalJSON(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		fx, err1 := strconv.ParseFloat(string(x), 64)
		fy, err2 := strconv.ParseFloat(string(y), 64)
		return err1 == nil && err2 == nil && fx == fy
	case []any:
		y, ok := b.([]any)
		return ok && slices.EqualFunc(x, y, equalJSON)
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equalJSON(xv, yv) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}
