package analytics

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
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
	"github.com/classwaves/classwaves/pkg/store/storetest"
)

// waitTimeout bounds every wait in the tests; it is a hang guard, not a speed assertion.
const waitTimeout = 30 * time.Second

const (
	schoolA  = "aaaaaaaa-0000-4000-8000-000000000001"
	schoolB  = "bbbbbbbb-0000-4000-8000-000000000002"
	teacher1 = "11111111-0000-4000-8000-000000000001"
	teacher2 = "22222222-0000-4000-8000-000000000002"
	admin1   = "33333333-0000-4000-8000-000000000003"
	admin2   = "44444444-0000-4000-8000-000000000004"
	super1   = "55555555-0000-4000-8000-000000000005"
)

func newID() string { return uuid.NewString() }

// ---- Tokens: real EdDSA access tokens verified by the product's authn interceptor. ----

// keys is a KeySource over one signing key.
type keys struct {
	kid string
	pub ed25519.PublicKey
}

func (k keys) PublicKey(_ context.Context, kid string) (ed25519.PublicKey, error) {
	if kid != k.kid {
		return nil, fmt.Errorf("%w %q", authn.ErrUnknownKey, kid)
	}
	return k.pub, nil
}

// issuer signs access tokens the way services/auth/token does (alg EdDSA, typ at+jwt, kid).
type issuer struct {
	kid  string
	priv ed25519.PrivateKey
	keys keys
	cfg  authn.Config
}

func newIssuer(t testing.TB) *issuer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid := "test-" + newID()[:8]
	return &issuer{kid: kid, priv: priv, keys: keys{kid: kid, pub: pub}, cfg: authn.DefaultConfig()}
}

func (i *issuer) sign(p authn.Principal) (string, time.Time, error) {
	now := time.Now()
	exp := now.Add(15 * time.Minute)
	c := &authn.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: i.cfg.Issuer, Subject: p.Subject, Audience: jwt.ClaimStrings{i.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(exp), NotBefore: jwt.NewNumericDate(now), IssuedAt: jwt.NewNumericDate(now),
			ID: newID(),
		},
		Role: p.Role, SchoolID: p.SchoolID,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = i.kid
	tok.Header["typ"] = authn.TokenType
	raw, err := tok.SignedString(i.priv)
	return raw, exp, err
}

// serviceTokens is the TokenSource of the analytics service's internal calls.
type serviceTokens struct{ i *issuer }

func (s serviceTokens) Token(context.Context) (string, time.Time, error) {
	return s.i.sign(authn.Principal{Subject: "analytics", Role: authn.RoleService})
}

// as returns a context whose calls carry p's access token.
func (i *issuer) as(t testing.TB, role authn.Role, subject, school string) context.Context {
	t.Helper()
	raw, _, err := i.sign(authn.Principal{Subject: subject, Role: role, SchoolID: school})
	if err != nil {
		t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(context.Background(), authn.MetadataKey, "Bearer "+raw)
}

// interceptor is the product's authentication and authorization (DefaultPolicy).
func (i *issuer) interceptor() grpcserver.Option {
	ic := authn.NewInterceptor(authn.NewVerifier(i.cfg, i.keys))
	return grpcserver.WithAuth(ic.Unary, ic.Stream)
}

// ---- The session service's GetSessionContext, served for real on loopback. ----

// sessionServer answers GetSessionContext from the sessions the test put in it, behind the
// product's gRPC server and access policy (the RPC is Internal: only service tokens pass).
type sessionServer struct {
	sessionv1.UnimplementedSessionServiceServer
	mu       sync.Mutex
	sessions map[string]*sessionv1.Session
	down     bool
	calls    atomic.Int64
}

func (f *sessionServer) GetSessionContext(_ context.Context, req *sessionv1.GetSessionContextRequest) (*sessionv1.GetSessionContextResponse, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, status.Error(codes.Unavailable, "session store unreachable")
	}
	s, ok := f.sessions[req.GetSessionId()]
	if !ok {
		return nil, apperr.New(codes.NotFound, "SESSION_NOT_FOUND", "session not found")
	}
	return &sessionv1.GetSessionContextResponse{Session: proto.Clone(s).(*sessionv1.Session)}, nil
}

func (f *sessionServer) put(s *sessionv1.Session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions[s.GetId()] = proto.Clone(s).(*sessionv1.Session)
}

func (f *sessionServer) update(id string, fn func(*sessionv1.Session)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.sessions[id])
}

