package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/classwaves/classwaves/pkg/llm"
	"github.com/classwaves/classwaves/pkg/llm/llmtest"
)

type answer struct {
	Score float64  `json:"score"`
	Label string   `json:"label"`
	Tags  []string `json:"tags"`
}

var answerSchema = json.RawMessage(`{
  "type": "object",
  "additionalProperties": false,
  "required": ["score", "label", "tags"],
  "properties": {
    "score": {"type": "number", "minimum": 0, "maximum": 1},
    "label": {"type": "string", "enum": ["good", "bad"]},
    "tags": {"type": "array", "maxItems": 3, "items": {"type": "string"}}
  }
}`)

const good = `{"score": 0.75, "label": "good", "tags": ["a"]}`

func newServer(t testing.TB) *llmtest.Server {
	srv := llmtest.NewServer(t)
	srv.APIKey = "sk-test"
	return srv
}

func newClient(t testing.TB, srv *llmtest.Server, mod func(*llm.Config), opts ...llm.Option) *llm.Client {
	t.Helper()
	cfg := llm.Config{
		BaseURL: srv.URL(), APIKey: "sk-test", Model: "gpt-4o-mini",
		Timeout: 2 * time.Second, MaxRetries: 2, Concurrency: 4, MaxTokens: 300, Temperature: 0.2,
		BackoffBase: 5 * time.Millisecond, BackoffMax: 2 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := llm.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func request() llm.Request {
	return llm.Request{System: "You grade.", User: "Grade this: plants need light.", SchemaName: "grade", Schema: answerSchema}
}

func TestCompleteJSONSendsTheRequest(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	srv.Script(llmtest.Reply{Content: good, Usage: &llmtest.Usage{PromptTokens: 40, CompletionTokens: 12}, Model: "gpt-4o-mini-2024-07-18"})
	c := newClient(t, srv, nil)
	var got answer
	usage, err := c.CompleteJSON(context.Background(), request(), &got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(answer{Score: 0.75, Label: "good", Tags: []string{"a"}}, got); diff != "" {
		t.Errorf("answer mismatch (-want +got):\n%s", diff)
	}
	wantUsage := llm.Usage{PromptTokens: 40, CompletionTokens: 12, TotalTokens: 52, Attempts: 1, Model: "gpt-4o-mini-2024-07-18"}
	if diff := cmp.Diff(wantUsage, usage); diff != "" {
		t.Errorf("usage mismatch (-want +got):\n%s", diff)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	temp := 0.2
	if r.Temperature == nil || float32(*r.Temperature) != float32(temp) {
		t.Errorf("temperature = %v, want %v", r.Temperature, temp)
	}
	if r.ResponseFormat == nil {
		t.Fatal("no response_format sent")
	}
	var sentSchema, wantSchema any
	_ = json.Unmarshal(r.ResponseFormat.Schema, &sentSchema)
	_ = json.Unmarshal(answerSchema, &wantSchema)
	gotReq := map[string]any{
		"model": r.Model, "messages": r.Messages, "auth": r.Authorization, "path": r.Path,
		"max_tokens": r.MaxTokens, "max_completion_tokens": r.MaxCompletionTokens,
		"format": r.ResponseFormat.Type, "name": r.ResponseFormat.Name, "strict": r.ResponseFormat.Strict, "schema": sentSchema,
	}
	wantReq := map[string]any{
		"model": "gpt-4o-mini", "auth": "Bearer sk-test", "path": "/v1/chat/completions",
		"messages":   []llmtest.Message{{Role: "system", Content: "You grade."}, {Role: "user", Content: "Grade this: plants need light."}},
		"max_tokens": 300, "max_completion_tokens": 0,
		"format": "json_schema", "name": "grade", "strict": true, "schema": wantSchema,
	}
	if diff := cmp.Diff(wantReq, gotReq); diff != "" {
		t.Errorf("request mismatch (-want +got):\n%s", diff)
	}
}

func TestReasoningModelsGetMaxCompletionTokens(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	srv.Models = append(srv.Models, "o3-mini")
	srv.Script(llmtest.Reply{Content: good})
	// Databricks serving endpoints and vLLM serve /chat/completions at the configured root.
	c := newClient(t, srv, func(c *llm.Config) { c.Model, c.BaseURL, c.Temperature = "o3-mini", srv.RootURL(), 0 })
	req := request()
	req.MaxTokens = 50
	var got answer
	if _, err := c.CompleteJSON(context.Background(), req, &got); err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()[0]
	if r.MaxTokens != 0 || r.MaxCompletionTokens != 50 || r.Temperature != nil || r.Path != "/chat/completions" {
		t.Errorf("max_tokens %d, max_completion_tokens %d, temperature %v, path %s; want 0, 50, none, /chat/completions",
			r.MaxTokens, r.MaxCompletionTokens, r.Temperature, r.Path)
	}
}

func TestCompleteJSONFailures(t *testing.T) {
	t.Parallel()
	ok := llmtest.Reply{Content: good}
	tests := []struct {
		name    string
		replies []llmtest.Reply
		mod     func(*llm.Config)
		// want is nil for success, else the errors the result must wrap.
		want         []error
		wantReason   string
		wantAttempts int
	}{
		{name: "malformed JSON retried once then fine", replies: []llmtest.Reply{{Content: `{"score": 0.7, "label": "go`}, ok}, wantAttempts: 2},
		{name: "malformed JSON twice", replies: []llmtest.Reply{{Content: `{"score": 0.7,`}, {Content: `{"score": 0.7,`}, ok},
			want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "malformed is not retried without retries", mod: func(c *llm.Config) { c.MaxRetries = 0 },
			replies: []llmtest.Reply{{Content: `not json`}, ok}, want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 1},
		{name: "string where a number belongs", replies: rep(`{"score": "0.7", "label": "good", "tags": []}`),
			want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "array where a string belongs", replies: rep(`{"score": 0.7, "label": ["good"], "tags": []}`),
			want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "out of range", replies: rep(`{"score": 1.5, "label": "good", "tags": []}`),
			want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "not in the enum", replies: rep(`{"score": 0.5, "label": "great", "tags": []}`),
			want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "too many items", replies: rep(`{"score": 0.5, "label": "good", "tags": ["a","b","c","d"]}`),
			want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "NaN literal", replies: rep(`{"score": NaN, "label": "good", "tags": []}`),
			want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "NaN as a string", replies: rep(`{"score": "NaN", "label": "good", "tags": []}`),
			want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "infinite number", replies: rep(`{"score": 1e999, "label": "good", "tags": []}`),
			want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "unknown field", replies: rep(`{"score": 0.5, "label": "good", "tags": [], "note": "x"}`),
			want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "field in another case", replies: rep(`{"Score": 0.5, "label": "good", "tags": []}`),
			want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "missing field", replies: rep(`{"score": 0.5, "label": "good"}`),
			want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "duplicate key", replies: rep(`{"score": 0.5, "score": 0.9, "label": "good", "tags": []}`),
			want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "two values", replies: rep(good + " " + good),
			want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "prose around the JSON", replies: rep("Sure! " + good),
			want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "empty content", replies: rep(""), want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "no choices", replies: []llmtest.Reply{{NoChoices: true}, {NoChoices: true}},
			want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "a body that is not a completion", replies: []llmtest.Reply{{Body: `{"choices": "nope"`}, {Body: `<html>ok</html>`}},
			want: []error{llm.ErrMalformed}, wantReason: "malformed", wantAttempts: 2},
		{name: "refusal", replies: []llmtest.Reply{{Refusal: "I'm sorry, I can't help with that."}, ok},
			want: []error{llm.ErrRefused}, wantReason: "refused", wantAttempts: 1},
		{name: "content filter", replies: []llmtest.Reply{{Content: "", FinishReason: "content_filter"}, ok},
			want: []error{llm.ErrRefused}, wantReason: "refused", wantAttempts: 1},
		{name: "truncated", replies: []llmtest.Reply{{Content: `{"score": 0.5, "lab`, FinishReason: "length"}, ok},
			want: []error{llm.ErrTruncated}, wantReason: "truncated", wantAttempts: 1},
		{name: "429 then fine (retry-after-ms)", replies: []llmtest.Reply{{Status: 429, RetryAfterMS: "20"}, ok}, wantAttempts: 2},
		{name: "502 HTML then fine", replies: []llmtest.Reply{{Status: 502, Body: "<html>Bad Gateway</html>"}, ok}, wantAttempts: 2},
		{name: "500s until the retries run out", replies: []llmtest.Reply{{Status: 500}, {Status: 503}, {Status: 500}, ok},
			want: []error{llm.ErrUnavailable}, wantReason: "unavailable", wantAttempts: 3},
		{name: "429s until the retries run out", replies: []llmtest.Reply{{Status: 429, RetryAfter: "0"}, {Status: 429}, {Status: 429}, ok},
			want: []error{llm.ErrUnavailable}, wantReason: "unavailable", wantAttempts: 3},
		{name: "400 is not retried", replies: []llmtest.Reply{{Status: 400, ErrorMessage: "bad"}, ok},
			want: []error{llm.ErrRejected}, wantReason: "rejected", wantAttempts: 1},
		{name: "a wrong key is refused", mod: func(c *llm.Config) { c.APIKey = "sk-wrong" },
			want: []error{llm.ErrRejected}, wantReason: "rejected", wantAttempts: 1},
		{name: "an unknown model is refused", mod: func(c *llm.Config) { c.Model = "gpt-9" },
			want: []error{llm.ErrRejected}, wantReason: "rejected", wantAttempts: 1},
		{name: "a slow attempt times out, the retry answers", mod: func(c *llm.Config) { c.Timeout = 400 * time.Millisecond },
			replies: []llmtest.Reply{{Delay: 3 * time.Second, Content: good}, ok}, wantAttempts: 2},
		{name: "every attempt times out", mod: func(c *llm.Config) { c.Timeout, c.MaxRetries = 50*time.Millisecond, 1 },
			replies: []llmtest.Reply{{Hang: true}, {Delay: 2 * time.Second, Content: good}, ok},
			want:    []error{llm.ErrTimeout, llm.ErrUnavailable}, wantReason: "timeout", wantAttempts: 2},
		{name: "latency under the timeout is fine", replies: []llmtest.Reply{{Delay: 30 * time.Millisecond, Content: good}}, wantAttempts: 1},
		{name: "an answer over 4 MiB", replies: []llmtest.Reply{{Content: strings.Repeat(" ", 5<<20) + good}, ok}, wantAttempts: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t)
			srv.Script(tt.replies...)
			reg := prometheus.NewRegistry()
			c := newClient(t, srv, tt.mod, llm.WithMetrics(reg, "tier1"))
			var got answer
			usage, err := c.CompleteJSON(context.Background(), request(), &got)
			t.Logf("error: %v", err)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CompleteJSON error = %v, want none", err)
				}
				if got.Label != "good" {
					t.Errorf("answer = %+v, want the good one", got)
				}
			} else {
				for _, w := range tt.want {
					if !errors.Is(err, w) {
						t.Errorf("CompleteJSON error = %v, want it to wrap %v", err, w)
					}
				}
				if got := llm.Reason(err); got != tt.wantReason {
					t.Errorf("Reason = %q, want %q", got, tt.wantReason)
				}
			}
			if usage.Attempts != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", usage.Attempts, tt.wantAttempts)
			}
			// A timed-out attempt may not have reached the server (under load): only the
			// client's count is exact then.
			if n := len(srv.Requests()) + srv.Refusals(); n != tt.wantAttempts && (tt.mod == nil || n > tt.wantAttempts) {
				t.Errorf("server saw %d requests, want %d", n, tt.wantAttempts)
			}
			if tt.wantReason == "malformed" || tt.wantReason == "refused" || tt.wantReason == "truncated" {
				got := metricValue(t, reg, "llm_rejected_total", map[string]string{"client": "tier1", "reason": tt.wantReason})
				if got != float64(tt.wantAttempts) {
					t.Errorf("llm_rejected_total{reason=%q} = %v, want %d", tt.wantReason, got, tt.wantAttempts)
				}
			}
		})
	}
}

