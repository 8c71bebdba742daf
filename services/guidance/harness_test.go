package guidance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/inproc"
	busevents "github.com/classwaves/classwaves/pkg/events"
	"github.com/classwaves/classwaves/pkg/grpcclient"
	"github.com/classwaves/classwaves/pkg/grpcserver"
	"github.com/classwaves/classwaves/pkg/logging"
	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/store/storetest"
	"github.com/classwaves/classwaves/pkg/testenv"
	"github.com/classwaves/classwaves/services/guidance/analyzer"
)

// waitTimeout bounds every wait in the tests; it is a hang guard, not a speed assertion.
const waitTimeout = 20 * time.Second

const (
	schoolA = "aaaaaaaa-0000-4000-8000-000000000001"
	schoolB = "bbbbbbbb-0000-4000-8000-000000000002"
)

var (
	teacher1 = "11111111-0000-4000-8000-000000000001"
	teacher2 = "22222222-0000-4000-8000-000000000002"
)

func newID() string { return uuid.NewString() }

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
	kv := []string{mdRole, string(role), mdSubject, subject}
	if school != "" {
		kv = append(kv, mdSchool, school)
	}
	return metadata.NewOutgoingContext(context.Background(), metadata.Pairs(kv...))
}

// fakeSessions is a real gRPC session server answering GetSessionContext from the sessions it
// was given (the contract the guidance service consumes); every other RPC is unimplemented.
type fakeSessions struct {
	sessionv1.UnimplementedSessionServiceServer
	mu    sync.Mutex
	m     map[string]*sessionv1.Session
	calls atomic.Int64
	down  atomic.Bool
}

func (f *fakeSessions) GetSessionContext(_ context.Context, req *sessionv1.GetSessionContextRequest) (*sessionv1.GetSessionContextResponse, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return nil, status.Error(codes.Unavailable, "session service down")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.m[req.GetSessionId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "session not found")
	}
	return &sessionv1.GetSessionContextResponse{Session: proto.Clone(s).(*sessionv1.Session)}, nil
}

func (f *fakeSessions) put(s *sessionv1.Session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[s.GetId()] = proto.Clone(s).(*sessionv1.Session)
}

func (f *fakeSessions) setStatus(id, st string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[id].Status = st
}

// newSession is an active session of teacher in school with n groups of three named students.
func newSession(teacher, school string, n int, objectives ...string) *sessionv1.Session {
	s := &sessionv1.Session{Id: newID(), TeacherId: teacher, SchoolId: school, Status: sessionActive, AiAnalysisEnabled: true,
		LearningObjectives: objectives, Title: "Ecosystems"}
	for i := range n {
		g := &sessionv1.Group{Id: newID(), SessionId: s.Id, Name: fmt.Sprintf("Group %c", 'A'+i), GroupNumber: int32(i + 1)}
		for j := range 3 {
			g.Members = append(g.Members, &sessionv1.GroupMember{StudentId: newID(), DisplayName: fmt.Sprintf("Student%d%d", i, j)})
		}
		s.Groups = append(s.Groups, g)
	}
	return s
}

// collector keeps what the service publishes on its topic, decoded.
type collector struct {
	mu  sync.Mutex
	all []*eventsv1.Event
}

func (c *collector) handle(_ context.Context, m bus.Message) {
	ev := &eventsv1.Event{}
	if err := proto.Unmarshal(m.Payload, ev); err != nil {
		panic(err)
	}
	c.mu.Lock()
	c.all = append(c.all, ev)
	c.mu.Unlock()
}

func (c *collector) of(typ string) []*eventsv1.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*eventsv1.Event
	for _, ev := range c.all {
		if ev.GetType() == typ {
			out = append(out, ev)
		}
	}
	return out
}

// insights are the InsightProduced events of tier for session.
func (c *collector) insights(session string, tier int32) []*eventsv1.Event {
	var out []*eventsv1.Event
	for _, ev := range c.of(busevents.InsightProduced) {
		if ev.GetSessionId() == session && ev.GetInsightProduced().GetTier() == tier {
			out = append(out, ev)
		}
	}
	return out
}

// prompts are the PromptRaised events of session.
func (c *collector) prompts(session string) []*eventsv1.Event {
	var out []*eventsv1.Event
	for _, ev := range c.of(busevents.PromptRaised) {
		if ev.GetSessionId() == session {
			out = append(out, ev)
		}
	}
	return out
}

// testClock is the service's clock, moved by the test.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// switchAnalyzer is the built-in analyzer with a switch that makes it fail (an analyzer outage)
// and counters of its calls.
type switchAnalyzer struct {
	*analyzer.Builtin
	fail   atomic.Bool
	calls1 atomic.Int64
	calls2 atomic.Int64
}

var errAnalyzerDown = errors.New("analyzer down")

func (a *switchAnalyzer) Tier1(ctx context.Context, in analyzer.Tier1Input) (*guidancev1.Tier1Insight, error) {
	a.calls1.Add(1)
	if a.fail.Load() {
		return nil, errAnalyzerDown
	}
	return a.Builtin.Tier1(ctx, in)
}

