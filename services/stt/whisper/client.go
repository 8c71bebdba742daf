// Package whisper transcribes audio windows through the OpenAI audio transcription API
// (POST {OPENAI_BASE_URL}/audio/transcriptions, multipart form, verbose_json), so it works against
// OpenAI and any compatible server (whisper.cpp's server, speaches, vLLM). Answers and errors are
// decoded with go-openai's wire types.
//
// The Client adds what a classroom's worth of streams needs around the call: a global limit of
// concurrent requests (OPENAI_WHISPER_CONCURRENCY), a timeout per attempt
// (OPENAI_WHISPER_TIMEOUT_MS), retries with exponential backoff and jitter on 429, 5xx, timeouts
// and network errors that honour the server's Retry-After (or retry-after-ms), and the API's
// 25 MB file limit checked before anything is sent. The form is streamed: the audio goes to the
// connection straight from the caller's buffer, never copied into a request body first (a burst
// of windows closing at once would otherwise allocate, zero and copy a second window-sized
// buffer each). Clean turns the answer into a transcript: see its doc for the confidence formula
// and the filters.
package whisper

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/classwaves/classwaves/pkg/retry"
)

// MaxFileBytes is the API's limit on the audio file (25 MB).
const MaxFileBytes = 25 << 20

// Config configures the client.
type Config struct {
	// BaseURL is the API root, e.g. https://api.openai.com/v1.
	BaseURL string
	// APIKey is sent as a bearer token (empty: none, for local servers).
	APIKey string
	// Model is the transcription model, e.g. whisper-1.
	Model string
	// Timeout bounds each attempt.
	Timeout time.Duration
	// Concurrency is the most requests in flight at once, over every caller of the client.
	Concurrency int
	// MaxRetries is how many times a failed attempt is retried (0: never).
	MaxRetries int
	// BackoffBase is the first retry's delay without Retry-After (doubling each time, with
	// jitter); BackoffMax caps it and any Retry-After.
	BackoffBase, BackoffMax time.Duration
}

// Request is one window to transcribe.
type Request struct {
	// Audio is the whole file; Filename names its type (window.wav, window.webm, window.ogg).
	Audio    []byte
	Filename string
	// Language is an ISO-639-1 hint ("" lets the model detect it).
	Language string
	// Prompt is the previous window's tail, for continuity.
	Prompt string
}

// Segment is one verbose_json segment.
type Segment struct {
	Start, End       float64
	Text             string
	AvgLogprob       float64
	NoSpeechProb     float64
	CompressionRatio float64
}

// Response is the API's verbose_json answer.
type Response struct {
	Text     string
	Language string
	Duration float64
	Segments []Segment
}

// Errors. Every failure of Transcribe wraps one of these (or is the caller's context error).
var (
	// ErrTooLarge: the file is over MaxFileBytes; nothing was sent.
	ErrTooLarge = errors.New("whisper: audio file over the 25 MB limit")
	// ErrTimeout: the last attempt ran out of time.
	ErrTimeout = errors.New("whisper: request timed out")
	// ErrMalformed: the server answered 2xx with a body that is not a transcription.
	ErrMalformed = errors.New("whisper: malformed response")
	// ErrRejected: the server refused the request (4xx other than 429); retrying cannot help.
	ErrRejected = errors.New("whisper: request rejected")
	// ErrUnavailable: the server kept failing (429, 5xx, network) until the retries ran out.
	ErrUnavailable = errors.New("whisper: service unavailable")
)

// Observer is told about every attempt: its outcome ("200", "429", "500", "timeout",
// "network", "malformed") and how long it took. Metrics implement it.
type Observer interface {
	Attempt(status string, latency time.Duration)
}

type nopObserver struct{}

func (nopObserver) Attempt(string, time.Duration) {}

// Client transcribes audio. It is safe for concurrent use.
type Client struct {
	cfg   Config
	url   string
	http  *http.Client
	sem   chan struct{}
	obs   Observer
	sleep func(ctx context.Context, d time.Duration) error
	jit   func() float64
}

// Option changes a Client.
type Option func(*Client)

// WithObserver reports every attempt to o.
func WithObserver(o Observer) Option { return func(c *Client) { c.obs = o } }

