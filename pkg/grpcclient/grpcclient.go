// Package grpcclient dials the gRPC connections ClassWaves services use to call each other (over
// loopback in monolithic mode) and that the gateway registers its REST handlers through.
//
// A connection made by Dial carries the caller's trace id (traceid.FromContext) in the x-trace-id
// metadata, reports OpenTelemetry spans and metrics, keeps idle connections alive, and retries
// UNAVAILABLE answers for methods the protos mark as reads.
package grpcclient

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/classwaves/classwaves/pkg/traceid"
)

// Keepalive pings an idle connection every 30s (the server permits one every 10s) so a dead peer
// or a dropped NAT entry is found before the next call, not by it.
var keepaliveParams = keepalive.ClientParameters{
	Time:                30 * time.Second,
	Timeout:             10 * time.Second,
	PermitWithoutStream: true,
}

// Dial returns a client connection to target (e.g. "localhost:9090" or "dns:///session:9090").
// Like grpc.NewClient it does not connect until the first call.
//
// Defaults, each overridable by opts (which are applied after them):
//   - insecure transport credentials: TLS terminates at Envoy and services talk on a private
//     network or loopback;
//   - the otelgrpc client stats handler (global tracer and meter providers);
//   - unary and stream interceptors that send traceid.FromContext(ctx) as x-trace-id, unless the
//     outgoing metadata already names one;
//   - keepalive pings every 30s;
//   - a default service config with round_robin balancing and a retry policy (3 attempts, backoff
//     0.1s to 1s) on UNAVAILABLE for every method whose proto options say it has no side effects
//     or is idempotent (idempotency_level NO_SIDE_EFFECTS or IDEMPOTENT) and that is not
//     client-streaming. The methods are read from protoregistry.GlobalFiles at Dial time, so the
//     generated pkg/api packages of the services called must be imported by then (they are,
//     since the caller uses their clients).
func Dial(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return dial(target, protoregistry.GlobalFiles, opts...)
}

// dial is Dial with the registry the retry policy is built from.
func dial(target string, files *protoregistry.Files, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	sc, err := serviceConfig(files)
	if err != nil {
		return nil, err
	}
	defaults := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
		grpc.WithChainUnaryInterceptor(unaryTraceID),
		grpc.WithChainStreamInterceptor(streamTraceID),
		grpc.WithKeepaliveParams(keepaliveParams),
		grpc.WithDefaultServiceConfig(sc),
	}
	conn, err := grpc.NewClient(target, append(defaults, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("grpcclient: dial %s: %w", target, err)
	}
	return conn, nil
}

// withTraceID adds the context's trace id to the outgoing metadata, keeping an explicit one.
func withTraceID(ctx context.Context) context.Context {
	id := traceid.FromContext(ctx)
	if id == "" {
		return ctx
	}
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get(traceid.MetadataKey)) > 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, traceid.MetadataKey, id)
}

func unaryTraceID(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(withTraceID(ctx), method, req, reply, cc, opts...)
}

func streamTraceID(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(withTraceID(ctx), desc, cc, method, opts...)
}

// The JSON shape of a gRPC service config (gRFC A6), only the parts used here.
type (
	scConfig struct {
		LoadBalancingConfig []map[string]struct{} `json:"loadBalancingConfig"`
		MethodConfig        []scMethodConfig      `json:"methodConfig,omitempty"`
	}
	scMethodConfig struct {
		Name        []scName       `json:"name"`
		RetryPolicy *scRetryPolicy `json:"retryPolicy,omitempty"`
	}
	scName struct {
		Service string `json:"service"`
		Method  string `json:"method"`
	}
	scRetryPolicy struct {
		MaxAttempts          int      `json:"maxAttempts"`
		InitialBackoff       string   `json:"initialBackoff"`
		MaxBackoff           string   `json:"maxBackoff"`
		BackoffMultiplier    float64  `json:"backoffMultiplier"`
		RetryableStatusCodes []string `json:"retryableStatusCodes"`
	}
)

// readRetry is the retry policy for reads. UNAVAILABLE means the server did not act on the call
// (it is down, restarting or draining), so repeating a read is safe; writes are never retried
// here because a repeated write could apply twice.
var readRetry = scRetryPolicy{
	MaxAttempts:          3,
	InitialBackoff:       "0.1s",
	MaxBackoff:           "1s",
	BackoffMultiplier:    2,
	RetryableStatusCodes: []string{"UNAVAILABLE"},
}

// serviceConfig returns the default service config JSON: round_robin, plus readRetry for the
// idempotent methods found in files.
func serviceConfig(files *protoregistry.Files) (string, error) {
	names := retryableMethods(files)
	cfg := scConfig{LoadBalancingConfig: []map[string]struct{}{{"round_robin": {}}}}
	if len(names) > 0 {
		policy := readRetry
		cfg.MethodConfig = []scMethodConfig{{Name: names, RetryPolicy: &policy}}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("grpcclient: service config: %w", err)
	}
	return string(b), nil
}

// retryableMethods lists, sorted, the methods in files that are safe to retry.
func retryableMethods(files *protoregistry.Files) []scName {
	var names []scName
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			svc := fd.Services().Get(i)
			for j := range svc.Methods().Len() {
				m := svc.Methods().Get(j)
				if !m.IsStreamingClient() && idempotent(m) {
					names = append(names, scName{Service: string(svc.FullName()), Method: string(m.Name())})
				}
			}
		}
		return true
	})
	slices.SortFunc(names, func(a, b scName) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.Method, b.Method))
	})
	return names
}

// idempotent reports whether m's proto options mark it free of side effects or idempotent.
func idempotent(m protoreflect.MethodDescriptor) bool {
	opts, ok := m.Options().(*descriptorpb.MethodOptions)
	if !ok {
		return false
	}
	switch opts.GetIdempotencyLevel() {
	case descriptorpb.MethodOptions_NO_SIDE_EFFECTS, descriptorpb.MethodOptions_IDEMPOTENT:
		return true
	}
	return false
}