func rep(content string) []llmtest.Reply {
	return []llmtest.Reply{{Content: content}, {Content: content}, {Content: good}}
}

// metricValue is the value of the counter name{labels} gathered from reg (0 when absent).
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestValidateHookRejectsAndRetriesOnce(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	srv.Script(llmtest.Reply{Content: `{"score": 0.1, "label": "bad", "tags": []}`}, llmtest.Reply{Content: good})
	c := newClient(t, srv, nil)
	var got answer
	calls := 0
	req := request()
	req.Validate = func() error {
		calls++
		if got.Label != "good" {
			return errors.New("label must be good")
		}
		return nil
	}
	usage, err := c.CompleteJSON(context.Background(), req, &got)
	if err != nil || usage.Attempts != 2 || calls != 2 {
		t.Fatalf("CompleteJSON = %v after %d attempts and %d checks, want success after 2 and 2", err, usage.Attempts, calls)
	}

	srv.Script(llmtest.Reply{Content: `{"score": 0.1, "label": "bad", "tags": ["stale"]}`}, llmtest.Reply{Content: `{"score": 0.2, "label": "bad", "tags": []}`})
	got = answer{}
	_, err = c.CompleteJSON(context.Background(), req, &got)
	if !errors.Is(err, llm.ErrMalformed) || !strings.Contains(err.Error(), "label must be good") {
		t.Fatalf("CompleteJSON error = %v, want ErrMalformed with the check's reason", err)
	}
	if len(got.Tags) != 0 {
		t.Errorf("the retried answer kept the rejected one's tags: %v", got.Tags)
	}
}

