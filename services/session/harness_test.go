package session

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/inproc"
	"github.com/classwaves/classwaves/pkg/grpcclient"
	"github.com/classwaves/classwaves/pkg/grpcserver"
	"github.com/classwaves/classwaves/pkg/logging"
	"github.com/classwaves/classwaves/pkg/store"
)

const (
	schoolA  = "aaaaaaaa-0000-4000-8000-000000000001"
	schoolB  = "bbbbbbbb-0000-4000-8000-000000000002"
	teacher1 = "11111111-0000-4000-8000-000000000001"
	teacher2 = "22222222-0000-4000-8000-000000000002"
)

// fakeTokens is a TokenIssuer that answers a deterministic token and records what it issued.
type fakeTokens struct {
	mu     sync.Mutex
	issued []string // "student/session/group"
}

func (f *fakeTokens) IssueStudentToken(_ context.Context, studentID, sessionID, groupID, _, _ string) (string, int32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.issued = append(f.issued, studentID+"/"+sessionID+"/"+groupID)
	return "student-token:" + studentID, 3600, nil
}

// fakeDrainer is an AudioDrainer that records the timeout it was given and answers timedOut.
type fakeDrainer struct {
	mu       sync.Mutex
	calls    []time.Duration
	timedOut []string
}

func (f *fakeDrainer) FlushGroups(_ context.Context, _ string, timeout time.Duration) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, timeout)
	return f.timedOut, nil
}

// Test-only metadata the principal injector reads, standing in for the auth interceptor the
// binary installs (it puts a verified Principal in the context the same way).
const (
	mdRole    = "x-test-role"
	mdSchool  = "x-test-school"
	mdSubject = "x-test-subject"
)

func injectUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
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

func as(role authn.Role, subject, school string) context.Context {
	return metadata.NewOutgoingContext(context.Background(), metadata.Pairs(mdRole, string(role), mdSubject, subject, mdSchool, school))
}

var (
	asTeacher1 = as(authn.RoleTeacher, teacher1, schoolA)
	asTeacher2 = as(authn.RoleTeacher, teacher2, schoolA)
	asService  = as(authn.RoleService, "svc-realtime", "")
	anonymous  = context.Background()
)

// recorder collects the messages published on a topic.
type recorder struct {
	mu   sync.Mutex
	msgs []bus.Message
}

func (r *recorder) handle(_ context.Context, m bus.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

func (r *recorder) events(typ string) []*eventsv1.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*eventsv1.Event
	for _, m := range r.msgs {
		ev := &eventsv1.Event{}
		if err := proto.Unmarshal(m.Payload, ev); err != nil {
			panic(err)
		}
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// auditTypes returns the eventType of every audit record published.
func (r *recorder) auditTypes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		s := string(m.Payload)
		if i := strings.Index(s, `"eventType":"`); i >= 0 {
			rest := s[i+len(`"eventType":"`):]
			out = append(out, rest[:strings.IndexByte(rest, '"')])
		}
	}
	return out
}

// harness is the service on a real database, the in-process bus and the product's gRPC server on
// a loopback port.
type harness struct {
	svc     *Service
	client  sessionv1.SessionServiceClient
	events  *recorder
	audit   *recorder
	tokens  *fakeTokens
	drainer *fakeDrainer
	nowMu   sync.Mutex
	now     time.Time
}

func (h *harness) clock() time.Time {
	h.nowMu.Lock()
	defer h.nowMu.Unlock()
	return h.now
}

func (h *harness) advance(d time.Duration) {
	h.nowMu.Lock()
	defer h.nowMu.Unlock()
	h.now = h.now.Add(d)
}

func newHarness(t *testing.T, db *store.DB) *harness {
	t.Helper()
	b, err := inproc.New(inproc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	h := &harness{events: &recorder{}, audit: &recorder{}, tokens: &fakeTokens{}, drainer: &fakeDrainer{},
		now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	cfg := DefaultConfig()
	for topic, r := range map[string]*recorder{cfg.EventsTopic: h.events, auditlog.DefaultStreamKey: h.audit} {
		sub, err := b.FanOut(context.Background(), topic, r.handle)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Close() })
	}
	reg := prometheus.NewRegistry()
	acfg := auditlog.DefaultConfig()
	acfg.EnqueueTimeout = 5 * time.Second
	ac := auditlog.New(acfg, b, reg)
	t.Cleanup(func() { _ = ac.Close() })
	svc, err := New(cfg, db, b, h.tokens, h.drainer, ac, logging.Discard(), reg)
	if err != nil {
		t.Fatal(err)
	}
	svc.now = h.clock
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	h.svc = svc

	srv := grpcserver.New(grpcserver.DefaultConfig(), logging.Discard(), grpcserver.WithServerOptions(grpc.ChainUnaryInterceptor(injectUnary)))
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
	h.client = sessionv1.NewSessionServiceClient(conn)
	return h
}

// reason returns the stable reason of a call's error ("" for nil).
func reason(err error) string {
	if err == nil {
		return ""
	}
	st, _ := status.FromError(err)
	return apperr.ReasonOf(st)
}

func newID() string { return uuid.NewString() }
