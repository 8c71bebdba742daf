package app

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	"github.com/classwaves/classwaves/gateway"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	"github.com/classwaves/classwaves/pkg/grpcclient"
	"github.com/classwaves/classwaves/pkg/llm"
	"github.com/classwaves/classwaves/services/analytics"
	"github.com/classwaves/classwaves/services/audit"
	"github.com/classwaves/classwaves/services/auth"
	"github.com/classwaves/classwaves/services/guidance"
	"github.com/classwaves/classwaves/services/guidance/analyzer"
	"github.com/classwaves/classwaves/services/guidance/llmanalyzer"
	"github.com/classwaves/classwaves/services/session"
	"github.com/classwaves/classwaves/services/stt"
)

// initGuidance builds the guidance service: it reads stt and session events, asks the session
// service for session context (internal RPC, service token) and publishes insights and prompts.
// Tier 1 and Tier 2 use the built-in analyzer unless AI_TIER1_ENDPOINT / AI_TIER2_ENDPOINT name an
// OpenAI-compatible endpoint; an LLM analyzer that fails answers with the built-in one.
func (a *App) initGuidance(ctx context.Context) error {
	db, b, audit, err := a.serviceInfra(ctx)
	if err != nil {
		return err
	}
	sessConn, err := a.internalConn(Session, "guidance")
	if err != nil {
		return err
	}
	t1, t2, err := a.analyzers(ctx)
	if err != nil {
		return err
	}
	svc, err := guidance.New(a.cfg.Guidance, db, b, sessionv1.NewSessionServiceClient(sessConn), t1, t2, audit, a.logger, a.registry)
	if err != nil {
		return err
	}
	a.addService(svc, guidance.ServiceNames())
	return nil
}

// analyzers returns the Tier 1 and Tier 2 analyzers the configuration asks for.
func (a *App) analyzers(ctx context.Context) (analyzer.Tier1Analyzer, analyzer.Tier2Analyzer, error) {
	builtin := analyzer.NewBuiltin()
	var t1 analyzer.Tier1Analyzer = builtin
	var t2 analyzer.Tier2Analyzer = builtin
	cfg := a.cfg.Guidance.LLM
	if cfg.Tier1Endpoint != "" {
		an, err := a.llmAnalyzer(ctx, "tier1", cfg.Tier1Endpoint, cfg.Tier1Model)
		if err != nil {
			return nil, nil, fmt.Errorf("AI_TIER1_ENDPOINT: %w", err)
		}
		t1 = &analyzer.Fallback{Primary1: an, Secondary1: builtin, Logger: a.logger}
	}
	if cfg.Tier2Endpoint != "" {
		an, err := a.llmAnalyzer(ctx, "tier2", cfg.Tier2Endpoint, cfg.Tier2Model)
		if err != nil {
			return nil, nil, fmt.Errorf("AI_TIER2_ENDPOINT: %w", err)
		}
		t2 = &analyzer.Fallback{Primary2: an, Secondary2: builtin, Logger: a.logger}
	}
	return t1, t2, nil
}

// llmAnalyzer builds an LLM analyzer on endpoint, metered by the per-school daily token budget
// (shared through Redis when the process has one, else per process).
func (a *App) llmAnalyzer(ctx context.Context, name, endpoint, model string) (*llmanalyzer.Analyzer, error) {
	cfg := a.cfg.Guidance.LLM
	client, err := a.llmClient(ctx, name, llm.Config{
		BaseURL: endpoint, APIKey: a.aiAPIKey(), Model: model,
		Timeout: cfg.Timeout, MaxRetries: cfg.MaxRetries, Concurrency: cfg.Concurrency, MaxTokens: cfg.MaxTokens,
	}, int(cfg.SchoolDailyTokenBudget))
	if err != nil {
		return nil, err
	}
	return llmanalyzer.New(client, "llm:"+client.Model(), a.registry)
}

