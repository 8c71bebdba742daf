package app

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/classwaves/classwaves/pkg/logging"
	"github.com/classwaves/classwaves/services/audit"
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
	a := &App{cfg: cfg, logger: logger, httpMux: http.NewServeMux()}
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
	svc, err := audit.New(cfg.Audit, db, b, logger, nil)
	if err != nil {
		return 0, err
	}
	if mode == "" {
		mode = cfg.Audit.DLQReplayMode
	}
	return svc.ReplayDLQ(ctx, mode)
}
