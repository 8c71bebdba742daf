// Package llmtest is a local HTTP server that speaks the OpenAI chat completions API
// (POST /v1/chat/completions; also /chat/completions as vLLM mounts it, and Databricks Model
// Serving's /serving-endpoints/chat/completions and /serving-endpoints/<name>/invocations) for
// tests, since the real services cannot be reached from them.
//
// It checks a request the way the API does: the bearer key, a JSON body with only known
// parameters, "model" among the served models, "messages" (roles system, developer, user,
// assistant, tool; string or text-part content), "max_tokens"/"max_completion_tokens" (not both),
// "temperature" 0 to 2, "stream" not set, and "response_format": text, json_object or json_schema,
// whose json_schema needs a valid name and an object schema and, when strict, follows OpenAI's
// strict-mode rules (an object at the root, every object with additionalProperties false and all
// its properties required, no unsupported keywords such as minLength or maxLength). Refusals
// carry the API's error JSON and status.
//
// Accepted requests are answered from a script of Replies, then from a handler func, then with
// "{}": content, refusal, finish_reason, usage, status codes with Retry-After, delays, hangs and
// malformed bodies are all programmable. Answers have the API's shape (id, object
// "chat.completion", created, model, choices[0].message {role, content, refusal, annotations},
// finish_reason, usage with token details, system_fingerprint). Accepted requests are recorded,
// raw body included, so tests can assert what was sent.
package llmtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// MaxBodyBytes caps a request body.
const MaxBodyBytes = 8 << 20

// Message is a chat message as sent.
type Message struct {
	Role string
	// Content is the message's text (text parts joined by newlines).
	Content string
}

// ResponseFormat is the request's response_format.
type ResponseFormat struct {
	Type string
	// Name, Schema and Strict are json_schema's.
	Name   string
	Schema json.RawMessage
	Strict bool
}

// Request is an accepted chat completion request, as the server parsed it.
type Request struct {
	Model               string
	Messages            []Message
	ResponseFormat      *ResponseFormat
	MaxTokens           int
	MaxCompletionTokens int
	// Temperature is nil when not sent.
	Temperature *float64
	// Authorization is the header as sent; Path the URL path; Body the raw JSON body.
	Authorization string
	Path          string
	Body          []byte
	// At is when the server received it.
	At time.Time
}

// Usage is an answer's token usage.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}

// Reply is how the server answers one request.
type Reply struct {
	// Delay is waited before answering (cut short when the client goes away).
	Delay time.Duration
	// Hang waits until the client goes away and answers nothing.
	Hang bool
	// Status is the HTTP status (0: 200). A status of 400 or more gets the API's error JSON
	// with ErrorMessage, unless Body is set.
	Status       int
	ErrorMessage string
	// RetryAfter and RetryAfterMS set the Retry-After and retry-after-ms headers.
	RetryAfter   string
	RetryAfterMS string
	// Body, when set, is sent verbatim instead of a completion (malformed JSON, an HTML page).
	Body string
	// Content is the assistant message's content; Refusal its refusal (content is then null).
	Content string
	Refusal string
	// FinishReason defaults to "stop".
	FinishReason string
	// NoChoices answers an empty choices list.
	NoChoices bool
	// Usage overrides the computed usage (prompt: the messages' bytes / 4; completion: the
	// content's bytes / 4).
	Usage *Usage
	// Model overrides the answered model name.
	Model string
}

// JSON returns v encoded, for Reply.Content.
func JSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Server is the fake API.
type Server struct {
	// APIKey, when set, must be sent as "Authorization: Bearer <APIKey>".
	APIKey string
	// Models are the models served (default gpt-4o-mini, gpt-4o,
	// databricks-meta-llama-3-3-70b-instruct); empty serves any.
	Models []string

	srv *httptest.Server

	mu          sync.Mutex
	script      []Reply
	handler     func(Request) Reply
	requests    []Request
	refusals    int
	inflight    int
	maxInflight int
	seq         int
}

// NewServer starts a server, closed when t ends.
func NewServer(t testing.TB) *Server {
	s := &Server{Models: []string{"gpt-4o-mini", "gpt-4o", "databricks-meta-llama-3-3-70b-instruct"}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the base URL to configure clients with ("http://127.0.0.1:port/v1").
func (s *Server) URL() string { return s.srv.URL + "/v1" }

// RootURL is the server's root, under which /chat/completions is also served (as Databricks
// serving endpoints and vLLM mount it).
func (s *Server) RootURL() string { return s.srv.URL }

// Script queues replies for the next requests, in order.
func (s *Server) Script(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, replies...)
}

// Handle sets the func answering requests the script does not cover. It may be called from
// several goroutines at once.
func (s *Server) Handle(fn func(Request) Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handler = fn
}

// Requests returns the accepted requests so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Refusals counts requests refused as invalid (the server's checks, not scripted answers).
func (s *Server) Refusals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusals
}

