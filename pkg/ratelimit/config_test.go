package ratelimit

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/pkg/config"
)

func TestConfigFlags(t *testing.T) {
	var got Config
	f := config.NewFlagSet("test", config.MapEnv(map[string]string{
		"ENABLE_RATE_LIMITING": "false", "CW_RL_PREFIX_ENABLED": "0", "RATE_LIMIT_WINDOW_MS": "60000",
		"TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.10",
	}))
	got.RegisterFlags(f)
	if err := f.Parse([]string{"-rate-limit-auth-max-requests=20"}); err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Enabled, want.PrefixEnabled, want.Window, want.AuthMaxRequests = false, false, time.Minute, 20
	want.TrustedProxies = []string{"10.0.0.0/8", "192.168.1.10"}
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
		{"max", func(c *Config) { c.MaxRequests = 0 }, "RATE_LIMIT_MAX_REQUESTS must be between 1 and 1000000, got 0"},
		{"window", func(c *Config) { c.Window = 10 * time.Millisecond }, "RATE_LIMIT_WINDOW_MS must be between 1s and 24h0m0s, got 10ms"},
		{"auth max", func(c *Config) { c.AuthMaxRequests = -1 }, "RATE_LIMIT_AUTH_MAX_REQUESTS must be between 1 and 1000000, got -1"},
		{"auth window", func(c *Config) { c.AuthWindow = 48 * time.Hour }, "RATE_LIMIT_AUTH_WINDOW_MS must be between 1s and 24h0m0s, got 48h0m0s"},
		{"proxies", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "lb.internal"} },
			`TRUSTED_PROXIES has "lb.internal", which is neither an IP address nor a CIDR such as 10.0.0.0/8`},
		{"several", func(c *Config) { c.MaxRequests, c.AuthMaxRequests = 0, 0 },
			"RATE_LIMIT_MAX_REQUESTS must be between 1 and 1000000, got 0\nRATE_LIMIT_AUTH_MAX_REQUESTS must be between 1 and 1000000, got 0"},
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

func TestConfigLimitsAndPrefix(t *testing.T) {
	c := DefaultConfig()
	if got, want := c.GlobalLimit(), (Limit{Rate: 1000, Period: 15 * time.Minute, Burst: 1000}); got != want {
		t.Errorf("GlobalLimit() = %+v, want %+v", got, want)
	}
	if got, want := c.AuthLimit(), (Limit{Rate: 100, Period: 15 * time.Minute, Burst: 100}); got != want {
		t.Errorf("AuthLimit() = %+v, want %+v", got, want)
	}
	if got := c.KeyPrefix(config.Production); got != "cw:production:rl:" {
		t.Errorf("KeyPrefix(production) = %q", got)
	}
	c.PrefixEnabled = false
	if got := c.KeyPrefix(config.Production); got != "rl:" {
		t.Errorf("KeyPrefix(production) without CW_RL_PREFIX_ENABLED = %q", got)
	}
}
