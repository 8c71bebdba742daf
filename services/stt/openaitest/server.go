// Package openaitest is a local HTTP server that speaks the OpenAI audio transcription API
// (POST /v1/audio/transcriptions) for tests, since the real service cannot be reached from them.
//
// It checks a request the way the API does, field by field: bearer key, multipart/form-data,
// the "file" part (a supported extension, at most 25 MB, and, for WAV, WebM and Ogg, a complete
// valid file, checked with audio.Inspect), "model" among the served models, "response_format"
// (json, text, srt, verbose_json, vtt; verbose_json only for whisper-1), "language" (ISO-639-1),
// "prompt", "temperature" (0 to 1), "timestamp_granularities[]" (only with verbose_json), and no
// unknown or repeated fields. Refusals carry the API's error JSON and status. Accepted requests
// are answered from a script of Replies (then from a default responder) with injectable latency,
// status codes, Retry-After headers, hangs and malformed bodies; verbose_json answers have the
// API's shape (task, language, duration, text, segments with avg_logprob, no_speech_prob, ...).
package openaitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classwaves/classwaves/services/stt/audio"
)

// MaxFileBytes is the API's file limit.
const MaxFileBytes = 25 << 20

// Request is an accepted transcription request, as the server parsed it.
type Request struct {
	Model                  string
	Language               string
	Prompt                 string
	ResponseFormat         string
	Temperature            string
	TimestampGranularities []string
	Filename               string
	// Audio is a copy of the uploaded file; Info what audio.Inspect found in it (zero for
	// formats it does not read, such as mp3).
	Audio []byte
	Info  audio.Info
	// Authorization is the header as sent.
	Authorization string
	// Seq is the request's place among the accepted requests, from 1.
	Seq int
	// Received is when the request reached the server (before its body was read); Answered when
	// the server finished writing its answer (zero while it has not, or when the client went
	// away first). Answered-Received is the server's share of a call, which load tests subtract
	// from end-to-end times.
	Received, Answered time.Time
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
	// Body, when set, is sent verbatim (malformed JSON, an HTML error page).
	Body string
	// Response is the transcription (nil: the default responder's).
	Response *Verbose
}

// Verbose is the verbose_json answer.
type Verbose struct {
	Task     string    `json:"task"`
	Language string    `json:"language"`
	Duration float64   `json:"duration"`
	Text     string    `json:"text"`
	Segments []Segment `json:"segments"`
}

// Segment is a verbose_json segment.
type Segment struct {
	ID               int     `json:"id"`
	Seek             int     `json:"seek"`
	Start            float64 `json:"start"`
	End              float64 `json:"end"`
	Text             string  `json:"text"`
	Tokens           []int   `json:"tokens"`
	Temperature      float64 `json:"temperature"`
	AvgLogprob       float64 `json:"avg_logprob"`
	CompressionRatio float64 `json:"compression_ratio"`
	NoSpeechProb     float64 `json:"no_speech_prob"`
}

// Said returns a verbose answer of one confident segment of text spanning dur seconds.
func Said(text string, dur float64) *Verbose {
	return &Verbose{
		Task: "transcribe", Language: "english", Duration: dur, Text: text,
		Segments: []Segment{{
			ID: 0, Start: 0, End: dur, Text: " " + text, Tokens: []int{50364, 400, 50464},
			AvgLogprob: -0.2, CompressionRatio: 1.2, NoSpeechProb: 0.01,
		}},
	}
}

// Server is the fake API. Its URL is the base URL to configure clients with ("http://host/v1").
type Server struct {
	URL string
	// APIKey, when set, must be sent as "Authorization: Bearer <APIKey>".
	APIKey string
	// Models are the models served (default whisper-1, gpt-4o-transcribe,
	// gpt-4o-mini-transcribe).
	Models []string
	// DiscardAudio drops each request's audio once checked and answered by the responder,
	// instead of keeping it in Requests (for load tests). The responder's Request.Audio is then
	// valid only during the call: its buffer serves later requests.
	DiscardAudio bool

	srv *httptest.Server

	mu          sync.Mutex
	script      []Reply
	respond     func(Request) Reply
	requests    []Request
	refusals    int
	inflight    int
	maxInflight int
}