// MaxInFlight is the most requests the server held at once.
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInflight
}

type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func writeError(w http.ResponseWriter, status int, typ, code, param, msg string) {
	e := apiError{Message: msg, Type: typ}
	if param != "" {
		e.Param = &param
	}
	if code != "" {
		e.Code = &code
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]apiError{"error": e})
}

func (s *Server) refuse(w http.ResponseWriter, status int, code, param, msg string) {
	s.mu.Lock()
	s.refusals++
	s.mu.Unlock()
	writeError(w, status, "invalid_request_error", code, param, msg)
}

// knownParams are the chat completions API's request parameters.
var knownParams = []string{
	"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "stream",
	"stop", "presence_penalty", "frequency_penalty", "response_format", "seed", "logit_bias",
	"logprobs", "top_logprobs", "user", "functions", "function_call", "tools", "tool_choice",
	"stream_options", "parallel_tool_calls", "store", "reasoning_effort", "metadata", "prediction",
	"service_tier", "verbosity", "safety_identifier", "modalities", "audio", "web_search_options",
	"prompt_cache_key",
}

var (
	// chatPathRE: OpenAI's path, the same at a root (vLLM, Databricks' OpenAI-compatible root)
	// and a Databricks serving endpoint's invocations URL.
	chatPathRE   = regexp.MustCompile(`^(/v1/chat/completions|/chat/completions|/serving-endpoints/chat/completions|/serving-endpoints/[^/]+/invocations)$`)
	roles        = []string{"system", "developer", "user", "assistant", "tool"}
	schemaNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	// strictUnsupported are keywords OpenAI's strict structured outputs refuse.
	strictUnsupported = []string{"minLength", "maxLength", "patternProperties", "unevaluatedProperties",
		"propertyNames", "minProperties", "maxProperties", "unevaluatedItems", "contains", "minContains",
		"maxContains", "uniqueItems", "allOf", "not", "if", "then", "else", "oneOf", "dependentRequired",
		"dependentSchemas"}
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !chatPathRE.MatchString(r.URL.Path) {
		s.refuse(w, http.StatusNotFound, "unknown_url", "", fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path))
		return
	}
	auth := r.Header.Get("Authorization")
	if s.APIKey != "" && auth != "Bearer "+s.APIKey {
		s.refuse(w, http.StatusUnauthorized, "invalid_api_key", "",
			"Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		s.refuse(w, http.StatusBadRequest, "", "", "Invalid Content-Type header (expected application/json)")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return
	}
	if len(body) > MaxBodyBytes {
		s.refuse(w, http.StatusRequestEntityTooLarge, "", "", "Request body too large")
		return
	}
	req, param, msg := parse(body)
	if msg == "" && len(s.Models) > 0 && !slices.Contains(s.Models, req.Model) {
		s.refuse(w, http.StatusNotFound, "model_not_found", "model",
			fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", req.Model))
		return
	}
	if msg != "" {
		s.refuse(w, http.StatusBadRequest, "", param, msg)
		return
	}
	req.Authorization, req.Path, req.Body, req.At = auth, r.URL.Path, body, time.Now()

	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.seq++
	seq := s.seq
	s.inflight++
	s.maxInflight = max(s.maxInflight, s.inflight)
	var reply Reply
	var handler func(Request) Reply
	if len(s.script) > 0 {
		reply, s.script = s.script[0], s.script[1:]
	} else if s.handler != nil {
		handler = s.handler
	} else {
		reply = Reply{Content: "{}"}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()
	if handler != nil {
		reply = handler(req)
	}
	s.answer(w, r.Context(), req, seq, reply)
}

// parse reads and checks the body; msg is empty when it is acceptable.
func parse(body []byte) (req Request, param, msg string) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return req, "", "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
	}
	for k := range raw {
		if !slices.Contains(knownParams, k) {
			return req, k, fmt.Sprintf("Unrecognized request argument supplied: %s", k)
		}
	}
	if err := json.Unmarshal(raw["model"], &req.Model); err != nil || req.Model == "" {
		return req, "model", "you must provide a model parameter"
	}
	var msgs []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(raw["messages"], &msgs); err != nil {
		return req, "messages", "Invalid type for 'messages': expected an array of objects."
	}
	if len(msgs) == 0 {
		return req, "messages", "[] is too short - 'messages'"
	}
	for i, m := range msgs {
		if !slices.Contains(roles, m.Role) {
			return req, fmt.Sprintf("messages[%d].role", i), fmt.Sprintf("Invalid value: '%s'. Supported values are: %s.", m.Role, strings.Join(roles, ", "))
		}
		text, ok := contentText(m.Content)
		if !ok && m.Role != "assistant" {
			return req, fmt.Sprintf("messages[%d].content", i), fmt.Sprintf("Invalid type for 'messages[%d].content': expected one of a string or array of objects.", i)
		}
		req.Messages = append(req.Messages, Message{Role: m.Role, Content: text})
	}
	if v, ok := raw["stream"]; ok && string(v) == "true" {
		return req, "stream", "This test server does not stream."
	}
	if v, ok := raw["max_tokens"]; ok {
		if err := json.Unmarshal(v, &req.MaxTokens); err != nil || req.MaxTokens < 1 {
			return req, "max_tokens", "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1."
		}
	}
	if v, ok := raw["max_completion_tokens"]; ok {
		if err := json.Unmarshal(v, &req.MaxCompletionTokens); err != nil || req.MaxCompletionTokens < 1 {
			return req, "max_completion_tokens", "Invalid 'max_completion_tokens': integer below minimum value. Expected a value >= 1."
		}
		if req.MaxTokens > 0 {
			return req, "max_tokens", "max_tokens and max_completion_tokens cannot both be set."
		}
	}
	if v, ok := raw["temperature"]; ok {
		var t float64
		if err := json.Unmarshal(v, &t); err != nil || t < 0 || t > 2 {
			return req, "temperature", "Invalid 'temperature': expected a number between 0 and 2."
		}
		req.Temperature = &t
	}
	if v, ok := raw["response_format"]; ok {
		rf, param, msg := parseResponseFormat(v)
		if msg != "" {
			return req, param, msg
		}
		req.ResponseFormat = rf
	}
	return req, "", ""
}

