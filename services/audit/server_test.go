package audit

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/classwaves/classwaves/pkg/api/classwaves/audit/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/grpcclient"
	"github.com/classwaves/classwaves/pkg/grpcserver"
	"github.com/classwaves/classwaves/pkg/logging"
	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/store/storetest"
)

// Test-only metadata the principal injector reads. Token verification is not built yet; this
// interceptor stands in for it, the way the real one will put a Principal in the context.
const (
	mdRole    = "x-test-role"
	mdSchool  = "x-test-school"
	mdSubject = "x-test-subject"
)

func injectPrincipal(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if roles := md.Get(mdRole); len(roles) > 0 {
		p := authn.Principal{Role: authn.Role(roles[0])}
		if v := md.Get(mdSchool); len(v) > 0 {
			p.SchoolID = v[0]
		}
		if v := md.Get(mdSubject); len(v) > 0 {
			p.Subject = v[0]
		}
		ctx = authn.NewContext(ctx, p)
	}
	return h(ctx, req)
}

// startServer serves svc on a real gRPC server (the product's, with its interceptors) on a
// loopback port and returns a client.
func startServer(t *testing.T, svc *Service) auditv1.AuditServiceClient {
	t.Helper()
	srv := grpcserver.New(grpcserver.DefaultConfig(), logging.Discard(),
		grpcserver.WithServerOptions(grpc.ChainUnaryInterceptor(injectPrincipal)))
	svc.Register(srv.GRPC())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	conn, err := grpcclient.Dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return auditv1.NewAuditServiceClient(conn)
}

func as(role, school string) context.Context {
	kv := []string{mdRole, role, mdSubject, "user-1"}
	if school != "" {
		kv = append(kv, mdSchool, school)
	}
	return metadata.NewOutgoingContext(context.Background(), metadata.Pairs(kv...))
}

const (
	schoolA = "aaaaaaaa-0000-4000-8000-000000000001"
	schoolB = "bbbbbbbb-0000-4000-8000-000000000002"
	schoolC = "cccccccc-0000-4000-8000-000000000003"
)

func pbEvent(n int, school string, mod func(*auditv1.AuditEvent)) *auditv1.AuditEvent {
	ev := &auditv1.AuditEvent{
		Id:            testID(n),
		OccurredAt:    timestamppb.New(t0.Add(time.Duration(n) * time.Second)),
		ActorId:       "teacher-1",
		ActorType:     "teacher",
		EventType:     "session.start",
		EventCategory: "session",
		SchoolId:      school,
		Priority:      "normal",
		Count:         1,
	}
	if mod != nil {
		mod(ev)
	}
	return ev
}

// wantStatus is the comparable shape of an RPC failure.
type wantStatus struct {
	Code   codes.Code
	Reason string
}

func statusOf(err error) wantStatus {
	if err == nil {
		return wantStatus{}
	}
	st := status.Convert(err)
	return wantStatus{st.Code(), apperr.ReasonOf(st)}
}

