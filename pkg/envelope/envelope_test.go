package envelope

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/pkg/traceid"
)

func TestWriters(t *testing.T) {
	tests := []struct {
		name       string
		write      func(w http.ResponseWriter, r *http.Request)
		wantStatus int
		wantBody   map[string]any
	}{
		{
			name:       "success wraps data",
			write:      func(w http.ResponseWriter, r *http.Request) { Write(w, r, 200, json.RawMessage(`{"a":1}`)) },
			wantStatus: 200,
			wantBody:   map[string]any{"success": true, "data": map[string]any{"a": float64(1)}, "requestId": "t-1"},
		},
		{
			name:       "nil data becomes empty object",
			write:      func(w http.ResponseWriter, r *http.Request) { Write(w, r, 201, nil) },
			wantStatus: 201,
			wantBody:   map[string]any{"success": true, "data": map[string]any{}, "requestId": "t-1"},
		},
		{
			name: "error with details",
			write: func(w http.ResponseWriter, r *http.Request) {
				WriteError(w, r, 409, "SESSION_ALREADY_ENDED", "session already ended", map[string]string{"field": "x"})
			},
			wantStatus: 409,
			wantBody: map[string]any{"success": false, "requestId": "t-1", "error": map[string]any{
				"code": "SESSION_ALREADY_ENDED", "message": "session already ended",
				"details": []any{map[string]any{"field": "x"}},
			}},
		},
		{
			name:       "not found names the route",
			write:      NotFound,
			wantStatus: 404,
			wantBody: map[string]any{"success": false, "requestId": "t-1", "error": map[string]any{
				"code": "ROUTE_NOT_FOUND", "message": "Route GET /nope not found",
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/nope", nil)
			r = r.WithContext(traceid.NewContext(r.Context(), "t-1"))
			w := httptest.NewRecorder()
			tt.write(w, r)
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if got := w.Header().Get("Content-Type"); got != ContentType {
				t.Errorf("Content-Type = %q, want %q", got, ContentType)
			}
			var got map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q is not JSON: %v", w.Body.String(), err)
			}
			if diff := cmp.Diff(tt.wantBody, got); diff != "" {
				t.Errorf("body mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