// New starts a server, closed when t ends.
func New(t testing.TB) *Server {
	s := &Server{Models: []string{"whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/v1"
	t.Cleanup(s.srv.Close)
	return s
}

// Script queues replies for the next requests, in order.
func (s *Server) Script(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, replies...)
}

// Respond sets the responder for requests the script does not cover (default: Said("window N")
// for the Nth request, over the file's duration).
func (s *Server) Respond(fn func(Request) Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.respond = fn
}

// Requests returns the accepted requests so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Refusals counts requests refused as invalid (4xx from the checks, not scripted answers).
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

func (s *Server) refuse(w http.ResponseWriter, status int, typ, code, param, msg string) {
	s.mu.Lock()
	s.refusals++
	s.mu.Unlock()
	writeError(w, status, typ, code, param, msg)
}

var (
	fileExtensions = []string{"flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"}
	formats        = []string{"json", "text", "srt", "verbose_json", "vtt"}
	languageRE     = regexp.MustCompile(`^[a-z]{2}$`)
	knownFields    = []string{"file", "model", "language", "prompt", "response_format", "temperature",
		"timestamp_granularities[]", "chunking_strategy", "include[]", "stream"}
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	if r.Method != http.MethodPost || r.URL.Path != "/v1/audio/transcriptions" {
		s.refuse(w, http.StatusNotFound, "invalid_request_error", "unknown_url", "",
			fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path))
		return
	}
	auth := r.Header.Get("Authorization")
	if s.APIKey != "" && auth != "Bearer "+s.APIKey {
		s.refuse(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "",
			"Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.")
		return
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		s.refuse(w, http.StatusBadRequest, "invalid_request_error", "", "",
			"Invalid Content-Type header (expected multipart/form-data with a boundary)")
		return
	}
	// With DiscardAudio (load tests) the body and the file are read into recycled buffers,
	// returned once the request is answered: a test server that allocates a window-sized
	// buffer or two per request would take the cores from the service it is there to test.
	s.mu.Lock()
	discard := s.DiscardAudio
	s.mu.Unlock()
	newBuf := func() *bytes.Buffer { return new(bytes.Buffer) }
	var pooled []*bytes.Buffer
	release := func() {
		for _, b := range pooled {
			buffers.put(b)
		}
		pooled = nil
	}
	defer release()
	if discard {
		newBuf = func() *bytes.Buffer {
			b := buffers.get()
			pooled = append(pooled, b)
			return b
		}
	}
	buf := newBuf()
	if r.ContentLength > 0 && r.ContentLength <= MaxFileBytes+(1<<20) {
		buf.Grow(int(r.ContentLength) + 1) // read in one allocation
	}
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, MaxFileBytes+(1<<20)+1)); err != nil {
		return
	}
	body := buf.Bytes()
	if len(body) > MaxFileBytes+(1<<20) {
		s.refuse(w, http.StatusRequestEntityTooLarge, "server_error", "", "",
			fmt.Sprintf("Maximum content size limit (%d) exceeded (%d bytes read)", MaxFileBytes, len(body)))
		return
	}
	req, status, param, msg := parseForm(body, params["boundary"], newBuf)
	if msg == "" {
		msg, param, status = s.check(&req)
	}
	if msg != "" {
		s.refuse(w, status, "invalid_request_error", "", param, msg)
		return
	}
	req.Authorization = auth
	req.Received = received

	s.mu.Lock()
	n := len(s.requests) + 1
	req.Seq = n
	s.inflight++
	s.maxInflight = max(s.maxInflight, s.inflight)
	var reply Reply
	switch {
	case len(s.script) > 0:
		reply, s.script = s.script[0], s.script[1:]
	case s.respond != nil:
		reply = s.respond(req)
	default:
		reply = Reply{Response: Said(fmt.Sprintf("window %d", n), req.Info.Duration.Seconds())}
	}
	if discard {
		req.Audio = nil
	}
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	release() // before the answer's delay: nothing reads the body or the file any more
	answered := s.answer(w, r.Context(), req, reply)
	// Answered is recorded before the answer (still in the handler's buffer) is flushed, so it
	// is known by the time the client has the answer.
	s.mu.Lock()
	s.inflight--
	if answered {
		s.requests[n-1].Answered = time.Now()
	}
	s.mu.Unlock()
	if f, ok := w.(http.Flusher); ok && answered {
		f.Flush()
	}
}

