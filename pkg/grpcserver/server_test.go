package grpcserver

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/testenv"
	"github.com/classwaves/classwaves/pkg/traceid"
)

func errorInfo(reason string) *errdetails.ErrorInfo {
	return &errdetails.ErrorInfo{Reason: reason, Domain: apperr.Domain}
}

func badRequest(fields ...string) *errdetails.BadRequest {
	br := &errdetails.BadRequest{}
	for i := 0; i < len(fields); i += 2 {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: fields[i], Description: fields[i+1],
		})
	}
	return br
}

// answer is the comparable part of a gRPC answer.
type answer struct {
	Code    codes.Code
	Message string
	Details []any
}

func answerOf(err error) answer {
	st := status.Convert(err)
	return answer{Code: st.Code(), Message: st.Message(), Details: st.Details()}
}

func TestUnaryAnswers(t *testing.T) {
	const minLen = "must be at least 1 characters" // protovalidate v1.4 wording
	tests := []struct {
		name        string
		req         proto.Message
		want        answer
		wantHandled bool // whether the handler ran
	}{
		{
			name:        "valid request reaches the handler",
			req:         newReq("Photosynthesis", "Group A"),
			want:        answer{Code: codes.OK},
			wantHandled: true,
		},
		{
			name: "empty title is refused before the handler",
			req:  newReq(""),
			want: answer{codes.InvalidArgument, "invalid request: title: " + minLen,
				[]any{errorInfo("VALIDATION_ERROR"), badRequest("title", minLen)}},
		},
		{
			name: "nested field path",
			req:  newReq("ok", "Group A", ""),
			want: answer{codes.InvalidArgument, "invalid request: groups[1].name: " + minLen,
				[]any{errorInfo("VALIDATION_ERROR"), badRequest("groups[1].name", minLen)}},
		},
		{
			name: "every violation is reported",
			req:  newReq("", ""),
			want: answer{codes.InvalidArgument, "invalid request: title: " + minLen + "; groups[0].name: " + minLen,
				[]any{errorInfo("VALIDATION_ERROR"), badRequest("title", minLen, "groups[0].name", minLen)}},
		},
		{
			name:        "domain error keeps code, reason and safe message",
			req:         newReq("fail"),
			want:        answer{codes.NotFound, "session not found", []any{errorInfo("SESSION_NOT_FOUND")}},
			wantHandled: true,
		},
		{
			name:        "raw error text never reaches the client",
			req:         newReq("leak"),
			want:        answer{codes.Internal, "internal error", []any{errorInfo("INTERNAL_ERROR")}},
			wantHandled: true,
		},
		{
			name:        "panic answers internal",
			req:         newReq("panic"),
			want:        answer{codes.Internal, "internal error", []any{errorInfo("INTERNAL_ERROR")}},
			wantHandled: true,
		},
	}
	e := start(t, DefaultConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.impl.calls.Load()
			_, err := e.create(t.Context(), tt.req)
			if diff := cmp.Diff(tt.want, answerOf(err), protocmp.Transform(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Create() answer mismatch (-want +got):\n%s", diff)
			}
			if got := e.impl.calls.Load() > before; got != tt.wantHandled {
				t.Errorf("handler ran = %v, want %v", got, tt.wantHandled)
			}
		})
	}
}

func TestPanicKeepsServing(t *testing.T) {
	e := start(t, DefaultConfig())
	for range 3 {
		if _, err := e.create(t.Context(), newReq("panic")); status.Code(err) != codes.Internal {
			t.Fatalf("Create(panic) code = %v, want Internal", status.Code(err))
		}
	}
	resp, err := e.create(t.Context(), newReq("after"))
	if err != nil {
		t.Fatalf("Create() after panics error = %v, want nil", err)
	}
	if got, want := getString(resp, "title"), "after"; got != want {
		t.Errorf("title = %q, want %q", got, want)
	}
	recs := e.logs.rpcRecords(t, createMethod)
	if got, want := len(recs), 4; got != want {
		t.Fatalf("got %d RPC log lines, want %d", got, want)
	}
	panicRec := recs[0]
	if got, want := panicRec["level"], "ERROR"; got != want {
		t.Errorf("panic log level = %v, want %v", got, want)
	}
	if got, want := panicRec["error"], "panic: boom"; got != want {
		t.Errorf("panic log error = %v, want %v", got, want)
	}
	if stack, _ := panicRec["stack"].(string); !strings.Contains(stack, "testImpl).create") {
		t.Errorf("panic log stack does not show the panicking handler:\n%s", stack)
	}
}

