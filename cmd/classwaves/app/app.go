// Package app wires the classwaves binary: configuration, the module table (modules.go), the
// listeners, and a clean stop on SIGTERM. cmd/classwaves/main.go stays a thin caller of Run.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	systemv1 "github.com/classwaves/classwaves/pkg/api/classwaves/system/v1"
	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/envelope"
	"github.com/classwaves/classwaves/pkg/grpcserver"
	"github.com/classwaves/classwaves/pkg/httpserver"
	"github.com/classwaves/classwaves/pkg/logging"
	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/telemetry"
	"github.com/classwaves/classwaves/services/auth/token"
)

// App is one running classwaves process.
type App struct {
	cfg     Config
	logger  *slog.Logger
	modules []string
	started time.Time

	registry *prometheus.Registry
	grpc     *grpcserver.Server
	httpMux  *http.ServeMux
	grpcLis  net.Listener
	httpLis  net.Listener
	grpcAddr string
	// healthConns are the connections /health/components probes, by address.
	healthConns map[string]*grpc.ClientConn

	db    *store.DB
	bus   bus.Bus
	redis *redis.Client
	audit *auditlog.Client
	keys  *token.KeySet
	// verifier checks access tokens for every server of the process (gRPC and Socket.IO).
	verifier *authn.Verifier
	// authClient reaches a remote auth service without credentials (JWKS, service-token exchange);
	// nil when auth runs in this process.
	authClient authv1.AuthServiceClient

	// runCtx is the context of background work (workers); cancelled last on stop.
	runCtx    context.Context
	cancelRun context.CancelFunc

	localServices []string
	// starters run after every module is built and before anything is served (migrations,
	// workers); stoppers run in reverse after the servers drained (workers flush their batches).
	starters []func(context.Context) error
	stoppers []func(context.Context) error
	// edgeStoppers run first on stop, before the HTTP server drains: the Socket.IO edge closes its
	// sockets there, which also answers pending long-polls (otherwise they hold the drain open).
	edgeStoppers []func(context.Context) error
	closers      []func() error
	stopping     bool
	mu           sync.Mutex
}

// Addrs are the listeners' real addresses (useful when the ports were 0).
type Addrs struct {
	HTTP string
	GRPC string
}

// New validates cfg, sets up logging and telemetry, builds every module of the target and opens the
// listeners. Nothing is served until Run.
func New(ctx context.Context, cfg Config, logOut io.Writer) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger, err := logging.New(logOut, cfg.Log.Level)
	if err != nil {
		return nil, err
	}
	modules, _ := resolveTargets(cfg.Target) // validated above
	a := &App{cfg: cfg, logger: logger, modules: modules, started: time.Now(), httpMux: http.NewServeMux()}
	a.runCtx, a.cancelRun = context.WithCancel(context.WithoutCancel(ctx))
	if err := a.init(ctx); err != nil {
		a.stop(context.Background())
		return nil, err
	}
	for _, start := range a.starters {
		if err := start(a.runCtx); err != nil {
			a.stop(context.Background())
			return nil, err
		}
	}
	return a, nil
}

func (a *App) init(ctx context.Context) error {
	a.registry = telemetry.NewRegistry(a.cfg.Telemetry)
	shutdownTelemetry, err := telemetry.Setup(ctx, a.cfg.Telemetry, a.registry)
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	a.closers = append(a.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return shutdownTelemetry(ctx)
	})

	a.grpcLis, err = net.Listen("tcp", net.JoinHostPort(a.cfg.GRPC.Host, strconv.Itoa(a.cfg.GRPC.Port)))
	if err != nil {
		return fmt.Errorf("listen gRPC on port %d: %w", a.cfg.GRPC.Port, err)
	}
	a.closers = append(a.closers, ignoreClosed(a.grpcLis.Close))
	a.grpcAddr = loopback(a.grpcLis.Addr())
	a.httpLis, err = net.Listen("tcp", net.JoinHostPort(a.cfg.HTTP.Host, strconv.Itoa(a.cfg.HTTP.Port)))
	if err != nil {
		return fmt.Errorf("listen HTTP on port %d: %w", a.cfg.HTTP.Port, err)
	}
	a.closers = append(a.closers, ignoreClosed(a.httpLis.Close))

	authOpt, err := a.authOption(ctx)
	if err != nil {
		return err
	}
	a.grpc = grpcserver.New(grpcserver.DefaultConfig(), a.logger, authOpt)
	a.httpMux.Handle("/metrics", telemetry.MetricsHandler(a.registry))
	a.httpMux.HandleFunc("/", envelope.NotFound)

	inits := a.initFuncs()
	for _, m := range a.modules {
		if m == Server {
			continue
		}
		if err := inits[m](ctx); err != nil {
			return fmt.Errorf("module %s: %w", m, err)
		}
	}
	a.grpc.SetServing("", false) // serving once Run starts
	for _, svc := range a.localServices {
		a.grpc.SetServing(svc, false)
	}
	return nil
}

