package openaitest

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"testing"
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
