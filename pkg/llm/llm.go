// Package llm is a chat-completion client for structured (JSON) answers from any
// OpenAI-compatible endpoint: OpenAI itself, Databricks Model Serving, vLLM, Azure-style gateways.
// It is go-openai's CreateChatCompletion with what a product needs around it:
//
//   - response_format json_schema with strict: true, and the answer checked again on our side
//     (the server's promise is not trusted): the first choice's content must be exactly one JSON
//     value, valid against the request's schema (see Request.Schema for the keywords checked), with
//     no duplicate keys; it is then decoded with DisallowUnknownFields, and Request.Validate, when
//     set, checks its meaning. Anything else is ErrMalformed. Refusals (message.refusal,
//     finish_reason "content_filter") are ErrRefused and finish_reason "length" is ErrTruncated.
//   - a timeout per attempt; retries with exponential backoff and jitter on 429, 5xx, timeouts and
//     network errors, honouring retry-after-ms and Retry-After (seconds or an HTTP date), capped
//     by BackoffMax and never past the caller's deadline; never on another 4xx (ErrRejected).
//   - a malformed answer is retried once (when MaxRetries allows): sampling may well produce a
//     good answer the second time, and a model that keeps answering garbage should not be paid
//     for more than twice. Refused and truncated answers are not retried: the same prompt under
//     the same cap gets the same answer.
//   - a limit of requests in flight for the client, waited for (on ctx) per attempt, not
//     during backoff.
//   - an optional token budget per key (a school), reserved before each attempt with an upper
//     estimate (prompt size / 3 + the completion cap) and settled with what the server reports.
//     A key over budget gets ErrBudgetExhausted and nothing is sent.
//   - Prometheus metrics (see WithMetrics).
//
// Redact removes student names and e-mail addresses from text before it is sent anywhere.
package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/classwaves/classwaves/pkg/retry"
)

// Defaults applied by New to zero BackoffBase and BackoffMax.
const (
	DefaultBackoffBase = 500 * time.Millisecond
	DefaultBackoffMax  = 20 * time.Second
	// maxResponseBytes caps an answer's body: a larger one is malformed.
	maxResponseBytes = 4 << 20
	// malformedRetries is how many malformed answers are retried (see the package doc).
	malformedRetries = 1
)

// Config configures a Client.
type Config struct {
	// BaseURL is the API root the chat completions path is appended to, e.g.
	// https://api.openai.com/v1 or https://<workspace>/serving-endpoints; or the full URL of
	// the chat endpoint, ending in /chat/completions or (Databricks Model Serving)
	// /serving-endpoints/<name>/invocations, which is then posted to as it is.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <APIKey>" (empty: no header, for local servers).
	APIKey string
	// Model is the model (or Databricks serving endpoint) name. It may be left empty when
	// BaseURL is a .../serving-endpoints/<name>/invocations URL: it is then <name>.
	Model string
	// Timeout bounds each attempt (not the wait for a concurrency slot, not backoff).
	Timeout time.Duration
	// MaxRetries is how many times a failed attempt may be retried (0: never).
	MaxRetries int
	// Concurrency is the most requests this client has in flight at once, over all callers.
	Concurrency int
	// MaxTokens caps each completion (Request.MaxTokens may lower or raise it per request). It is
	// sent as max_completion_tokens to reasoning models (o1, o3, o4, gpt-5 and later), which
	// refuse max_tokens, and as max_tokens to every other model, as Databricks and vLLM expect.
	MaxTokens int
	// Temperature is the sampling temperature, 0 to 2 (0: the server's default, not sent).
	Temperature float32
	// BackoffBase is the first retry's delay without Retry-After, doubled per retry and scaled
	// by a random factor in [0.5, 1.5); BackoffMax caps it and any Retry-After. Zero: defaults.
	BackoffBase, BackoffMax time.Duration
}

