package auth

import (
	"net/url"
	"strings"
	"time"

	"github.com/classwaves/classwaves/pkg/config"
)

// Config configures the auth service. Env names are the seed's where it has one (GOOGLE_CLIENT_ID,
// GOOGLE_CLIENT_SECRET, GOOGLE_REDIRECT_URI, FRONTEND_URL, E2E_TEST_SECRET); the others are new and
// listed in RegisterFlags. Token lifetimes and key rotation are token.Config; issuer and audience
// are authn.Config: both belong to the KeySet passed to New.
type Config struct {
	// Environment is NODE_ENV. RegisterFlags does not register it (the process registers it once):
	// the caller copies it in before Validate and New. Production disables the dev fallback and
	// the test-token endpoints whatever else is set.
	Environment config.Environment

	// GoogleClientID is the OAuth client id (GOOGLE_CLIENT_ID), the audience ID tokens must carry.
	// Empty outside production turns on the dev fallback.
	GoogleClientID string
	// GoogleClientSecret authenticates the code exchange (GOOGLE_CLIENT_SECRET).
	GoogleClientSecret string
	// GoogleRedirectURI is where Google sends the browser back in the redirect flow
	// (GOOGLE_REDIRECT_URI): this service's GET /api/v1/auth/google/callback as the browser reaches
	// it. It is also the default redirect_uri of a code exchange.
	GoogleRedirectURI string
	// GoogleIssuer is the OpenID provider (GOOGLE_ISSUER, default https://accounts.google.com); its
	// discovery document names the endpoints and keys. Tests point it at a local provider.
	GoogleIssuer string

	// FrontendURL is the teacher dashboard (FRONTEND_URL); the redirect flow ends there.
	FrontendURL string
	// FrontendCallbackPath is the dashboard page the redirect flow lands on
	// (AUTH_FRONTEND_CALLBACK_PATH, default /auth/callback): with "#refresh_token=..." on success,
	// "?error=REASON" on failure.
	FrontendCallbackPath string

	// RefreshTTL is the absolute lifetime of a sign-in's refresh tokens (REFRESH_TOKEN_TTL, 720h):
	// rotation never extends it.
	RefreshTTL time.Duration
	// RefreshIdleTTL is how long a refresh token stays usable without being used
	// (REFRESH_TOKEN_IDLE_TTL, 168h); each rotation starts a new idle period.
	RefreshIdleTTL time.Duration
	// OAuthStateTTL is how long a started redirect flow may take to come back (AUTH_OAUTH_STATE_TTL,
	// 10m).
	OAuthStateTTL time.Duration
	// CleanupInterval is how often expired refresh tokens and redirect-flow states are deleted
	// (AUTH_CLEANUP_INTERVAL, 1h).
	CleanupInterval time.Duration

	// DevFallback forces the dev fallback outside production (AUTH_DEV_FALLBACK_ENABLED=1): every
	// GoogleSignIn signs in the seeded dev teacher.
	DevFallback bool
	// E2ETestSecret enables the test-token endpoints outside production (E2E_TEST_SECRET).
	E2ETestSecret string
	// InternalServiceSecret (INTERNAL_SERVICE_SECRET) is exchanged by services running in their own
	// processes for service tokens (IssueServiceToken); empty disables the exchange.
	InternalServiceSecret string
}

// Defaults.
const (
	DefaultGoogleIssuer         = "https://accounts.google.com"
	DefaultGoogleRedirectURI    = "http://localhost:3000/api/v1/auth/google/callback"
	DefaultFrontendURL          = "http://localhost:3001"
	DefaultFrontendCallbackPath = "/auth/callback"
	DefaultRefreshTTL           = 30 * 24 * time.Hour
	DefaultRefreshIdleTTL       = 7 * 24 * time.Hour
	DefaultOAuthStateTTL        = 10 * time.Minute
	DefaultCleanupInterval      = time.Hour
)

// DefaultConfig returns the defaults RegisterFlags sets, in development.
func DefaultConfig() Config {
	return Config{
		Environment:          config.Development,
		GoogleRedirectURI:    DefaultGoogleRedirectURI,
		GoogleIssuer:         DefaultGoogleIssuer,
		FrontendURL:          DefaultFrontendURL,
		FrontendCallbackPath: DefaultFrontendCallbackPath,
		RefreshTTL:           DefaultRefreshTTL,
		RefreshIdleTTL:       DefaultRefreshIdleTTL,
		OAuthStateTTL:        DefaultOAuthStateTTL,
		CleanupInterval:      DefaultCleanupInterval,
	}
}