// WithSleep replaces the backoff wait (tests record the delays instead of waiting them out).
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(c *Client) { c.sleep = sleep }
}

// WithJitter replaces the random factor in [0, 1) applied to computed backoffs.
func WithJitter(f func() float64) Option { return func(c *Client) { c.jit = f } }

// WithHTTPClient replaces the HTTP client.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// New returns a client for cfg.
func New(cfg Config, opts ...Option) *Client {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 500 * time.Millisecond
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 20 * time.Second
	}
	// Keep a connection per request that may be in flight: the default keeps 100 idle
	// connections in all, so past 100 groups every window would dial the server anew (windows
	// of many groups close together, and each dial costs the window's latency).
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = cfg.Concurrency
	tr.MaxIdleConnsPerHost = cfg.Concurrency
	c := &Client{
		cfg:   cfg,
		url:   strings.TrimRight(cfg.BaseURL, "/") + "/audio/transcriptions",
		http:  &http.Client{Transport: tr},
		sem:   make(chan struct{}, cfg.Concurrency),
		obs:   nopObserver{},
		sleep: retry.Sleep,
		jit:   rand.Float64,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Transcribe sends req, retrying as configured. It waits for a concurrency slot for each attempt
// (not during backoff) and gives up when ctx ends. Once it returns nothing reads req.Audio any
// more, so the caller may reuse (or zero) it at once.
func (c *Client) Transcribe(ctx context.Context, req Request) (Response, error) {
	if len(req.Audio) > MaxFileBytes {
		return Response{}, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(req.Audio))
	}
	form, err := newForm(req, c.cfg.Model)
	if err != nil {
		return Response{}, err
	}
	for attempt := 0; ; attempt++ {
		resp, retryAfter, err := c.attempt(ctx, form)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return Response{}, ctx.Err()
		}
		if !retryable(err) || attempt >= c.cfg.MaxRetries {
			return Response{}, err
		}
		delay := c.backoff(attempt, retryAfter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
			return Response{}, err // no time left to wait for the server
		}
		if err := c.sleep(ctx, delay); err != nil {
			return Response{}, err
		}
	}
}

// form is a request's multipart/form-data body in three parts: what comes before the file's
// bytes (the file part's header), the file itself (the caller's buffer, not copied), and the
// other fields after it, as go-openai writes them (file, model, prompt, response_format,
// language).
type form struct {
	head, audio, tail []byte
	contentType       string
}

func newForm(req Request, model string) (form, error) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	if _, err := w.CreateFormFile("file", path.Base(req.Filename)); err != nil {
		return form{}, err
	}
	f := form{head: bytes.Clone(b.Bytes()), audio: req.Audio, contentType: w.FormDataContentType()}
	b.Reset()
	fields := [][2]string{{"model", model}, {"prompt", req.Prompt}, {"response_format", string(openai.AudioResponseFormatVerboseJSON)}, {"language", req.Language}}
	for _, kv := range fields {
		if kv[1] == "" {
			continue
		}
		if err := w.WriteField(kv[0], kv[1]); err != nil {
			return form{}, err
		}
	}
	if err := w.Close(); err != nil {
		return form{}, err
	}
	f.tail = bytes.Clone(b.Bytes())
	return f, nil
}

func (f form) size() int64 { return int64(len(f.head) + len(f.audio) + len(f.tail)) }

// formBody reads a form once. The HTTP transport may go on reading (or closing) a request body
// after the call returned, when the server answered before reading all of it: detach ends the
// body's access to the caller's audio, after which every Read fails.
type formBody struct {
	mu sync.Mutex
	r  io.Reader // nil once detached
}

var errDetached = errors.New("whisper: request body read after the call ended")

func (f form) body() *formBody {
	return &formBody{r: io.MultiReader(bytes.NewReader(f.head), bytes.NewReader(f.audio), bytes.NewReader(f.tail))}
}

func (b *formBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.r == nil {
		return 0, errDetached
	}
	return b.r.Read(p)
}

func (b *formBody) Close() error {
	b.detach()
	return nil
}

// detach returns once no Read is in progress; none reads the audio afterwards.
func (b *formBody) detach() {
	b.mu.Lock()
	b.r = nil
	b.mu.Unlock()
}

