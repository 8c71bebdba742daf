package grpcserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/traceid"
)

// The test service is built at run time because the product protos are generated elsewhere:
//
//	package cwtest.v1;
//	message Group { string name = 1 [(buf.validate.field).string.min_len = 1]; }
//	message CreateRequest {
//	  string title = 1 [(buf.validate.field).string.min_len = 1];
//	  repeated Group groups = 2;
//	}
//	message CreateResponse { string title = 1; string trace_id = 2; }
//	service TestService {
//	  rpc Create(CreateRequest) returns (CreateResponse);
//	  rpc Chat(stream CreateRequest) returns (stream CreateResponse);
//	}
const (
	testService  = "cwtest.v1.TestService"
	createMethod = "/cwtest.v1.TestService/Create"
	chatMethod   = "/cwtest.v1.TestService/Chat"
)

var (
	testFile     = buildTestFile()
	reqDesc      = testFile.Messages().ByName("CreateRequest")
	respDesc     = testFile.Messages().ByName("CreateResponse")
	groupDesc    = testFile.Messages().ByName("Group")
	errNotFound  = apperr.New(codes.NotFound, "SESSION_NOT_FOUND", "session not found")
	errSecretSQL = errors.New("pq: password authentication failed for user classwaves")
)

func buildTestFile() protoreflect.FileDescriptor {
	minLen1 := func() *descriptorpb.FieldOptions {
		opts := &descriptorpb.FieldOptions{}
		proto.SetExtension(opts, validate.E_Field, validate.FieldRules_builder{
			String: validate.StringRules_builder{MinLen: proto.Uint64(1)}.Build(),
		}.Build())
		return opts
	}
	str := func(name string, num int32, opts *descriptorpb.FieldOptions) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{
			Name:    proto.String(name),
			Number:  proto.Int32(num),
			Type:    descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
			Label:   descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			Options: opts,
		}
	}
	fdp := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("cwtest/v1/test.proto"),
		Package:    proto.String("cwtest.v1"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"buf/validate/validate.proto"},
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Group"), Field: []*descriptorpb.FieldDescriptorProto{str("name", 1, minLen1())}},
			{Name: proto.String("CreateRequest"), Field: []*descriptorpb.FieldDescriptorProto{
				str("title", 1, minLen1()),
				{
					Name:     proto.String("groups"),
					Number:   proto.Int32(2),
					Type:     descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(),
					Label:    descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum(),
					TypeName: proto.String(".cwtest.v1.Group"),
				},
			}},
			{Name: proto.String("CreateResponse"), Field: []*descriptorpb.FieldDescriptorProto{
				str("title", 1, nil), str("trace_id", 2, nil),
			}},
		},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		panic(err)
	}
	return fd
}

// newReq builds a CreateRequest with the given title and one group per name.
func newReq(title string, groups ...string) *dynamicpb.Message {
	m := dynamicpb.NewMessage(reqDesc)
	m.Set(reqDesc.Fields().ByName("title"), protoreflect.ValueOfString(title))
	list := m.Mutable(reqDesc.Fields().ByName("groups")).List()
	for _, name := range groups {
		g := dynamicpb.NewMessage(groupDesc)
		g.Set(groupDesc.Fields().ByName("name"), protoreflect.ValueOfString(name))
		list.Append(protoreflect.ValueOfMessage(g))
	}
	return m
}

func getString(m *dynamicpb.Message, field protoreflect.Name) string {
	return m.Get(m.Descriptor().Fields().ByName(field)).String()
}

// testImpl answers according to the request title:
//
//	"panic"   panics
//	"fail"    returns errNotFound with a cause
//	"leak"    returns a raw error whose text must not reach the client
//	"unbuilt" answers Unimplemented like a generated Unimplemented*Server embed
//	"block"   signals entered and waits for release
//	anything else echoes the title and the trace id seen by the handler
type testImpl struct {
	calls   atomic.Int32
	decodes atomic.Int32 // messages Chat's ReusingDecoder decoded
	entered chan struct{}
	release chan struct{}
}