func contentText(raw json.RawMessage) (string, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil || len(parts) == 0 {
		return "", false
	}
	var texts []string
	for _, p := range parts {
		if p.Type != "text" {
			return "", false
		}
		texts = append(texts, p.Text)
	}
	return strings.Join(texts, "\n"), true
}

func parseResponseFormat(raw json.RawMessage) (*ResponseFormat, string, string) {
	var rf struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Schema      json.RawMessage `json:"schema"`
			Strict      bool            `json:"strict"`
		} `json:"json_schema"`
	}
	if err := json.Unmarshal(raw, &rf); err != nil {
		return nil, "response_format", "Invalid type for 'response_format': expected an object."
	}
	out := &ResponseFormat{Type: rf.Type}
	switch rf.Type {
	case "text", "json_object":
		return out, "", ""
	case "json_schema":
	default:
		return nil, "response_format.type", fmt.Sprintf("Invalid value: '%s'. Supported values are: 'json_object', 'json_schema', and 'text'.", rf.Type)
	}
	js := rf.JSONSchema
	if js == nil {
		return nil, "response_format.json_schema", "Missing required parameter: 'response_format.json_schema'."
	}
	if !schemaNameRE.MatchString(js.Name) {
		return nil, "response_format.json_schema.name", "Invalid 'response_format.json_schema.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
	}
	var schema map[string]any
	if len(js.Schema) == 0 || json.Unmarshal(js.Schema, &schema) != nil {
		return nil, "response_format.json_schema.schema", "Invalid type for 'response_format.json_schema.schema': expected an object."
	}
	out.Name, out.Schema, out.Strict = js.Name, js.Schema, js.Strict
	if js.Strict {
		if schema["type"] != "object" {
			return nil, "response_format", fmt.Sprintf("Invalid schema for response_format '%s': schema must be a JSON Schema of 'type: \"object\"', got 'type: \"%v\"'.", js.Name, schema["type"])
		}
		if msg := checkStrict(schema, "root"); msg != "" {
			return nil, "response_format", fmt.Sprintf("Invalid schema for response_format '%s': In context=(%s), %s", js.Name, "'"+js.Name+"'", msg)
		}
	}
	return out, "", ""
}

