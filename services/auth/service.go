// Package auth is the auth service: Google Workspace sign-in, access and refresh tokens, JWKS, and
// school administration (seed "Authentication Endpoints", "Admin Controls").
//
// Sign-in. GoogleSignIn (POST /api/v1/auth/google) takes a Google ID token ("credential", from
// Sign in with Google) or an authorization code (exchanged at the provider's token endpoint with
// golang.org/x/oauth2, passing the PKCE code_verifier through). The ID token is verified with
// go-oidc against GOOGLE_ISSUER (discovery, JWKS): signature, issuer, audience GOOGLE_CLIENT_ID,
// expiry; then email_verified, and the Workspace hosted domain (hd) must be a registered school's.
// The first sign-in creates the teacher (within the school's seat limit). The answer carries the
// teacher, the school, a 15-minute access token (token.KeySet) and a refresh token.
//
// Redirect flow. GET /api/v1/auth/google/callback without parameters starts it: it stores a state,
// a PKCE verifier and a nonce server-side (single use, AUTH_OAUTH_STATE_TTL), sets an HttpOnly
// binding cookie, and redirects to the provider. Google sends the browser back to the same URL
// (GOOGLE_REDIRECT_URI) with code and state; the callback takes the state (once), checks the
// cookie binds it to this browser, exchanges the code with the verifier, checks the nonce, signs
// in, and redirects to FRONTEND_URL + AUTH_FRONTEND_CALLBACK_PATH with
// "#refresh_token=<token>&expires_in=120" (a refresh token usable for two minutes, in the fragment
// so it reaches neither a server nor a Referer; the dashboard exchanges it at POST /auth/refresh
// at once) or with "?error=<REASON>".
//
// Tokens travel in JSON bodies and the Authorization header only, never in cookies, so there is
// no ambient credential to forge a request with and CSRF protection is not needed; GetCsrfToken
// answers a random token for clients that send one anyway. (The binding cookie of the redirect
// flow is no credential: it only ties a state to the browser that started the flow.)
//
// Refresh tokens are 32 random bytes (base64url), stored as their SHA-256, rotated on every use
// within a family (one sign-in): REFRESH_TOKEN_TTL absolute, REFRESH_TOKEN_IDLE_TTL idle.
// Presenting a rotated token is reuse (RFC 9700 section 4.14.2): the whole family is revoked
// (REFRESH_TOKEN_REUSED), so the newest token fails too (REFRESH_TOKEN_REVOKED). Two concurrent
// refreshes of one token: exactly one rotates; the other finds it rotated and is treated as
// reuse, ending the family. Clients must therefore refresh one at a time (single-flight).
//
// Outside production (NODE_ENV), when GOOGLE_CLIENT_ID is absent or AUTH_DEV_FALLBACK_ENABLED=1,
// GoogleSignIn signs in the seeded dev teacher of the seeded dev school (degradedMode=true,
// classwaves_auth_dev_fallback_total{environment,trigger}). Test-token endpoints exist outside
// production with the right E2E_TEST_SECRET; otherwise they answer exactly what the gateway answers
// for a route it does not know (404 ROUTE_NOT_FOUND).
//
// Layout, ports and adapters: Store (store.go) is the persistence port and sqlStore its SQLite and
// PostgreSQL adapter; KeyStore (keystore.go) persists the signing keys for token.KeySet; google.go
// is the adapter to the OpenID provider. The gRPC server (server.go) is a thin port over the
// service's methods, which know nothing of gRPC or SQL.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/services/auth/token"
)

// The dev seed (outside production): a school and a teacher with fixed ids, so the dev fallback
// and end-to-end tests can name them. The .test domain is reserved (RFC 2606): no real Google
// Workspace account can sign in to the dev school.
const (
	DevSchoolID     = "5c3e8f2a-4b1d-4c6e-9a7f-000000000001"
	DevSchoolName   = "ClassWaves Dev School"
	DevSchoolDomain = "dev.classwaves.test"
	DevTeacherID    = "5c3e8f2a-4b1d-4c6e-9a7f-000000000002"
	DevTeacherEmail = "dev.teacher@dev.classwaves.test"
	DevTeacherName  = "Dev Teacher"
)

// googleHTTPTimeout bounds every call to the OpenID provider (discovery, keys, token endpoint).
const googleHTTPTimeout = 10 * time.Second

