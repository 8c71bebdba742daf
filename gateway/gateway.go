// Package gateway is the REST edge: grpc-gateway handlers registered through gRPC client
// connections (so every server interceptor runs: validation, auth, logging), wrapped in the seed's
// response envelope, with one error handler, CORS for the two frontends, and the OpenAPI document.
package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
	auditv1 "github.com/classwaves/classwaves/pkg/api/classwaves/audit/v1"
	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	realtimev1 "github.com/classwaves/classwaves/pkg/api/classwaves/realtime/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	systemv1 "github.com/classwaves/classwaves/pkg/api/classwaves/system/v1"
	"github.com/classwaves/classwaves/pkg/envelope"
	"github.com/classwaves/classwaves/pkg/telemetry"
	"github.com/classwaves/classwaves/pkg/traceid"
)

// Upstream names a backend service and the client connection that reaches it.
type Upstream string

// The services the gateway can route to. Names match the -target module names.
const (
	Auth      Upstream = "auth"
	Session   Upstream = "session"
	STT       Upstream = "stt"
	Guidance  Upstream = "guidance"
	Analytics Upstream = "analytics"
	Audit     Upstream = "audit"
	Realtime  Upstream = "realtime"
)

// registrars maps each upstream to the generated registration functions of its services.
var registrars = map[Upstream][]func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
	Auth:      {authv1.RegisterAuthServiceHandler, authv1.RegisterAdminServiceHandler},
	Session:   {sessionv1.RegisterSessionServiceHandler},
	STT:       {sttv1.RegisterSttServiceHandler},
	Guidance:  {guidancev1.RegisterGuidanceServiceHandler},
	Analytics: {analyticsv1.RegisterAnalyticsServiceHandler},
	Audit:     {auditv1.RegisterAuditServiceHandler},
	Realtime:  {realtimev1.RegisterRealtimeServiceHandler},
}

// Upstreams lists every upstream the gateway knows, in a stable order.
func Upstreams() []Upstream {
	return []Upstream{Auth, Session, STT, Guidance, Analytics, Audit, Realtime}
}

// Gateway serves /api/v1/**.
type Gateway struct {
	mux     *runtime.ServeMux
	openapi []byte
	cors    *cors
	logger  *slog.Logger
}

// marshalOptions is the JSON shape of every REST answer: camelCase names, unpopulated fields emitted
// (the frontends read absent values as defaults, and the OpenAPI document promises every field).
var marshalOptions = protojson.MarshalOptions{UseProtoNames: false, EmitUnpopulated: true}

// New builds the gateway. conns maps each upstream to the connection that reaches it; every
// upstream in conns gets its routes, the others answer 404 (they are not served by this gateway).
// system answers the health and readiness probes.
func New(ctx context.Context, cfg Config, conns map[Upstream]*grpc.ClientConn, system systemv1.SystemServiceServer, logger *slog.Logger) (*Gateway, error) {
	jsonpb := &runtime.JSONPb{
		MarshalOptions:   marshalOptions,
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{Marshaler: jsonpb}),
		runtime.WithErrorHandler(errorHandler(logger)),
		runtime.WithRoutingErrorHandler(routingErrorHandler),
		runtime.WithIncomingHeaderMatcher(incomingHeaderMatcher),
		runtime.WithOutgoingHeaderMatcher(outgoingHeaderMatcher),
		runtime.WithMetadata(traceMetadata),
		runtime.WithForwardResponseRewriter(envelopeRewriter(jsonpb)),
		runtime.WithForwardResponseOption(statusOverrides),
		runtime.WithMiddlewares(routeLabel),
		runtime.WithDisablePathLengthFallback(),
	)
	if err := systemv1.RegisterSystemServiceHandlerServer(ctx, mux, system); err != nil {
		return nil, fmt.Errorf("register system routes: %w", err)
	}
	for _, up := range Upstreams() {
		conn, ok := conns[up]
		if !ok {
			continue
		}
		for _, register := range registrars[up] {
			if err := register(ctx, mux, conn); err != nil {
				return nil, fmt.Errorf("register %s routes: %w", up, err)
			}
		}
	}
	doc, err := OpenAPI()
	if err != nil {
		return nil, err
	}
	return &Gateway{mux: mux, openapi: doc, cors: newCORS(cfg.AllowedOrigins()), logger: logger}, nil
}

// ServeHTTP routes /api/v1/** (with CORS) and serves the OpenAPI document.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.cors.handle(w, r) {
		return
	}
	if r.URL.Path == OpenAPIPath {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			envelope.WriteError(w, r, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Method "+r.Method+" not allowed on "+r.URL.Path)
			return
		}
		telemetry.SetRoute(r.Context(), OpenAPIPath)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(g.openapi)
		return
	}
	g.mux.ServeHTTP(w, r)
}

// routeLabel records the matched route template for the HTTP metrics (never the raw path).
func routeLabel(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, pathParams map[string]string) {
		if pattern, ok := runtime.HTTPPattern(r.Context()); ok {
			telemetry.SetRoute(r.Context(), pattern.String())
		}
		next(w, r, pathParams)
	}
}

// traceMetadata forwards the request's trace id to the upstream in gRPC metadata.
func traceMetadata(ctx context.Context, _ *http.Request) metadata.MD {
	if id := traceid.FromContext(ctx); id != "" {
		return metadata.Pairs(traceid.MetadataKey, id)
	}
	return nil
}

// forwardedRequestHeaders are the request headers passed to services as metadata, besides the
// default set (Authorization and the permanent HTTP headers).
var forwardedRequestHeaders = map[string]string{
	"Cookie":          "cookie",
	"X-Csrf-Token":    "x-csrf-token",
	"User-Agent":      "user-agent",
	"X-Forwarded-For": "x-forwarded-for",
	// Gates /api/v1/debug/websocket/active-connections when DEV_OBSERVABILITY_TOKEN is set.
	"X-Dev-Observability-Token": "x-dev-observability-token",
}

func incomingHeaderMatcher(key string) (string, bool) {
	if md, ok := forwardedRequestHeaders[textproto.CanonicalMIMEHeaderKey(key)]; ok {
		return md, true
	}
	if strings.EqualFold(key, traceid.Header) || strings.EqualFold(key, traceid.RequestIDHeader) {
		return "", false // carried by traceMetadata, once and validated
	}
	return runtime.DefaultHeaderMatcher(key)
}

// returnedHeaders are the response metadata keys a service may turn into HTTP headers. Anything
// else stays internal (no Grpc-Metadata-* leaks).
var returnedHeaders = map[string]string{
	"set-cookie":          "Set-Cookie",
	"retry-after":         "Retry-After",
	"ratelimit-limit":     "RateLimit-Limit",
	"ratelimit-remaining": "RateLimit-Remaining",
	"ratelimit-reset":     "RateLimit-Reset",
	"location":            "Location",
	"cache-control":       "Cache-Control",
}

func outgoingHeaderMatcher(key string) (string, bool) {
	h, ok := returnedHeaders[strings.ToLower(key)]
	return h, ok
}
