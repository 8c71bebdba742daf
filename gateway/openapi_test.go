package gateway

import (
	"encoding/json"
	"strings"
	"testing"
)

// seedEndpoints are the endpoints in the tables of the seed README (plus the routes the issues
// name); the document must list each one.
var seedEndpoints = []string{
	"POST /api/v1/auth/google", "GET /api/v1/auth/google/callback", "POST /api/v1/auth/refresh",
	"POST /api/v1/auth/logout", "GET /api/v1/auth/me", "GET /api/v1/auth/csrf-token",
	"POST /api/v1/auth/generate-test-token", "POST /api/v1/auth/test-token",
	"GET /api/v1/sessions", "POST /api/v1/sessions", "GET /api/v1/sessions/{sessionId}",
	"PUT /api/v1/sessions/{sessionId}", "POST /api/v1/sessions/{sessionId}/start",
	"POST /api/v1/sessions/{sessionId}/end", "GET /api/v1/sessions/{sessionId}/analytics",
	"GET /api/v1/sessions/{sessionId}/summaries", "GET /api/v1/sessions/{sessionId}/groups/{groupId}/summary",
	"POST /api/v1/ai/analyze-discussion", "POST /api/v1/ai/generate-insights", "GET /api/v1/ai/insights/{sessionId}",
	"GET /api/v1/ai/tier1/status", "GET /api/v1/ai/tier2/status",
	"POST /api/v1/ai/sessions/{sessionId}/analyze-discussion", "POST /api/v1/ai/sessions/{sessionId}/generate-insights",
	"GET /api/v1/ai/sessions/{sessionId}/insights",
	"GET /api/v1/analytics/session/{sessionId}", "GET /api/v1/analytics/system", "GET /api/v1/health",
	"GET /api/v1/health/guidance", "GET /api/v1/health/components", "GET /api/v1/ready",
	"GET /api/v1/admin/schools", "POST /api/v1/admin/schools", "PUT /api/v1/admin/schools/{schoolId}",
	"GET /api/v1/admin/analytics", "GET /api/v1/admin/audit-log",
	"GET /api/v1/debug/websocket/active-connections", "GET /api/v1/docs/openapi.json",
}

func TestOpenAPIListsSeedEndpointsAndDescribesTheEnvelope(t *testing.T) {
	raw, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Swagger     string                                `json:"swagger"`
		Paths       map[string]map[string]json.RawMessage `json:"paths"`
		Definitions map[string]json.RawMessage            `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("document does not parse: %v", err)
	}
	if doc.Swagger != "2.0" {
		t.Errorf("swagger = %q, want 2.0", doc.Swagger)
	}
	for _, ep := range seedEndpoints {
		method, path, _ := strings.Cut(ep, " ")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("OpenAPI document lacks %s", ep)
		}
	}
	for _, def := range []string{"ErrorEnvelope", "ErrorBody", "ErrorDetail"} {
		if _, ok := doc.Definitions[def]; !ok {
			t.Errorf("definition %s missing", def)
		}
	}
	if _, ok := doc.Definitions["Status"]; ok {
		t.Error("google.rpc.Status is still described, but the gateway never sends it")
	}

	var op struct {
		Responses map[string]struct {
			Schema struct {
				Ref        string                     `json:"$ref"`
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schema"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(doc.Paths["/api/v1/sessions"]["post"], &op); err != nil {
		t.Fatal(err)
	}
	ok := op.Responses["200"].Schema.Properties
	for _, p := range []string{"success", "data", "requestId"} {
		if _, has := ok[p]; !has {
			t.Errorf("POST /api/v1/sessions 200 schema lacks envelope property %q", p)
		}
	}
	if got := op.Responses["400"].Schema.Ref; got != "#/definitions/ErrorEnvelope" {
		t.Errorf("400 schema = %q, want the error envelope", got)
	}
	if err := json.Unmarshal(doc.Paths["/api/v1/sessions/{sessionId}/summaries"]["get"], &op); err != nil {
		t.Fatal(err)
	}
	if _, has := op.Responses["202"]; !has {
		t.Error("summaries lack their 202 answer")
	}
}