// Service is the auth service: its gRPC servers (AuthService, AdminService), the sign-in flows,
// refresh token rotation, and the background work (signing key maintenance, cleanup).
type Service struct {
	cfg      Config
	store    Store
	migrate  func(context.Context) error // nil when the store needs none
	keys     *token.KeySet
	verifier *authn.Verifier
	audit    *auditlog.Client
	logger   *slog.Logger
	m        *metrics
	google   *googleClient
	now      func() time.Time

	mu     sync.Mutex
	state  int // stateNew, stateRunning, stateStopped
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const (
	stateNew = iota
	stateRunning
	stateStopped
)

// option configures a Service in tests.
type option func(*Service)

// withClock replaces time.Now (refresh expiries, states, the ID token expiry check).
func withClock(now func() time.Time) option { return func(s *Service) { s.now = now } }

// New builds the auth service on db (SQLite or PostgreSQL), signing with keys. It validates cfg
// and touches neither the database nor Google: Start migrates and seeds, and Google is discovered
// at the first sign-in. audit may be nil (no audit log), logger nil (discard), reg nil (metrics
// not registered).
//
// keys is built by the caller, before New, on this package's KeyStore:
//
//	if err := auth.Migrate(ctx, db); err != nil { ... }
//	keys, err := token.NewKeySet(ctx, tokenCfg, jwtCfg, auth.NewKeyStore(db), token.WithLogger(logger))
//	svc, err := auth.New(authCfg, db, keys, auditClient, logger, reg)
func New(cfg Config, db *store.DB, keys *token.KeySet, audit *auditlog.Client, logger *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if db == nil {
		return nil, errors.New("auth: New needs a database")
	}
	st := newSQLStore(db)
	s, err := newService(cfg, st, keys, audit, logger, reg)
	if err != nil {
		return nil, err
	}
	s.migrate = func(ctx context.Context) error { return Migrate(ctx, db) }
	return s, nil
}

// newService builds the service on any Store.
func newService(cfg Config, st Store, keys *token.KeySet, audit *auditlog.Client, logger *slog.Logger, reg prometheus.Registerer, opts ...option) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if keys == nil {
		return nil, errors.New("auth: New needs a token.KeySet")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		cfg:      cfg,
		store:    st,
		keys:     keys,
		verifier: keys.Verifier(),
		audit:    audit,
		logger:   logger.With("component", "auth"),
		m:        newMetrics(reg),
		now:      time.Now,
	}
	s.google = &googleClient{cfg: cfg, client: &http.Client{Timeout: googleHTTPTimeout}, now: func() time.Time { return s.now() }}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// ServiceNames are the gRPC services this package serves (for health and reflection).
func ServiceNames() []string {
	return []string{authv1.AuthService_ServiceDesc.ServiceName, authv1.AdminService_ServiceDesc.ServiceName}
}

// Register registers AuthService and AdminService on r. They answer from the database, which
// holds the tables once Start has migrated it.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	srv := &server{svc: s}
	authv1.RegisterAuthServiceServer(r, srv)
	authv1.RegisterAdminServiceServer(r, srv)
}

// Start migrates the database, seeds the dev school and teacher outside production, and starts
// the background work: signing key maintenance (token.KeySet.Run: reload, rotation, pruning) and
// the hourly cleanup of expired refresh token families and redirect-flow states. ctx bounds the
// start only; the background work runs until Stop.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return errors.New("auth: Start called twice")
	}
	if s.migrate != nil {
		if err := s.migrate(ctx); err != nil {
			return fmt.Errorf("auth: migrating: %w", err)
		}
	}
	if !s.cfg.Environment.IsProduction() {
		if err := s.seedDev(ctx); err != nil {
			return fmt.Errorf("auth: seeding the dev school: %w", err)
		}
	}
	s.logSettings(ctx)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		_ = s.keys.Run(runCtx)
	}()
	go func() {
		defer s.wg.Done()
		s.cleanupLoop(runCtx)
	}()
	s.state = stateRunning
	return nil
}

// Stop ends the background work and waits for it (or for ctx). Requests in flight are the gRPC
// server's to drain. Stop before Start, or twice, does nothing.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.state != stateRunning {
		s.state = stateStopped
		s.mu.Unlock()
		return nil
	}
	s.state = stateStopped
	s.cancel()
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// logSettings says at start what is on: the dev fallback, test tokens, and settings production
// ignores.
func (s *Service) logSettings(ctx context.Context) {
	env := s.cfg.Environment.String()
	if trigger := s.cfg.devFallbackTrigger(); trigger != "" {
		s.logger.WarnContext(ctx, "dev sign-in fallback is on: every Google sign-in signs in the seeded dev teacher",
			"environment", env, "trigger", trigger)
	}
	if s.cfg.testTokensEnabled() {
		s.logger.WarnContext(ctx, "test-token endpoints are enabled (E2E_TEST_SECRET)", "environment", env)
	}
	if s.cfg.Environment.IsProduction() {
		if s.cfg.DevFallback {
			s.logger.WarnContext(ctx, "AUTH_DEV_FALLBACK_ENABLED is ignored in production")
		}
		if s.cfg.E2ETestSecret != "" {
			s.logger.WarnContext(ctx, "E2E_TEST_SECRET is ignored in production: the test-token endpoints do not exist")
		}
		if s.cfg.GoogleClientID == "" {
			s.logger.ErrorContext(ctx, "GOOGLE_CLIENT_ID is not set: nobody can sign in")
		}
	}
}

// seedDev creates the dev school and dev teacher unless they exist.
func (s *Service) seedDev(ctx context.Context) error {
	now := s.now().UTC()
	return s.store.SeedDev(ctx, School{
		ID: DevSchoolID, Name: DevSchoolName, Domain: DevSchoolDomain,
		SubscriptionTier: "premium", SubscriptionStatus: SubscriptionActive,
		FERPAAgreement: true, COPPACompliant: true, CreatedAt: now, UpdatedAt: now,
	}, Teacher{
		ID: DevTeacherID, Email: DevTeacherEmail, Name: DevTeacherName, SchoolID: DevSchoolID,
		Role: RoleTeacher, Status: StatusActive, CreatedAt: now, UpdatedAt: now,
	})
}

// cleanupLoop deletes expired families and states every CleanupInterval until ctx ends.
func (s *Service) cleanupLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.CleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.cleanup(ctx)
		}
	}
}

// cleanup deletes refresh token families past their absolute expiry (no token of theirs can be
// used any more) and expired redirect-flow states. Failures are logged and retried next time.
func (s *Service) cleanup(ctx context.Context) {
	now := s.now()
	if n, err := s.store.DeleteExpiredFamilies(ctx, now); err != nil && ctx.Err() == nil {
		s.logger.ErrorContext(ctx, "deleting expired refresh tokens failed", "err", err)
	} else if n > 0 {
		s.logger.InfoContext(ctx, "expired refresh token families deleted", "count", n)
	}
	if _, err := s.store.DeleteExpiredOAuthStates(ctx, now); err != nil && ctx.Err() == nil {
		s.logger.ErrorContext(ctx, "deleting expired sign-in states failed", "err", err)
	}
}