func TestLogLine(t *testing.T) {
	tests := []struct {
		name      string
		traceID   string
		title     string
		wantLevel string
		wantCode  string
		wantAttrs map[string]string // further attributes that must be present with these values
		wantNone  []string          // attributes that must be absent
	}{
		{"ok", "t-ok", "hello", "INFO", "OK", nil, []string{"error", "reason", "stack"}},
		{"client error logs cause at warn", "t-warn", "fail", "WARN", "NotFound", map[string]string{
			"reason":  "SESSION_NOT_FOUND",
			"message": "session not found",
			"error":   "SESSION_NOT_FOUND: session not found: sql: no rows in result set",
		}, []string{"stack"}},
		{"server fault logs cause at error", "t-error", "leak", "ERROR", "Internal", map[string]string{
			"reason":  "INTERNAL_ERROR",
			"message": "internal error",
			"error":   errSecretSQL.Error(),
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, DefaultConfig())
			ctx := metadata.AppendToOutgoingContext(t.Context(), traceid.MetadataKey, tt.traceID)
			_, _ = e.create(ctx, newReq(tt.title))
			recs := e.logs.rpcRecords(t, createMethod)
			if len(recs) != 1 {
				t.Fatalf("got %d log lines for the RPC, want 1: %v", len(recs), recs)
			}
			rec := recs[0]
			if got := rec["level"]; got != tt.wantLevel {
				t.Errorf("level = %v, want %v", got, tt.wantLevel)
			}
			if got := rec["code"]; got != tt.wantCode {
				t.Errorf("code = %v, want %v", got, tt.wantCode)
			}
			if got, want := rec["requestId"], tt.traceID; got != want {
				t.Errorf("requestId = %v, want %v", got, want)
			}
			if _, ok := rec["durationMs"].(float64); !ok {
				t.Errorf("durationMs = %v, want a number", rec["durationMs"])
			}
			for k, want := range tt.wantAttrs {
				if got := rec[k]; got != want {
					t.Errorf("%s = %v, want %v", k, got, want)
				}
			}
			for _, k := range tt.wantNone {
				if v, ok := rec[k]; ok {
					t.Errorf("%s = %v, want absent", k, v)
				}
			}
		})
	}
}

func TestTraceID(t *testing.T) {
	tests := []struct {
		name     string
		incoming []string // x-trace-id values sent by the client
		want     string   // "" means a freshly minted id
	}{
		{"echoed", []string{"abc-123"}, "abc-123"},
		{"minted when absent", nil, ""},
		{"malformed is replaced", []string{strings.Repeat("x", 200)}, ""},
	}
	e := start(t, DefaultConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			for _, v := range tt.incoming {
				ctx = metadata.AppendToOutgoingContext(ctx, traceid.MetadataKey, v)
			}

			// Unary: the header and the id the handler saw agree.
			var header metadata.MD
			resp, err := e.create(ctx, newReq("hi"), grpc.Header(&header))
			if err != nil {
				t.Fatalf("Create() error = %v", err)
			}
			got := header.Get(traceid.MetadataKey)
			if len(got) != 1 {
				t.Fatalf("response header %s = %v, want one value", traceid.MetadataKey, got)
			}
			checkID(t, got[0], tt.want)
			if handlerSaw := getString(resp, "trace_id"); handlerSaw != got[0] {
				t.Errorf("handler saw trace id %q, header says %q", handlerSaw, got[0])
			}

			// Stream: same rules.
			stream, err := e.conn.NewStream(ctx, &testServiceDesc.Streams[0], chatMethod)
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.SendMsg(newReq("hi")); err != nil {
				t.Fatal(err)
			}
			sresp := dynamicResp()
			if err := stream.RecvMsg(sresp); err != nil {
				t.Fatalf("stream RecvMsg() error = %v", err)
			}
			sheader, err := stream.Header()
			if err != nil {
				t.Fatal(err)
			}
			sgot := sheader.Get(traceid.MetadataKey)
			if len(sgot) != 1 {
				t.Fatalf("stream header %s = %v, want one value", traceid.MetadataKey, sgot)
			}
			checkID(t, sgot[0], tt.want)
			if handlerSaw := getString(sresp, "trace_id"); handlerSaw != sgot[0] {
				t.Errorf("stream handler saw trace id %q, header says %q", handlerSaw, sgot[0])
			}
			_ = stream.CloseSend()
		})
	}
}