// checkStrict applies OpenAI's strict-mode rules to a schema node.
func checkStrict(node any, path string) string {
	obj, ok := node.(map[string]any)
	if !ok {
		return ""
	}
	for _, k := range strictUnsupported {
		if _, ok := obj[k]; ok {
			return fmt.Sprintf("'%s' is not permitted (at %s).", k, path)
		}
	}
	isObject := obj["type"] == "object"
	if t, ok := obj["type"].([]any); ok && slices.Contains(t, any("object")) {
		isObject = true
	}
	if isObject {
		if ap, ok := obj["additionalProperties"]; !ok || ap != false {
			return fmt.Sprintf("'additionalProperties' is required to be supplied and to be false (at %s).", path)
		}
		props, _ := obj["properties"].(map[string]any)
		req, _ := obj["required"].([]any)
		for name := range props {
			if !slices.Contains(req, any(name)) {
				return fmt.Sprintf("'required' is required to be supplied and to be an array including every key in properties. Missing '%s' (at %s).", name, path)
			}
		}
		for name, sub := range props {
			if msg := checkStrict(sub, path+"."+name); msg != "" {
				return msg
			}
		}
	}
	if items, ok := obj["items"]; ok {
		if msg := checkStrict(items, path+"[]"); msg != "" {
			return msg
		}
	}
	for _, k := range []string{"anyOf"} {
		if list, ok := obj[k].([]any); ok {
			for i, sub := range list {
				if msg := checkStrict(sub, fmt.Sprintf("%s.%s[%d]", path, k, i)); msg != "" {
					return msg
				}
			}
		}
	}
	for _, k := range []string{"$defs", "definitions"} {
		if defs, ok := obj[k].(map[string]any); ok {
			for name, sub := range defs {
				if msg := checkStrict(sub, path+"."+k+"."+name); msg != "" {
					return msg
				}
			}
		}
	}
	return ""
}

type completion struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	Choices           []choice `json:"choices"`
	Usage             usage    `json:"usage"`
	ServiceTier       string   `json:"service_tier"`
	SystemFingerprint string   `json:"system_fingerprint"`
}

type choice struct {
	Index        int     `json:"index"`
	Message      message `json:"message"`
	Logprobs     *int    `json:"logprobs"`
	FinishReason string  `json:"finish_reason"`
}

type message struct {
	Role        string  `json:"role"`
	Content     *string `json:"content"`
	Refusal     *string `json:"refusal"`
	Annotations []any   `json:"annotations"`
}

type usage struct {
	PromptTokens            int            `json:"prompt_tokens"`
	CompletionTokens        int            `json:"completion_tokens"`
	TotalTokens             int            `json:"total_tokens"`
	PromptTokensDetails     map[string]int `json:"prompt_tokens_details"`
	CompletionTokensDetails map[string]int `json:"completion_tokens_details"`
}

func (s *Server) answer(w http.ResponseWriter, ctx context.Context, req Request, seq int, reply Reply) {
	if reply.Hang {
		<-ctx.Done()
		return
	}
	if reply.Delay > 0 {
		t := time.NewTimer(reply.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
	if reply.RetryAfter != "" {
		w.Header().Set("Retry-After", reply.RetryAfter)
	}
	if reply.RetryAfterMS != "" {
		w.Header().Set("retry-after-ms", reply.RetryAfterMS)
	}
	w.Header().Set("x-request-id", fmt.Sprintf("req_%d", seq))
	status := reply.Status
	if status == 0 {
		status = http.StatusOK
	}
	if reply.Body != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, reply.Body)
		return
	}
	if status >= 400 {
		msg := reply.ErrorMessage
		if msg == "" {
			msg = http.StatusText(status)
		}
		typ, code := "server_error", ""
		if status == http.StatusTooManyRequests {
			typ, code = "requests", "rate_limit_exceeded"
		}
		writeError(w, status, typ, code, "", msg)
		return
	}
	promptBytes := 0
	for _, m := range req.Messages {
		promptBytes += len(m.Content)
	}
	u := Usage{PromptTokens: promptBytes/4 + 4*len(req.Messages), CompletionTokens: (len(reply.Content)+len(reply.Refusal))/4 + 1}
	if reply.Usage != nil {
		u = *reply.Usage
	}
	model := req.Model
	if reply.Model != "" {
		model = reply.Model
	}
	finish := reply.FinishReason
	if finish == "" {
		finish = "stop"
	}
	msg := message{Role: "assistant", Annotations: []any{}}
	if reply.Refusal != "" {
		msg.Refusal = &reply.Refusal
	} else {
		msg.Content = &reply.Content
	}
	c := completion{
		ID: fmt.Sprintf("chatcmpl-test%06d", seq), Object: "chat.completion", Created: time.Now().Unix(),
		Model: model, ServiceTier: "default", SystemFingerprint: "fp_llmtest",
		Usage: usage{
			PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.PromptTokens + u.CompletionTokens,
			PromptTokensDetails:     map[string]int{"cached_tokens": 0, "audio_tokens": 0},
			CompletionTokensDetails: map[string]int{"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
		},
	}
	if !reply.NoChoices {
		c.Choices = []choice{{Index: 0, Message: msg, FinishReason: finish}}
	} else {
		c.Choices = []choice{}
	}
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(c)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
