package grpcclient

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/classwaves/classwaves/pkg/grpcserver"
	"github.com/classwaves/classwaves/pkg/traceid"
)

// The probe service the tests call, with the options that drive the retry policy:
//
//	package cwtest.v1;
//	service Probe {
//	  rpc TraceID(google.protobuf.Empty) returns (google.protobuf.StringValue);
//	  rpc Get(google.protobuf.Empty) returns (google.protobuf.StringValue) { option idempotency_level = NO_SIDE_EFFECTS; }
//	  rpc Put(google.protobuf.Empty) returns (google.protobuf.StringValue);
//	  rpc Watch(google.protobuf.Empty) returns (stream google.protobuf.StringValue) { option idempotency_level = NO_SIDE_EFFECTS; }
//	  rpc Upload(stream google.protobuf.Empty) returns (google.protobuf.StringValue) { option idempotency_level = IDEMPOTENT; }
//	}
const probeService = "cwtest.v1.Probe"

func probeFiles(t *testing.T) *protoregistry.Files {
	t.Helper()
	method := func(name string, level descriptorpb.MethodOptions_IdempotencyLevel, clientStream, serverStream bool) *descriptorpb.MethodDescriptorProto {
		m := &descriptorpb.MethodDescriptorProto{
			Name:            proto.String(name),
			InputType:       proto.String(".google.protobuf.Empty"),
			OutputType:      proto.String(".google.protobuf.StringValue"),
			ClientStreaming: proto.Bool(clientStream),
			ServerStreaming: proto.Bool(serverStream),
		}
		if level != descriptorpb.MethodOptions_IDEMPOTENCY_UNKNOWN {
			m.Options = &descriptorpb.MethodOptions{IdempotencyLevel: level.Enum()}
		}
		return m
	}
	fdp := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("cwtest/v1/probe.proto"),
		Package:    proto.String("cwtest.v1"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"google/protobuf/empty.proto", "google/protobuf/wrappers.proto"},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name: proto.String("Probe"),
			Method: []*descriptorpb.MethodDescriptorProto{
				method("TraceID", descriptorpb.MethodOptions_IDEMPOTENCY_UNKNOWN, false, false),
				method("Get", descriptorpb.MethodOptions_NO_SIDE_EFFECTS, false, false),
				method("Put", descriptorpb.MethodOptions_IDEMPOTENCY_UNKNOWN, false, false),
				method("Watch", descriptorpb.MethodOptions_NO_SIDE_EFFECTS, false, true),
				method("Upload", descriptorpb.MethodOptions_IDEMPOTENT, true, false),
			},
		}},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	files := &protoregistry.Files{}
	if err := files.RegisterFile(fd); err != nil {
		t.Fatal(err)
	}
	return files
}

// probe implements the service. Get and Put answer UNAVAILABLE for their first failFirst calls.
type probe struct {
	failFirst int32
	calls     atomic.Int32
}

func (p *probe) flaky(ctx context.Context) (*wrapperspb.StringValue, error) {
	if p.calls.Add(1) <= p.failFirst {
		return nil, status.Error(codes.Unavailable, "restarting")
	}
	return wrapperspb.String("ok"), nil
}

type probeServer interface{}

func unary(name string, h func(p *probe, ctx context.Context) (*wrapperspb.StringValue, error)) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := &emptypb.Empty{}
			if err := dec(in); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, _ any) (any, error) { return h(srv.(*probe), ctx) }
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + probeService + "/" + name}, call)
		},
	}
}

var probeDesc = grpc.ServiceDesc{
	ServiceName: probeService,
	HandlerType: (*probeServer)(nil),
	Methods: []grpc.MethodDesc{
		unary("TraceID", func(_ *probe, ctx context.Context) (*wrapperspb.StringValue, error) {
			return wrapperspb.String(traceid.FromContext(ctx)), nil
		}),
		unary("Get", (*probe).flaky),
		unary("Put", (*probe).flaky),
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Watch",
		ServerStreams: true,
		Handler: func(_ any, stream grpc.ServerStream) error {
			if err := stream.RecvMsg(&emptypb.Empty{}); err != nil {
				return err
			}
			return stream.SendMsg(wrapperspb.String(traceid.FromContext(stream.Context())))
		},
	}},
}

