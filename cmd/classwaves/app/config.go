package app

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/classwaves/classwaves/gateway"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/config"
	"github.com/classwaves/classwaves/pkg/logging"
	"github.com/classwaves/classwaves/pkg/ratelimit"
	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/telemetry"
	"github.com/classwaves/classwaves/pkg/traceid"
	"github.com/classwaves/classwaves/services/analytics"
	"github.com/classwaves/classwaves/services/audit"
	"github.com/classwaves/classwaves/services/auth"
	"github.com/classwaves/classwaves/services/auth/token"
	"github.com/classwaves/classwaves/services/guidance"
	"github.com/classwaves/classwaves/services/realtime/edge"
	"github.com/classwaves/classwaves/services/session"
	"github.com/classwaves/classwaves/services/stt"
)

// Config is the whole process's configuration: one struct per component, each registering its own
// flags (with the seed's env names) and validating itself.
type Config struct {
	// Target is the comma-separated list of modules to run (-target, TARGET).
	Target string
	// Environment is NODE_ENV: development, test or production.
	Environment config.Environment
	Log         logging.Config

	HTTP      HTTPConfig
	GRPC      GRPCConfig
	Telemetry telemetry.Config
	Gateway   gateway.Config
	Store     store.Config
	Redis     RedisConfig
	Audit     audit.Config
	Auth      auth.Config
	Token     token.Config
	JWT       authn.Config
	RateLimit ratelimit.Config
	STT       stt.Config
	Session   session.Config
	Realtime  edge.Config
	Guidance  guidance.Config
	Analytics analytics.Config
	// DatabricksToken is DATABRICKS_TOKEN: the AI endpoints' key when AI_API_KEY is unset
	// (Databricks Model Serving).
	DatabricksToken string
	// Upstreams are the gRPC addresses of services that do not run in this process.
	Upstreams UpstreamConfig
}

// HTTPConfig configures the HTTP listener (REST, Socket.IO, /metrics).
type HTTPConfig struct {
	Host string
	Port int
	// ShutdownTimeout bounds the drain of in-flight work on SIGTERM.
	ShutdownTimeout time.Duration
}

// GRPCConfig configures the gRPC listener.
type GRPCConfig struct {
	Host string
	Port int
}

// UpstreamConfig names where each service's gRPC server is when it is not in this process.
type UpstreamConfig map[gateway.Upstream]*string

// RegisterFlags registers every component's flags.
func (c *Config) RegisterFlags(f *config.FlagSet) {
	f.String(&c.Target, "target", "TARGET", All, "modules to run, comma-separated (see -modules)")
	c.Environment.RegisterFlags(f)
	c.Log.RegisterFlags(f)
	f.String(&c.HTTP.Host, "http.host", "HOST", "", "HTTP listen host (empty: all interfaces)")
	f.Int(&c.HTTP.Port, "http.port", "PORT", 3000, "HTTP port: REST under /api, Socket.IO under /socket.io/, /metrics")
	f.DurationMS(&c.HTTP.ShutdownTimeout, "shutdown-timeout", "SHUTDOWN_TIMEOUT_MS", 10*time.Second, "how long SIGTERM waits for in-flight work before exiting")
	f.String(&c.GRPC.Host, "grpc.host", "GRPC_HOST", "", "gRPC listen host (empty: all interfaces)")
	f.Int(&c.GRPC.Port, "grpc.port", "GRPC_PORT", 9090, "gRPC port of every service this process runs")
	c.Telemetry.RegisterFlags(f)
	c.Gateway.RegisterFlags(f)
	c.Store.RegisterFlags(f)
	c.Redis.RegisterFlags(f)
	c.Audit.RegisterFlags(f)
	c.Auth = auth.DefaultConfig()
	c.Auth.RegisterFlags(f)
	c.Token.RegisterFlags(f)
	c.JWT.RegisterFlags(f)
	c.RateLimit.RegisterFlags(f)
	c.STT.RegisterFlags(f)
	c.Session = session.DefaultConfig()
	c.Session.RegisterFlags(f)
	c.Realtime = edge.DefaultConfig()
	c.Realtime.RegisterFlags(f)
	c.Guidance.RegisterFlags(f)
	c.Analytics.RegisterFlags(f)
	f.String(&c.DatabricksToken, "databricks-token", "DATABRICKS_TOKEN", "", "Databricks token, used for the AI endpoints when AI_API_KEY is unset")
	c.Upstreams = UpstreamConfig{}
	for _, up := range gateway.Upstreams() {
		addr := new(string)
		env := strings.ToUpper(string(up)) + "_GRPC_ADDR"
		f.String(addr, "upstream."+string(up), env, "", fmt.Sprintf("gRPC address of the %s service when it runs in another process", up))
		c.Upstreams[up] = addr
	}
}

// Validate says exactly what is wrong.
func (c *Config) Validate() error {
	errs := []error{
		c.Environment.Validate(),
		c.Log.Validate(),
		portOrZero("PORT", c.HTTP.Port),
		portOrZero("GRPC_PORT", c.GRPC.Port),
		c.Telemetry.Validate(),
		c.Gateway.Validate(),
		c.Store.Validate(),
		c.Redis.Validate(),
		c.Audit.Validate(),
		c.Token.Validate(),
		c.JWT.Validate(),
		c.RateLimit.Validate(),
	}
	errs = append(errs, c.sttConfig().Validate(), c.Session.Validate(), c.realtimeConfig().Validate(),
		c.Guidance.Validate(), c.Analytics.Validate())
	authCfg := c.Auth
	authCfg.Environment = c.Environment
	errs = append(errs, authCfg.Validate())
	if c.HTTP.Port != 0 && c.HTTP.Port == c.GRPC.Port {
		errs = append(errs, fmt.Errorf("PORT and GRPC_PORT must differ, both are %d", c.HTTP.Port))
	}
	errs = append(errs, config.NonNegative("SHUTDOWN_TIMEOUT_MS", c.HTTP.ShutdownTimeout))
	if modules, err := resolveTargets(c.Target); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, c.validateInfra(modules))
	}
	return config.Join(errs...)
}

// portOrZero accepts 0 (pick a free port, for tests) or a real port.
func portOrZero(name string, v int) error {
	if v == 0 {
		return nil
	}
	return config.Port(name, v)
}

// upstreamsMissing lists the env names the gateway needs for services not run locally.
func (u UpstreamConfig) upstreamsMissing(local map[string]bool) []string {
	var missing []string
	for up, addr := range u {
		if !local[string(up)] && *addr == "" {
			missing = append(missing, strings.ToUpper(string(up))+"_GRPC_ADDR")
		}
	}
	sort.Strings(missing)
	return missing
}

// sttConfig is the STT configuration with one development convenience: outside production,
// STT_PROVIDER=openai pointed at OpenAI itself without OPENAI_API_KEY turns transcription off
// (windows dropped and counted, speech activity still published) instead of refusing to start, so
// `make run` works with nothing configured. Production keeps the validation error.
func (c *Config) sttConfig() stt.Config {
	s := c.STT
	if !c.Environment.IsProduction() && s.Provider == stt.ProviderOpenAI && s.OpenAIAPIKey == "" &&
		s.OpenAIBaseURL == stt.DefaultOpenAIBaseURL {
		s.Provider = stt.ProviderOff
	}
	return s
}

// realtimeConfig is the edge's configuration with the origins CORS admits (FRONTEND_URL,
// STUDENT_APP_URL, CORS_ALLOWED_ORIGINS).
func (c *Config) realtimeConfig() edge.Config {
	r := c.Realtime
	r.AllowedOrigins = c.Gateway.AllowedOrigins()
	if c.Environment.IsProduction() && r.DevObservabilityToken == "" {
		// The seed opens the debug endpoint outside production only; in production without
		// DEV_OBSERVABILITY_TOKEN it stays closed (a token nobody knows).
		r.DevObservabilityToken = traceid.New() + traceid.New()
	}
	return r
}