func TestRetryAfterSecondsIsHonoured(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	srv.Script(llmtest.Reply{Status: 429, RetryAfter: "1"}, llmtest.Reply{Content: good})
	c := newClient(t, srv, nil)
	var got answer
	if _, err := c.CompleteJSON(context.Background(), request(), &got); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("server got %d requests, want 2", len(reqs))
	}
	// A lower bound: the client must not come back before the server said it may.
	if gap := reqs[1].At.Sub(reqs[0].At); gap < 900*time.Millisecond {
		t.Errorf("retried after %v, want at least the 1 s of Retry-After", gap)
	}
}

func TestRetryAfterBeyondDeadlineGivesUp(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	srv.Script(llmtest.Reply{Status: 429, RetryAfter: "10"}, llmtest.Reply{Content: good})
	c := newClient(t, srv, func(c *llm.Config) { c.BackoffMax = time.Minute })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var got answer
	usage, err := c.CompleteJSON(ctx, request(), &got)
	if !errors.Is(err, llm.ErrUnavailable) {
		t.Fatalf("CompleteJSON error = %v, want ErrUnavailable", err)
	}
	if usage.Attempts != 1 || ctx.Err() != nil {
		t.Errorf("attempts %d, context %v: want 1 attempt and an early return", usage.Attempts, ctx.Err())
	}
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	srv.Handle(func(llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Delay: 30 * time.Millisecond, Content: good}
	})
	c := newClient(t, srv, func(c *llm.Config) { c.Concurrency = 2 })
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var got answer
			if _, err := c.CompleteJSON(context.Background(), request(), &got); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := srv.MaxInFlight(); got != 2 {
		t.Errorf("server saw %d requests at once, want 2", got)
	}
	if got := len(srv.Requests()); got != 8 {
		t.Errorf("server got %d requests, want 8", got)
	}
}