// Validate says what is wrong with c, if anything.
func (c Config) Validate() error {
	var errs []error
	if c.BaseURL == "" {
		errs = append(errs, errors.New("llm: BaseURL is required"))
	} else if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("llm: BaseURL %q is not an http(s) URL", c.BaseURL))
	}
	if strings.TrimSpace(c.model()) == "" {
		errs = append(errs, errors.New("llm: Model is required"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("llm: Timeout must be positive, got %v", c.Timeout))
	}
	if c.MaxRetries < 0 || c.MaxRetries > 10 {
		errs = append(errs, fmt.Errorf("llm: MaxRetries must be 0 to 10, got %d", c.MaxRetries))
	}
	if c.Concurrency < 1 || c.Concurrency > 1000 {
		errs = append(errs, fmt.Errorf("llm: Concurrency must be 1 to 1000, got %d", c.Concurrency))
	}
	if c.MaxTokens < 1 || c.MaxTokens > 1_000_000 {
		errs = append(errs, fmt.Errorf("llm: MaxTokens must be 1 to 1000000, got %d", c.MaxTokens))
	}
	if c.Temperature < 0 || c.Temperature > 2 || c.Temperature != c.Temperature {
		errs = append(errs, fmt.Errorf("llm: Temperature must be 0 to 2, got %v", c.Temperature))
	} else if reasoningModel(c.model()) && c.Temperature != 0 && c.Temperature != 1 {
		errs = append(errs, fmt.Errorf("llm: reasoning model %s takes Temperature 0 (unset) or 1, got %v", c.model(), c.Temperature))
	}
	if c.BackoffBase < 0 || c.BackoffMax < 0 {
		errs = append(errs, errors.New("llm: BackoffBase and BackoffMax must not be negative"))
	}
	return errors.Join(errs...)
}

var invocationsRE = regexp.MustCompile(`/serving-endpoints/([^/]+)/invocations/?$`)

// model is Model, or the serving endpoint's name of an invocations URL.
func (c Config) model() string {
	if c.Model != "" {
		return c.Model
	}
	if u, err := url.Parse(c.BaseURL); err == nil {
		if m := invocationsRE.FindStringSubmatch(u.Path); m != nil {
			if name, err := url.PathUnescape(m[1]); err == nil {
				return name
			}
		}
	}
	return ""
}

// exactURL reports whether BaseURL is the chat endpoint itself rather than an API root.
func (c Config) exactURL() bool {
	p := strings.TrimRight(c.BaseURL, "/")
	return strings.HasSuffix(p, "/chat/completions") || strings.HasSuffix(p, "/invocations")
}

// Errors. Every failure of CompleteJSON wraps one of these, or is the caller's context error.
var (
	// ErrMalformed: the answer was not one JSON value valid against the schema, did not decode
	// into the result, failed Request.Validate, or was empty or cut off in transport.
	ErrMalformed = errors.New("llm: malformed answer")
	// ErrRefused: the model refused (message.refusal) or a content filter stopped it.
	ErrRefused = errors.New("llm: model refused")
	// ErrTruncated: the answer hit the token cap (finish_reason "length").
	ErrTruncated = errors.New("llm: answer truncated")
	// ErrBudgetExhausted: the key's token budget cannot cover the request; nothing was sent.
	ErrBudgetExhausted = errors.New("llm: token budget exhausted")
	// ErrUnavailable: the server answered 429 or 5xx or could not be reached, until the
	// retries ran out.
	ErrUnavailable = errors.New("llm: service unavailable")
	// ErrTimeout: an attempt ran out of time (with ErrUnavailable too once the retries ran out).
	ErrTimeout = errors.New("llm: request timed out")
	// ErrRejected: the server refused the request itself (4xx other than 429: a wrong key,
	// model or parameter); retrying cannot help.
	ErrRejected = errors.New("llm: request rejected")
	// ErrInvalidRequest: the Request is unusable (a programming error); nothing was sent.
	ErrInvalidRequest = errors.New("llm: invalid request")
)

// Reason is a short label for err, for metrics: "malformed", "refused", "truncated", "budget",
// "timeout", "unavailable", "rejected" or "other" (context cancellation, invalid requests). A
// caller's expired deadline is "timeout".
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrBudgetExhausted):
		return "budget"
	case errors.Is(err, ErrRefused):
		return "refused"
	case errors.Is(err, ErrTruncated):
		return "truncated"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrRejected):
		return "rejected"
	}
	return "other"
}

