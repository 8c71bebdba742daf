package auth

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/pkg/config"
)

func TestConfigFlags(t *testing.T) {
	var got Config
	f := config.NewFlagSet("test", config.MapEnv(map[string]string{
		"GOOGLE_CLIENT_ID": "id.apps.googleusercontent.com", "GOOGLE_CLIENT_SECRET": "s", "GOOGLE_REDIRECT_URI": "https://api.example.org/api/v1/auth/google/callback",
		"FRONTEND_URL": "https://app.example.org", "REFRESH_TOKEN_TTL": "240h", "REFRESH_TOKEN_IDLE_TTL": "48h",
		"AUTH_DEV_FALLBACK_ENABLED": "1", "E2E_TEST_SECRET": "x",
	}))
	got.RegisterFlags(f)
	if err := f.Parse([]string{"-auth.google-issuer=https://issuer.example.org", "-auth.oauth-state-ttl=5m"}); err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Environment = "" // not registered here: the process copies NODE_ENV in
	want.GoogleClientID, want.GoogleClientSecret = "id.apps.googleusercontent.com", "s"
	want.GoogleRedirectURI, want.FrontendURL = "https://api.example.org/api/v1/auth/google/callback", "https://app.example.org"
	want.RefreshTTL, want.RefreshIdleTTL, want.DevFallback, want.E2ETestSecret = 240*time.Hour, 48*time.Hour, true, "x"
	want.GoogleIssuer, want.OAuthStateTTL = "https://issuer.example.org", 5*time.Minute
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
		{"environment", func(c *Config) { c.Environment = "prod" }, `NODE_ENV must be one of development, test, production; got "prod"`},
		{"environment not copied in", func(c *Config) { c.Environment = "" },
			"NODE_ENV is not set in the auth config: copy the process's environment in before Validate and New"},
		{"issuer", func(c *Config) { c.GoogleIssuer = "accounts.google.com" }, `GOOGLE_ISSUER must be an absolute http or https URL, got "accounts.google.com"`},
		{"redirect URI only checked with a client id", func(c *Config) { c.GoogleRedirectURI = "" }, ""},
		{"redirect URI", func(c *Config) { c.GoogleClientID, c.GoogleRedirectURI = "id", "/cb" }, `GOOGLE_REDIRECT_URI must be an absolute http or https URL, got "/cb"`},
		{"frontend", func(c *Config) { c.FrontendURL = "localhost:3001" }, `FRONTEND_URL must be an absolute http or https URL, got "localhost:3001"`},
		{"callback path", func(c *Config) { c.FrontendCallbackPath = "auth/callback" },
			`AUTH_FRONTEND_CALLBACK_PATH must start with "/" and hold no query or fragment, got "auth/callback"`},
		{"refresh ttl", func(c *Config) { c.RefreshTTL = time.Minute }, "REFRESH_TOKEN_TTL must be between 1h0m0s and 8760h0m0s, got 1m0s"},
		{"idle longer than absolute", func(c *Config) { c.RefreshIdleTTL = 800 * time.Hour },
			"REFRESH_TOKEN_IDLE_TTL (800h0m0s) must not be longer than REFRESH_TOKEN_TTL (720h0m0s)"},
		{"state ttl", func(c *Config) { c.OAuthStateTTL = 0 }, "AUTH_OAUTH_STATE_TTL must be between 1m0s and 1h0m0s, got 0s"},
		{"several", func(c *Config) { c.CleanupInterval, c.RefreshIdleTTL = 0, 0 },
			"REFRESH_TOKEN_IDLE_TTL must be between 5m0s and 8760h0m0s, got 0s\nAUTH_CLEANUP_INTERVAL must be between 1m0s and 24h0m0s, got 0s"},
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

func TestDevFallbackTrigger(t *testing.T) {
	tests := []struct {
		env      config.Environment
		clientID string
		flag     bool
		want     string
	}{
		{config.Development, "", false, "google_not_configured"},
		{config.Test, "id", true, "flag"},
		{config.Development, "id", false, ""},
		{config.Production, "", true, ""},
		{config.Production, "", false, ""},
	}
	for _, tt := range tests {
		c := Config{Environment: tt.env, GoogleClientID: tt.clientID, DevFallback: tt.flag}
		if got := c.devFallbackTrigger(); got != tt.want {
			t.Errorf("devFallbackTrigger(%s, clientID %q, flag %v) = %q, want %q", tt.env, tt.clientID, tt.flag, got, tt.want)
		}
	}
}