func TestWaitingForASlotEndsWithTheContext(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	release := make(chan struct{})
	srv.Handle(func(llmtest.Request) llmtest.Reply {
		<-release
		return llmtest.Reply{Content: good}
	})
	c := newClient(t, srv, func(c *llm.Config) { c.Concurrency = 1 })
	done := make(chan error, 1)
	go func() {
		var got answer
		_, err := c.CompleteJSON(context.Background(), request(), &got)
		done <- err
	}()
	for len(srv.Requests()) == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var got answer
	usage, err := c.CompleteJSON(ctx, request(), &got)
	if !errors.Is(err, context.DeadlineExceeded) || usage.Attempts != 0 || llm.Reason(err) != "timeout" {
		t.Errorf("CompleteJSON = %v (%d attempts), want the context's deadline", err, usage.Attempts)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("server got %d requests, want only the first", n)
	}
	close(release)
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func TestBudget(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	srv.Handle(func(llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Content: good, Usage: &llmtest.Usage{PromptTokens: 100, CompletionTokens: 20}}
	})
	day := time.Date(2025, 3, 4, 23, 59, 0, 0, time.UTC)
	now := day
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	budget := llm.NewMemoryBudget(1000, clock)
	reg := prometheus.NewRegistry()
	c := newClient(t, srv, nil, llm.WithBudget(budget), llm.WithMetrics(reg, "tier1"))
	req := request()
	req.BudgetKey = "school-1"
	req.MaxTokens = 300 // with the prompt estimate, each attempt reserves a little under 500

	// Reservations are settled with the reported 120 tokens: 1000 allows several calls.
	for i := range 5 {
		var got answer
		if _, err := c.CompleteJSON(context.Background(), req, &got); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if used, reserved := budget.Used("school-1"); used != 600 || reserved != 0 {
		t.Errorf("used %d reserved %d, want 600 and 0", used, reserved)
	}
	var got answer
	usage, err := c.CompleteJSON(context.Background(), req, &got)
	if !errors.Is(err, llm.ErrBudgetExhausted) || llm.Reason(err) != "budget" || usage.Attempts != 0 {
		t.Fatalf("CompleteJSON = %v after %d attempts, want ErrBudgetExhausted before any", err, usage.Attempts)
	}
	if n := len(srv.Requests()); n != 5 {
		t.Errorf("server got %d requests, want 5: nothing sent over budget", n)
	}
	// Another school has its own budget; the next UTC day starts afresh.
	other := req
	other.BudgetKey = "school-2"
	if _, err := c.CompleteJSON(context.Background(), other, &got); err != nil {
		t.Errorf("another school: %v", err)
	}
	mu.Lock()
	now = day.Add(2 * time.Minute)
	mu.Unlock()
	if _, err := c.CompleteJSON(context.Background(), req, &got); err != nil {
		t.Errorf("next day: %v", err)
	}
	if got := metricValue(t, reg, "llm_rejected_total", map[string]string{"client": "tier1", "reason": "budget"}); got != 1 {
		t.Errorf("llm_rejected_total{reason=budget} = %v, want 1", got)
	}
	if got := metricValue(t, reg, "llm_tokens_total", map[string]string{"client": "tier1", "kind": "prompt"}); got != 700 {
		t.Errorf("llm_tokens_total{kind=prompt} = %v, want 700", got)
	}
	if got := metricValue(t, reg, "llm_requests_total", map[string]string{"client": "tier1", "status": "200"}); got != 7 {
		t.Errorf("llm_requests_total{status=200} = %v, want 7", got)
	}
}

func TestBudgetTooSmallForOneRequest(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c := newClient(t, srv, nil, llm.WithBudget(llm.NewMemoryBudget(50, nil)))
	req := request()
	req.BudgetKey = "school-1"
	var got answer
	if _, err := c.CompleteJSON(context.Background(), req, &got); !errors.Is(err, llm.ErrBudgetExhausted) {
		t.Fatalf("CompleteJSON error = %v, want ErrBudgetExhausted", err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("server got %d requests, want none", n)
	}
	// No key: no budget.
	req.BudgetKey = ""
	srv.Script(llmtest.Reply{Content: good})
	if _, err := c.CompleteJSON(context.Background(), req, &got); err != nil {
		t.Errorf("without a budget key: %v", err)
	}
}

func TestInvalidRequestsSendNothing(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c := newClient(t, srv, nil)
	var got answer
	tests := []struct {
		name string
		req  func(*llm.Request)
		out  any
	}{
		{"nil out", nil, nil},
		{"out not a pointer", nil, answer{}},
		{"empty user message", func(r *llm.Request) { r.User = "  " }, &got},
		{"bad schema name", func(r *llm.Request) { r.SchemaName = "a b" }, &got},
		{"no schema", func(r *llm.Request) { r.Schema = nil }, &got},
		{"schema not an object", func(r *llm.Request) { r.Schema = json.RawMessage(`[1]`) }, &got},
		{"unchecked keyword", func(r *llm.Request) {
			r.Schema = json.RawMessage(`{"type":"object","oneOf":[{"type":"object"}]}`)
		}, &got},
		{"unresolved ref", func(r *llm.Request) {
			r.Schema = json.RawMessage(`{"type":"object","properties":{"a":{"$ref":"#/$defs/x"}}}`)
		}, &got},
		{"negative MaxTokens", func(r *llm.Request) { r.MaxTokens = -1 }, &got},
	}
	for _, tt := range tests {
		req := request()
		if tt.req != nil {
			tt.req(&req)
		}
		_, err := c.CompleteJSON(context.Background(), req, tt.out)
		if !errors.Is(err, llm.ErrInvalidRequest) || llm.Reason(err) != "other" {
			t.Errorf("%s: error = %v, want ErrInvalidRequest", tt.name, err)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("server got %d requests, want none", n)
	}
}

func TestNetworkErrorIsUnavailable(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c := newClient(t, srv, func(c *llm.Config) { c.BaseURL, c.MaxRetries = "http://127.0.0.1:1/v1", 1 })
	var got answer
	usage, err := c.CompleteJSON(context.Background(), request(), &got)
	if !errors.Is(err, llm.ErrUnavailable) || usage.Attempts != 2 {
		t.Fatalf("CompleteJSON = %v after %d attempts, want ErrUnavailable after 2", err, usage.Attempts)
	}
}

func TestWithHTTPClient(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	srv.Script(llmtest.Reply{Status: 429, RetryAfterMS: "10"}, llmtest.Reply{Content: good})
	var mu sync.Mutex
	seen := 0
	h := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		seen++
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})}
	c := newClient(t, srv, nil, llm.WithHTTPClient(h))
	var got answer
	if _, err := c.CompleteJSON(context.Background(), request(), &got); err != nil {
		t.Fatal(err)
	}
	if seen != 2 {
		t.Errorf("the given client sent %d requests, want 2", seen)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := llm.Config{BaseURL: "https://example.invalid/v1", Model: "m", Timeout: time.Second, MaxRetries: 1, Concurrency: 1, MaxTokens: 10}
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*llm.Config)
		want string
	}{
		{"no base URL", func(c *llm.Config) { c.BaseURL = "" }, "BaseURL is required"},
		{"base URL without scheme", func(c *llm.Config) { c.BaseURL = "example.com/v1" }, "not an http(s) URL"},
		{"no model", func(c *llm.Config) { c.Model = " " }, "Model is required"},
		{"no timeout", func(c *llm.Config) { c.Timeout = 0 }, "Timeout must be positive"},
		{"negative retries", func(c *llm.Config) { c.MaxRetries = -1 }, "MaxRetries must be 0 to 10"},
		{"no concurrency", func(c *llm.Config) { c.Concurrency = 0 }, "Concurrency must be 1 to 1000"},
		{"no max tokens", func(c *llm.Config) { c.MaxTokens = 0 }, "MaxTokens must be 1 to 1000000"},
		{"hot", func(c *llm.Config) { c.Temperature = 2.5 }, "Temperature must be 0 to 2"},
		{"reasoning model with a temperature", func(c *llm.Config) { c.Model, c.Temperature = "o3-mini", 0.2 }, "takes Temperature 0 (unset) or 1"},
		{"negative backoff", func(c *llm.Config) { c.BackoffBase = -1 }, "must not be negative"},
	}
	for _, tt := range tests {
		cfg := valid
		tt.mod(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate = %v, want %q", tt.name, err, tt.want)
		}
		if _, err := llm.New(cfg); err == nil {
			t.Errorf("%s: New accepted the config", tt.name)
		}
	}
}

func TestReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{llm.ErrMalformed, "malformed"},
		{llm.ErrRefused, "refused"},
		{llm.ErrTruncated, "truncated"},
		{llm.ErrBudgetExhausted, "budget"},
		{llm.ErrUnavailable, "unavailable"},
		{llm.ErrTimeout, "timeout"},
		{llm.ErrRejected, "rejected"},
		{context.Canceled, "other"},
		{context.DeadlineExceeded, "timeout"},
		{errors.New("boom"), "other"},
	}
	for _, tt := range tests {
		if got := llm.Reason(tt.err); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestEndpointURLs(t *testing.T) {
	t.Parallel()
	const endpoint = "databricks-meta-llama-3-3-70b-instruct"
	srv := newServer(t)
	tests := []struct {
		name, baseURL, model, wantPath string
	}{
		{"OpenAI root", srv.URL(), endpoint, "/v1/chat/completions"},
		{"Databricks root", srv.RootURL() + "/serving-endpoints", endpoint, "/serving-endpoints/chat/completions"},
		{"Databricks invocations URL names the model", srv.RootURL() + "/serving-endpoints/" + endpoint + "/invocations", "", "/serving-endpoints/" + endpoint + "/invocations"},
		{"full chat completions URL", srv.RootURL() + "/v1/chat/completions/", endpoint, "/v1/chat/completions"},
	}
	for _, tt := range tests {
		srv.Script(llmtest.Reply{Content: good})
		c := newClient(t, srv, func(c *llm.Config) { c.BaseURL, c.Model = tt.baseURL, tt.model })
		var got answer
		if _, err := c.CompleteJSON(context.Background(), request(), &got); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		reqs := srv.Requests()
		last := reqs[len(reqs)-1]
		if last.Path != tt.wantPath || last.Model != endpoint || c.Model() != endpoint {
			t.Errorf("%s: posted %s with model %q (client model %q), want %s with %q", tt.name, last.Path, last.Model, c.Model(), tt.wantPath, endpoint)
		}
	}
	if _, err := llm.New(llm.Config{BaseURL: srv.URL(), Timeout: time.Second, Concurrency: 1, MaxTokens: 1}); err == nil {
		t.Error("New accepted a root URL without a model")
	}
}

func TestRequestTheLibraryRefusesIsNotRetried(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	srv.Models = append(srv.Models, "gpt-6-astra")
	// go-openai refuses any temperature for GPT-6 models with reasoning on, before sending.
	c := newClient(t, srv, func(c *llm.Config) { c.Model, c.Temperature = "gpt-6-astra", 1 })
	var got answer
	usage, err := c.CompleteJSON(context.Background(), request(), &got)
	if !errors.Is(err, llm.ErrInvalidRequest) || usage.Attempts != 0 {
		t.Fatalf("CompleteJSON = %v after %d attempts, want ErrInvalidRequest before any", err, usage.Attempts)
	}
	if n := len(srv.Requests()) + srv.Refusals(); n != 0 {
		t.Errorf("server saw %d requests, want none", n)
	}
}