// llmClient builds one LLM client with its metrics and, when dailyTokens > 0, the per-school budget.
func (a *App) llmClient(ctx context.Context, name string, cfg llm.Config, dailyTokens int) (*llm.Client, error) {
	opts := []llm.Option{llm.WithMetrics(a.registry, name)}
	if dailyTokens > 0 {
		if a.cfg.Redis.URL != "" {
			rdb, err := a.redisClient(ctx)
			if err != nil {
				return nil, err
			}
			opts = append(opts, llm.WithBudget(llm.NewRedisBudget(rdb, "cw:llm:budget:"+name+":", dailyTokens, nil)))
		} else {
			opts = append(opts, llm.WithBudget(llm.NewMemoryBudget(dailyTokens, nil)))
		}
	}
	return llm.New(cfg, opts...)
}

// aiAPIKey is AI_API_KEY, else DATABRICKS_TOKEN (Databricks Model Serving endpoints).
func (a *App) aiAPIKey() string {
	if a.cfg.Guidance.LLM.APIKey != "" {
		return a.cfg.Guidance.LLM.APIKey
	}
	return a.cfg.DatabricksToken
}

// initAnalytics builds the analytics service: it reads session, stt and guidance events, asks the
// session service for session context, publishes finalization results and summaries, and probes
// every service's gRPC health for /health/components. Summaries use the built-in summarizer unless
// AI_SUMMARIZER_ENDPOINT names an OpenAI-compatible endpoint.
func (a *App) initAnalytics(ctx context.Context) error {
	db, b, audit, err := a.serviceInfra(ctx)
	if err != nil {
		return err
	}
	sessConn, err := a.internalConn(Session, "analytics")
	if err != nil {
		return err
	}
	var summarizer analytics.Summarizer // nil: built-in
	if cfg := a.cfg.Analytics; cfg.SummarizerEndpoint != "" {
		g := a.cfg.Guidance.LLM
		client, err := a.llmClient(ctx, "summarizer", llm.Config{
			BaseURL: cfg.SummarizerEndpoint, APIKey: a.aiAPIKey(), Model: cfg.SummarizerModel,
			Timeout: g.Timeout, MaxRetries: g.MaxRetries, Concurrency: g.Concurrency, MaxTokens: 2 * g.MaxTokens,
		}, int(g.SchoolDailyTokenBudget))
		if err != nil {
			return fmt.Errorf("AI_SUMMARIZER_ENDPOINT: %w", err)
		}
		if summarizer, err = analytics.NewLLMSummarizer(client); err != nil {
			return err
		}
	}
	components, err := a.healthComponents()
	if err != nil {
		return err
	}
	svc, err := analytics.New(a.cfg.Analytics, db, b, sessionv1.NewSessionServiceClient(sessConn), summarizer,
		components, audit, a.logger, a.registry)
	if err != nil {
		return err
	}
	a.addService(svc, analytics.ServiceNames())
	return nil
}

// healthComponents lists every service /health/components probes: through the local gRPC listener
// for modules in this process, through <SERVICE>_GRPC_ADDR for the others (skipped when unset).
func (a *App) healthComponents() ([]analytics.Component, error) {
	services := []struct {
		module, name string
		grpcNames    []string
	}{
		{Auth, "auth", auth.ServiceNames()},
		{Session, "session", session.ServiceNames()},
		{STT, "stt", stt.ServiceNames()},
		{Guidance, "guidance", guidance.ServiceNames()},
		{Analytics, "analytics", analytics.ServiceNames()},
		{Audit, "audit", audit.ServiceNames()},
	}
	var out []analytics.Component
	for _, s := range services {
		addr := a.grpcAddr
		if !a.hasModule(s.module) {
			if up, ok := a.cfg.Upstreams[gateway.Upstream(s.module)]; ok && *up != "" {
				addr = *up
			} else {
				continue
			}
		}
		conn, err := a.healthConn(addr)
		if err != nil {
			return nil, err
		}
		out = append(out, analytics.Component{Name: s.name, Conn: conn, Service: s.grpcNames[0]})
	}
	return out, nil
}

// healthConn dials addr once per process for health probes (no credentials: health is public).
func (a *App) healthConn(addr string) (*grpc.ClientConn, error) {
	if c, ok := a.healthConns[addr]; ok {
		return c, nil
	}
	c, err := grpcclient.Dial(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if a.healthConns == nil {
		a.healthConns = map[string]*grpc.ClientConn{}
	}
	a.healthConns[addr] = c
	a.closers = append(a.closers, c.Close)
	return c, nil
}
