package app

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/logging"
	"github.com/classwaves/classwaves/services/audit"
	"github.com/classwaves/classwaves/services/session"
)

// ReplayAuditDLQ is `classwaves audit replay-dlq`: it drains the audit dead-letter stream back to
// the audit stream (mode "stream") or straight into compliance.audit_log (mode "db"), and answers
// how many entries it replayed. Safe to run again. The DLQ lives in Redis, so REDIS_URL is needed:
// a monolith's in-process bus cannot be reached from another process.
func ReplayAuditDLQ(ctx context.Context, cfg Config, mode string, logOut io.Writer) (int, error) {
	if cfg.Redis.URL == "" {
		return 0, errors.New("replay-dlq reads the audit DLQ stream in Redis: set REDIS_URL")
	}
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	logger, err := logging.New(logOut, cfg.Log.Level)
	if err != nil {
		return 0, err
	}
	a := &App{cfg: cfg, logger: logger, httpMux: http.NewServeMux(), registry: prometheus.NewRegistry()}
	a.runCtx, a.cancelRun = context.WithCancel(ctx)
	defer a.stop(context.Background())
	db, err := a.database(ctx)
	if err != nil {
		return 0, err
	}
	b, err := a.eventBus(ctx)
	if err != nil {
		return 0, err
	}
	svc, err := audit.New(cfg.Audit, db, b, logger, a.registry)
	if err != nil {
		return 0, err
	}
	if mode == "" {
		mode = cfg.Audit.DLQReplayMode
	}
	return svc.ReplayDLQ(ctx, mode)
}

// PurgeSessions is `classwaves session purge`: it deletes ended sessions past retention
// (RETENTION_DEFAULT_DAYS unless days > 0), or only lists them with dryRun, and audits the purge.
// It answers the purged (or purgeable) session ids.
func PurgeSessions(ctx context.Context, cfg Config, dryRun bool, days int, logOut io.Writer) ([]string, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger, err := logging.New(logOut, cfg.Log.Level)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, logger: logger, httpMux: http.NewServeMux(), registry: prometheus.NewRegistry()}
	a.runCtx, a.cancelRun = context.WithCancel(ctx)
	defer a.stop(context.Background())
	db, err := a.database(ctx)
	if err != nil {
		return nil, err
	}
	b, err := a.eventBus(ctx)
	if err != nil {
		return nil, err
	}
	audit, err := a.auditClient(ctx)
	if err != nil {
		return nil, err
	}
	// Purging needs neither auth nor stt: the ports are never called.
	svc, err := session.New(cfg.Session, db, b, noTokens{}, noDrain{}, audit, logger, a.registry)
	if err != nil {
		return nil, err
	}
	if err := svc.Start(ctx); err != nil { // migrations
		return nil, err
	}
	return svc.Purge(ctx, authn.Principal{Subject: "classwaves-cli", Role: authn.RoleService}, dryRun, days)
}

type noTokens struct{}

func (noTokens) IssueStudentToken(context.Context, string, string, string, string, string) (string, int32, error) {
	return "", 0, errors.New("not available in the purge command")
}

type noDrain struct{}

func (noDrain) FlushGroups(context.Context, string, time.Duration) ([]string, error) {
	return nil, errors.New("not available in the purge command")
}