// Addrs answers where the process listens.
func (a *App) Addrs() Addrs {
	return Addrs{HTTP: loopback(a.httpLis.Addr()), GRPC: a.grpcAddr}
}

// Run serves until ctx ends (SIGTERM in main), then stops cleanly: readiness and health go
// NOT_SERVING first, in-flight HTTP requests and RPCs drain (bounded by SHUTDOWN_TIMEOUT_MS), and
// every module's resources close. It returns nil after a clean stop.
func (a *App) Run(ctx context.Context) error {
	metrics := telemetry.NewHTTPMetrics(a.registry)
	handler, err := a.rateLimited(ctx, a.httpMux)
	if err != nil {
		return err
	}
	httpSrv := &http.Server{
		Handler:           httpserver.Handler(a.logger, metrics, handler),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 2)
	go func() { errc <- a.grpc.Serve(a.grpcLis) }()
	go func() {
		if err := httpSrv.Serve(a.httpLis); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	a.grpc.SetServing("", true)
	for _, svc := range a.localServices {
		a.grpc.SetServing(svc, true)
	}
	a.logger.Info("classwaves started", "modules", a.modules, "http", a.Addrs().HTTP, "grpc", a.grpcAddr)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		a.logger.Error("server failed", "err", runErr)
	}

	a.logger.Info("classwaves stopping")
	a.mu.Lock()
	a.stopping = true
	a.mu.Unlock()
	stopCtx, cancel := context.WithTimeout(context.Background(), a.cfg.HTTP.ShutdownTimeout)
	defer cancel()
	a.stopEdges(stopCtx)
	if err := httpSrv.Shutdown(stopCtx); err != nil {
		a.logger.Warn("HTTP drain cut short", "err", err)
		_ = httpSrv.Close()
	}
	if err := a.grpc.Shutdown(stopCtx); err != nil {
		a.logger.Warn("gRPC drain cut short", "err", err)
	}
	a.stop(stopCtx)
	a.logger.Info("classwaves stopped")
	return runErr
}

// readiness reports each local service's health; everything is NOT_SERVING once stopping began.
func (a *App) readiness(ctx context.Context) []*systemv1.ComponentStatus {
	a.mu.Lock()
	stopping := a.stopping
	a.mu.Unlock()
	names := append([]string{}, a.localServices...)
	out := make([]*systemv1.ComponentStatus, 0, len(names))
	for _, name := range names {
		st := "NOT_SERVING"
		if !stopping {
			resp, err := a.grpc.Health().Check(ctx, &healthpb.HealthCheckRequest{Service: name})
			if err == nil {
				st = resp.GetStatus().String()
			}
		}
		out = append(out, &systemv1.ComponentStatus{Name: name, Status: st})
	}
	if len(out) == 0 { // a process with no local services is ready when it is not stopping
		st := "SERVING"
		if stopping {
			st = "NOT_SERVING"
		}
		out = append(out, &systemv1.ComponentStatus{Name: "process", Status: st})
	}
	return out
}

// stopEdges closes the realtime edges' connections.
func (a *App) stopEdges(ctx context.Context) {
	for i := len(a.edgeStoppers) - 1; i >= 0; i-- {
		if err := a.edgeStoppers[i](ctx); err != nil {
			a.logger.Warn("stop", "err", err)
		}
	}
	a.edgeStoppers = nil
}

// stop stops the modules' background work (in reverse start order), then closes resources.
func (a *App) stop(ctx context.Context) {
	a.stopEdges(ctx)
	for i := len(a.stoppers) - 1; i >= 0; i-- {
		if err := a.stoppers[i](ctx); err != nil {
			a.logger.Warn("stop", "err", err)
		}
	}
	a.stoppers = nil
	a.cancelRun()
	a.close()
}

func (a *App) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.logger.Warn("close", "err", err)
		}
	}
	a.closers = nil
}

// loopback turns a wildcard listen address into one a local client can dial.
func loopback(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP == nil || tcp.IP.IsUnspecified() {
		_, port, _ := net.SplitHostPort(addr.String())
		return net.JoinHostPort("127.0.0.1", port)
	}
	return tcp.String()
}

func ignoreClosed(f func() error) func() error {
	return func() error {
		if err := f(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	}
}
