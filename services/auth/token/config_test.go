package token

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/pkg/config"
)

func TestConfigFlags(t *testing.T) {
	var got Config
	f := config.NewFlagSet("test", config.MapEnv(map[string]string{"STUDENT_TOKEN_TTL": "2h", "JWT_ACCESS_TTL": "10m"}))
	got.RegisterFlags(f)
	if err := f.Parse([]string{"-jwt-key-rotation-interval=24h"}); err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.StudentTTL, want.AccessTTL, want.RotationInterval = 2*time.Hour, 10*time.Minute, 24*time.Hour
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
		{"access ttl", func(c *Config) { c.AccessTTL = 2 * time.Hour }, "JWT_ACCESS_TTL must be between 1m0s and 1h0m0s, got 2h0m0s"},
		{"student ttl", func(c *Config) { c.StudentTTL = 0 }, "STUDENT_TOKEN_TTL must be between 5m0s and 24h0m0s, got 0s"},
		{"service ttl", func(c *Config) { c.ServiceTTL = time.Minute }, "SERVICE_TOKEN_TTL must be between 5m0s and 1h0m0s, got 1m0s"},
		{"rotation", func(c *Config) { c.RotationInterval = time.Minute }, "JWT_KEY_ROTATION_INTERVAL must be between 1h0m0s and 8760h0m0s, got 1m0s"},
		{"reload", func(c *Config) { c.ReloadInterval = 0 }, "JWT_KEY_RELOAD_INTERVAL must be between 1s and 1h0m0s, got 0s"},
		{"reload not shorter than rotation", func(c *Config) { c.ReloadInterval, c.RotationInterval = time.Hour, time.Hour },
			"JWT_KEY_RELOAD_INTERVAL (1h0m0s) must be shorter than JWT_KEY_ROTATION_INTERVAL (1h0m0s)"},
		{"several", func(c *Config) { c.AccessTTL, c.ServiceTTL = 0, 0 },
			"JWT_ACCESS_TTL must be between 1m0s and 1h0m0s, got 0s\nSERVICE_TOKEN_TTL must be between 5m0s and 1h0m0s, got 0s"},
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