// startServer runs the real ClassWaves server stack on a loopback port.
func startServer(t *testing.T, p *probe) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.DefaultConfig(), slog.New(slog.DiscardHandler))
	srv.GRPC().RegisterService(&probeDesc, p)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.GRPC().Stop()
		<-served
	})
	return lis.Addr().String()
}

func TestTraceIDPropagation(t *testing.T) {
	tests := []struct {
		name     string
		ctxID    string // traceid.NewContext value; "" for none
		explicit string // x-trace-id already in the outgoing metadata; "" for none
		want     string // "" means the server had to mint one
	}{
		{"context id is sent", "abc-123", "", "abc-123"},
		{"explicit metadata wins", "abc-123", "explicit-1", "explicit-1"},
		{"none: server mints", "", "", ""},
	}
	conn, err := Dial(startServer(t, &probe{}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.ctxID != "" {
				ctx = traceid.NewContext(ctx, tt.ctxID)
			}
			if tt.explicit != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, traceid.MetadataKey, tt.explicit)
			}

			unaryGot := &wrapperspb.StringValue{}
			if err := conn.Invoke(ctx, "/"+probeService+"/TraceID", &emptypb.Empty{}, unaryGot); err != nil {
				t.Fatalf("TraceID() error = %v", err)
			}
			stream, err := conn.NewStream(ctx, &probeDesc.Streams[0], "/"+probeService+"/Watch")
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.SendMsg(&emptypb.Empty{}); err != nil {
				t.Fatal(err)
			}
			if err := stream.CloseSend(); err != nil {
				t.Fatal(err)
			}
			streamGot := &wrapperspb.StringValue{}
			if err := stream.RecvMsg(streamGot); err != nil {
				t.Fatalf("Watch RecvMsg() error = %v", err)
			}

			for kind, got := range map[string]string{"unary": unaryGot.GetValue(), "stream": streamGot.GetValue()} {
				switch {
				case tt.want != "" && got != tt.want:
					t.Errorf("%s: server saw trace id %q, want %q", kind, got, tt.want)
				case tt.want == "" && (len(got) != 32 || !traceid.Valid(got)):
					t.Errorf("%s: server saw trace id %q, want a minted 32-char id", kind, got)
				}
			}
		})
	}
}

func TestRetry(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		failFirst int32
		wantCode  codes.Code
		wantCalls int32
	}{
		{"read is retried through two failures", "Get", 2, codes.OK, 3},
		{"read gives up after three attempts", "Get", 5, codes.Unavailable, 3},
		{"write is never retried", "Put", 1, codes.Unavailable, 1},
		{"no failure, one call", "Put", 0, codes.OK, 1},
	}
	files := probeFiles(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &probe{failFirst: tt.failFirst}
			conn, err := dial(startServer(t, p), files)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			err = conn.Invoke(t.Context(), "/"+probeService+"/"+tt.method, &emptypb.Empty{}, &wrapperspb.StringValue{})
			if got := status.Code(err); got != tt.wantCode {
				t.Errorf("%s code = %v, want %v (err %v)", tt.method, got, tt.wantCode, err)
			}
			if got := p.calls.Load(); got != tt.wantCalls {
				t.Errorf("server calls = %d, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestServiceConfig(t *testing.T) {
	tests := []struct {
		name  string
		files *protoregistry.Files
		want  scConfig
	}{
		{
			name:  "only idempotent, non-client-streaming methods get the retry policy",
			files: probeFiles(t),
			want: scConfig{
				LoadBalancingConfig: []map[string]struct{}{{"round_robin": {}}},
				MethodConfig: []scMethodConfig{{
					Name:        []scName{{probeService, "Get"}, {probeService, "Watch"}},
					RetryPolicy: &readRetry,
				}},
			},
		},
		{
			name:  "no idempotent methods, no method config",
			files: &protoregistry.Files{},
			want:  scConfig{LoadBalancingConfig: []map[string]struct{}{{"round_robin": {}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := serviceConfig(tt.files)
			if err != nil {
				t.Fatal(err)
			}
			var got scConfig
			if err := json.Unmarshal([]byte(sc), &got); err != nil {
				t.Fatalf("service config %s is not JSON: %v", sc, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("service config mismatch (-want +got):\n%s", diff)
			}
		})
	}
	// grpc itself must accept the config built from the process registry.
	conn, err := Dial("127.0.0.1:1")
	if err != nil {
		t.Fatalf("Dial() error = %v, want nil", err)
	}
	conn.Close()
}
