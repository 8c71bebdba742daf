package socketio

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
)

// fieldsStruct is what the tests decode with encoding/json to compare Args.UnmarshalFields with, given
// the same fields (fieldsOf). Besides an audio:chunk's fields, it has names that exercise the matching:
// two that fold only by Unicode rules and two that fold alike.
type fieldsStruct struct {
	GroupID string          `json:"groupId"`
	Audio   json.RawMessage `json:"audioData"`
	Kelvin  string          "json:\"\u212a\"" // the Kelvin sign, which folds with k and K
	LongS   json.RawMessage "json:\"\u017f\"" // ſ, which folds with s and S
	Lower   string          `json:"ab"`       // the first of two names that fold alike: Ab and aB decode here
	Upper   string          `json:"AB"`
}

func (s *fieldsStruct) fields() []Field {
	return []Field{
		StringField("groupId", &s.GroupID), RawField("audioData", &s.Audio), StringField("\u212a", &s.Kelvin),
		RawField("\u017f", &s.LongS), StringField("ab", &s.Lower), StringField("AB", &s.Upper),
	}
}

// fieldsBefore is a fieldsStruct whose fields are all set (each with storage of its own, which
// encoding/json may write into), so that the tests see which ones decoding leaves as they were.
func fieldsBefore() fieldsStruct {
	return fieldsStruct{GroupID: "g0", Audio: json.RawMessage("a0"), Kelvin: "k0", LongS: json.RawMessage("s0"), Lower: "l0", Upper: "u0"}
}

func equalFields(a, b fieldsStruct) bool {
	return a.GroupID == b.GroupID && a.Kelvin == b.Kelvin && a.Lower == b.Lower && a.Upper == b.Upper &&
		bytes.Equal(a.Audio, b.Audio) && (a.Audio == nil) == (b.Audio == nil) &&
		bytes.Equal(a.LongS, b.LongS) && (a.LongS == nil) == (b.LongS == nil)
}

// checkUnmarshalFields decodes data with unmarshalFields and with encoding/json, from start (as given and
// from fieldsBefore), and fails unless both succeed or fail alike and leave the same fields. It returns
// what unmarshalFields decoded from start.
func checkUnmarshalFields(t *testing.T, data []byte, start fieldsStruct) (fieldsStruct, error) {
	t.Helper()
	var first fieldsStruct
	var firstErr error
	for k, from := range []fieldsStruct{start, fieldsBefore()} {
		got, want := from, from
		if from.Audio != nil { // no storage shared with from or each other
			got.Audio, want.Audio = slices.Clone(from.Audio), slices.Clone(from.Audio)
		}
		if from.LongS != nil {
			got.LongS, want.LongS = slices.Clone(from.LongS), slices.Clone(from.LongS)
		}
		err := unmarshalFields(data, got.fields())
		wantErr := json.Unmarshal(data, &want)
		if (err == nil) != (wantErr == nil) || !equalFields(got, want) {
			t.Fatalf("unmarshalFields(%q) from %+v = %+v, %v; json.Unmarshal %+v, %v", data, from, got, err, want, wantErr)
		}
		if k == 0 {
			first, firstErr = got, err
		}
	}
	return first, firstErr
}