func (f *sessionServer) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// serve runs the product's gRPC server with register on a loopback port and returns its address.
func serve(t testing.TB, register func(*grpc.Server), opts ...grpcserver.Option) string {
	t.Helper()
	srv := grpcserver.New(grpcserver.DefaultConfig(), logging.Discard(), opts...)
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
	return lis.Addr().String()
}

func dial(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpcclient.Dial(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// ---- The harness. ----

// harness is one or more analytics replicas on a real database and bus, the session service's
// GetSessionContext on loopback, and the product's gRPC server with real tokens.
type harness struct {
	t        testing.TB
	cfg      Config
	iss      *issuer
	sessions *sessionServer
	sessConn *grpc.ClientConn
	db       *store.DB
	bus      bus.Bus
	reg      *prometheus.Registry
	audit    *auditlog.Client

	nowMu sync.Mutex
	now   time.Time
}

type harnessOptions struct {
	db         *store.DB
	bus        bus.Bus
	mod        func(*Config)
	summarizer Summarizer
	components []Component
}

func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, iss: newIssuer(t), sessions: &sessionServer{sessions: map[string]*sessionv1.Session{}},
		reg: prometheus.NewRegistry(), now: time.Now().UTC().Truncate(time.Millisecond)}
	h.cfg = DefaultConfig()
	if o.mod != nil {
		o.mod(&h.cfg)
	}
	h.db = o.db
	if h.db == nil {
		h.db = storetest.OpenSQLite(t)
	}
	h.bus = o.bus
	if h.bus == nil {
		b, err := inproc.New(inproc.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		h.bus = b
	}
	acfg := auditlog.DefaultConfig()
	acfg.EnqueueTimeout = 5 * time.Second
	h.audit = auditlog.New(acfg, h.bus, h.reg)
	t.Cleanup(func() { _ = h.audit.Close() })
	sessSrv := serve(t, func(g *grpc.Server) { sessionv1.RegisterSessionServiceServer(g, h.sessions) }, h.iss.interceptor())
	h.sessConn = dial(t, sessSrv, grpc.WithPerRPCCredentials(authn.NewServiceCredentials(serviceTokens{h.iss})))
	return h
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

// replica is one analytics service with its gRPC client.
type replica struct {
	svc    *Service
	store  *sqlStore
	client analyticsv1.AnalyticsServiceClient
	// addr is its gRPC server's address.
	addr string
}

// replica starts an analytics service on the harness's database and bus (or b, when not nil).
func (h *harness) replica(o harnessOptions, b bus.Bus) *replica {
	t := h.t
	t.Helper()
	if b == nil {
		b = h.bus
	}
	st := newSQLStore(h.db)
	st.now = h.clock
	svc, err := newService(h.cfg, st, b, sessionv1.NewSessionServiceClient(h.sessConn), o.summarizer, o.components, h.audit,
		logging.Discard(), prometheus.NewRegistry(), withClock(h.clock))
	if err != nil {
		t.Fatal(err)
	}
	svc.migrate = st.Migrate
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_ = svc.Stop(ctx)
	})
	srv := serve(t, func(g *grpc.Server) { svc.Register(g) }, h.iss.interceptor())
	return &replica{svc: svc, store: st, client: analyticsv1.NewAnalyticsServiceClient(dial(t, srv)), addr: srv}
}

// as returns a context carrying a token of role for subject in school.
func (h *harness) as(role authn.Role, subject, school string) context.Context {
	return h.iss.as(h.t, role, subject, school)
}

// ---- Events, as the producers publish them. ----

func (h *harness) publish(topic string, ev *eventsv1.Event) {
	h.t.Helper()
	if ev.Id == "" {
		ev.Id = newID()
	}
	ev.SchemaVersion = "1.0"
	payload, err := proto.Marshal(ev)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.bus.Publish(context.Background(), topic, bus.Outgoing{Key: ev.Key, Payload: payload,
		Headers: map[string]string{"content-type": ContentTypeProto, "event-type": ev.Type}}); err != nil {
		h.t.Fatal(err)
	}
}

// published returns the events of typ on the analytics topic, in order.
func published(t testing.TB, b bus.Bus, topic, typ string) []*eventsv1.Event {
	t.Helper()
	msgs, err := b.Replay(context.Background(), topic, "0", 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []*eventsv1.Event
	for _, m := range msgs {
		ev := &eventsv1.Event{}
		if err := proto.Unmarshal(m.Payload, ev); err != nil {
			t.Fatal(err)
		}
		if ev.GetType() == typ {
			out = append(out, ev)
		}
	}
	return out
}

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// codeReason returns the gRPC code and apperr reason of an error a client received.
func codeReason(err error) (codes.Code, string) {
	st, _ := status.FromError(err)
	return st.Code(), apperr.ReasonOf(st)
}
