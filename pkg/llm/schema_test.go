package llm

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestSchemaValidation(t *testing.T) {
	t.Parallel()
	sch, err := compileSchema(json.RawMessage(`{
	  "$defs": {"ev": {"type": "object", "additionalProperties": false, "required": ["id"],
	    "properties": {"id": {"type": "string", "pattern": "^w[0-9]+$"}}}},
	  "type": "object", "additionalProperties": false,
	  "required": ["n", "i", "s", "list", "opt", "kind", "c", "ev", "extra"],
	  "properties": {
	    "n": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 60},
	    "i": {"type": "integer", "minimum": 0, "maximum": 10},
	    "s": {"type": "string", "minLength": 1, "maxLength": 5, "description": "short"},
	    "list": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "boolean"}},
	    "opt": {"type": ["string", "null"]},
	    "kind": {"enum": ["a", 1, null]},
	    "c": {"const": {"x": [1, 2]}},
	    "ev": {"$ref": "#/$defs/ev"},
	    "extra": {"type": "object", "additionalProperties": {"type": "number"}},
	    "any": {"anyOf": [{"type": "string"}, {"type": "integer"}]}
	  }
	}`))
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]string{
		"n": `1.5`, "i": `3`, "s": `"héllo"`, "list": `[true]`, "opt": `null`, "kind": `1.0`,
		"c": `{"x": [1, 2.0]}`, "ev": `{"id": "w12"}`, "extra": `{"a": 1}`,
	}
	doc := func(mod map[string]string) string {
		parts := []string{}
		for k, v := range base {
			if m, ok := mod[k]; ok {
				if m == "-" {
					continue
				}
				v = m
			}
			parts = append(parts, `"`+k+`": `+v)
		}
		for k, v := range mod {
			if _, ok := base[k]; !ok {
				parts = append(parts, `"`+k+`": `+v)
			}
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	tests := []struct {
		name string
		mod  map[string]string
		want string // "" valid, else a fragment of the error
	}{
		{"valid", nil, ""},
		{"anyOf string", map[string]string{"any": `"x"`}, ""},
		{"anyOf integer", map[string]string{"any": `2`}, ""},
		{"anyOf neither", map[string]string{"any": `2.5`}, "anyOf"},
		{"exclusive minimum", map[string]string{"n": `0`}, "not above 0"},
		{"exclusive maximum", map[string]string{"n": `60`}, "not below 60"},
		{"integer with fraction", map[string]string{"i": `2.5`}, "want integer"},
		{"integral float is an integer", map[string]string{"i": `2.0`}, ""},
		{"integer over maximum", map[string]string{"i": `11`}, "above the maximum"},
		{"negative", map[string]string{"i": `-1`}, "below the minimum"},
		{"string too long in characters", map[string]string{"s": `"héllo!"`}, "more than 5"},
		{"empty string", map[string]string{"s": `""`}, "fewer than 1"},
		{"too few items", map[string]string{"list": `[]`}, "fewer than 1"},
		{"wrong item type", map[string]string{"list": `[1]`}, "$.list[0]"},
		{"nullable given a string", map[string]string{"opt": `"x"`}, ""},
		{"nullable given a number", map[string]string{"opt": `1`}, "want string or null"},
		{"enum null", map[string]string{"kind": `null`}, ""},
		{"enum miss", map[string]string{"kind": `"b"`}, "not one of"},
		{"const miss", map[string]string{"c": `{"x": [2, 1]}`}, "constant"},
		{"ref pattern", map[string]string{"ev": `{"id": "x1"}`}, "pattern"},
		{"ref unknown field", map[string]string{"ev": `{"id": "w1", "at": 1}`}, "$.ev.at: unknown field"},
		{"additional schema", map[string]string{"extra": `{"a": "1"}`}, "$.extra.a"},
		{"missing", map[string]string{"n": "-"}, `missing "n"`},
		{"unknown", map[string]string{"zzz": `1`}, "unknown field"},
		{"huge number", map[string]string{"n": `1e400`}, "not a finite number"},
	}
	for _, tt := range tests {
		v, err := parseStrict([]byte(doc(tt.mod)))
		if err != nil {
			t.Fatalf("%s: parse: %v", tt.name, err)
		}
		err = sch.validate(v)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v, want valid", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.want)
		}
	}
}

