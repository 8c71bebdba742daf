package gateway

import (
	"github.com/classwaves/classwaves/pkg/config"
)

// Config configures the REST edge.
type Config struct {
	// FrontendURL is the teacher dashboard's origin (FRONTEND_URL).
	FrontendURL string
	// StudentAppURL is the student app's origin (STUDENT_APP_URL).
	StudentAppURL string
	// ExtraOrigins are further allowed origins (CORS_ALLOWED_ORIGINS, comma-separated).
	ExtraOrigins []string
}

// RegisterFlags registers the gateway's flags, reading the seed's env names.
func (c *Config) RegisterFlags(f *config.FlagSet) {
	f.String(&c.FrontendURL, "gateway.frontend-url", "FRONTEND_URL", "http://localhost:3001", "teacher frontend origin allowed by CORS")
	f.String(&c.StudentAppURL, "gateway.student-app-url", "STUDENT_APP_URL", "http://localhost:3002", "student app origin allowed by CORS")
	f.StringList(&c.ExtraOrigins, "gateway.extra-origins", "CORS_ALLOWED_ORIGINS", nil, "further origins allowed by CORS, comma-separated")
}

// Validate reports what is wrong with the configuration.
func (c *Config) Validate() error {
	errs := []error{config.URL("FRONTEND_URL", c.FrontendURL), config.URL("STUDENT_APP_URL", c.StudentAppURL)}
	for _, o := range c.ExtraOrigins {
		errs = append(errs, config.URL("CORS_ALLOWED_ORIGINS", o))
	}
	return config.Join(errs...)
}

// AllowedOrigins lists every origin CORS admits.
func (c *Config) AllowedOrigins() []string {
	return append([]string{c.FrontendURL, c.StudentAppURL}, c.ExtraOrigins...)
}