func checkID(t *testing.T, got, want string) {
	t.Helper()
	if want != "" {
		if got != want {
			t.Errorf("trace id = %q, want %q", got, want)
		}
		return
	}
	if len(got) != 32 || !traceid.Valid(got) {
		t.Errorf("trace id = %q, want a minted 32-char hex id", got)
	}
}

func TestStreamValidation(t *testing.T) {
	e := start(t, DefaultConfig())
	stream, err := e.conn.NewStream(t.Context(), &testServiceDesc.Streams[0], chatMethod)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(newReq("first")); err != nil {
		t.Fatal(err)
	}
	if err := stream.RecvMsg(dynamicResp()); err != nil {
		t.Fatalf("RecvMsg() for a valid message error = %v", err)
	}
	if err := stream.SendMsg(newReq("ok", "")); err != nil {
		t.Fatal(err)
	}
	err = stream.RecvMsg(dynamicResp())
	const minLen = "must be at least 1 characters" // protovalidate v1.4 wording
	want := answer{codes.InvalidArgument, "invalid request: groups[0].name: " + minLen,
		[]any{errorInfo("VALIDATION_ERROR"), badRequest("groups[0].name", minLen)}}
	if diff := cmp.Diff(want, answerOf(err), protocmp.Transform(), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("stream answer mismatch (-want +got):\n%s", diff)
	}
	if got, want := e.impl.calls.Load(), int32(1); got != want {
		t.Errorf("handler calls = %d, want %d (the invalid message must not reach it)", got, want)
	}
	if got, want := e.impl.decodes.Load(), int32(2); got != want {
		t.Errorf("ReusingDecoder decodes = %d, want %d (every message, the invalid one too)", got, want)
	}
}

func TestUnbuiltNote(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want answer
	}{
		{
			name: "note makes the answer explanatory",
			opts: []Option{WithUnbuiltNote(func(m string) string {
				if m == createMethod {
					return "session creation lands with issue 5"
				}
				return ""
			})},
			want: answer{codes.Unimplemented, createMethod + " is not built yet: session creation lands with issue 5",
				[]any{errorInfo("NOT_IMPLEMENTED")}},
		},
		{
			name: "empty note keeps the handler's answer",
			opts: []Option{WithUnbuiltNote(func(string) string { return "" })},
			want: answer{codes.Unimplemented, "method Create not implemented", nil},
		},
		{
			name: "no option keeps the handler's answer",
			want: answer{codes.Unimplemented, "method Create not implemented", nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, DefaultConfig(), tt.opts...)
			_, err := e.create(t.Context(), newReq("unbuilt"))
			if diff := cmp.Diff(tt.want, answerOf(err), protocmp.Transform(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("answer mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMaxRecvMsgSize(t *testing.T) {
	big := newReq(strings.Repeat("a", 5<<20)) // 5 MiB: over the 4 MiB default
	tests := []struct {
		name string
		cfg  Config
		want codes.Code
	}{
		{"zero config takes the 4 MiB default", Config{}, codes.ResourceExhausted},
		{"default refuses 5 MiB", DefaultConfig(), codes.ResourceExhausted},
		{"raised limit accepts 5 MiB", Config{MaxRecvMsgSize: 8 << 20}, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, tt.cfg)
			// The answer echoes the title, so the client must accept it too.
			_, err := e.create(t.Context(), big, grpc.MaxCallRecvMsgSize(16<<20))
			if got := status.Code(err); got != tt.want {
				t.Errorf("Create(5 MiB) code = %v, want %v (err %v)", got, tt.want, err)
			}
		})
	}
}

func TestHealthAndReflection(t *testing.T) {
	e := start(t, DefaultConfig())
	e.srv.SetServing(testService, true)
	e.srv.SetServing("cwtest.v1.Other", false)
	hc := healthpb.NewHealthClient(e.conn)
	tests := []struct {
		service string
		want    healthpb.HealthCheckResponse_ServingStatus
	}{
		{"", healthpb.HealthCheckResponse_SERVING},
		{testService, healthpb.HealthCheckResponse_SERVING},
		{"cwtest.v1.Other", healthpb.HealthCheckResponse_NOT_SERVING},
	}
	for _, tt := range tests {
		resp, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: tt.service})
		if err != nil {
			t.Fatalf("Check(%q) error = %v", tt.service, err)
		}
		if got := resp.GetStatus(); got != tt.want {
			t.Errorf("Check(%q) = %v, want %v", tt.service, got, tt.want)
		}
	}
	if _, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "unknown"}); status.Code(err) != codes.NotFound {
		t.Errorf("Check(unknown) code = %v, want NotFound", status.Code(err))
	}
	// Probes are frequent: a successful health check logs at debug, not info.
	for _, rec := range e.logs.rpcRecords(t, "/grpc.health.v1.Health/Check") {
		if rec["code"] == "OK" && rec["level"] != "DEBUG" {
			t.Errorf("successful health check logged at %v, want DEBUG", rec["level"])
		}
	}

	rc, err := reflectionpb.NewServerReflectionClient(e.conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := rc.Recv()
	if err != nil {
		t.Fatalf("reflection Recv() error = %v", err)
	}
	var got []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		got = append(got, s.GetName())
	}
	for _, want := range []string{testService, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !contains(got, want) {
			t.Errorf("reflection lists %v, want it to include %q", got, want)
		}
	}
	_ = rc.CloseSend()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestShutdownDrains(t *testing.T) {
	e := start(t, DefaultConfig())
	e.srv.SetServing(testService, true)

	callDone := make(chan error, 1)
	go func() {
		_, err := e.create(context.Background(), newReq("block"))
		callDone <- err
	}()
	<-e.impl.entered

	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- e.srv.Shutdown(context.Background()) }()

	// Not-ready comes first, while the in-flight call still runs.
	testenv.Eventually(t, "the service to report NOT_SERVING", func() bool {
		resp, err := e.srv.Health().Check(context.Background(), &healthpb.HealthCheckRequest{Service: testService})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
	})
	resp, err := e.srv.Health().Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("overall health = %v, %v; want NOT_SERVING", resp.GetStatus(), err)
	}
	e.srv.SetServing(testService, true)
	resp, _ = e.srv.Health().Check(context.Background(), &healthpb.HealthCheckRequest{Service: testService})
	if resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("SetServing after Shutdown changed health to %v, want NOT_SERVING", resp.GetStatus())
	}
	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown() returned %v before the in-flight call finished", err)
	default:
	}

	close(e.impl.release)
	if err := <-callDone; err != nil {
		t.Errorf("in-flight call error = %v, want nil (drained)", err)
	}
	if err := <-shutdownDone; err != nil {
		t.Errorf("Shutdown() = %v, want nil", err)
	}
}