func newTestImpl() *testImpl {
	return &testImpl{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (s *testImpl) create(ctx context.Context, req *dynamicpb.Message) (*dynamicpb.Message, error) {
	s.calls.Add(1)
	title := getString(req, "title")
	switch title {
	case "panic":
		panic("boom")
	case "fail":
		return nil, errNotFound.WithCause(errors.New("sql: no rows in result set"))
	case "leak":
		return nil, errSecretSQL
	case "unbuilt":
		return nil, status.Error(codes.Unimplemented, "method Create not implemented")
	case "block":
		s.entered <- struct{}{}
		<-s.release
	}
	resp := dynamicpb.NewMessage(respDesc)
	resp.Set(respDesc.Fields().ByName("title"), protoreflect.ValueOfString(title))
	resp.Set(respDesc.Fields().ByName("trace_id"), protoreflect.ValueOfString(traceid.FromContext(ctx)))
	return resp, nil
}

type testServer interface{}

// reusingReq is a ReusingDecoder: Chat receives every message into one, so the stream tests also
// prove that the server's codec lets such a message decode itself and that the interceptors
// (validation) still see it.
type reusingReq struct {
	*dynamicpb.Message
	decodes *atomic.Int32
}

func (r reusingReq) DecodeReusing(b []byte) error {
	r.decodes.Add(1)
	r.Message.Reset()
	return proto.Unmarshal(b, r.Message)
}

var testServiceDesc = grpc.ServiceDesc{
	ServiceName: testService,
	HandlerType: (*testServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Create",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := dynamicpb.NewMessage(reqDesc)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) {
				return srv.(*testImpl).create(ctx, req.(*dynamicpb.Message))
			}
			if interceptor == nil {
				return h(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: createMethod}, h)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Chat",
		ServerStreams: true,
		ClientStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			impl := srv.(*testImpl)
			in := reusingReq{Message: dynamicpb.NewMessage(reqDesc), decodes: &impl.decodes}
			for {
				if err := stream.RecvMsg(in); err != nil {
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
				resp, err := impl.create(stream.Context(), in.Message)
				if err != nil {
					return err
				}
				if err := stream.SendMsg(resp); err != nil {
					return err
				}
			}
		},
	}},
}

// syncBuffer collects log output written from server goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns every JSON log record written so far.
func (b *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, rec)
	}
	return out
}

// rpcRecords returns the per-RPC log records for method.
func (b *syncBuffer) rpcRecords(t *testing.T, method string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, rec := range b.records(t) {
		if rec["msg"] == "grpc request" && rec["method"] == method {
			out = append(out, rec)
		}
	}
	return out
}

// env is a real server on a loopback port with a client connection to it.
type env struct {
	srv  *Server
	impl *testImpl
	conn *grpc.ClientConn
	logs *syncBuffer
	// served receives Serve's result once the server stops.
	served chan error
}

func start(t *testing.T, cfg Config, opts ...Option) *env {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := &env{srv: New(cfg, logger, opts...), impl: newTestImpl(), logs: logs, served: make(chan error, 1)}
	e.srv.GRPC().RegisterService(&testServiceDesc, e.impl)
	go func() { e.served <- e.srv.Serve(lis) }()
	e.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.conn.Close()
		e.srv.GRPC().Stop()
		if err := <-e.served; err != nil {
			t.Errorf("Serve() = %v, want nil after Stop", err)
		}
	})
	return e
}

// create calls Create with opts and returns the response.
func (e *env) create(ctx context.Context, req proto.Message, opts ...grpc.CallOption) (*dynamicpb.Message, error) {
	resp := dynamicpb.NewMessage(respDesc)
	err := e.conn.Invoke(ctx, createMethod, req, resp, opts...)
	return resp, err
}

func dynamicResp() *dynamicpb.Message { return dynamicpb.NewMessage(respDesc) }
