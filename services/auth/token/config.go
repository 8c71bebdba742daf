package token

import (
	"time"

	"github.com/classwaves/classwaves/pkg/config"
)

// Config sets token lifetimes and key rotation. The claims settings shared with every verifier
// (issuer, audience, clock skew) are authn.Config, passed to NewKeySet beside it.
type Config struct {
	// AccessTTL is the lifetime of a staff access token.
	AccessTTL time.Duration
	// StudentTTL is the lifetime of a student token (one session and group), long enough for a
	// class period without a refresh token.
	StudentTTL time.Duration
	// ServiceTTL is the lifetime of a service token for internal calls; callers renew it before
	// it expires.
	ServiceTTL time.Duration
	// RotationInterval is how long a key signs before a new key replaces it.
	RotationInterval time.Duration
	// ReloadInterval is how often the key set is reloaded from the store (to see a rotation made by
	// another auth replica), rotated when due, and pruned. A new key is published this long before
	// it signs, and a key that stopped signing stays published until every token it may have signed
	// has expired: the longest TTL plus the clock skew plus this interval.
	ReloadInterval time.Duration
}

// RegisterFlags registers the token settings:
//
//	-jwt-access-ttl             JWT_ACCESS_TTL             15m
//	-student-token-ttl          STUDENT_TOKEN_TTL          4h
//	-service-token-ttl          SERVICE_TOKEN_TTL          15m
//	-jwt-key-rotation-interval  JWT_KEY_ROTATION_INTERVAL  720h (30 days)
//	-jwt-key-reload-interval    JWT_KEY_RELOAD_INTERVAL    1m
func (c *Config) RegisterFlags(f *config.FlagSet) {
	f.Duration(&c.AccessTTL, "jwt-access-ttl", "JWT_ACCESS_TTL", 15*time.Minute, "lifetime of staff access tokens")
	f.Duration(&c.StudentTTL, "student-token-ttl", "STUDENT_TOKEN_TTL", 4*time.Hour,
		"lifetime of student tokens (scoped to one session and group)")
	f.Duration(&c.ServiceTTL, "service-token-ttl", "SERVICE_TOKEN_TTL", 15*time.Minute,
		"lifetime of service tokens for internal calls")
	f.Duration(&c.RotationInterval, "jwt-key-rotation-interval", "JWT_KEY_ROTATION_INTERVAL", 30*24*time.Hour,
		"how long a token signing key signs before a new one replaces it")
	f.Duration(&c.ReloadInterval, "jwt-key-reload-interval", "JWT_KEY_RELOAD_INTERVAL", time.Minute,
		"how often token signing keys are reloaded from the store, rotated when due and pruned")
}

// DefaultConfig returns the defaults RegisterFlags sets.
func DefaultConfig() Config {
	return Config{
		AccessTTL:        15 * time.Minute,
		StudentTTL:       4 * time.Hour,
		ServiceTTL:       15 * time.Minute,
		RotationInterval: 30 * 24 * time.Hour,
		ReloadInterval:   time.Minute,
	}
}

// Validate reports every wrong setting, one per line, for example
// "JWT_ACCESS_TTL must be between 1m0s and 1h0m0s, got 2h0m0s".
func (c Config) Validate() error {
	errs := []error{
		config.Range("JWT_ACCESS_TTL", c.AccessTTL, time.Minute, time.Hour),
		config.Range("STUDENT_TOKEN_TTL", c.StudentTTL, 5*time.Minute, 24*time.Hour),
		config.Range("SERVICE_TOKEN_TTL", c.ServiceTTL, 5*time.Minute, time.Hour),
		config.Range("JWT_KEY_ROTATION_INTERVAL", c.RotationInterval, time.Hour, 365*24*time.Hour),
		config.Range("JWT_KEY_RELOAD_INTERVAL", c.ReloadInterval, time.Second, time.Hour),
	}
	// Compared only when both are in range, so one mistake gives one message.
	if errs[3] == nil && errs[4] == nil && c.ReloadInterval >= c.RotationInterval {
		errs = append(errs, config.Errorf("JWT_KEY_RELOAD_INTERVAL (%v) must be shorter than JWT_KEY_ROTATION_INTERVAL (%v)",
			c.ReloadInterval, c.RotationInterval))
	}
	return config.Join(errs...)
}

// maxTTL is the longest lifetime of any token.
func (c Config) maxTTL() time.Duration {
	return max(c.AccessTTL, c.StudentTTL, c.ServiceTTL)
}