// Request is one structured completion.
type Request struct {
	// System and User are the two messages sent (System may be empty; User may not).
	System, User string
	// SchemaName names the schema for the server (1-64 of a-z, A-Z, 0-9, _ and -).
	SchemaName string
	// Schema is the JSON schema of the answer, sent as response_format json_schema with strict:
	// true and checked on our side. Keywords checked: type (a name or a list), properties,
	// required, additionalProperties (false or a schema), items, enum, const, minimum, maximum,
	// exclusiveMinimum, exclusiveMaximum, minLength, maxLength, pattern, minItems, maxItems,
	// anyOf, and $ref into $defs or definitions; description, title, $schema, default, examples
	// and format are annotations. Any other keyword makes the request invalid (it would be
	// silently unchecked). OpenAI's strict mode accepts fewer keywords than this (notably no
	// minLength or maxLength): check those in Validate instead.
	Schema json.RawMessage
	// BudgetKey is the budget's key, e.g. a school id ("": no budget).
	BudgetKey string
	// MaxTokens caps this completion (0: Config.MaxTokens).
	MaxTokens int
	// Validate, when set, is called after the answer is decoded into out; an error rejects the
	// answer as ErrMalformed (counted, and retried like any malformed answer).
	Validate func() error
}

var schemaNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// Usage reports what a call cost.
type Usage struct {
	// Tokens as the server reported them, added up over every attempt that got an answer.
	PromptTokens, CompletionTokens, TotalTokens int
	// Attempts is the number of requests sent.
	Attempts int
	// Model is the model the server said answered.
	Model string
}

// Option changes a Client.
type Option func(*Client)

// WithHTTPClient sends requests with h (its Transport is wrapped to read Retry-After and cap
// answers' size; its Timeout, if any, applies on top of Config.Timeout).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithBudget meters tokens per Request.BudgetKey against b.
func WithBudget(b Budget) Option { return func(c *Client) { c.budget = b } }

// Client sends structured chat completions. It is safe for concurrent use.
type Client struct {
	cfg    Config
	api    *openai.Client
	http   *http.Client
	sem    chan struct{}
	budget Budget
	met    *clientMetrics
	jitter func() float64
}

// New returns a client for cfg, or what is wrong with cfg.
func New(cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Model = cfg.model()
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase = DefaultBackoffBase
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	c := &Client{
		cfg:    cfg,
		sem:    make(chan struct{}, cfg.Concurrency),
		jitter: rand.Float64,
	}
	for _, o := range opts {
		o(c)
	}
	if c.met == nil {
		c.met = newClientMetrics(nil, "default")
	}
	h := c.http
	if h == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.Concurrency
		h = &http.Client{Transport: tr}
	}
	base := h.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc := *h
	hc.Transport = answerTransport{base: base, exact: cfg.exactURL()}
	oc := openai.DefaultConfig(cfg.APIKey)
	oc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	oc.HTTPClient = &hc
	c.api = openai.NewClientWithConfig(oc)
	return c, nil
}

// Model is the configured model.
func (c *Client) Model() string { return c.cfg.Model }

