// Package whisper transcribes audio windows through the OpenAI audio transcription API
// (POST {OPENAI_BASE_URL}/audio/transcriptions, multipart form, verbose_json) with go-openai, so
// it works against OpenAI and any compatible server (whisper.cpp's server, speaches, vLLM).
//
// The Client adds what a classroom's worth of streams needs around the call: a global limit of
// concurrent requests (OPENAI_WHISPER_CONCURRENCY), a timeout per attempt
// (OPENAI_WHISPER_TIMEOUT_MS), retries with exponential backoff and jitter on 429, 5xx, timeouts
// and network errors that honour the server's Retry-After (or retry-after-ms), and the API's
// 25 MB file limit checked before anything is sent. Clean turns the answer into a transcript:
// see its doc for the confidence formula and the filters.
package whisper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"
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
	api   *openai.Client
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

// WithHTTPClient replaces the HTTP client (its Transport is wrapped to read Retry-After).
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) { c.api = newAPI(c.cfg, h) }
}

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
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = cfg.Concurrency
	c := &Client{
		cfg:   cfg,
		sem:   make(chan struct{}, cfg.Concurrency),
		obs:   nopObserver{},
		sleep: sleepCtx,
		jit:   rand.Float64,
	}
	c.api = newAPI(cfg, &http.Client{Transport: tr})
	for _, o := range opts {
		o(c)
	}
	return c
}

func newAPI(cfg Config, h *http.Client) *openai.Client {
	oc := openai.DefaultConfig(cfg.APIKey)
	oc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	base := h.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc := *h
	hc.Transport = retryAfterTransport{base: base}
	oc.HTTPClient = &hc
	return openai.NewClientWithConfig(oc)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Transcribe sends req, retrying as configured. It waits for a concurrency slot for each attempt
// (not during backoff) and gives up when ctx ends.
func (c *Client) Transcribe(ctx context.Context, req Request) (Response, error) {
	if len(req.Audio) > MaxFileBytes {
		return Response{}, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(req.Audio))
	}
	for attempt := 0; ; attempt++ {
		resp, retryAfter, err := c.attempt(ctx, req)
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

// backoff is the wait before retry number attempt+1: the server's Retry-After when it gave one,
// else BackoffBase*2^attempt scaled by a jitter factor in [0.5, 1.5); both capped by BackoffMax.
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, c.cfg.BackoffMax)
	}
	d := c.cfg.BackoffBase << min(attempt, 16)
	d = time.Duration(float64(d) * (0.5 + c.jit()))
	return min(d, c.cfg.BackoffMax)
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
func (c *Client) attempt(ctx context.Context, req Request) (Response, time.Duration, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return Response{}, 0, ctx.Err()
	}
	defer func() { <-c.sem }()

	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	info := &answerInfo{}
	actx = context.WithValue(actx, answerKey{}, info)
	start := time.Now()
	resp, err := c.api.CreateTranscription(actx, openai.AudioRequest{
		Model:    c.cfg.Model,
		FilePath: req.Filename,
		Reader:   bytes.NewReader(req.Audio),
		Prompt:   req.Prompt,
		Language: req.Language,
		Format:   openai.AudioResponseFormatVerboseJSON,
	})
	latency := time.Since(start)
	if err == nil {
		c.obs.Attempt(strconv.Itoa(info.status), latency)
		return convert(resp), 0, nil
	}
	var (
		apiErr *openai.APIError
		reqErr *openai.RequestError
		netErr net.Error
	)
	switch {
	case ctx.Err() != nil:
		return Response{}, 0, ctx.Err()
	case errors.Is(actx.Err(), context.DeadlineExceeded):
		c.obs.Attempt("timeout", latency)
		return Response{}, 0, fmt.Errorf("%w after %v", ErrTimeout, c.cfg.Timeout)
	case errors.As(err, &apiErr):
		c.obs.Attempt(strconv.Itoa(apiErr.HTTPStatusCode), latency)
		return Response{}, info.retryAfter, &statusError{code: apiErr.HTTPStatusCode, err: errors.New(apiErr.Message)}
	case errors.As(err, &reqErr):
		c.obs.Attempt(strconv.Itoa(reqErr.HTTPStatusCode), latency)
		return Response{}, info.retryAfter, &statusError{code: reqErr.HTTPStatusCode, err: reqErr.Err}
	case info.status >= 200 && info.status < 300:
		// The server answered, but not with a transcription.
		c.obs.Attempt("malformed", latency)
		return Response{}, 0, fmt.Errorf("%w: %v", ErrMalformed, err)
	case errors.As(err, &netErr), info.status == 0:
		c.obs.Attempt("network", latency)
		return Response{}, 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	default:
		c.obs.Attempt("error", latency)
		return Response{}, 0, fmt.Errorf("%w: %v", ErrRejected, err)
	}
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

// answerInfo receives what go-openai does not surface: the HTTP status and the Retry-After of
// the answer.
type answerInfo struct {
	status     int
	retryAfter time.Duration
}

type answerKey struct{}

// retryAfterTransport records each answer's status and Retry-After (retry-after-ms, then
// Retry-After in seconds or as an HTTP date) in the request's answerInfo.
type retryAfterTransport struct{ base http.RoundTripper }

func (t retryAfterTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if info, ok := r.Context().Value(answerKey{}).(*answerInfo); ok {
		info.status = resp.StatusCode
		info.retryAfter = parseRetryAfter(resp.Header, time.Now())
	}
	return resp, nil
}

func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("retry-after-ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}
