package authn

import (
	"time"

	"github.com/classwaves/classwaves/pkg/config"
)

// Config is what every service needs to verify access tokens. Every target registers it once; the
// token issuer (services/auth/token) is given the same values, so what it signs is what the
// verifiers expect.
type Config struct {
	// Issuer is the iss claim tokens carry and verifiers require.
	Issuer string
	// Audience is the aud claim tokens carry and verifiers require.
	Audience string
	// ClockSkew is the leeway allowed on exp, nbf and iat between the clocks of issuer and verifier.
	ClockSkew time.Duration
	// JWKSMinRefreshInterval is the shortest time between two fetches of the key set by a verifier
	// (and two reloads of the key store by the issuer), so a flood of tokens with random key ids
	// cannot hammer the auth service.
	JWKSMinRefreshInterval time.Duration
	// JWKSCacheTTL is how long fetched keys are used before the next lookup fetches them again.
	JWKSCacheTTL time.Duration
}

// RegisterFlags registers the verification settings:
//
//	-jwt-issuer                 JWT_ISSUER                 classwaves
//	-jwt-audience               JWT_AUDIENCE               classwaves-api
//	-jwt-clock-skew             JWT_CLOCK_SKEW             30s
//	-jwks-min-refresh-interval  JWKS_MIN_REFRESH_INTERVAL  5s
//	-jwks-cache-ttl             JWKS_CACHE_TTL             10m
func (c *Config) RegisterFlags(f *config.FlagSet) {
	f.String(&c.Issuer, "jwt-issuer", "JWT_ISSUER", "classwaves", "iss claim of access tokens")
	f.String(&c.Audience, "jwt-audience", "JWT_AUDIENCE", "classwaves-api", "aud claim of access tokens")
	f.Duration(&c.ClockSkew, "jwt-clock-skew", "JWT_CLOCK_SKEW", 30*time.Second,
		"leeway on token exp, nbf and iat for clock differences")
	f.Duration(&c.JWKSMinRefreshInterval, "jwks-min-refresh-interval", "JWKS_MIN_REFRESH_INTERVAL", 5*time.Second,
		"shortest time between two fetches of the token signing keys (an unknown key id triggers one)")
	f.Duration(&c.JWKSCacheTTL, "jwks-cache-ttl", "JWKS_CACHE_TTL", 10*time.Minute,
		"how long fetched token signing keys are used before they are fetched again")
}

// DefaultConfig returns the defaults RegisterFlags sets, for tests and embedded use.
func DefaultConfig() Config {
	return Config{
		Issuer:                 "classwaves",
		Audience:               "classwaves-api",
		ClockSkew:              30 * time.Second,
		JWKSMinRefreshInterval: 5 * time.Second,
		JWKSCacheTTL:           10 * time.Minute,
	}
}

// Validate reports every wrong setting, one per line, for example
// "JWT_CLOCK_SKEW must be between 0s and 5m0s, got 10m0s".
func (c Config) Validate() error {
	errs := []error{
		config.Required("JWT_ISSUER", c.Issuer),
		config.Required("JWT_AUDIENCE", c.Audience),
		config.Range("JWT_CLOCK_SKEW", c.ClockSkew, 0, 5*time.Minute),
		config.Range("JWKS_MIN_REFRESH_INTERVAL", c.JWKSMinRefreshInterval, 100*time.Millisecond, 10*time.Minute),
		config.Range("JWKS_CACHE_TTL", c.JWKSCacheTTL, time.Second, 24*time.Hour),
	}
	if c.JWKSCacheTTL > 0 && c.JWKSCacheTTL < c.JWKSMinRefreshInterval {
		errs = append(errs, config.Errorf("JWKS_CACHE_TTL (%v) must not be shorter than JWKS_MIN_REFRESH_INTERVAL (%v)",
			c.JWKSCacheTTL, c.JWKSMinRefreshInterval))
	}
	return config.Join(errs...)
}
