package app

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"google.golang.org/grpc"

	"github.com/classwaves/classwaves/gateway"
	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	realtimev1 "github.com/classwaves/classwaves/pkg/api/classwaves/realtime/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/grpcclient"
	"github.com/classwaves/classwaves/services/audit"
	"github.com/classwaves/classwaves/services/realtime/edge"
	"github.com/classwaves/classwaves/services/session"
	"github.com/classwaves/classwaves/services/stt"
)

// Module names: the values -target accepts. Server is internal (the listeners every module uses).
const (
	Server    = "server"
	Auth      = "auth"
	Session   = "session"
	STT       = "stt"
	Guidance  = "guidance"
	Analytics = "analytics"
	Audit     = "audit"
	Gateway   = "gateway"
	Realtime  = "realtime"
	All       = "all"
)

// deps is the whole start order in one place: a module starts after the modules it names.
var deps = map[string][]string{
	Server:    nil,
	Auth:      {Server},
	Session:   {Server},
	STT:       {Server},
	Guidance:  {Server},
	Analytics: {Server},
	Audit:     {Server},
	Realtime:  {Server},
	Gateway:   {Server},
	All:       {Auth, Session, STT, Guidance, Analytics, Audit, Realtime, Gateway},
}

// descriptions are what -modules prints.
var descriptions = map[string]string{
	Auth:      "Google Workspace sign-in, JWT/JWKS, refresh rotation, school admin",
	Session:   "sessions, groups, lifecycle, student join with consent",
	STT:       "in-memory audio windows, Whisper-compatible transcription, budgets",
	Guidance:  "Tier 1/Tier 2 discussion analysis, teacher prompts",
	Analytics: "live group metrics, finalization, summaries, admin analytics",
	Audit:     "compliance audit log worker and queries",
	Realtime:  "Socket.IO edge at /socket.io/ (namespaces /sessions, /guidance)",
	Gateway:   "REST edge at /api/v1/** (grpc-gateway), OpenAPI document",
	All:       "every module in one process (default)",
}

