package whisper_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/services/stt/openaitest"
	"github.com/classwaves/classwaves/services/stt/whisper"
)

// recorder is an Observer and a sleep that records instead of waiting.
type recorder struct {
	mu       sync.Mutex
	statuses map[string]int
	delays   []time.Duration
}

func (r *recorder) Attempt(status string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.statuses == nil {
		r.statuses = map[string]int{}
	}
	r.statuses[status]++
}

func (r *recorder) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.delays = append(r.delays, d)
	r.mu.Unlock()
	return ctx.Err()
}

func wavWindow(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/speech_8k_u8.wav")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newClient(t testing.TB, srv *openaitest.Server, mod func(*whisper.Config)) (*whisper.Client, *recorder) {
	cfg := whisper.Config{
		BaseURL: srv.URL, APIKey: "sk-test", Model: "whisper-1",
		Timeout: 10 * time.Second, Concurrency: 4, MaxRetries: 3,
		BackoffBase: 500 * time.Millisecond, BackoffMax: 20 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	rec := &recorder{}
	c := whisper.New(cfg, whisper.WithObserver(rec), whisper.WithSleep(rec.sleep), whisper.WithJitter(func() float64 { return 0.5 }))
	return c, rec
}

func newServer(t testing.TB) *openaitest.Server {
	srv := openaitest.New(t)
	srv.APIKey = "sk-test"
	return srv
}

func TestTranscribeSendsTheForm(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	srv.Script(openaitest.Reply{Response: &openaitest.Verbose{
		Task: "transcribe", Language: "english", Duration: 2.7, Text: "Plants need water.",
		Segments: []openaitest.Segment{{Start: 0.5, End: 1.6, Text: " Plants need water.", AvgLogprob: -0.25, NoSpeechProb: 0.02, CompressionRatio: 0.9}},
	}})
	c, rec := newClient(t, srv, nil)
	audioFile := wavWindow(t)
	got, err := c.Transcribe(context.Background(), whisper.Request{
		Audio: audioFile, Filename: "window.wav", Language: "en", Prompt: "We talked about soil.",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := whisper.Response{
		Text: "Plants need water.", Language: "english", Duration: 2.7,
		Segments: []whisper.Segment{{Start: 0.5, End: 1.6, Text: " Plants need water.", AvgLogprob: -0.25, NoSpeechProb: 0.02, CompressionRatio: 0.9}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Transcribe mismatch (-want +got):\n%s", diff)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	gotForm := map[string]any{
		"model": r.Model, "language": r.Language, "prompt": r.Prompt, "response_format": r.ResponseFormat,
		"temperature": r.Temperature, "filename": r.Filename, "authorization": r.Authorization,
		"same audio": string(r.Audio) == string(audioFile), "duration": r.Info.Duration,
	}
	wantForm := map[string]any{
		"model": "whisper-1", "language": "en", "prompt": "We talked about soil.", "response_format": "verbose_json",
		"temperature": "", "filename": "window.wav", "authorization": "Bearer sk-test",
		"same audio": true, "duration": 2702500 * time.Microsecond,
	}
	if diff := cmp.Diff(wantForm, gotForm); diff != "" {
		t.Errorf("form mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"200": 1}, rec.statuses); diff != "" {
		t.Errorf("statuses mismatch (-want +got):\n%s", diff)
	}
}

func TestTranscribeFailures(t *testing.T) {
	t.Parallel()
	ok := openaitest.Reply{Response: openaitest.Said("hello", 2)}
	tests := []struct {
		name    string
		replies []openaitest.Reply
		mod     func(*whisper.Config)
		req     func(whisper.Request) whisper.Request
		// want is nil for success, else the error it must wrap.
		want         error
		wantStatuses map[string]int
		wantDelays   []time.Duration
	}{
		{
			name:         "429 honours Retry-After",
			replies:      []openaitest.Reply{{Status: 429, RetryAfter: "2"}, ok},
			wantStatuses: map[string]int{"429": 1, "200": 1},
			wantDelays:   []time.Duration{2 * time.Second},
		},
		{
			name:         "429 honours retry-after-ms first",
			replies:      []openaitest.Reply{{Status: 429, RetryAfter: "9", RetryAfterMS: "1500"}, ok},
			wantStatuses: map[string]int{"429": 1, "200": 1},
			wantDelays:   []time.Duration{1500 * time.Millisecond},
		},
		{
			name:         "Retry-After is capped",
			replies:      []openaitest.Reply{{Status: 503, RetryAfter: "3600"}, ok},
			wantStatuses: map[string]int{"503": 1, "200": 1},
			wantDelays:   []time.Duration{20 * time.Second},
		},
		{
			name:         "500s back off exponentially",
			replies:      []openaitest.Reply{{Status: 500}, {Status: 502, Body: "<html>Bad Gateway</html>"}, ok},
			wantStatuses: map[string]int{"500": 1, "502": 1, "200": 1},
			wantDelays:   []time.Duration{500 * time.Millisecond, time.Second},
		},
		{
			name:         "retries run out",
			replies:      []openaitest.Reply{{Status: 500}, {Status: 500}, {Status: 500}, {Status: 500}},
			want:         whisper.ErrUnavailable,
			wantStatuses: map[string]int{"500": 4},
			wantDelays:   []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second},
		},
		{
			name:         "400 is not retried",
			replies:      []openaitest.Reply{{Status: 400, ErrorMessage: "bad"}},
			want:         whisper.ErrRejected,
			wantStatuses: map[string]int{"400": 1},
		},
		{
			name:         "malformed JSON is not retried",
			replies:      []openaitest.Reply{{Body: `{"text": "hel`}},
			want:         whisper.ErrMalformed,
			wantStatuses: map[string]int{"malformed": 1},
		},
		{
			name:         "a hanging server times out each attempt",
			replies:      []openaitest.Reply{{Hang: true}, {Hang: true}},
			mod:          func(c *whisper.Config) { c.Timeout, c.MaxRetries = 50*time.Millisecond, 1 },
			want:         whisper.ErrTimeout,
			wantStatuses: map[string]int{"timeout": 2},
			wantDelays:   []time.Duration{500 * time.Millisecond},
		},
		{
			name:         "latency under the timeout is fine",
			replies:      []openaitest.Reply{{Delay: 30 * time.Millisecond, Response: openaitest.Said("hello", 2)}},
			wantStatuses: map[string]int{"200": 1},
		},
		{
			name:         "a wrong key is refused",
			mod:          func(c *whisper.Config) { c.APIKey = "sk-wrong" },
			want:         whisper.ErrRejected,
			wantStatuses: map[string]int{"401": 1},
		},
		{
			name:         "an unknown model is refused",
			mod:          func(c *whisper.Config) { c.Model = "whisper-9" },
			want:         whisper.ErrRejected,
			wantStatuses: map[string]int{"404": 1},
		},
		{
			name:         "a corrupt file is refused by the server",
			req:          func(r whisper.Request) whisper.Request { r.Audio = r.Audio[:100]; return r },
			want:         whisper.ErrRejected,
			wantStatuses: map[string]int{"400": 1},
		},
		{
			name: "over 25 MB is not sent",
			req: func(r whisper.Request) whisper.Request {
				r.Audio = make([]byte, whisper.MaxFileBytes+1)
				return r
			},
			want: whisper.ErrTooLarge,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t)
			srv.Script(tt.replies...)
			c, rec := newClient(t, srv, tt.mod)
			req := whisper.Request{Audio: wavWindow(t), Filename: "window.wav"}
			if tt.req != nil {
				req = tt.req(req)
			}
			_, err := c.Transcribe(context.Background(), req)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Transcribe error = %v, want %v", err, tt.want)
			}
			if diff := cmp.Diff(tt.wantStatuses, rec.statuses); diff != "" {
				t.Errorf("statuses mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantDelays, rec.delays); diff != "" {
				t.Errorf("delays mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTranscribeNetworkError(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c, rec := newClient(t, srv, func(c *whisper.Config) { c.BaseURL, c.MaxRetries = "http://127.0.0.1:1/v1", 1 })
	_, err := c.Transcribe(context.Background(), whisper.Request{Audio: wavWindow(t), Filename: "window.wav"})
	if !errors.Is(err, whisper.ErrUnavailable) {
		t.Fatalf("Transcribe error = %v, want ErrUnavailable", err)
	}
	if diff := cmp.Diff(map[string]int{"network": 2}, rec.statuses); diff != "" {
		t.Errorf("statuses mismatch (-want +got):\n%s", diff)
	}
}

func TestRetryAfterBeyondDeadlineGivesUp(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	srv.Script(openaitest.Reply{Status: 429, RetryAfter: "10"})
	c, rec := newClient(t, srv, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Transcribe(ctx, whisper.Request{Audio: wavWindow(t), Filename: "window.wav"})
	if !errors.Is(err, whisper.ErrUnavailable) {
		t.Fatalf("Transcribe error = %v, want ErrUnavailable", err)
	}
	if len(rec.delays) != 0 {
		t.Errorf("waited %v though the deadline comes first", rec.delays)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	srv.Respond(func(openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Delay: 30 * time.Millisecond, Response: openaitest.Said("x", 1)}
	})
	c, _ := newClient(t, srv, func(c *whisper.Config) { c.Concurrency = 2 })
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := c.Transcribe(context.Background(), whisper.Request{Audio: wavWindow(t), Filename: "window.wav"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := srv.MaxInFlight(); got != 2 {
		t.Errorf("server saw %d requests at once, want 2 (OPENAI_WHISPER_CONCURRENCY)", got)
	}
	if got := len(srv.Requests()); got != 8 {
		t.Errorf("server got %d requests, want 8", got)
	}
}

func TestServerRefusesWhatTheAPIRefuses(t *testing.T) {
	t.Parallel()
	// Requests go.openai would never send, checked against the fake directly so that its
	// field checks are known to bite.
	srv := newServer(t)
	tests := []struct {
		name   string
		do     func() (*http.Response, error)
		status int
	}{
		{"GET", func() (*http.Response, error) { return http.Get(srv.URL + "/audio/transcriptions") }, 404},
		{"JSON body", func() (*http.Response, error) {
			req, _ := http.NewRequest("POST", srv.URL+"/audio/transcriptions", nil)
			req.Header.Set("Authorization", "Bearer sk-test")
			req.Header.Set("Content-Type", "application/json")
			return http.DefaultClient.Do(req)
		}, 400},
	}
	for _, tt := range tests {
		resp, err := tt.do()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
	}
}

// lateReader is a transport that answers at once and reads the request body afterwards, as
// net/http's may when a server answers before reading the whole request.
type lateReader struct {
	read chan []byte
}

func (l *lateReader) RoundTrip(r *http.Request) (*http.Response, error) {
	go func() {
		time.Sleep(50 * time.Millisecond)
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		l.read <- b
	}()
	return &http.Response{StatusCode: 400, Status: "400 Bad Request", Header: http.Header{},
		Body: io.NopCloser(strings.NewReader(`{"error":{"message":"no","type":"invalid_request_error"}}`)), Request: r}, nil
}

// TestTranscribeLetsGoOfTheAudio: the caller recycles (and zeroes) the window's buffer as soon as
// Transcribe returns, so a transport that reads the body late must not see it any more.
func TestTranscribeLetsGoOfTheAudio(t *testing.T) {
	t.Parallel()
	lr := &lateReader{read: make(chan []byte, 1)}
	c := whisper.New(whisper.Config{BaseURL: "http://127.0.0.1:1/v1", Model: "whisper-1", Timeout: 5 * time.Second, Concurrency: 1},
		whisper.WithHTTPClient(&http.Client{Transport: lr}))
	audio := wavWindow(t)
	_, err := c.Transcribe(context.Background(), whisper.Request{Audio: audio, Filename: "window.wav"})
	if !errors.Is(err, whisper.ErrRejected) || !strings.Contains(err.Error(), "no") {
		t.Errorf("Transcribe error = %v, want ErrRejected with the API's message", err)
	}
	for i := range audio {
		audio[i] = 0xAA // the buffer now holds another window
	}
	if got := <-lr.read; bytes.Contains(got, []byte{0xAA, 0xAA, 0xAA, 0xAA}) {
		t.Errorf("the transport read %d bytes after Transcribe returned, among them the buffer's new content", len(got))
	}
}