// backoff is the wait before retry number attempt+1: the server's Retry-After when it gave one,
// else BackoffBase*2^attempt scaled by a jitter factor in [0.5, 1.5); both capped by BackoffMax.
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	return retry.Backoff{Base: c.cfg.BackoffBase, Max: c.cfg.BackoffMax}.Delay(attempt, retryAfter, c.jit())
}

// statusError is a failed HTTP answer.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string { return fmt.Sprintf("whisper: HTTP %d: %v", e.code, e.err) }
func (e *statusError) Unwrap() []error {
	switch {
	case e.code == http.StatusRequestTimeout, e.code == http.StatusConflict,
		e.code == http.StatusTooManyRequests, e.code >= 500:
		return []error{ErrUnavailable, e.err}
	}
	return []error{ErrRejected, e.err}
}

func retryable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout)
}

// attempt makes one request within a concurrency slot.
func (c *Client) attempt(ctx context.Context, f form) (Response, time.Duration, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return Response{}, 0, ctx.Err()
	}
	defer func() { <-c.sem }()

	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	body := f.body()
	defer func() {
		cancel()
		body.detach() // the caller's audio is not read after Transcribe returns
	}()
	hreq, err := http.NewRequestWithContext(actx, http.MethodPost, c.url, body)
	if err != nil {
		body.Close()
		return Response{}, 0, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	hreq.ContentLength = f.size()
	hreq.Header.Set("Content-Type", f.contentType)
	hreq.Header.Set("Accept", "application/json")
	if c.cfg.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	start := time.Now()
	resp, err := c.http.Do(hreq)
	if err != nil {
		latency := time.Since(start)
		switch {
		case ctx.Err() != nil:
			return Response{}, 0, ctx.Err()
		case errors.Is(actx.Err(), context.DeadlineExceeded):
			c.obs.Attempt("timeout", latency)
			return Response{}, 0, fmt.Errorf("%w after %v", ErrTimeout, c.cfg.Timeout)
		default: // refused, reset, closed early: the server may do better next time
			c.obs.Attempt("network", latency)
			return Response{}, 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	defer resp.Body.Close()
	retryAfter := retry.After(resp.Header, time.Now())
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		latency := time.Since(start)
		if rerr != nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
			c.obs.Attempt("timeout", latency)
			return Response{}, 0, fmt.Errorf("%w after %v", ErrTimeout, c.cfg.Timeout)
		}
		c.obs.Attempt(strconv.Itoa(resp.StatusCode), latency)
		return Response{}, retryAfter, &statusError{code: resp.StatusCode, err: errors.New(errorMessage(raw, resp.Status))}
	}
	var out openai.AudioResponse
	err = json.NewDecoder(io.LimitReader(resp.Body, maxAnswerBody)).Decode(&out)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBody)) // keep the connection reusable
	latency := time.Since(start)
	switch {
	case err == nil:
		c.obs.Attempt(strconv.Itoa(resp.StatusCode), latency)
		return convert(out), 0, nil
	case ctx.Err() != nil:
		return Response{}, 0, ctx.Err()
	case errors.Is(actx.Err(), context.DeadlineExceeded):
		c.obs.Attempt("timeout", latency)
		return Response{}, 0, fmt.Errorf("%w after %v", ErrTimeout, c.cfg.Timeout)
	default:
		// The server answered, but not with a transcription.
		c.obs.Attempt("malformed", latency)
		return Response{}, 0, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
}

// Limits on what is read of an answer.
const (
	maxErrorBody  = 64 << 10
	maxAnswerBody = 16 << 20
)

// errorMessage is the API error's message in raw (its JSON error shape), else the HTTP status.
func errorMessage(raw []byte, status string) string {
	var er openai.ErrorResponse
	if json.Unmarshal(raw, &er) == nil && er.Error != nil && er.Error.Message != "" {
		return er.Error.Message
	}
	return status
}

func convert(r openai.AudioResponse) Response {
	out := Response{Text: r.Text, Language: r.Language, Duration: r.Duration}
	for _, s := range r.Segments {
		out.Segments = append(out.Segments, Segment{
			Start: s.Start, End: s.End, Text: s.Text,
			AvgLogprob: s.AvgLogprob, NoSpeechProb: s.NoSpeechProb, CompressionRatio: s.CompressionRatio,
		})
	}
	return out
}