func (a *switchAnalyzer) Tier2(ctx context.Context, in analyzer.Tier2Input) (*guidancev1.Tier2Insight, error) {
	a.calls2.Add(1)
	if a.fail.Load() {
		return nil, errAnalyzerDown
	}
	return a.Builtin.Tier2(ctx, in)
}

// harness is the service on a real database (SQLite unless given), bus (in-process unless given)
// and gRPC server (loopback), asking a real gRPC session server, analysing with the built-in
// analyzer.
type harness struct {
	t        testing.TB
	cfg      Config
	db       *store.DB
	bus      bus.Bus
	sessions *fakeSessions
	sessConn sessionv1.SessionServiceClient
	an       *switchAnalyzer
	reg      *prometheus.Registry
	audit    *auditlog.Client
	events   *collector
	clock    *testClock
	consumer string
	// deferred: newHarness does not start the service (the test calls start).
	deferred bool
	// prep, when set, is called on each new instance before it starts.
	prep func(*Service)

	svc    *Service
	client guidancev1.GuidanceServiceClient
}

type harnessOption func(*harness)

func withBus(b bus.Bus) harnessOption        { return func(h *harness) { h.bus = b } }
func withDB(db *store.DB) harnessOption      { return func(h *harness) { h.db = db } }
func withConsumer(name string) harnessOption { return func(h *harness) { h.consumer = name } }
func deferStart() harnessOption              { return func(h *harness) { h.deferred = true } }

// testConfig is DefaultConfig with a worker count suited to tests and no transcript grace: the
// tests feed transcripts and speech activity themselves, in the order they choose
// (TestTranscriptGrace covers the grace).
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Workers = 4
	cfg.TranscriptGrace = 0
	return cfg
}

func newHarness(t testing.TB, mod func(*Config), opts ...harnessOption) *harness {
	t.Helper()
	cfg := testConfig()
	if mod != nil {
		mod(&cfg)
	}
	h := &harness{t: t, cfg: cfg, sessions: &fakeSessions{m: map[string]*sessionv1.Session{}},
		an: &switchAnalyzer{Builtin: analyzer.NewBuiltin()}, reg: prometheus.NewRegistry(), events: &collector{},
		clock: &testClock{now: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}}
	for _, o := range opts {
		o(h)
	}
	if h.bus == nil {
		b, err := inproc.New(inproc.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		h.bus = b
	}
	if h.db == nil {
		h.db = storetest.OpenSQLite(t)
	}
	sub, err := h.bus.FanOut(context.Background(), cfg.EventsTopic, h.events.handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	h.sessConn = sessionv1.NewSessionServiceClient(serve(t, func(r grpc.ServiceRegistrar) { sessionv1.RegisterSessionServiceServer(r, h.sessions) }))
	auditCfg := auditlog.DefaultConfig()
	auditCfg.EnqueueTimeout = 5 * time.Second
	h.audit = auditlog.New(auditCfg, h.bus, h.reg)
	t.Cleanup(func() { _ = h.audit.Close() })
	if !h.deferred {
		h.start()
	}
	return h
}

// start builds and starts a service instance on the harness's database, bus and clock, served
// on its own loopback gRPC server.
func (h *harness) start() {
	h.t.Helper()
	opts := []Option{WithClock(h.clock.Now)}
	if h.consumer != "" {
		opts = append(opts, WithConsumerName(h.consumer))
	}
	svc, err := New(h.cfg, h.db, h.bus, h.sessConn, h.an, h.an, h.audit, logging.Discard(), h.reg, opts...)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.prep != nil {
		h.prep(svc)
	}
	if err := svc.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { h.stopSvc(svc) })
	h.svc = svc
	h.client = guidancev1.NewGuidanceServiceClient(serve(h.t, svc.Register))
}

func (h *harness) stopSvc(svc *Service) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := svc.Stop(ctx); err != nil {
		h.t.Errorf("Stop: %v", err)
	}
}

// restart stops the running instance, runs meanwhile (publishing, say, so that everything it
// publishes is read as one batch), and starts a new instance (same database, bus and clock).
func (h *harness) restart(meanwhile func()) {
	h.t.Helper()
	if h.svc != nil {
		h.stopSvc(h.svc)
	}
	if meanwhile != nil {
		meanwhile()
	}
	h.start()
}

// feedGolden publishes a golden discussion's turns and activity as stt events for group, its
// offsets counted from base, with fresh ids (tag names the round in the ids' place). Speaker
// labels go in the transcript text ("A: ..."), as a speaker-labelling transcriber writes them.
// It answers the discussion's span.
func (h *harness) feedGolden(s *sessionv1.Session, group string, g analyzer.Golden, base time.Time) (start, end time.Time) {
	h.t.Helper()
	in := g.Tier1Input(base)
	type item struct {
		end  time.Time
		emit func()
	}
	var items []item
	for _, tr := range in.Turns {
		text := tr.Text
		if tr.Speaker != "" {
			text = tr.Speaker + ": " + text
		}
		items = append(items, item{tr.End, func() { h.transcript(s, group, newID(), text, tr.Start, tr.End) }})
	}
	for _, a := range in.Activity {
		items = append(items, item{a.End, func() {
			h.activity(s, group, newID(), a.Start, a.End, a.SpeechSeconds, a.SilenceSeconds, a.LongestSilenceSeconds)
		}})
	}
	slices.SortStableFunc(items, func(a, b item) int { return a.end.Compare(b.end) })
	for _, it := range items {
		it.emit()
	}
	return in.SpanStart, in.SpanEnd
}

