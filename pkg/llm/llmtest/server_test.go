package llmtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/classwaves/classwaves/pkg/llm/llmtest"
)

func post(t *testing.T, url, key, contentType, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

const schemaOK = `{"type":"object","additionalProperties":false,"required":["a"],"properties":{"a":{"type":"number","minimum":0}}}`

func body(extra string, schema string) string {
	rf := ""
	if schema != "" {
		rf = `,"response_format":{"type":"json_schema","json_schema":{"name":"x","strict":true,"schema":` + schema + `}}`
	}
	return `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]` + rf + extra + `}`
}

// TestServerRefusesWhatTheAPIRefuses sends requests go-openai would never send, so the fake's
// checks are known to bite.
func TestServerRefusesWhatTheAPIRefuses(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t)
	srv.APIKey = "sk-test"
	url := srv.URL() + "/chat/completions"
	tests := []struct {
		name, url, key, ct, body string
		status                   int
	}{
		{"wrong path", srv.URL() + "/completions", "sk-test", "application/json", body("", ""), 404},
		{"wrong key", url, "sk-other", "application/json", body("", ""), 401},
		{"no key", url, "", "application/json", body("", ""), 401},
		{"not JSON", url, "sk-test", "application/json", `{"model":`, 400},
		{"form body", url, "sk-test", "application/x-www-form-urlencoded", "model=x", 400},
		{"unknown parameter", url, "sk-test", "application/json", body(`,"foo":1`, ""), 400},
		{"no model", url, "sk-test", "application/json", `{"messages":[{"role":"user","content":"hi"}]}`, 400},
		{"unknown model", url, "sk-test", "application/json", strings.Replace(body("", ""), "gpt-4o-mini", "gpt-9", 1), 404},
		{"no messages", url, "sk-test", "application/json", `{"model":"gpt-4o-mini","messages":[]}`, 400},
		{"bad role", url, "sk-test", "application/json", `{"model":"gpt-4o-mini","messages":[{"role":"robot","content":"hi"}]}`, 400},
		{"both token caps", url, "sk-test", "application/json", body(`,"max_tokens":5,"max_completion_tokens":5`, ""), 400},
		{"hot temperature", url, "sk-test", "application/json", body(`,"temperature":3`, ""), 400},
		{"streaming", url, "sk-test", "application/json", body(`,"stream":true`, ""), 400},
		{"strict root not an object", url, "sk-test", "application/json", body("", `{"type":"array","items":{"type":"string"}}`), 400},
		{"strict without additionalProperties", url, "sk-test", "application/json", body("", `{"type":"object","required":["a"],"properties":{"a":{"type":"number"}}}`), 400},
		{"strict with an optional property", url, "sk-test", "application/json", body("", `{"type":"object","additionalProperties":false,"required":[],"properties":{"a":{"type":"number"}}}`), 400},
		{"strict with maxLength", url, "sk-test", "application/json", body("", `{"type":"object","additionalProperties":false,"required":["a"],"properties":{"a":{"type":"string","maxLength":3}}}`), 400},
		{"strict nested object", url, "sk-test", "application/json", body("", `{"type":"object","additionalProperties":false,"required":["a"],"properties":{"a":{"type":"array","items":{"type":"object","properties":{}}}}}`), 400},
		{"bad schema name", url, "sk-test", "application/json", strings.Replace(body("", schemaOK), `"name":"x"`, `"name":"a b"`, 1), 400},
	}
	for _, tt := range tests {
		status, out := post(t, tt.url, tt.key, tt.ct, tt.body)
		if status != tt.status {
			t.Errorf("%s: status %d, want %d (%v)", tt.name, status, tt.status, out)
		}
		if e, ok := out["error"].(map[string]any); !ok || e["message"] == "" {
			t.Errorf("%s: answer %v lacks the API's error object", tt.name, out)
		}
	}
	if got := srv.Refusals(); got != len(tests) {
		t.Errorf("Refusals = %d, want %d", got, len(tests))
	}
	if got := len(srv.Requests()); got != 0 {
		t.Errorf("%d requests recorded as accepted, want 0", got)
	}

	// A valid strict request, and the answer's shape.
	srv.Script(llmtest.Reply{Content: `{"a":1}`})
	status, out := post(t, url, "sk-test", "application/json", body(`,"max_tokens":20`, schemaOK))
	if status != 200 {
		t.Fatalf("valid request: status %d (%v)", status, out)
	}
	choices, _ := out["choices"].([]any)
	if out["object"] != "chat.completion" || len(choices) != 1 || out["usage"] == nil || !strings.HasPrefix(out["id"].(string), "chatcmpl-") {
		t.Fatalf("answer shape: %v", out)
	}
	msg := choices[0].(map[string]any)["message"].(map[string]any)
	if msg["role"] != "assistant" || msg["content"] != `{"a":1}` || msg["refusal"] != nil || choices[0].(map[string]any)["finish_reason"] != "stop" {
		t.Errorf("message: %v", choices[0])
	}
	srv.Script(llmtest.Reply{Refusal: "No."})
	_, out = post(t, url, "sk-test", "application/json", body("", schemaOK))
	msg = out["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
	if msg["content"] != nil || msg["refusal"] != "No." {
		t.Errorf("refusal message: %v", msg)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[0].MaxTokens != 20 || reqs[0].ResponseFormat.Name != "x" || !reqs[0].ResponseFormat.Strict {
		t.Errorf("recorded requests: %+v", reqs)
	}
}