func TestUnmarshalFields(t *testing.T) {
	const id = "0b8f7d52-3c57-4c1e-9d0a-6f1e2a3b4c5d"
	for _, c := range []struct {
		name, data string
		want       fieldsStruct
		wantErr    bool
	}{
		{"an audio chunk", `{"groupId":"` + id + `","audioData":{"_placeholder":true,"num":0}}`,
			fieldsStruct{GroupID: id, Audio: json.RawMessage(`{"_placeholder":true,"num":0}`)}, false},
		{"whitespace everywhere", " {\n\"groupId\" :\t\"g\" , \"audioData\" : [ 1 , 2 ] } ",
			fieldsStruct{GroupID: "g", Audio: json.RawMessage(`[ 1 , 2 ]`)}, false},
		{"empty object", `{}`, fieldsStruct{}, false},
		{"other members ignored", `{"x":{"groupId":"inner"},"groupIds":"g","audio":"a"}`, fieldsStruct{}, false},
		{"case-insensitive keys", `{"GROUPID":"g","AudioDATA":"a"}`, fieldsStruct{GroupID: "g", Audio: json.RawMessage(`"a"`)}, false},
		{"the last duplicate wins", `{"groupId":"a","groupid":"b","GroupId":"c"}`, fieldsStruct{GroupID: "c"}, false},
		{"exact match before a folded one", `{"AB":"x","Ab":"y"}`, fieldsStruct{Upper: "x", Lower: "y"}, false},
		{"a folded match goes to the first field", `{"aB":"x"}`, fieldsStruct{Lower: "x"}, false},
		{"Kelvin sign folds with k", `{"k":"x"}`, fieldsStruct{Kelvin: "x"}, false},
		{"k folds with the Kelvin sign", `{"K":"x","\u212a":"y"}`, fieldsStruct{Kelvin: "y"}, false},
		{"long s folds with s", `{"S":1}`, fieldsStruct{LongS: json.RawMessage(`1`)}, false},
		{"escaped key", `{"group\u0049d":"g","\u0061udioData":1}`, fieldsStruct{GroupID: "g", Audio: json.RawMessage(`1`)}, false},
		{"escaped value", `{"groupId":"a\"b\u00e9\ud83d\ude00"}`, fieldsStruct{GroupID: "a\"bé😀"}, false},
		{"lone surrogate", `{"groupId":"\ud800x"}`, fieldsStruct{GroupID: "\uFFFDx"}, false},
		{"invalid UTF-8 value", "{\"groupId\":\"a\xffb\"}", fieldsStruct{GroupID: "a\uFFFDb"}, false},
		{"invalid UTF-8 key", "{\"groupId\xff\":\"g\"}", fieldsStruct{}, false},
		{"null leaves a string", `{"groupId":"g","groupId":null}`, fieldsStruct{GroupID: "g"}, false},
		{"null sets a RawMessage", `{"audioData":"a","audioData":null}`, fieldsStruct{Audio: json.RawMessage(`null`)}, false},
		{"number for a string", `{"groupId":1}`, fieldsStruct{}, true},
		{"the other fields still decode", `{"audioData":2,"groupId":true,"k":"x"}`,
			fieldsStruct{Audio: json.RawMessage(`2`), Kelvin: "x"}, true},
		{"a later string does not undo the failure", `{"groupId":{},"groupId":"g"}`, fieldsStruct{GroupID: "g"}, true},
		{"an earlier string stays", `{"groupId":"g","groupId":["x"]}`, fieldsStruct{GroupID: "g"}, true},
		{"null argument", ` null `, fieldsStruct{}, false},
		{"number argument", `1`, fieldsStruct{}, true},
		{"string argument", `"{}"`, fieldsStruct{}, true},
		{"array argument", `[{"groupId":"g"}]`, fieldsStruct{}, true},
		{"bool argument", `false`, fieldsStruct{}, true},
		{"not JSON", `{"groupId":"g",}`, fieldsStruct{}, true},
		{"trailing data", `{"groupId":"g"}x`, fieldsStruct{}, true},
		{"empty", ``, fieldsStruct{}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := checkUnmarshalFields(t, []byte(c.data), fieldsStruct{})
			if (err != nil) != c.wantErr || !equalFields(got, c.want) {
				t.Errorf("unmarshalFields(%s) = %+v, %v; want %+v (error: %v)", c.data, got, err, c.want, c.wantErr)
			}
		})
	}
}

func TestUnmarshalFieldsAliasesArgument(t *testing.T) {
	data := []byte(`{"audioData":[1],"groupId":"g"}`)
	var raw json.RawMessage
	if err := unmarshalFields(data, []Field{RawField("audioData", &raw)}); err != nil {
		t.Fatal(err)
	}
	if &raw[0] != &data[13] || cap(raw) != len(raw) {
		t.Errorf("RawField = %q (cap %d), want a capped sub-slice of the argument", raw, cap(raw))
	}
}

