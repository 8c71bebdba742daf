package gateway

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
)

// OpenAPIPath is where the document is served.
const OpenAPIPath = "/api/v1/docs/openapi.json"

// generatedOpenAPI is protoc-gen-openapiv2's merged output (make generate). It describes the bare
// protobuf messages; OpenAPI rewrites it to describe what is really sent: the envelope.
//
//go:embed openapi/classwaves.swagger.json
var generatedOpenAPI []byte

// Bare answers: sent without the envelope (see envelopeRewriter).
var bareResponses = map[string]bool{
	"GetJwksResponse": true,
}

// OpenAPI answers the OpenAPI 2.0 document of the REST surface, rewritten so that every success
// schema is {success, data, requestId} around the message, every error is the error envelope, and
// the statuses the gateway really answers (202 for pending summaries, 302 for the OAuth callback,
// the error statuses) are listed.
func OpenAPI() ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(generatedOpenAPI, &doc); err != nil {
		return nil, fmt.Errorf("parse generated OpenAPI: %w", err)
	}
	defs, _ := doc["definitions"].(map[string]any)
	if defs == nil {
		return nil, fmt.Errorf("generated OpenAPI has no definitions")
	}
	defs["ErrorEnvelope"] = map[string]any{
		"type":     "object",
		"required": []string{"success", "error"},
		"properties": map[string]any{
			"success":   map[string]any{"type": "boolean", "enum": []bool{false}},
			"error":     map[string]any{"$ref": "#/definitions/ErrorBody"},
			"requestId": map[string]any{"type": "string", "description": "Trace id of the request (also in X-Trace-Id)."},
		},
	}
	defs["ErrorBody"] = map[string]any{
		"type":     "object",
		"required": []string{"code", "message"},
		"properties": map[string]any{
			"code":    map[string]any{"type": "string", "description": "Stable UPPER_SNAKE reason, e.g. VALIDATION_ERROR, SESSION_NOT_FOUND."},
			"message": map[string]any{"type": "string"},
			"details": map[string]any{"type": "array", "items": map[string]any{"$ref": "#/definitions/ErrorDetail"}},
		},
	}
	defs["ErrorDetail"] = map[string]any{
		"type":        "object",
		"description": "A field violation ({field, description}) or error metadata ({reason, metadata}).",
		"properties": map[string]any{
			"field":       map[string]any{"type": "string"},
			"description": map[string]any{"type": "string"},
			"reason":      map[string]any{"type": "string"},
			"metadata":    map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
		},
	}
	delete(defs, "Status")
	delete(defs, "Any")
	errorResponse := func(desc string) map[string]any {
		return map[string]any{"description": desc, "schema": map[string]any{"$ref": "#/definitions/ErrorEnvelope"}}
	}
	paths, _ := doc["paths"].(map[string]any)
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for method, op := range ops {
			opm, ok := op.(map[string]any)
			if !ok {
				continue
			}
			responses, _ := opm["responses"].(map[string]any)
			if responses == nil {
				continue
			}
			ok200, _ := responses["200"].(map[string]any)
			schema, _ := ok200["schema"].(map[string]any)
			ref, _ := schema["$ref"].(string)
			name := strings.TrimPrefix(ref, "#/definitions/")
			if ok200 != nil && !bareResponses[name] {
				wrapped := map[string]any{
					"type":     "object",
					"required": []string{"success", "data"},
					"properties": map[string]any{
						"success":   map[string]any{"type": "boolean", "enum": []bool{true}},
						"data":      schema,
						"requestId": map[string]any{"type": "string"},
					},
				}
				if name == "HttpBody" || strings.HasPrefix(path, "/api/v1/analytics/session/") && strings.HasSuffix(path, "/export") {
					ok200["description"] = "CSV file (text/csv), sent as the raw body."
					ok200["schema"] = map[string]any{"type": "string", "format": "binary"}
					opm["produces"] = []string{"text/csv"}
				} else {
					ok200["schema"] = wrapped
				}
				if def, _ := defs[name].(map[string]any); def != nil {
					if props, _ := def["properties"].(map[string]any); props != nil && props["pending"] != nil {
						responses["202"] = map[string]any{
							"description": "Not ready yet; retry after the Retry-After header's seconds.",
							"schema":      wrapped,
							"headers":     map[string]any{"Retry-After": map[string]any{"type": "integer"}},
						}
					}
				}
			}
			if name == "GoogleCallbackResponse" {
				responses["302"] = map[string]any{"description": "Redirect to FRONTEND_URL.", "headers": map[string]any{"Location": map[string]any{"type": "string"}}}
			}
			responses["default"] = errorResponse("Error envelope.")
			if _, hasParams := opm["parameters"]; hasParams || method == "post" || method == "put" {
				responses["400"] = errorResponse("Invalid request; error.details lists the field violations.")
			}
			if security, ok := opm["security"].([]any); !ok || len(security) > 0 {
				responses["401"] = errorResponse("Missing or invalid access token.")
				responses["403"] = errorResponse("The caller's role does not allow this.")
			}
			responses["429"] = errorResponse("Rate limited; see Retry-After.")
			if strings.Contains(path, "{") {
				responses["404"] = errorResponse("Not found (or not yours).")
			}
		}
	}
	// The gateway's own route.
	paths[OpenAPIPath] = map[string]any{"get": map[string]any{
		"summary":     "This document.",
		"operationId": "GetOpenAPI",
		"tags":        []string{"SystemService"},
		"security":    []any{},
		"responses":   map[string]any{"200": map[string]any{"description": "OpenAPI 2.0 document (sent bare)."}},
	}}
	return json.MarshalIndent(doc, "", "  ")
}