// serve serves what register registers on the product's gRPC server (with the principal
// injector) on a loopback port, and answers a client connection.
func serve(t testing.TB, register func(grpc.ServiceRegistrar)) *grpc.ClientConn {
	t.Helper()
	srv := grpcserver.New(grpcserver.DefaultConfig(), logging.Discard(), grpcserver.WithServerOptions(grpc.ChainUnaryInterceptor(injectUnary)))
	register(srv.GRPC())
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
	return conn
}

// publish puts an event on topic as its producer would.
func (h *harness) publish(topic string, ev *eventsv1.Event) {
	h.t.Helper()
	if ev.Id == "" {
		ev.Id = newID()
	}
	ev.SchemaVersion = SchemaVersion
	ev.OccurredAt = timestamppb.New(h.clock.Now())
	payload, err := proto.Marshal(ev)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.bus.Publish(context.Background(), topic, bus.Outgoing{Key: ev.Key, Payload: payload}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) transcript(s *sessionv1.Session, group, id, text string, start, end time.Time) {
	h.publish(h.cfg.STTTopic, &eventsv1.Event{Type: busevents.Transcript, Key: group, SchoolId: s.GetSchoolId(), SessionId: s.GetId(),
		GroupId: group, TraceId: "trace-" + id,
		Payload: &eventsv1.Event_TranscriptReady{TranscriptReady: &eventsv1.TranscriptReady{
			TranscriptId: id, Text: text, Confidence: 0.9, WindowStart: timestamppb.New(start), WindowEnd: timestamppb.New(end),
		}}})
}

func (h *harness) activity(s *sessionv1.Session, group, id string, start, end time.Time, speech, silence, longest float64) {
	h.publish(h.cfg.STTTopic, &eventsv1.Event{Type: busevents.SpeechActivity, Key: group, SchoolId: s.GetSchoolId(), SessionId: s.GetId(),
		GroupId: group,
		Payload: &eventsv1.Event_SpeechActivity{SpeechActivity: &eventsv1.SpeechActivity{
			WindowId: id, WindowStart: timestamppb.New(start), WindowEnd: timestamppb.New(end),
			SpeechSeconds: speech, SilenceSeconds: silence, LongestSilenceSeconds: longest,
		}}})
}

func (h *harness) status(s *sessionv1.Session, st string) {
	h.sessions.setStatus(s.GetId(), st)
	h.publish(h.cfg.SessionTopic, &eventsv1.Event{Type: busevents.SessionStatusChanged, Key: s.GetId(), SchoolId: s.GetSchoolId(),
		SessionId: s.GetId(), Payload: &eventsv1.Event_SessionStatusChanged{SessionStatusChanged: &eventsv1.SessionStatusChanged{
			Status: st, TeacherId: s.GetTeacherId(),
		}}})
}

// drained waits until the service's consumer group has handled everything published to topic.
func (h *harness) drained(topic string) {
	h.t.Helper()
	testenv.Eventually(h.t, "the consumer group to catch up on "+topic, func() bool {
		n, err := h.bus.Len(context.Background(), topic)
		if err != nil {
			h.t.Fatal(err)
		}
		return h.handled(topic) >= n
	})
	// And the fan-out has brought the test everything the service published.
	testenv.Eventually(h.t, "the collector to catch up on "+h.cfg.EventsTopic, func() bool {
		n, err := h.bus.Len(context.Background(), h.cfg.EventsTopic)
		if err != nil {
			h.t.Fatal(err)
		}
		h.events.mu.Lock()
		defer h.events.mu.Unlock()
		return int64(len(h.events.all)) >= n
	})
}

// handled counts the messages of topic the service has handled (every outcome but retry).
func (h *harness) handled(topic string) int64 {
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	types := map[string][]string{
		h.cfg.STTTopic:     {busevents.Transcript, busevents.SpeechActivity},
		h.cfg.SessionTopic: {busevents.SessionStatusChanged},
	}[topic]
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "guidance_bus_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var typ, outcome string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "type":
					typ = l.GetValue()
				case "outcome":
					outcome = l.GetValue()
				}
			}
			if outcome != outcomeRetry && slices.Contains(types, typ) {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return int64(n)
}

// counter reads a counter of the registry by name and labels.
func (h *harness) counter(name string, labels map[string]string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue metric
				}
			}
			if c := m.GetCounter(); c != nil {
				n += c.GetValue()
			} else if hg := m.GetHistogram(); hg != nil {
				n += float64(hg.GetSampleCount())
			}
		}
	}
	return n
}

// auditTypes are the audit events enqueued so far.
func (h *harness) auditEvents() []string {
	msgs, err := h.bus.Replay(context.Background(), auditlog.DefaultConfig().StreamKey, "0", 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Payload))
	}
	return out
}

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
