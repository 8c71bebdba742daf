package openaitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

type field struct{ name, value string }

// post sends a multipart form built from fields; a field named "file" uploads value as the
// file's bytes under filename.
func post(t *testing.T, s *Server, filename string, fields ...field) (int, map[string]any) {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, f := range fields {
		if f.name == "file" {
			fw, err := w.CreateFormFile("file", filename)
			if err != nil {
				t.Fatal(err)
			}
			fw.Write([]byte(f.value))
			continue
		}
		w.WriteField(f.name, f.value)
	}
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/audio/transcriptions", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer sk-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestFieldChecks(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.APIKey = "sk-test"
	wav, err := os.ReadFile("../testdata/speech_8k_u8.wav")
	if err != nil {
		t.Fatal(err)
	}
	file := field{"file", string(wav)}
	model := field{"model", "whisper-1"}
	tests := []struct {
		name     string
		filename string
		fields   []field
		status   int
		msg      string // a substring of error.message
	}{
		{"minimal", "a.wav", []field{file, model}, 200, ""},
		{"verbose with granularities", "a.wav", []field{file, model, {"response_format", "verbose_json"}, {"timestamp_granularities[]", "segment"}, {"language", "en"}, {"temperature", "0.2"}, {"prompt", "p"}}, 200, ""},
		{"no file", "a.wav", []field{model}, 400, "file"},
		{"no model", "a.wav", []field{file}, 400, "model"},
		{"unknown model", "a.wav", []field{file, {"model", "whisper-2"}}, 404, "does not exist"},
		{"unknown field", "a.wav", []field{file, model, {"speed", "2"}}, 400, "Unrecognized request argument supplied: speed"},
		{"duplicate field", "a.wav", []field{file, model, model}, 400, "Duplicate"},
		{"bad format", "a.wav", []field{file, model, {"response_format", "xml"}}, 400, "response_format"},
		{"verbose_json on gpt-4o", "a.wav", []field{file, {"model", "gpt-4o-transcribe"}, {"response_format", "verbose_json"}}, 400, "not compatible"},
		{"bad language", "a.wav", []field{file, model, {"language", "english"}}, 400, "ISO-639-1"},
		{"bad temperature", "a.wav", []field{file, model, {"temperature", "1.5"}}, 400, "temperature"},
		{"granularities without verbose_json", "a.wav", []field{file, model, {"timestamp_granularities[]", "word"}}, 400, "verbose_json"},
		{"unsupported extension", "a.txt", []field{file, model}, 400, "Invalid file format"},
		{"corrupt audio", "a.wav", []field{{"file", string(wav[:60])}, model}, 400, "corrupted"},
		{"wrong container for the extension", "a.webm", []field{file, model}, 400, "corrupted"},
	}
	for _, tt := range tests {
		status, body := post(t, s, tt.filename, tt.fields...)
		if status != tt.status {
			t.Errorf("%s: status %d, want %d (%v)", tt.name, status, tt.status, body)
			continue
		}
		if tt.msg != "" {
			e, _ := body["error"].(map[string]any)
			if msg, _ := e["message"].(string); !strings.Contains(msg, tt.msg) {
				t.Errorf("%s: error %v, want a message with %q", tt.name, body, tt.msg)
			}
		}
	}
	if got := len(s.Requests()); got != 2 {
		t.Errorf("%d requests accepted, want 2", got)
	}
}

// TestRequestTimesAndDiscardedAudio: accepted requests are numbered and dated (received before
// the answer's delay, answered after it), and with DiscardAudio the responder still sees the
// audio while Requests no longer holds it.
func TestRequestTimesAndDiscardedAudio(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.DiscardAudio = true
	wav, err := os.ReadFile("../testdata/speech_8k_u8.wav")
	if err != nil {
		t.Fatal(err)
	}
	const delay = 30 * time.Millisecond
	var seen []int
	s.Respond(func(r Request) Reply {
		seen = append(seen, len(r.Audio)) // called under the server's lock: no race
		return Reply{Delay: delay, Response: Said(fmt.Sprintf("request %d", r.Seq), 1)}
	})
	s.Script(Reply{Hang: true}) // the first request hangs until the client gives up
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/audio/transcriptions", formBody(t, wav))
	req.Header.Set("Content-Type", formType)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a hanging request was answered")
	}
	for range 2 {
		status, body := post(t, s, "a.wav", field{"file", string(wav)}, field{"model", "whisper-1"})
		if status != 200 {
			t.Fatalf("status %d: %v", status, body)
		}
	}
	reqs := s.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	if !reqs[0].Answered.IsZero() {
		t.Errorf("the hung request has Answered %v, want zero", reqs[0].Answered)
	}
	for i, r := range reqs {
		if r.Seq != i+1 {
			t.Errorf("request %d: Seq %d, want %d", i, r.Seq, i+1)
		}
		if r.Audio != nil {
			t.Errorf("request %d kept %d bytes of audio with DiscardAudio", r.Seq, len(r.Audio))
		}
		if r.Received.IsZero() {
			t.Errorf("request %d: Received is zero", r.Seq)
		}
		if i > 0 && r.Answered.Sub(r.Received) < delay {
			t.Errorf("request %d: answered %v after it was received, want at least the %v delay", r.Seq, r.Answered.Sub(r.Received), delay)
		}
	}
	if len(seen) != 2 || seen[0] != len(wav) || seen[1] != len(wav) {
		t.Errorf("the responder saw audio of %v bytes, want the %d-byte file twice", seen, len(wav))
	}
}

const formBoundary = "openaitest-boundary"

var formType = "multipart/form-data; boundary=" + formBoundary

// formBody is a minimal valid form: the WAV file and the model.
func formBody(t *testing.T, wav []byte) *bytes.Buffer {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	if err := w.SetBoundary(formBoundary); err != nil {
		t.Fatal(err)
	}
	fw, _ := w.CreateFormFile("file", "a.wav")
	fw.Write(wav)
	w.WriteField("model", "whisper-1")
	w.Close()
	return &body
}