func TestArgsUnmarshalFields(t *testing.T) {
	elems, ok := splitArray([]byte(`["m",{"groupId":"g"}]`), nil)
	if !ok {
		t.Fatal("splitArray failed")
	}
	a := Args{raw: elems}
	var s fieldsStruct
	if err := a.UnmarshalFields(1, s.fields()...); err != nil || s.GroupID != "g" {
		t.Errorf("UnmarshalFields(1) = %v, groupId %q; want g", err, s.GroupID)
	}
	for _, i := range []int{-1, 2} {
		if err := a.UnmarshalFields(i, s.fields()...); err == nil {
			t.Errorf("UnmarshalFields(%d) of 2 arguments succeeded", i)
		}
	}
	if err := a.UnmarshalFields(0, s.fields()...); err == nil {
		t.Error("UnmarshalFields of a string succeeded")
	}
	// More fields than unmarshalFields keeps on its stack.
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	vals := make([]string, len(names))
	var fields []Field
	for i, n := range names {
		fields = append(fields, StringField(n, &vals[i]))
	}
	if err := unmarshalFields([]byte(`{"J":"10","a":"1","h":"8","i":"9"}`), fields); err != nil ||
		!slices.Equal(vals, []string{"1", "", "", "", "", "", "", "8", "9", "10"}) {
		t.Errorf("ten fields: %q, %v", vals, err)
	}
}

// TestUnmarshalFieldsAllocs checks that an audio chunk's argument decodes with one allocation, its
// groupId string: the point of UnmarshalFields.
func TestUnmarshalFieldsAllocs(t *testing.T) {
	data := []byte(`{"groupId":"0b8f7d52-3c57-4c1e-9d0a-6f1e2a3b4c5d","audioData":{"_placeholder":true,"num":0}}`)
	a := Args{raw: []json.RawMessage{data}}
	allocs := testing.AllocsPerRun(100, func() {
		var groupID string
		var audio json.RawMessage
		if a.UnmarshalFields(0, StringField("groupId", &groupID), RawField("audioData", &audio)) != nil {
			t.Fatal("decoding failed")
		}
	})
	if allocs != 1 {
		t.Errorf("%v allocations per decoding, want 1", allocs)
	}
}

// FuzzUnmarshalFields compares unmarshalFields with json.Unmarshal into the equivalent struct on any
// input, and Args.UnmarshalFields on any argument.
func FuzzUnmarshalFields(f *testing.F) {
	for _, c := range slices.Concat(jsonCases, placeholderObjects, []string{
		`{"groupId":"g","audioData":{"_placeholder":true,"num":0}}`, `{"GROUPID":"a","groupid":null,"audiodata":null}`,
		`{"groupId":1,"groupId":"b","k":"x","\u212a":2,"s":[],"\u017F":"y"}`, `{"Ab":"x","AB":"y","aB":"z"}`,
		`{"gr\u006fupId":"\u00e9\ud800\"","ab":"\\"}`, "{\"groupId\":\"\xff\",\"ab\xff\":\"x\"}", `null`, `"s"`, `[{}]`,
		`{"groupId":"g"} `, `{"groupId":"g"`,
	}) {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkUnmarshalFields(t, data, fieldsStruct{})
		// As an argument, through splitArray as a received event's arguments go.
		elems, ok := splitArray(append(append([]byte("["), data...), ']'), nil)
		if !ok || len(elems) != 1 {
			return
		}
		var got, want fieldsStruct
		err, wantErr := Args{raw: elems}.UnmarshalFields(0, got.fields()...), json.Unmarshal(elems[0], &want)
		if (err == nil) != (wantErr == nil) || !equalFields(got, want) {
			t.Fatalf("UnmarshalFields(%q) = %+v, %v; json.Unmarshal %+v, %v", elems[0], got, err, want, wantErr)
		}
	})
}