func TestShutdownDeadlineForcesStop(t *testing.T) {
	e := start(t, DefaultConfig())
	stream, err := e.conn.NewStream(t.Context(), &testServiceDesc.Streams[0], chatMethod)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(newReq("open")); err != nil {
		t.Fatal(err)
	}
	if err := stream.RecvMsg(dynamicResp()); err != nil {
		t.Fatal(err)
	}
	// The stream stays open, so a graceful stop cannot finish before the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown() = %v, want context.DeadlineExceeded", err)
	}
	if err := stream.RecvMsg(dynamicResp()); status.Code(err) != codes.Unavailable {
		t.Errorf("stream after forced stop: code = %v, want Unavailable", status.Code(err))
	}
}

// A failed RPC carries the trace id in the trailer, not the header: headers would commit the RPC
// and stop grpcclient from retrying an UNAVAILABLE answer (gRFC A6).
func TestTraceIDOnFailure(t *testing.T) {
	e := start(t, DefaultConfig())
	ctx := metadata.AppendToOutgoingContext(t.Context(), traceid.MetadataKey, "fail-1")

	var header, trailer metadata.MD
	_, err := e.create(ctx, newReq("fail"), grpc.Header(&header), grpc.Trailer(&trailer))
	if status.Code(err) != codes.NotFound {
		t.Fatalf("Create(fail) code = %v, want NotFound", status.Code(err))
	}
	if got := header.Get(traceid.MetadataKey); len(got) != 0 {
		t.Errorf("failed unary header %s = %v, want none", traceid.MetadataKey, got)
	}
	if diff := cmp.Diff([]string{"fail-1"}, trailer.Get(traceid.MetadataKey)); diff != "" {
		t.Errorf("failed unary trailer mismatch (-want +got):\n%s", diff)
	}

	stream, err := e.conn.NewStream(ctx, &testServiceDesc.Streams[0], chatMethod)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(newReq("")); err != nil {
		t.Fatal(err)
	}
	if err := stream.RecvMsg(dynamicResp()); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("stream code = %v, want InvalidArgument", status.Code(err))
	}
	if diff := cmp.Diff([]string{"fail-1"}, stream.Trailer().Get(traceid.MetadataKey)); diff != "" {
		t.Errorf("failed stream trailer mismatch (-want +got):\n%s", diff)
	}
}