// RegisterFlags registers the auth settings:
//
//	-auth.google-client-id          GOOGLE_CLIENT_ID             ""
//	-auth.google-client-secret      GOOGLE_CLIENT_SECRET         ""
//	-auth.google-redirect-uri       GOOGLE_REDIRECT_URI          http://localhost:3000/api/v1/auth/google/callback
//	-auth.google-issuer             GOOGLE_ISSUER                https://accounts.google.com
//	-auth.frontend-url              FRONTEND_URL                 http://localhost:3001
//	-auth.frontend-callback-path    AUTH_FRONTEND_CALLBACK_PATH  /auth/callback
//	-auth.refresh-token-ttl         REFRESH_TOKEN_TTL            720h
//	-auth.refresh-token-idle-ttl    REFRESH_TOKEN_IDLE_TTL       168h
//	-auth.oauth-state-ttl           AUTH_OAUTH_STATE_TTL         10m
//	-auth.cleanup-interval          AUTH_CLEANUP_INTERVAL        1h
//	-auth.dev-fallback              AUTH_DEV_FALLBACK_ENABLED    false
//	-auth.e2e-test-secret           E2E_TEST_SECRET              ""
//
// FRONTEND_URL is also read by the gateway (CORS); both read the same variable.
func (c *Config) RegisterFlags(f *config.FlagSet) {
	f.String(&c.GoogleClientID, "auth.google-client-id", "GOOGLE_CLIENT_ID", "",
		"Google OAuth client id; empty outside production enables the dev sign-in fallback")
	f.String(&c.GoogleClientSecret, "auth.google-client-secret", "GOOGLE_CLIENT_SECRET", "",
		"Google OAuth client secret (authorization code exchange)")
	f.String(&c.GoogleRedirectURI, "auth.google-redirect-uri", "GOOGLE_REDIRECT_URI", DefaultGoogleRedirectURI,
		"redirect URI registered with Google: GET /api/v1/auth/google/callback as the browser reaches it")
	f.String(&c.GoogleIssuer, "auth.google-issuer", "GOOGLE_ISSUER", DefaultGoogleIssuer,
		"OpenID provider issuer URL (discovery, keys, token endpoint)")
	f.String(&c.FrontendURL, "auth.frontend-url", "FRONTEND_URL", DefaultFrontendURL,
		"teacher dashboard URL the Google redirect flow ends at")
	f.String(&c.FrontendCallbackPath, "auth.frontend-callback-path", "AUTH_FRONTEND_CALLBACK_PATH", DefaultFrontendCallbackPath,
		"dashboard path the Google redirect flow lands on")
	f.Duration(&c.RefreshTTL, "auth.refresh-token-ttl", "REFRESH_TOKEN_TTL", DefaultRefreshTTL,
		"absolute lifetime of a sign-in's refresh tokens (rotation does not extend it)")
	f.Duration(&c.RefreshIdleTTL, "auth.refresh-token-idle-ttl", "REFRESH_TOKEN_IDLE_TTL", DefaultRefreshIdleTTL,
		"how long an unused refresh token stays valid")
	f.Duration(&c.OAuthStateTTL, "auth.oauth-state-ttl", "AUTH_OAUTH_STATE_TTL", DefaultOAuthStateTTL,
		"how long a started Google redirect flow may take to come back")
	f.Duration(&c.CleanupInterval, "auth.cleanup-interval", "AUTH_CLEANUP_INTERVAL", DefaultCleanupInterval,
		"how often expired refresh tokens and redirect-flow states are deleted")
	f.Bool(&c.DevFallback, "auth.dev-fallback", "AUTH_DEV_FALLBACK_ENABLED", false,
		"outside production, sign every Google sign-in in as the seeded dev teacher")
	f.String(&c.InternalServiceSecret, "auth.internal-service-secret", "INTERNAL_SERVICE_SECRET", "",
		"shared secret services in their own processes exchange for service tokens (at least 16 characters; empty disables)")
	f.String(&c.E2ETestSecret, "auth.e2e-test-secret", "E2E_TEST_SECRET", "",
		"outside production, enables /auth/generate-test-token and /auth/test-token for callers presenting it")
}