// ModuleNames lists the user-visible modules, sorted.
func ModuleNames() []string {
	var names []string
	for name := range deps {
		if name != Server {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// Describe returns the -modules listing.
func Describe() string {
	var b strings.Builder
	for _, name := range ModuleNames() {
		fmt.Fprintf(&b, "%-10s %s\n", name, descriptions[name])
	}
	return b.String()
}

// resolveTargets expands a comma list of targets into every module to run, dependencies first.
func resolveTargets(target string) ([]string, error) {
	var order []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		for _, d := range deps[name] {
			visit(d)
		}
		order = append(order, name)
	}
	any := false
	for _, t := range strings.Split(target, ",") {
		t = strings.TrimSpace(strings.ToLower(t))
		if t == "" {
			continue
		}
		if _, ok := deps[t]; !ok || t == Server {
			return nil, fmt.Errorf("unknown target %q; valid targets: %s", t, strings.Join(ModuleNames(), ", "))
		}
		any = true
		visit(t)
	}
	if !any {
		return nil, fmt.Errorf("target must name at least one module; valid targets: %s", strings.Join(ModuleNames(), ", "))
	}
	return order, nil
}

// registrar is what a service package's Server offers the module table.
type registrar interface {
	Register(grpc.ServiceRegistrar)
}

// lifecycleService is a service with background work: migrations and workers start before the
// process serves, and stop after it drained.
type lifecycleService interface {
	registrar
	Start(context.Context) error
	Stop(context.Context) error
}

// addService registers svc on the process's gRPC server, reports names in health and readiness,
// and schedules its start and stop.
func (a *App) addService(svc lifecycleService, names []string) {
	svc.Register(a.grpc.GRPC())
	a.localServices = append(a.localServices, names...)
	a.starters = append(a.starters, svc.Start)
	a.stoppers = append(a.stoppers, svc.Stop)
}

// initFuncs builds each module on the app. Server is built in App.Run before any of these.
func (a *App) initFuncs() map[string]func(ctx context.Context) error {
	return map[string]func(context.Context) error{
		Auth:      a.initAuth,
		Session:   a.initSession,
		STT:       a.initSTT,
		Guidance:  a.initGuidance,
		Analytics: a.initAnalytics,
		Audit:     a.initAudit,
		Realtime:  a.initRealtime,
		Gateway:   a.initGateway,
		All:       func(context.Context) error { return nil },
	}
}

// initAudit builds the audit service: its store, and the worker that stores the audit stream.
func (a *App) initAudit(ctx context.Context) error {
	db, err := a.database(ctx)
	if err != nil {
		return err
	}
	b, err := a.eventBus(ctx)
	if err != nil {
		return err
	}
	svc, err := audit.New(a.cfg.Audit, db, b, a.logger, a.registry)
	if err != nil {
		return err
	}
	a.addService(svc, audit.ServiceNames())
	return nil
}

// initGateway dials every upstream (the local gRPC listener for services in this process, the
// configured address for the others) and mounts the REST edge on /api/.
func (a *App) initGateway(ctx context.Context) error {
	local := map[string]bool{}
	for _, m := range a.modules {
		local[m] = true
	}
	if missing := a.cfg.Upstreams.upstreamsMissing(local); len(missing) > 0 {
		return fmt.Errorf("the gateway needs the address of every service it does not run: set %s", strings.Join(missing, ", "))
	}
	conns := map[gateway.Upstream]*grpc.ClientConn{}
	var localConn *grpc.ClientConn
	for _, up := range gateway.Upstreams() {
		if local[string(up)] {
			if localConn == nil {
				c, err := grpcclient.Dial(a.grpcAddr)
				if err != nil {
					return fmt.Errorf("dial local gRPC %s: %w", a.grpcAddr, err)
				}
				localConn = c
				a.closers = append(a.closers, c.Close)
			}
			conns[up] = localConn
			continue
		}
		addr := *a.cfg.Upstreams[up]
		c, err := grpcclient.Dial(addr)
		if err != nil {
			return fmt.Errorf("dial %s at %s: %w", up, addr, err)
		}
		a.closers = append(a.closers, c.Close)
		conns[up] = c
	}
	gw, err := gateway.New(ctx, a.cfg.Gateway, conns, gateway.NewSystem(a.started, a.readiness), a.logger)
	if err != nil {
		return err
	}
	a.httpMux.Handle("/api/", gw)
	return nil
}

// hasModule reports whether the process runs module name.
func (a *App) hasModule(name string) bool { return slices.Contains(a.modules, name) }

// initSTT builds the STT service: in-memory audio windows, transcription, budgets.
func (a *App) initSTT(ctx context.Context) error {
	db, b, audit, err := a.serviceInfra(ctx)
	if err != nil {
		return err
	}
	cfg := a.cfg.sttConfig()
	if cfg.Provider != a.cfg.STT.Provider {
		a.logger.Warn("STT_PROVIDER=openai without OPENAI_API_KEY: transcription is off (set OPENAI_API_KEY, or OPENAI_BASE_URL to a compatible server)")
	}
	svc, err := stt.New(cfg, db, b, audit, a.logger, a.registry)
	if err != nil {
		return err
	}
	a.addService(svc, stt.ServiceNames())
	return nil
}

// initSession builds the session service. It calls auth (student tokens) and stt (audio drain on
// end) over gRPC with a service principal: the local listener when those modules run here, else
// AUTH_GRPC_ADDR / STT_GRPC_ADDR.
func (a *App) initSession(ctx context.Context) error {
	db, b, audit, err := a.serviceInfra(ctx)
	if err != nil {
		return err
	}
	authConn, err := a.internalConn(Auth, "session")
	if err != nil {
		return err
	}
	sttConn, err := a.internalConn(STT, "session")
	if err != nil {
		return err
	}
	svc, err := session.New(a.cfg.Session, db, b,
		session.AuthTokenIssuer{Client: authv1.NewAuthServiceClient(authConn)},
		session.SttAudioDrainer{Client: sttv1.NewSttServiceClient(sttConn)},
		audit, a.logger, a.registry)
	if err != nil {
		return err
	}
	a.addService(svc, session.ServiceNames())
	return nil
}

// internalConn dials the module target for service-to-service calls made by caller, with a service
// token per RPC: minted by the local key set when auth runs in this process, else obtained from the
// auth service in exchange for INTERNAL_SERVICE_SECRET. Without either, internal calls answer
// UNAUTHENTICATED (the process logs a warning at start).
func (a *App) internalConn(target, caller string) (*grpc.ClientConn, error) {
	addr := a.grpcAddr
	if !a.hasModule(target) {
		addr = *a.cfg.Upstreams[gateway.Upstream(target)]
		if addr == "" {
			return nil, fmt.Errorf("%s calls %s: set %s_GRPC_ADDR", caller, target, strings.ToUpper(target))
		}
	}
	var opts []grpc.DialOption
	switch {
	case a.keys != nil:
		opts = append(opts, grpc.WithPerRPCCredentials(authn.NewServiceCredentials(a.keys.ServiceTokenSource(caller))))
	case a.authClient != nil && a.cfg.Auth.InternalServiceSecret != "":
		opts = append(opts, grpc.WithPerRPCCredentials(authn.NewServiceCredentials(authn.RemoteServiceTokens{
			Client: a.authClient, Service: caller, Secret: a.cfg.Auth.InternalServiceSecret,
		})))
	default:
		a.logger.Warn("no service credentials: set INTERNAL_SERVICE_SECRET (the same on every process) so internal calls are authenticated",
			"caller", caller, "target", target)
	}
	conn, err := grpcclient.Dial(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s at %s: %w", target, addr, err)
	}
	a.closers = append(a.closers, conn.Close)
	return conn, nil
}

// initRealtime builds the Socket.IO edge on /socket.io/ (namespaces /sessions and /guidance): it
// verifies handshake tokens locally, authorizes room joins and relays readiness through the session
// service, streams audio to stt, and fans bus events out to the rooms.
func (a *App) initRealtime(ctx context.Context) error {
	b, err := a.eventBus(ctx)
	if err != nil {
		return err
	}
	sessionConn, err := a.internalConn(Session, "realtime")
	if err != nil {
		return err
	}
	sttConn, err := a.internalConn(STT, "realtime")
	if err != nil {
		return err
	}
	// With Redis, connection state recovery is shared, so a client recovers on any replica.
	var opts []edge.Option
	if a.cfg.Redis.URL != "" {
		client, err := a.redisClient(ctx)
		if err != nil {
			return err
		}
		opts = append(opts, edge.WithRedis(client, a.cfg.Redis.KeyPrefix))
	}
	e, err := edge.New(a.cfg.realtimeConfig(), a.verifier, sessionv1.NewSessionServiceClient(sessionConn),
		sttv1.NewSttServiceClient(sttConn), b, a.logger, a.registry, opts...)
	if err != nil {
		return err
	}
	realtimev1.RegisterRealtimeServiceServer(a.grpc.GRPC(), &edge.RealtimeServer{Edge: e})
	a.localServices = append(a.localServices, realtimev1.RealtimeService_ServiceDesc.ServiceName)
	a.httpMux.Handle("/socket.io/", e.Handler())
	a.starters = append(a.starters, e.Start)
	a.edgeStoppers = append(a.edgeStoppers, e.Stop)
	return nil
}