func TestSchemaCompileErrors(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		``, `null`, `[]`, `{"type": "thing"}`, `{"type": 1}`, `{"properties": []}`,
		`{"minimum": "1"}`, `{"maxLength": -1}`, `{"maxItems": 1.5}`, `{"pattern": "("}`,
		`{"enum": []}`, `{"anyOf": {}}`, `{"$ref": "http://x/y"}`, `{"$ref": "#/$defs/missing"}`,
		`{"not": {}}`, `{"oneOf": [{}]}`, `{"uniqueItems": true}`, `{"a": 1}`,
		`{"type":"object","additionalProperties":false,"required":["x"],"properties":{}}`,
		`{"properties": {"a": {"properties": {"b": {"$defs": {}}}}}}`,
		`{"type": "object"} {}`,
	} {
		if _, err := compileSchema(json.RawMessage(s)); err == nil {
			t.Errorf("compileSchema(%s) accepted it", s)
		}
	}
}

func TestParseStrictDepth(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2)
	if _, err := parseStrict([]byte(deep)); err == nil {
		t.Error("parseStrict accepted nesting past maxDepth")
	}
	ok := strings.Repeat("[", 10) + strings.Repeat("]", 10)
	if _, err := parseStrict([]byte(ok)); err != nil {
		t.Errorf("parseStrict(%s): %v", ok, err)
	}
}

func FuzzDecodeAnswer(f *testing.F) {
	sch, err := compileSchema(json.RawMessage(`{"type":"object","additionalProperties":false,"required":["a","b"],
	  "properties":{"a":{"type":"number","minimum":0,"maximum":1},"b":{"type":"array","maxItems":3,"items":{"type":"string","maxLength":10}}}}`))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{`{"a":0.5,"b":["x"]}`, `{"a":2,"b":[]}`, `{"a":0.5,"b":["x"],"a":1}`, `[`, `{"a":1e999,"b":[]}`, `{} {}`, `"x"`} {
		f.Add(s)
	}
	type out struct {
		A float64  `json:"a"`
		B []string `json:"b"`
	}
	f.Fuzz(func(t *testing.T, s string) {
		var o out
		if err := decodeAnswer(s, sch, &o); err != nil {
			return
		}
		if o.A < 0 || o.A > 1 || len(o.B) > 3 {
			t.Fatalf("decodeAnswer(%q) accepted %+v", s, o)
		}
		for _, b := range o.B {
			if len([]rune(b)) > 10 {
				t.Fatalf("decodeAnswer(%q) accepted %+v", s, o)
			}
		}
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	c := &Client{cfg: Config{BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second}, jitter: func() float64 { return 0.5 }}
	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second} {
		if got := c.backoff(i, 0); got != want {
			t.Errorf("backoff(%d) = %v, want %v", i, got, want)
		}
	}
	c.jitter = func() float64 { return 0 }
	if got := c.backoff(0, 0); got != 50*time.Millisecond {
		t.Errorf("backoff with the smallest jitter = %v, want 50ms", got)
	}
	if got := c.backoff(0, 300*time.Millisecond); got != 300*time.Millisecond {
		t.Errorf("backoff with Retry-After 300ms = %v", got)
	}
	if got := c.backoff(0, time.Hour); got != time.Second {
		t.Errorf("backoff with Retry-After 1h = %v, want the 1s cap", got)
	}
}

func TestReasoningModel(t *testing.T) {
	t.Parallel()
	for m, want := range map[string]bool{
		"o1": true, "o3-mini": true, "o4-mini": true, "gpt-5-nano": true, "openai/gpt-5": true,
		"gpt-4o": false, "databricks-meta-llama-3-3-70b-instruct": false, "llama-3.1-8b": false,
	} {
		if got := reasoningModel(m); got != want {
			t.Errorf("reasoningModel(%q) = %v, want %v", m, got, want)
		}
	}
}