// CompleteJSON asks for an answer matching req.Schema and decodes it into out (a non-nil
// pointer), retrying as the package doc says. On error out holds nothing to use.
func (c *Client) CompleteJSON(ctx context.Context, req Request, out any) (Usage, error) {
	var usage Usage
	sch, err := c.check(req, out)
	if err != nil {
		return usage, err
	}
	maxTokens := req.MaxTokens
	if maxTokens <= 0 {
		maxTokens = c.cfg.MaxTokens
	}
	estimate := estimateTokens(req) + maxTokens
	malformed := 0
	for attempt := 0; ; attempt++ {
		if req.BudgetKey != "" && c.budget != nil {
			if err := c.budget.Reserve(ctx, req.BudgetKey, estimate); err != nil {
				if errors.Is(err, ErrBudgetExhausted) {
					c.met.rejected.WithLabelValues(c.met.name, "budget").Inc()
					return usage, fmt.Errorf("llm: budget of %q: %w", req.BudgetKey, err)
				}
				return usage, fmt.Errorf("llm: reserving tokens: %w", err)
			}
		}
		res := c.attempt(ctx, req, sch, maxTokens, out)
		if res.sent {
			usage.Attempts++
		}
		usage.PromptTokens += res.usage.PromptTokens
		usage.CompletionTokens += res.usage.CompletionTokens
		usage.TotalTokens += res.usage.TotalTokens
		if res.model != "" {
			usage.Model = res.model
		}
		if req.BudgetKey != "" && c.budget != nil {
			c.budget.Settle(context.WithoutCancel(ctx), req.BudgetKey, estimate, res.spent(estimate))
		}
		err := res.err
		if err == nil {
			return usage, nil
		}
		if errors.Is(err, ErrMalformed) || errors.Is(err, ErrRefused) || errors.Is(err, ErrTruncated) {
			c.met.rejected.WithLabelValues(c.met.name, Reason(err)).Inc()
		}
		if ctx.Err() != nil {
			return usage, fmt.Errorf("llm: %w (last attempt: %v)", ctx.Err(), err)
		}
		again := errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout)
		if errors.Is(err, ErrMalformed) && malformed < malformedRetries {
			malformed++
			again = true
		}
		if !again {
			return usage, err
		}
		if attempt >= c.cfg.MaxRetries {
			if errors.Is(err, ErrMalformed) {
				return usage, err
			}
			return usage, fmt.Errorf("%w after %d attempts: %w", ErrUnavailable, attempt+1, err)
		}
		delay := c.backoff(attempt, res.retryAfter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
			// No time left to wait for the server.
			return usage, fmt.Errorf("%w: retry in %v is past the deadline: %w", ErrUnavailable, delay, err)
		}
		if err := retry.Sleep(ctx, delay); err != nil {
			return usage, fmt.Errorf("llm: %w (last attempt: %v)", err, res.err)
		}
	}
}

// check validates req and out before anything is sent.
func (c *Client) check(req Request, out any) (*schema, error) {
	if out == nil {
		return nil, fmt.Errorf("%w: out is nil", ErrInvalidRequest)
	}
	if v := reflect.ValueOf(out); v.Kind() != reflect.Pointer || v.IsNil() {
		return nil, fmt.Errorf("%w: out must be a non-nil pointer, got %T", ErrInvalidRequest, out)
	}
	if strings.TrimSpace(req.User) == "" {
		return nil, fmt.Errorf("%w: the user message is empty", ErrInvalidRequest)
	}
	if !schemaNameRE.MatchString(req.SchemaName) {
		return nil, fmt.Errorf("%w: schema name %q must be 1-64 of a-z, A-Z, 0-9, _ and -", ErrInvalidRequest, req.SchemaName)
	}
	if req.MaxTokens < 0 {
		return nil, fmt.Errorf("%w: MaxTokens %d is negative", ErrInvalidRequest, req.MaxTokens)
	}
	sch, err := compileSchema(req.Schema)
	if err != nil {
		return nil, fmt.Errorf("%w: schema: %v", ErrInvalidRequest, err)
	}
	return sch, nil
}

// estimateTokens is an upper estimate of the prompt's tokens: English averages about four
// characters a token; three leaves room for names, numbers and JSON punctuation.
func estimateTokens(req Request) int {
	return (len(req.System)+len(req.User)+len(req.Schema))/3 + 16
}

// backoff is the wait before retry number attempt+1: the server's Retry-After when it gave one,
// else BackoffBase*2^attempt scaled by a factor in [0.5, 1.5); both capped by BackoffMax.
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	return retry.Backoff{Base: c.cfg.BackoffBase, Max: c.cfg.BackoffMax}.Delay(attempt, retryAfter, c.jitter())
}

// result is one attempt's outcome.
type result struct {
	// sent: the request went out (a concurrency slot was had and the client built it).
	sent       bool
	err        error
	retryAfter time.Duration
	usage      openai.Usage
	model      string
	// answered: the server produced a completion (tokens were spent).
	answered bool
	// timedOut: the attempt ran out of time; the server may have spent tokens.
	timedOut bool
	// completionChars is the answer's length, for servers that report no usage.
	completionChars int
}

