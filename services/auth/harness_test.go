package auth

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	auditv1 "github.com/classwaves/classwaves/pkg/api/classwaves/audit/v1"
	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/bus/inproc"
	"github.com/classwaves/classwaves/pkg/config"
	"github.com/classwaves/classwaves/pkg/grpcserver"
	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/store/storetest"
	"github.com/classwaves/classwaves/services/auth/oidctest"
	"github.com/classwaves/classwaves/services/auth/token"
)

// Test settings.
const (
	testSecret       = "e2e-secret-for-tests"
	testRedirectURI  = "https://api.classwaves.test/api/v1/auth/google/callback"
	testFrontendURL  = "https://app.classwaves.test"
	testSchoolDomain = "lincoln.example.org"
	auditTopic       = "audit:log"
)

func jwtConfig() authn.Config { return authn.DefaultConfig() }

func testPrincipal() authn.Principal {
	return authn.Principal{Subject: "5c3e8f2a-0000-4000-8000-000000000009", Role: authn.RoleTeacher, SchoolID: DevSchoolID}
}

// clock is a controllable clock. It starts at the real time, because the local OpenID provider
// signs ID tokens with real issue and expiry times.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is the auth service on a real database, behind a real gRPC server on loopback with the
// production interceptors (authn policy, protovalidate), signing in against a local OpenID
// provider, auditing to an in-process bus.
type harness struct {
	t     *testing.T
	cfg   Config
	db    *store.DB
	st    *sqlStore
	clk   *clock
	keys  *token.KeySet
	svc   *Service
	op    *oidctest.Provider
	bus   *inproc.Bus
	reg   *prometheus.Registry
	addr  string
	auth  authv1.AuthServiceClient
	admin authv1.AdminServiceClient
	// school is a registered Workspace school (testSchoolDomain).
	school School
}

// newHarness starts the service on db (nil: a fresh SQLite file) with the test config, edited by
// edit when not nil.
func newHarness(t *testing.T, db *store.DB, edit func(*Config)) *harness {
	t.Helper()
	ctx := t.Context()
	if db == nil {
		db = storetest.OpenSQLite(t)
	}
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, db: db, st: newSQLStore(db), clk: newClock(), op: oidctest.New(t), reg: prometheus.NewRegistry()}
	keys, err := token.NewKeySet(ctx, token.DefaultConfig(), jwtConfig(), NewKeyStore(db), token.WithClock(h.clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	h.keys = keys
	cfg := DefaultConfig()
	cfg.Environment = config.Test
	cfg.GoogleClientID, cfg.GoogleClientSecret = h.op.ClientID(), h.op.ClientSecret()
	cfg.GoogleIssuer, cfg.GoogleRedirectURI, cfg.FrontendURL = h.op.Issuer(), testRedirectURI, testFrontendURL
	cfg.E2ETestSecret = testSecret
	if edit != nil {
		edit(&cfg)
	}
	h.cfg = cfg
	b, err := inproc.New(inproc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	h.bus = b
	audit := auditlog.New(auditlog.Config{StreamKey: auditTopic, EnqueueTimeout: 5 * time.Second, HashUserAgent: true}, b, nil)
	svc, err := newService(cfg, h.st, keys, audit, nil, h.reg, withClock(h.clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	svc.migrate = func(ctx context.Context) error { return Migrate(ctx, db) }
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := svc.Stop(context.Background()); err != nil {
			t.Errorf("Stop() = %v", err)
		}
	})
	h.svc = svc

	ic := authn.NewInterceptor(keys.Verifier())
	srv := grpcserver.New(grpcserver.Config{}, nil, grpcserver.WithAuth(GuardTestRoutes(cfg, ic.Unary), ic.Stream))
	svc.Register(srv.GRPC())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	h.addr = lis.Addr().String()
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h.auth, h.admin = authv1.NewAuthServiceClient(conn), authv1.NewAdminServiceClient(conn)
	h.school = newTestSchool(t, h.st, "Lincoln High", testSchoolDomain, 0)
	return h
}

// as returns a context carrying an access token for p (role, school) signed by the service's keys.
func (h *harness) as(p authn.Principal) context.Context {
	h.t.Helper()
	iss, err := h.keys.Issue(context.Background(), p, "")
	if err != nil {
		h.t.Fatal(err)
	}
	return bearer(iss.Token)
}

// asTeacher returns a context carrying an access token for t with its role and school.
func (h *harness) asTeacher(t Teacher) context.Context {
	return h.as(authn.Principal{Subject: t.ID, Role: authn.Role(t.Role), SchoolID: t.SchoolID})
}

// bearer returns a context sending token as the caller's bearer token.
func bearer(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

// signIn signs email of the registered school in with a fresh ID token and returns the answer.
func (h *harness) signIn(email string) *authv1.GoogleSignInResponse {
	h.t.Helper()
	resp, err := h.auth.GoogleSignIn(context.Background(), &authv1.GoogleSignInRequest{
		Credential: h.op.MintIDToken(h.claims(email, testSchoolDomain)),
	})
	if err != nil {
		h.t.Fatalf("GoogleSignIn(%s) = %v", email, err)
	}
	return resp
}

// claims are the provider's claims for email, issued at the harness clock's now (which tests move
// forward, while the provider's default is the real time).
func (h *harness) claims(email, domain string) oidctest.Claims {
	c := h.op.Claims(email, domain)
	c.IssuedAt, c.ExpiresAt = h.clk.Now(), h.clk.Now().Add(time.Hour)
	return c
}

// teacher returns the stored teacher with email.
func (h *harness) teacher(email string) Teacher {
	h.t.Helper()
	t, err := h.st.TeacherByEmail(context.Background(), email)
	if err != nil {
		h.t.Fatalf("TeacherByEmail(%s) = %v", email, err)
	}
	return t
}

// auditEvents returns every audit event published so far, of eventType when not "". Log publishes
// synchronously on the in-process bus, so an RPC's events are there when it returns.
func (h *harness) auditEvents(eventType string) []*auditv1.AuditEvent {
	h.t.Helper()
	msgs, err := h.bus.Replay(context.Background(), auditTopic, "", 100000)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*auditv1.AuditEvent
	for _, m := range msgs {
		var ev auditv1.AuditEvent
		if err := protojson.Unmarshal(m.Payload, &ev); err != nil {
			h.t.Fatalf("audit payload: %v", err)
		}
		if eventType == "" || ev.GetEventType() == eventType {
			out = append(out, &ev)
		}
	}
	return out
}

// counter returns the value of a counter of the service's registry.
func (h *harness) counter(c *prometheus.CounterVec, labels ...string) float64 {
	return testutil.ToFloat64(c.WithLabelValues(labels...))
}

// wantErr fails t unless err is a gRPC status with code and reason.
func wantErr(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != code || apperr.ReasonOf(st) != reason {
		t.Fatalf("error = %v (reason %q), want %v %s", err, apperr.ReasonOf(st), code, reason)
	}
}

// teacherCount is how many teachers the database holds.
func (h *harness) teacherCount() int {
	h.t.Helper()
	var n int
	if err := h.db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM "+h.db.Table("users", "teachers")).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// familyCount is how many refresh token families the database holds.
func (h *harness) familyCount() int {
	h.t.Helper()
	var n int
	if err := h.db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM "+h.db.Table("auth", "refresh_families")).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}