// buffers recycles request bodies and files under DiscardAudio. It is a free list, not a
// sync.Pool: load tests send windows in waves, and the collections between two waves would empty
// a pool, so that every wave allocated (and page-faulted in) its buffers anew.
var buffers bufferList

// maxFreeBuffers bounds the free list (a thousand in-flight windows, body and file each).
const maxFreeBuffers = 2048

type bufferList struct {
	mu   sync.Mutex
	free []*bytes.Buffer
}

func (l *bufferList) get() *bytes.Buffer {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		return b
	}
	return new(bytes.Buffer)
}

func (l *bufferList) put(b *bytes.Buffer) {
	b.Reset()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.free) < maxFreeBuffers {
		l.free = append(l.free, b)
	}
}

// parseForm reads the multipart body into a Request, the file into a buffer from newBuf; msg is
// empty when it is well-formed.
func parseForm(body []byte, boundary string, newBuf func() *bytes.Buffer) (req Request, status int, param, msg string) {
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	seen := map[string]bool{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return req, http.StatusBadRequest, "", "Could not parse multipart form"
		}
		name := p.FormName()
		if !slices.Contains(knownFields, name) {
			return req, http.StatusBadRequest, name, fmt.Sprintf("Unrecognized request argument supplied: %s", name)
		}
		if seen[name] && !strings.HasSuffix(name, "[]") {
			return req, http.StatusBadRequest, name, fmt.Sprintf("Duplicate form field: %s", name)
		}
		seen[name] = true
		var val []byte
		if name == "file" {
			fb := newBuf()
			fb.Grow(len(body)) // the file is most of the body: one allocation
			_, err = fb.ReadFrom(p)
			val = fb.Bytes()
		} else {
			val, err = io.ReadAll(p)
		}
		if err != nil {
			return req, http.StatusBadRequest, "", "Could not parse multipart form"
		}
		switch name {
		case "file":
			if p.FileName() == "" {
				return req, http.StatusBadRequest, "file", "The file field must be a file upload with a filename"
			}
			req.Filename, req.Audio = p.FileName(), val
		case "model":
			req.Model = string(val)
		case "language":
			req.Language = string(val)
		case "prompt":
			req.Prompt = string(val)
		case "response_format":
			req.ResponseFormat = string(val)
		case "temperature":
			req.Temperature = string(val)
		case "timestamp_granularities[]":
			req.TimestampGranularities = append(req.TimestampGranularities, string(val))
		}
	}
	if !seen["file"] {
		return req, http.StatusBadRequest, "file", "1 validation error for Request\nbody -> file\n  field required (type=value_error.missing)"
	}
	if !seen["model"] {
		return req, http.StatusBadRequest, "model", "1 validation error for Request\nbody -> model\n  field required (type=value_error.missing)"
	}
	return req, 0, "", ""
}