func TestServer(t *testing.T) {
	t.Parallel()
	storetest.ForEachProvider(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, testConfig(), db, nil)
		client := startServer(t, h.svc)
		ctx := context.Background()

		// Seed through RecordEvents.
		events := []*auditv1.AuditEvent{
			pbEvent(1, schoolA, nil),
			pbEvent(2, schoolA, func(e *auditv1.AuditEvent) { e.ActorId = "teacher-2" }),
			pbEvent(3, schoolA, func(e *auditv1.AuditEvent) { e.EventType = "auth.login"; e.EventCategory = "authentication" }),
			pbEvent(4, schoolA, func(e *auditv1.AuditEvent) { e.SessionId = "session-9" }),
			pbEvent(5, schoolB, nil),
			pbEvent(6, schoolA, func(e *auditv1.AuditEvent) { e.Description = "mailed ana@x.org from 10.0.0.1" }),
		}
		resp, err := client.RecordEvents(ctx, &auditv1.RecordEventsRequest{Events: events})
		if err != nil {
			t.Fatalf("RecordEvents: %v", err)
		}
		if resp.GetStored() != 6 || resp.GetDuplicates() != 0 {
			t.Errorf("RecordEvents = %v, want 6 stored", resp)
		}
		resp, err = client.RecordEvents(ctx, &auditv1.RecordEventsRequest{Events: []*auditv1.AuditEvent{events[0], pbEvent(7, schoolA, nil)}})
		if err != nil || resp.GetStored() != 1 || resp.GetDuplicates() != 1 {
			t.Errorf("RecordEvents again = %v, %v; want 1 stored, 1 duplicate", resp, err)
		}
		_, err = client.RecordEvents(ctx, &auditv1.RecordEventsRequest{Events: []*auditv1.AuditEvent{pbEvent(8, schoolA, func(e *auditv1.AuditEvent) { e.ActorType = "robot" })}})
		if got, want := statusOf(err), (wantStatus{codes.InvalidArgument, apperr.ReasonValidation}); got != want {
			t.Errorf("RecordEvents with a bad actor type: %v, want %v", got, want)
		}
		var manyC []*auditv1.AuditEvent
		for i := range 60 {
			manyC = append(manyC, pbEvent(100+i, schoolC, nil))
		}
		if _, err := client.RecordEvents(ctx, &auditv1.RecordEventsRequest{Events: manyC}); err != nil {
			t.Fatal(err)
		}

		ts := func(n int) *timestamppb.Timestamp { return timestamppb.New(t0.Add(time.Duration(n) * time.Second)) }
		tests := []struct {
			name    string
			ctx     context.Context
			req     *auditv1.QueryAuditLogRequest
			want    []int // event numbers, newest first
			wantErr wantStatus
		}{
			{name: "no principal", ctx: ctx, req: &auditv1.QueryAuditLogRequest{}, wantErr: wantStatus{codes.Unauthenticated, "UNAUTHORIZED"}},
			{name: "teacher", ctx: as("teacher", schoolA), req: &auditv1.QueryAuditLogRequest{}, wantErr: wantStatus{codes.PermissionDenied, "FORBIDDEN"}},
			{name: "admin sees its school", ctx: as("admin", schoolA), req: &auditv1.QueryAuditLogRequest{}, want: []int{7, 6, 4, 3, 2, 1}},
			{name: "admin naming its school", ctx: as("admin", schoolA), req: &auditv1.QueryAuditLogRequest{SchoolId: schoolA}, want: []int{7, 6, 4, 3, 2, 1}},
			{name: "admin asking for another school", ctx: as("admin", schoolA), req: &auditv1.QueryAuditLogRequest{SchoolId: schoolB}, wantErr: wantStatus{codes.PermissionDenied, "FORBIDDEN"}},
			{name: "admin without a school", ctx: as("admin", ""), req: &auditv1.QueryAuditLogRequest{}, wantErr: wantStatus{codes.PermissionDenied, "FORBIDDEN"}},
			{name: "super admin, any school", ctx: as("super_admin", ""), req: &auditv1.QueryAuditLogRequest{SchoolId: schoolB}, want: []int{5}},
			{name: "actor", ctx: as("admin", schoolA), req: &auditv1.QueryAuditLogRequest{ActorId: "teacher-2"}, want: []int{2}},
			{name: "action", ctx: as("admin", schoolA), req: &auditv1.QueryAuditLogRequest{EventType: "auth.login"}, want: []int{3}},
			{name: "category", ctx: as("admin", schoolA), req: &auditv1.QueryAuditLogRequest{EventCategory: "authentication"}, want: []int{3}},
			{name: "session", ctx: as("admin", schoolA), req: &auditv1.QueryAuditLogRequest{SessionId: "session-9"}, want: []int{4}},
			{name: "time range", ctx: as("admin", schoolA), req: &auditv1.QueryAuditLogRequest{StartTime: ts(2), EndTime: ts(6)}, want: []int{4, 3, 2}},
			{name: "empty range", ctx: as("admin", schoolA), req: &auditv1.QueryAuditLogRequest{StartTime: ts(6), EndTime: ts(6)}, wantErr: wantStatus{codes.InvalidArgument, "INVALID_TIME_RANGE"}},
			{name: "bad page token", ctx: as("admin", schoolA), req: &auditv1.QueryAuditLogRequest{PageToken: "nope"}, wantErr: wantStatus{codes.InvalidArgument, "INVALID_PAGE_TOKEN"}},
			{name: "page size over 500", ctx: as("admin", schoolA), req: &auditv1.QueryAuditLogRequest{PageSize: 501}, wantErr: wantStatus{codes.InvalidArgument, apperr.ReasonValidation}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var got []string
				req := tt.req
				var err error
				for range 100 {
					var resp *auditv1.QueryAuditLogResponse
					resp, err = client.QueryAuditLog(tt.ctx, req)
					if err != nil {
						break
					}
					for _, e := range resp.GetEvents() {
						got = append(got, e.GetId())
					}
					if resp.GetNextPageToken() == "" {
						break
					}
					req.PageToken = resp.GetNextPageToken()
				}
				if diff := cmp.Diff(tt.wantErr, statusOf(err)); diff != "" {
					t.Fatalf("status mismatch (-want +got):\n%s", diff)
				}
				var want []string
				for _, n := range tt.want {
					want = append(want, testID(n))
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("ids mismatch (-want +got):\n%s", diff)
				}
			})
		}

		t.Run("paging", func(t *testing.T) {
			var got []string
			req := &auditv1.QueryAuditLogRequest{PageSize: 4}
			pages := 0
			for {
				resp, err := client.QueryAuditLog(as("admin", schoolA), req)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, e := range resp.GetEvents() {
					got = append(got, e.GetId())
				}
				if resp.GetNextPageToken() == "" {
					break
				}
				req.PageToken = resp.GetNextPageToken()
			}
			want := []string{testID(7), testID(6), testID(4), testID(3), testID(2), testID(1)}
			if diff := cmp.Diff(want, got); diff != "" || pages != 2 {
				t.Errorf("%d pages, ids mismatch (-want +got):\n%s", pages, diff)
			}
		})

		t.Run("default page size is 50", func(t *testing.T) {
			resp, err := client.QueryAuditLog(as("admin", schoolC), &auditv1.QueryAuditLogRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(resp.GetEvents()); got != DefaultPageSize || resp.GetNextPageToken() == "" {
				t.Errorf("%d events, next token %q; want %d and a token", got, resp.GetNextPageToken(), DefaultPageSize)
			}
		})

		t.Run("stored events are scrubbed and complete", func(t *testing.T) {
			resp, err := client.QueryAuditLog(as("super_admin", ""), &auditv1.QueryAuditLogRequest{SchoolId: schoolA, PageSize: 1})
			if err != nil {
				t.Fatal(err)
			}
			want := pbEvent(7, schoolA, nil)
			got := resp.GetEvents()[0]
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("event mismatch (-want +got):\n%s", diff)
			}
			resp, err = client.QueryAuditLog(as("super_admin", ""), &auditv1.QueryAuditLogRequest{SchoolId: schoolA, StartTime: ts(6), EndTime: ts(7)})
			if err != nil || len(resp.GetEvents()) != 1 {
				t.Fatalf("QueryAuditLog = %v, %v", resp, err)
			}
			if got, want := resp.GetEvents()[0].GetDescription(), "mailed [REDACTED_EMAIL] from [REDACTED_IP]"; got != want {
				t.Errorf("description = %q, want %q", got, want)
			}
		})
	})
}
