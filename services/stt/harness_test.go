package stt

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/inproc"
	"github.com/classwaves/classwaves/pkg/grpcclient"
	"github.com/classwaves/classwaves/pkg/grpcserver"
	"github.com/classwaves/classwaves/pkg/logging"
	"github.com/classwaves/classwaves/pkg/store/storetest"
	"github.com/classwaves/classwaves/pkg/testenv"
	"github.com/classwaves/classwaves/services/stt/openaitest"
)

// waitTimeout bounds every wait in the tests; it is a hang guard, not a speed assertion.
const waitTimeout = 60 * time.Second

const (
	schoolA = "aaaaaaaa-0000-4000-8000-000000000001"
	schoolB = "bbbbbbbb-0000-4000-8000-000000000002"
)

func newID() string { return uuid.NewString() }

// Test-only metadata the principal injector reads, standing in for the auth interceptor the
// binary installs (it puts a verified Principal in the context the same way).
const (
	mdRole   = "x-test-role"
	mdSchool = "x-test-school"
)

func principalFrom(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	if roles := md.Get(mdRole); len(roles) > 0 {
		p := authn.Principal{Role: authn.Role(roles[0]), Subject: "user-1"}
		if v := md.Get(mdSchool); len(v) > 0 {
			p.SchoolID = v[0]
		}
		ctx = authn.NewContext(ctx, p)
	}
	return ctx
}

func injectUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	return h(principalFrom(ctx), req)
}

func as(role authn.Role, school string) context.Context {
	kv := []string{mdRole, string(role)}
	if school != "" {
		kv = append(kv, mdSchool, school)
	}
	return metadata.NewOutgoingContext(context.Background(), metadata.Pairs(kv...))
}

// events collects what the service publishes, decoded.
type events struct {
	mu  sync.Mutex
	all []*eventsv1.Event
}