// spent is what to charge the budget for the attempt: the reported total, else an estimate
// when the server did (or may have) worked on it.
func (r result) spent(estimate int) int {
	switch {
	case r.usage.TotalTokens > 0:
		return r.usage.TotalTokens
	case r.usage.PromptTokens+r.usage.CompletionTokens > 0:
		return r.usage.PromptTokens + r.usage.CompletionTokens
	case r.answered:
		return min(estimate, estimate/2+r.completionChars/3)
	case r.timedOut:
		return estimate
	}
	return 0
}

// statusError is a failed HTTP answer.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return fmt.Sprintf("llm: HTTP %d: %s", e.code, e.msg) }

func (e *statusError) Unwrap() error {
	if e.code == http.StatusTooManyRequests || e.code >= 500 {
		return ErrUnavailable
	}
	return ErrRejected
}

// attempt sends one request within a concurrency slot and checks its answer.
func (c *Client) attempt(ctx context.Context, req Request, sch *schema, maxTokens int, out any) result {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return result{err: ctx.Err()}
	}
	defer func() { <-c.sem }()

	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	info := &answerInfo{}
	actx = context.WithValue(actx, answerKey{}, info)

	creq := openai.ChatCompletionRequest{
		Model:       c.cfg.Model,
		Temperature: c.cfg.Temperature,
		ResponseFormat: &openai.ChatCompletionResponseFormat{
			Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
			JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{
				Name:   req.SchemaName,
				Schema: json.RawMessage(req.Schema),
				Strict: true,
			},
		},
	}
	if reasoningModel(c.cfg.Model) {
		creq.MaxCompletionTokens = maxTokens
	} else {
		creq.MaxTokens = maxTokens
	}
	if req.System != "" {
		creq.Messages = append(creq.Messages, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleSystem, Content: req.System})
	}
	creq.Messages = append(creq.Messages, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: req.User})

	start := time.Now()
	resp, err := c.api.CreateChatCompletion(actx, creq)
	latency := time.Since(start)
	c.met.duration.WithLabelValues(c.met.name).Observe(float64(latency) / float64(time.Millisecond))
	if err != nil {
		res := c.classify(ctx, actx, err, info)
		res.sent = info.sent
		return res
	}
	c.met.requests.WithLabelValues(c.met.name, strconv.Itoa(info.status)).Inc()
	c.met.tokens.WithLabelValues(c.met.name, "prompt").Add(float64(max(resp.Usage.PromptTokens, 0)))
	c.met.tokens.WithLabelValues(c.met.name, "completion").Add(float64(max(resp.Usage.CompletionTokens, 0)))
	res := result{sent: true, usage: resp.Usage, model: resp.Model, answered: true}
	if len(resp.Choices) == 0 {
		res.err = fmt.Errorf("%w: no choices", ErrMalformed)
		return res
	}
	choice := resp.Choices[0]
	msg := choice.Message
	res.completionChars = len(msg.Content)
	switch {
	case msg.Refusal != "":
		res.err = fmt.Errorf("%w: %s", ErrRefused, truncate(msg.Refusal, 200))
	case choice.FinishReason == openai.FinishReasonContentFilter:
		res.err = fmt.Errorf("%w: finish_reason content_filter", ErrRefused)
	case choice.FinishReason == openai.FinishReasonLength:
		res.err = fmt.Errorf("%w: finish_reason length at %d tokens", ErrTruncated, maxTokens)
	case len(msg.ToolCalls) > 0 || msg.FunctionCall != nil:
		res.err = fmt.Errorf("%w: a tool call instead of content", ErrMalformed)
	case strings.TrimSpace(msg.Content) == "":
		res.err = fmt.Errorf("%w: empty content", ErrMalformed)
	default:
		if err := decodeAnswer(msg.Content, sch, out); err != nil {
			res.err = fmt.Errorf("%w: %v", ErrMalformed, err)
		} else if req.Validate != nil {
			if err := req.Validate(); err != nil {
				res.err = fmt.Errorf("%w: %w", ErrMalformed, err)
			}
		}
	}
	return res
}