// Validate reports every wrong setting, one per line, for example
//
//	GOOGLE_ISSUER must be an absolute http or https URL, got "accounts.google.com"
//	REFRESH_TOKEN_IDLE_TTL (800h0m0s) must not be longer than REFRESH_TOKEN_TTL (720h0m0s)
//	AUTH_FRONTEND_CALLBACK_PATH must start with "/", got "auth/callback"
func (c Config) Validate() error {
	envErr := config.OneOf("NODE_ENV", string(c.Environment), string(config.Development), string(config.Test), string(config.Production))
	if c.Environment == "" {
		// Fail closed: an auth config nobody told the environment must not run as "not production".
		envErr = config.Errorf("NODE_ENV is not set in the auth config: copy the process's environment in before Validate and New")
	}
	errs := []error{
		envErr,
		config.URL("GOOGLE_ISSUER", c.GoogleIssuer),
		internalSecretErr(c.InternalServiceSecret),
		config.URL("FRONTEND_URL", c.FrontendURL),
		config.Range("REFRESH_TOKEN_TTL", c.RefreshTTL, time.Hour, 365*24*time.Hour),
		config.Range("REFRESH_TOKEN_IDLE_TTL", c.RefreshIdleTTL, 5*time.Minute, 365*24*time.Hour),
		config.Range("AUTH_OAUTH_STATE_TTL", c.OAuthStateTTL, time.Minute, time.Hour),
		config.Range("AUTH_CLEANUP_INTERVAL", c.CleanupInterval, time.Minute, 24*time.Hour),
	}
	if c.GoogleClientID != "" {
		errs = append(errs, config.URL("GOOGLE_REDIRECT_URI", c.GoogleRedirectURI))
	}
	if !strings.HasPrefix(c.FrontendCallbackPath, "/") || strings.ContainsAny(c.FrontendCallbackPath, "?#") {
		errs = append(errs, config.Errorf("AUTH_FRONTEND_CALLBACK_PATH must start with \"/\" and hold no query or fragment, got %q", c.FrontendCallbackPath))
	}
	if errs[3] == nil && errs[4] == nil && c.RefreshIdleTTL > c.RefreshTTL {
		errs = append(errs, config.Errorf("REFRESH_TOKEN_IDLE_TTL (%v) must not be longer than REFRESH_TOKEN_TTL (%v)",
			c.RefreshIdleTTL, c.RefreshTTL))
	}
	return config.Join(errs...)
}

// devFallbackTrigger says why the dev fallback is on ("" when it is off): "flag"
// (AUTH_DEV_FALLBACK_ENABLED) or "google_not_configured" (GOOGLE_CLIENT_ID absent). Never in
// production.
func (c Config) devFallbackTrigger() string {
	switch {
	case c.Environment.IsProduction():
		return ""
	case c.DevFallback:
		return "flag"
	case c.GoogleClientID == "":
		return "google_not_configured"
	}
	return ""
}

// testTokensEnabled reports whether the test-token endpoints exist: outside production, with a
// secret configured.
func (c Config) testTokensEnabled() bool {
	return !c.Environment.IsProduction() && c.E2ETestSecret != ""
}

// frontendCallback returns the URL the redirect flow ends at, without query or fragment.
func (c Config) frontendCallback() *url.URL {
	u, err := url.Parse(strings.TrimSuffix(c.FrontendURL, "/") + c.FrontendCallbackPath)
	if err != nil { // Validate checked both parts
		u = &url.URL{Path: c.FrontendCallbackPath}
	}
	u.RawQuery, u.Fragment = "", ""
	return u
}

// cookieSecure reports whether the redirect-flow binding cookie gets the Secure attribute: when the
// callback is served over https.
func (c Config) cookieSecure() bool {
	u, err := url.Parse(c.GoogleRedirectURI)
	return err == nil && u.Scheme == "https"
}

// callbackPath is the path of GOOGLE_REDIRECT_URI, the binding cookie's Path.
func (c Config) callbackPath() string {
	u, err := url.Parse(c.GoogleRedirectURI)
	if err != nil || u.Path == "" {
		return "/"
	}
	return u.Path
}

// internalSecretErr refuses an INTERNAL_SERVICE_SECRET too short to resist guessing.
func internalSecretErr(secret string) error {
	if secret != "" && len(secret) < 16 {
		return config.Errorf("INTERNAL_SERVICE_SECRET must be at least 16 characters, got %d", len(secret))
	}
	return nil
}
