package app

import (
	"context"
	"fmt"
	"net/http"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/grpcclient"
	"github.com/classwaves/classwaves/pkg/grpcserver"
	"github.com/classwaves/classwaves/pkg/ratelimit"
	"github.com/classwaves/classwaves/services/auth"
	"github.com/classwaves/classwaves/services/auth/token"
)

// authOption builds the token verification every gRPC server of the process runs. A process that
// runs the auth module verifies against its own key set (and owns it: the auth module starts its
// rotation); any other process fetches the JWKS from the auth service at AUTH_GRPC_ADDR.
func (a *App) authOption(ctx context.Context) (grpcserver.Option, error) {
	var verifier *authn.Verifier
	if a.hasModule(Auth) {
		db, err := a.database(ctx)
		if err != nil {
			return nil, err
		}
		if err := auth.Migrate(ctx, db); err != nil { // the key set reads its table
			return nil, fmt.Errorf("auth migrations: %w", err)
		}
		keys, err := token.NewKeySet(ctx, a.cfg.Token, a.cfg.JWT, auth.NewKeyStore(db), token.WithLogger(a.logger))
		if err != nil {
			return nil, fmt.Errorf("signing keys: %w", err)
		}
		a.keys = keys
		verifier = keys.Verifier()
	} else {
		addr := *a.cfg.Upstreams["auth"]
		if addr == "" {
			return nil, fmt.Errorf("AUTH_GRPC_ADDR is required: a process without the auth module verifies tokens with the auth service's published keys")
		}
		conn, err := grpcclient.Dial(addr)
		if err != nil {
			return nil, fmt.Errorf("dial auth at %s: %w", addr, err)
		}
		a.closers = append(a.closers, conn.Close)
		a.authClient = authv1.NewAuthServiceClient(conn)
		verifier = authn.NewVerifier(a.cfg.JWT, authn.NewRemoteKeys(a.cfg.JWT, a.authClient))
	}
	a.verifier = verifier
	ic := authn.NewInterceptor(verifier)
	return grpcserver.WithAuth(auth.GuardTestRoutes(a.authConfig(), ic.Unary), ic.Stream), nil
}

// authConfig is the auth service's configuration with the process's NODE_ENV.
func (a *App) authConfig() auth.Config {
	cfg := a.cfg.Auth
	cfg.Environment = a.cfg.Environment
	return cfg
}

// initAuth builds the auth service on the key set authOption made.
func (a *App) initAuth(ctx context.Context) error {
	db, err := a.database(ctx)
	if err != nil {
		return err
	}
	audit, err := a.auditClient(ctx)
	if err != nil {
		return err
	}
	svc, err := auth.New(a.authConfig(), db, a.keys, audit, a.logger, a.registry)
	if err != nil {
		return err
	}
	a.addService(svc, auth.ServiceNames())
	return nil
}

// auditClient is the process's audit log client (one per process, shared by its services).
func (a *App) auditClient(ctx context.Context) (*auditlog.Client, error) {
	if a.audit != nil {
		return a.audit, nil
	}
	b, err := a.eventBus(ctx)
	if err != nil {
		return nil, err
	}
	a.audit = auditlog.New(a.cfg.Audit.Log, b, a.registry, auditlog.WithLogger(a.logger))
	a.closers = append(a.closers, a.audit.Close)
	return a.audit, nil
}

// rateLimited wraps the HTTP handler in the rate limits: GCRA in Redis when REDIS_URL is set (shared
// by every replica), in memory otherwise.
func (a *App) rateLimited(ctx context.Context, next http.Handler) (http.Handler, error) {
	var limiter ratelimit.Limiter = ratelimit.NewMemory()
	if a.cfg.Redis.URL != "" {
		client, err := a.redisClient(ctx)
		if err != nil {
			return nil, err
		}
		limiter = ratelimit.NewRedis(client, a.cfg.RateLimit.KeyPrefix(a.cfg.Environment))
	}
	mw, err := ratelimit.NewMiddleware(a.cfg.RateLimit, limiter, a.logger)
	if err != nil {
		return nil, err
	}
	return mw.Handler(next), nil
}