func (e *events) handle(_ context.Context, m bus.Message) {
	ev := &eventsv1.Event{}
	if err := proto.Unmarshal(m.Payload, ev); err != nil {
		panic(err)
	}
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

// of returns the events of type typ, in publish order.
func (e *events) of(typ string) []*eventsv1.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*eventsv1.Event
	for _, ev := range e.all {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// harness is the service on a real database (SQLite), bus (in-process) and gRPC server
// (loopback), transcribing through the local OpenAI-compatible server.
type harness struct {
	t      testing.TB
	cfg    Config
	svc    *Service
	store  *sqlStore
	bus    *inproc.Bus
	openai *openaitest.Server
	reg    *prometheus.Registry
	events *events
	client sttv1.SttServiceClient
	// now is the service's clock (budget days).
	nowMu sync.Mutex
	now   time.Time
}

// testConfig is DefaultConfig pointed at srv, with short drains.
func testConfig(srv *openaitest.Server) Config {
	cfg := DefaultConfig()
	cfg.OpenAIBaseURL = srv.URL
	cfg.OpenAIAPIKey = "sk-test"
	cfg.WhisperMaxRetries = 0
	cfg.DrainTimeout = 20 * time.Second // tests that want a short one set it
	return cfg
}

func newHarness(t testing.TB, mod func(*Config)) *harness {
	t.Helper()
	srv := openaitest.New(t)
	srv.APIKey = "sk-test"
	cfg := testConfig(srv)
	if mod != nil {
		mod(&cfg)
	}
	b, err := inproc.New(inproc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	h := &harness{t: t, cfg: cfg, bus: b, openai: srv, reg: prometheus.NewRegistry(), events: &events{},
		now: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	sub, err := b.FanOut(context.Background(), cfg.EventsTopic, h.events.handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	db := storetest.OpenSQLite(t)
	h.store = newSQLStore(db)
	auditCfg := auditlog.DefaultConfig()
	auditCfg.EnqueueTimeout = 5 * time.Second
	ac := auditlog.New(auditCfg, b, h.reg)
	t.Cleanup(func() { _ = ac.Close() })
	svc, err := newService(cfg, h.store, b, ac, logging.Discard(), h.reg, withClock(h.clock))
	if err != nil {
		t.Fatal(err)
	}
	svc.migrate = h.store.Migrate
	h.svc = svc
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_ = svc.Stop(ctx)
	})
	h.client = startServer(t, svc)
	return h
}

func (h *harness) clock() time.Time {
	h.nowMu.Lock()
	defer h.nowMu.Unlock()
	return h.now
}

func (h *harness) setClock(t time.Time) {
	h.nowMu.Lock()
	defer h.nowMu.Unlock()
	h.now = t
}

// startServer serves svc on the product's gRPC server on a loopback port.
func startServer(t testing.TB, svc *Service) sttv1.SttServiceClient {
	t.Helper()
	cfg := grpcserver.DefaultConfig()
	cfg.MaxRecvMsgSize = 8 << 20
	srv := grpcserver.New(cfg, logging.Discard(), grpcserver.WithServerOptions(grpc.ChainUnaryInterceptor(injectUnary)))
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
	return sttv1.NewSttServiceClient(conn)
}

// audioStream is a client stream with its answers collected in the background.
type audioStream struct {
	t      testing.TB
	stream grpc.BidiStreamingClient[sttv1.StreamAudioRequest, sttv1.StreamAudioResponse]
	cancel context.CancelFunc
	seq    int64

	mu      sync.Mutex
	answers []*sttv1.StreamAudioResponse
	end     error
	ended   chan struct{}
}

func (h *harness) open(t testing.TB, start *sttv1.AudioStart) *audioStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := h.client.StreamAudio(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := &audioStream{t: t, stream: stream, cancel: cancel, ended: make(chan struct{})}
	t.Cleanup(cancel)
	go func() {
		defer close(s.ended)
		for {
			resp, err := stream.Recv()
			s.mu.Lock()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					s.end = err
				}
				s.mu.Unlock()
				return
			}
			s.answers = append(s.answers, resp)
			s.mu.Unlock()
		}
	}()
	if err := stream.Send(&sttv1.StreamAudioRequest{Message: &sttv1.StreamAudioRequest_Start{Start: start}}); err != nil {
		t.Fatal(err)
	}
	return s
}

func pcmStart(session, group, school string, rate int32) *sttv1.AudioStart {
	return &sttv1.AudioStart{SessionId: session, GroupId: group, SchoolId: school,
		Format: sttv1.AudioFormat_AUDIO_FORMAT_PCM16, SampleRate: rate, Language: "en", TraceId: "trace-1"}
}

func (s *audioStream) send(data []byte) {
	s.t.Helper()
	s.seq++
	if err := s.stream.Send(&sttv1.StreamAudioRequest{Message: &sttv1.StreamAudioRequest_Chunk{Chunk: &sttv1.AudioChunk{Data: data, Seq: s.seq}}}); err != nil {
		s.t.Fatalf("Send: %v", err)
	}
}

// sendAll sends b in chunks of size cs.
func (s *audioStream) sendAll(b []byte, cs int) {
	for i := 0; i < len(b); i += cs {
		s.send(b[i:min(i+cs, len(b))])
	}
}

func (s *audioStream) stop() {
	s.t.Helper()
	if err := s.stream.Send(&sttv1.StreamAudioRequest{Message: &sttv1.StreamAudioRequest_Stop{Stop: &sttv1.AudioStop{}}}); err != nil {
		s.t.Fatal(err)
	}
}

// finish half-closes the stream and waits for the server to end it; it returns the stream's end.
func (s *audioStream) finish() error {
	s.t.Helper()
	if err := s.stream.CloseSend(); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.ended:
	case <-time.After(waitTimeout):
		s.t.Fatal("the stream did not end")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end
}

// waitAnswers waits until n chunk answers arrived.
func (s *audioStream) waitAnswers(n int) {
	s.t.Helper()
	testenv.Eventually(s.t, "chunk answers", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		c := 0
		for _, a := range s.answers {
			if a.GetAccepted() != nil || a.GetRefused() != nil {
				c++
			}
		}
		return c >= n || s.end != nil
	})
}

func (s *audioStream) refused() []*sttv1.ChunkRefused {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*sttv1.ChunkRefused
	for _, a := range s.answers {
		if r := a.GetRefused(); r != nil {
			out = append(out, r)
		}
	}
	return out
}

func (s *audioStream) windows() []*sttv1.WindowClosed {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*sttv1.WindowClosed
	for _, a := range s.answers {
		if w := a.GetWindowClosed(); w != nil {
			out = append(out, w)
		}
	}
	return out
}

// silence returns d of digital silence.
func silence(rate int, d time.Duration) []byte {
	return make([]byte, 2*int(d.Seconds()*float64(rate)))
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// windowCount reads stt_windows_total{outcome}.
func (h *harness) windowCount(outcome string) int {
	return int(testutil.ToFloat64(h.svc.m.windows.WithLabelValues(outcome)))
}

// auditEvents returns the audit records enqueued, by event type.
func (h *harness) auditEvents() []string {
	msgs, err := h.bus.Replay(context.Background(), auditlog.DefaultConfig().StreamKey, "0", 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Payload))
	}
	sort.Strings(out)
	return out
}