// check validates the fields' values.
func (s *Server) check(req *Request) (msg, param string, status int) {
	if !slices.Contains(s.Models, req.Model) {
		return fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", req.Model), "model", http.StatusNotFound
	}
	if req.ResponseFormat == "" {
		req.ResponseFormat = "json"
	}
	if !slices.Contains(formats, req.ResponseFormat) {
		return fmt.Sprintf("'%s' is not one of %q - 'response_format'", req.ResponseFormat, formats), "response_format", http.StatusBadRequest
	}
	if req.ResponseFormat != "json" && req.ResponseFormat != "text" && req.Model != "whisper-1" {
		return fmt.Sprintf("response_format '%s' is not compatible with model '%s'. Use 'json' or 'text' instead.", req.ResponseFormat, req.Model), "response_format", http.StatusBadRequest
	}
	if req.Language != "" && !languageRE.MatchString(req.Language) {
		return fmt.Sprintf("Invalid language '%s'. Language parameter must be specified in ISO-639-1 format.", req.Language), "language", http.StatusBadRequest
	}
	if req.Temperature != "" {
		if t, err := strconv.ParseFloat(req.Temperature, 64); err != nil || t < 0 || t > 1 {
			return "temperature must be a number between 0 and 1", "temperature", http.StatusBadRequest
		}
	}
	for _, g := range req.TimestampGranularities {
		if g != "word" && g != "segment" {
			return fmt.Sprintf("'%s' is not one of ['word', 'segment'] - 'timestamp_granularities.0'", g), "timestamp_granularities", http.StatusBadRequest
		}
		if req.ResponseFormat != "verbose_json" {
			return "timestamp_granularities requires response_format verbose_json", "timestamp_granularities", http.StatusBadRequest
		}
	}
	ext := strings.TrimPrefix(strings.ToLower(path.Ext(req.Filename)), ".")
	if !slices.Contains(fileExtensions, ext) {
		return fmt.Sprintf("Invalid file format. Supported formats: %q", fileExtensions), "file", http.StatusBadRequest
	}
	if len(req.Audio) > MaxFileBytes {
		return fmt.Sprintf("Maximum content size limit (%d) exceeded (%d bytes read)", MaxFileBytes, len(req.Audio)), "file", http.StatusRequestEntityTooLarge
	}
	switch ext {
	case "wav", "webm", "ogg", "oga":
		want := ext
		if ext == "oga" {
			want = "ogg"
		}
		info, err := audio.Inspect(req.Audio)
		if err != nil || info.Format.Extension() != want {
			return "Audio file might be corrupted or unsupported", "file", http.StatusBadRequest
		}
		req.Info = info
	}
	return "", "", 0
}

// answer writes reply; it reports false when nothing was written (a hang, or the client went
// away during the delay).
func (s *Server) answer(w http.ResponseWriter, ctx context.Context, req Request, reply Reply) bool {
	if reply.Hang {
		<-ctx.Done()
		return false
	}
	if reply.Delay > 0 {
		t := time.NewTimer(reply.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		}
	}
	if reply.RetryAfter != "" {
		w.Header().Set("Retry-After", reply.RetryAfter)
	}
	if reply.RetryAfterMS != "" {
		w.Header().Set("retry-after-ms", reply.RetryAfterMS)
	}
	status := reply.Status
	if status == 0 {
		status = http.StatusOK
	}
	if reply.Body != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, reply.Body)
		return true
	}
	if status >= 400 {
		msg := reply.ErrorMessage
		if msg == "" {
			msg = http.StatusText(status)
		}
		typ := "server_error"
		if status == http.StatusTooManyRequests {
			typ = "requests"
		}
		writeError(w, status, typ, "", "", msg)
		return true
	}
	v := reply.Response
	if v == nil {
		v = Said("", req.Info.Duration.Seconds())
	}
	switch req.ResponseFormat {
	case "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, v.Text+"\n")
	case "verbose_json":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	case "json":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"text": v.Text})
	default: // srt, vtt
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, "1\n00:00:00,000 --> 00:00:%02d,000\n%s\n", int(v.Duration), v.Text)
	}
	return true
}