// classify turns a failed call into a result.
func (c *Client) classify(ctx, actx context.Context, err error, info *answerInfo) result {
	var (
		apiErr *openai.APIError
		reqErr *openai.RequestError
		netErr net.Error
	)
	status := ""
	var res result
	switch {
	case !info.sent && ctx.Err() == nil && actx.Err() == nil:
		// go-openai refused to build the request (a parameter the model does not take).
		return result{err: fmt.Errorf("%w: %v", ErrInvalidRequest, err)}
	case ctx.Err() != nil:
		status = "canceled"
		res.err = ctx.Err()
	case errors.Is(actx.Err(), context.DeadlineExceeded):
		status = "timeout"
		res = result{err: fmt.Errorf("%w after %v", ErrTimeout, c.cfg.Timeout), timedOut: true}
	case errors.As(err, &apiErr):
		status = strconv.Itoa(apiErr.HTTPStatusCode)
		res = result{err: &statusError{code: apiErr.HTTPStatusCode, msg: truncate(apiErr.Message, 300)}, retryAfter: info.retryAfter}
	case errors.As(err, &reqErr):
		status = strconv.Itoa(reqErr.HTTPStatusCode)
		res = result{err: &statusError{code: reqErr.HTTPStatusCode, msg: truncate(string(reqErr.Body), 300)}, retryAfter: info.retryAfter}
	case info.status >= 200 && info.status < 300:
		// The server answered 2xx with a body that is not a chat completion.
		status = strconv.Itoa(info.status)
		res = result{err: fmt.Errorf("%w: the body is not a chat completion: %v", ErrMalformed, err), answered: true}
	case errors.As(err, &netErr), info.status == 0:
		status = "network"
		res = result{err: fmt.Errorf("%w: %v", ErrUnavailable, err)}
	default:
		status = "error"
		res = result{err: fmt.Errorf("%w: %v", ErrRejected, err)}
	}
	c.met.requests.WithLabelValues(c.met.name, status).Inc()
	return res
}

// decodeAnswer checks content against sch and decodes it into out.
func decodeAnswer(content string, sch *schema, out any) error {
	v, err := parseStrict([]byte(content))
	if err != nil {
		return err
	}
	if err := sch.validate(v); err != nil {
		return err
	}
	// Start from zero: a retried answer must not inherit fields of a rejected one.
	reflect.ValueOf(out).Elem().SetZero()
	dec := json.NewDecoder(strings.NewReader(content))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("decoding: %v", err)
	}
	return nil
}

// reasoningModel reports whether model takes max_completion_tokens instead of max_tokens.
func reasoningModel(model string) bool {
	m := strings.ToLower(model)
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	for _, p := range []string{"o1", "o3", "o4", "gpt-5", "gpt-6"} {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// answerInfo receives what go-openai does not surface: the HTTP status and Retry-After.
type answerInfo struct {
	sent       bool
	status     int
	retryAfter time.Duration
}

type answerKey struct{}

// answerTransport records each answer's status and Retry-After in the request's answerInfo and
// caps the body at maxResponseBytes. With exact, BaseURL is the endpoint itself: the path
// go-openai appends is taken off again.
type answerTransport struct {
	base  http.RoundTripper
	exact bool
}

func (t answerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if info, ok := r.Context().Value(answerKey{}).(*answerInfo); ok {
		info.sent = true
	}
	if t.exact {
		r = r.Clone(r.Context())
		r.URL.Path = strings.TrimSuffix(r.URL.Path, "/chat/completions")
		r.URL.RawPath = ""
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if info, ok := r.Context().Value(answerKey{}).(*answerInfo); ok {
		info.status = resp.StatusCode
		info.retryAfter = retry.After(resp.Header, time.Now())
	}
	resp.Body = &cappedBody{rc: resp.Body, left: maxResponseBytes}
	return resp, nil
}

// errTooLarge is read from a body over maxResponseBytes.
var errTooLarge = errors.New("answer body over 4 MiB")

type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, errTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }
