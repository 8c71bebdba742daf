package ratelimit

import (
	"time"

	"github.com/classwaves/classwaves/pkg/config"
)

// Config sets the HTTP rate limits. The limiter behind them (Redis or memory) is chosen by the
// mode the binary runs in, not here.
//
//	ENABLE_RATE_LIMITING          -rate-limit-enabled            true     the seed's switch
//	CW_RL_PREFIX_ENABLED          -rate-limit-prefix-enabled     true     Redis keys cw:{env}:rl:*, else rl:*
//	RATE_LIMIT_MAX_REQUESTS       -rate-limit-max-requests       1000     /api/** per client IP per window
//	RATE_LIMIT_WINDOW_MS          -rate-limit-window             900000   (15 minutes, as the seed)
//	RATE_LIMIT_AUTH_MAX_REQUESTS  -rate-limit-auth-max-requests  100      /api/v1/auth/** per client IP per window
//	RATE_LIMIT_AUTH_WINDOW_MS     -rate-limit-auth-window        900000
//	TRUSTED_PROXIES               -trusted-proxies               (none)   IPs or CIDRs whose X-Forwarded-For is believed
type Config struct {
	Enabled         bool
	PrefixEnabled   bool
	MaxRequests     int
	Window          time.Duration
	AuthMaxRequests int
	AuthWindow      time.Duration
	// TrustedProxies are the proxies (IPs or CIDRs, e.g. the Envoy or load balancer network) whose
	// X-Forwarded-For header names the client. Empty: the client is the TCP peer, and
	// X-Forwarded-For is ignored, since any client can send one.
	TrustedProxies []string
}

// RegisterFlags registers the settings listed on Config.
func (c *Config) RegisterFlags(f *config.FlagSet) {
	f.Bool(&c.Enabled, "rate-limit-enabled", "ENABLE_RATE_LIMITING", true, "limit request rates on /api")
	f.Bool(&c.PrefixEnabled, "rate-limit-prefix-enabled", "CW_RL_PREFIX_ENABLED", true,
		"prefix rate limiter Redis keys with cw:{env}:rl: (else rl:)")
	f.Int(&c.MaxRequests, "rate-limit-max-requests", "RATE_LIMIT_MAX_REQUESTS", 1000,
		"requests per client IP per window on /api/**")
	f.DurationMS(&c.Window, "rate-limit-window", "RATE_LIMIT_WINDOW_MS", 15*time.Minute,
		"window of RATE_LIMIT_MAX_REQUESTS")
	f.Int(&c.AuthMaxRequests, "rate-limit-auth-max-requests", "RATE_LIMIT_AUTH_MAX_REQUESTS", 100,
		"requests per client IP per window on /api/v1/auth/**")
	f.DurationMS(&c.AuthWindow, "rate-limit-auth-window", "RATE_LIMIT_AUTH_WINDOW_MS", 15*time.Minute,
		"window of RATE_LIMIT_AUTH_MAX_REQUESTS")
	f.StringList(&c.TrustedProxies, "trusted-proxies", "TRUSTED_PROXIES", nil,
		"comma-separated IPs or CIDRs of proxies whose X-Forwarded-For names the client")
}

// DefaultConfig returns the defaults RegisterFlags sets.
func DefaultConfig() Config {
	return Config{
		Enabled:         true,
		PrefixEnabled:   true,
		MaxRequests:     1000,
		Window:          15 * time.Minute,
		AuthMaxRequests: 100,
		AuthWindow:      15 * time.Minute,
	}
}

// Validate reports every wrong setting, one per line, for example
// "RATE_LIMIT_WINDOW_MS must be between 1s and 24h0m0s, got 10ms".
func (c Config) Validate() error {
	errs := []error{
		config.Range("RATE_LIMIT_MAX_REQUESTS", c.MaxRequests, 1, 1_000_000),
		config.Range("RATE_LIMIT_WINDOW_MS", c.Window, time.Second, 24*time.Hour),
		config.Range("RATE_LIMIT_AUTH_MAX_REQUESTS", c.AuthMaxRequests, 1, 1_000_000),
		config.Range("RATE_LIMIT_AUTH_WINDOW_MS", c.AuthWindow, time.Second, 24*time.Hour),
	}
	if _, err := parseTrusted(c.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	return config.Join(errs...)
}

// GlobalLimit is the limit on /api/** per client IP.
func (c Config) GlobalLimit() Limit { return PerPeriod(c.MaxRequests, c.Window) }

// AuthLimit is the limit on /api/v1/auth/** per client IP.
func (c Config) AuthLimit() Limit { return PerPeriod(c.AuthMaxRequests, c.AuthWindow) }

// KeyPrefix is the Redis key prefix of the limiters: "cw:{env}:rl:" (for example
// cw:production:rl:) with CW_RL_PREFIX_ENABLED, else the legacy "rl:".
func (c Config) KeyPrefix(env config.Environment) string {
	if c.PrefixEnabled {
		return "cw:" + string(env) + ":rl:"
	}
	return "rl:"
}
