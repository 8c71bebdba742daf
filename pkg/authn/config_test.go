package authn

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/pkg/config"
)

func TestConfigFlags(t *testing.T) {
	var got Config
	f := config.NewFlagSet("test", config.MapEnv(map[string]string{"JWT_ISSUER": "https://cw.example", "JWT_CLOCK_SKEW": "10s"}))
	got.RegisterFlags(f)
	if err := f.Parse([]string{"-jwks-cache-ttl=1m"}); err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Issuer, want.ClockSkew, want.JWKSCacheTTL = "https://cw.example", 10*time.Second, time.Minute
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"no issuer", func(c *Config) { c.Issuer = " " }, "JWT_ISSUER is required"},
		{"no audience", func(c *Config) { c.Audience = "" }, "JWT_AUDIENCE is required"},
		{"skew", func(c *Config) { c.ClockSkew = 10 * time.Minute }, "JWT_CLOCK_SKEW must be between 0s and 5m0s, got 10m0s"},
		{"refresh", func(c *Config) { c.JWKSMinRefreshInterval = 0 }, "JWKS_MIN_REFRESH_INTERVAL must be between 100ms and 10m0s, got 0s"},
		{"ttl below refresh", func(c *Config) { c.JWKSCacheTTL = 2 * time.Second }, "JWKS_CACHE_TTL (2s) must not be shorter than JWKS_MIN_REFRESH_INTERVAL (5s)"},
		{"all", func(c *Config) { c.Issuer, c.JWKSCacheTTL = "", 0 }, "JWT_ISSUER is required\nJWKS_CACHE_TTL must be between 1s and 24h0m0s, got 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			got := ""
			if err := c.Validate(); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}
