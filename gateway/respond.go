package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/envelope"
	"github.com/classwaves/classwaves/pkg/traceid"
)

// rawBody is implemented by responses whose HTTP rule names a response_body field.
type rawBody interface {
	XXX_ResponseBody() any
}

// pending is implemented by responses that may not be ready yet (summaries): the gateway answers
// 202 with Retry-After while they are pending.
type pending interface {
	GetPending() bool
	GetRetryAfterSeconds() int32
}

// jwksOptions marshal the JWKS without empty members: JOSE libraries read "n":"" as a broken key.
var jwksOptions = protojson.MarshalOptions{EmitUnpopulated: false}

// envelopeRewriter wraps every successful answer in {success, data, requestId}. Two answers are
// sent bare because their consumers are not our frontends: the JWKS (JOSE libraries expect
// RFC 7517 JSON) and raw bodies such as the CSV export.
func envelopeRewriter(m *runtime.JSONPb) runtime.ForwardResponseRewriter {
	return func(ctx context.Context, resp proto.Message) (any, error) {
		switch msg := resp.(type) {
		case rawBody:
			return resp, nil
		case *authv1.GetJwksResponse:
			b, err := jwksOptions.Marshal(msg)
			if err != nil {
				return nil, err
			}
			return json.RawMessage(b), nil
		}
		data, err := m.Marshal(resp)
		if err != nil {
			return nil, err
		}
		return envelope.Success{Success: true, Data: data, RequestID: traceid.FromContext(ctx)}, nil
	}
}

// statusOverrides sets what the marshaled body cannot: 202 for pending summaries, the redirect of
// the OAuth callback, and the content type of raw bodies.
func statusOverrides(_ context.Context, w http.ResponseWriter, resp proto.Message) error {
	if rb, ok := resp.(rawBody); ok {
		if body, ok := rb.XXX_ResponseBody().(*httpbody.HttpBody); ok && body.GetContentType() != "" {
			w.Header().Set("Content-Type", body.GetContentType())
		}
		return nil
	}
	switch msg := resp.(type) {
	case pending:
		if msg.GetPending() {
			after := msg.GetRetryAfterSeconds()
			if after <= 0 {
				after = 5
			}
			w.Header().Set("Retry-After", strconv.Itoa(int(after)))
			w.WriteHeader(http.StatusAccepted)
		}
	case *authv1.GoogleCallbackResponse:
		if u := msg.GetRedirectUrl(); u != "" {
			w.Header().Set("Location", u)
			w.WriteHeader(http.StatusFound)
		}
	case *authv1.GetJwksResponse:
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
	}
	return nil
}

// errorHandler turns every gRPC error into the error envelope: the HTTP status from the code, the
// stable reason as error.code, the client-safe message and the details (field violations).
func errorHandler(logger *slog.Logger) runtime.ErrorHandlerFunc {
	return func(ctx context.Context, mux *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
		st := status.Convert(err)
		code := st.Code()
		msg := st.Message()
		if code == codes.Internal || code == codes.Unknown || code == codes.DataLoss {
			// Upstream servers already send a safe message; a transport error text is not safe.
			logger.ErrorContext(ctx, "upstream error", "grpcCode", code.String(), "err", err)
			msg = apperr.InternalMessage
		}
		if code == codes.Unavailable {
			logger.WarnContext(ctx, "upstream unavailable", "err", err)
			msg = "service unavailable"
		}
		if md, ok := runtime.ServerMetadataFromContext(ctx); ok {
			for k, vs := range md.HeaderMD {
				if h, ok := outgoingHeaderMatcher(k); ok {
					for _, v := range vs {
						w.Header().Add(h, v)
					}
				}
			}
		}
		httpStatus := apperr.HTTPStatus(code)
		if code == codes.Unauthenticated {
			w.Header().Set("WWW-Authenticate", `Bearer realm="classwaves"`)
		}
		details := apperr.Details(st)
		for _, d := range details {
			if m, ok := d.(map[string]any); ok {
				if f, ok := m["field"].(string); ok {
					m["field"] = jsonFieldPath(f)
				}
			}
		}
		envelope.WriteError(w, r, httpStatus, apperr.ReasonOf(st), msg, details...)
	}
}

// jsonFieldPath turns a protobuf field path ("groups[0].max_size") into the JSON names REST clients
// send ("groups[0].maxSize"), following protojson's lowerCamelCase rule. Map keys and indexes in
// brackets are left as they are.
func jsonFieldPath(path string) string {
	var b strings.Builder
	upper, inBrackets := false, false
	for _, r := range path {
		switch {
		case r == '[':
			inBrackets = true
		case r == ']':
			inBrackets = false
		case inBrackets:
		case r == '_':
			upper = true
			continue
		case upper && r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		upper = false
		b.WriteRune(r)
	}
	return b.String()
}

// routingErrorHandler answers unknown routes and wrong methods with the envelope.
func routingErrorHandler(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	switch httpStatus {
	case http.StatusNotFound:
		envelope.NotFound(w, r)
	case http.StatusMethodNotAllowed:
		envelope.WriteError(w, r, httpStatus, "METHOD_NOT_ALLOWED", "Method "+r.Method+" not allowed on "+r.URL.Path)
	default:
		envelope.WriteError(w, r, httpStatus, "BAD_REQUEST", http.StatusText(httpStatus))
	}
}
