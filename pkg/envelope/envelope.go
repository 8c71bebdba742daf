// Package envelope writes the seed's REST response envelope, the one shape every /api response has:
//
//	{"success":true,"data":{...},"requestId":"..."}
//	{"success":false,"error":{"code":"SESSION_NOT_FOUND","message":"...","details":[...]},"requestId":"..."}
//
// The gateway wraps grpc-gateway answers in it; plain HTTP handlers (404s, the realtime edge's
// errors, probes) use Write and WriteError directly so that every edge answers alike.
package envelope

import (
	"encoding/json"
	"net/http"

	"github.com/classwaves/classwaves/pkg/traceid"
)

// Success is the envelope of a successful answer. Data is already-marshalled JSON so that protobuf
// messages keep their protojson form (camelCase, unpopulated fields emitted).
type Success struct {
	Success   bool            `json:"success"`
	Data      json.RawMessage `json:"data"`
	RequestID string          `json:"requestId,omitempty"`
}

// Failure is the envelope of an error answer.
type Failure struct {
	Success   bool      `json:"success"`
	Error     ErrorBody `json:"error"`
	RequestID string    `json:"requestId,omitempty"`
}

// ErrorBody is the error part of Failure. Code is a stable UPPER_SNAKE reason.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details []any  `json:"details,omitempty"`
}

// ContentType is the content type of every envelope.
const ContentType = "application/json; charset=utf-8"

// Write answers status with data (already JSON) wrapped in a success envelope.
func Write(w http.ResponseWriter, r *http.Request, status int, data json.RawMessage) {
	if data == nil {
		data = json.RawMessage("{}")
	}
	writeJSON(w, status, Success{Success: true, Data: data, RequestID: traceid.FromContext(r.Context())})
}

// WriteError answers status with an error envelope.
func WriteError(w http.ResponseWriter, r *http.Request, status int, code, message string, details ...any) {
	writeJSON(w, status, Failure{
		Error:     ErrorBody{Code: code, Message: message, Details: details},
		RequestID: traceid.FromContext(r.Context()),
	})
}

// NotFound answers the JSON 404 envelope for a route nobody serves.
func NotFound(w http.ResponseWriter, r *http.Request) {
	WriteError(w, r, http.StatusNotFound, "ROUTE_NOT_FOUND", "Route "+r.Method+" "+r.URL.Path+" not found")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only reachable with a non-JSON value in Details: a programming error
		status = http.StatusInternalServerError
		b = []byte(`{"success":false,"error":{"code":"INTERNAL_ERROR","message":"internal error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
