package config

// Environment is the deployment environment, read from NODE_ENV as the seed service does.
type Environment string

// The environments the seed knows. Production turns off development conveniences (open debug
// endpoints, dev auth fallback).
const (
	Development Environment = "development"
	Test        Environment = "test"
	Production  Environment = "production"
)

// RegisterFlags registers -environment (env NODE_ENV, default development).
func (e *Environment) RegisterFlags(f *FlagSet) {
	f.String((*string)(e), "environment", "NODE_ENV", string(Development),
		"deployment environment: development, test or production")
}

// Validate reports an unknown environment:
// `NODE_ENV must be one of development, test, production; got "prod"`.
func (e Environment) Validate() error {
	return OneOf("NODE_ENV", string(e), string(Development), string(Test), string(Production))
}

// IsProduction reports whether e is Production.
func (e Environment) IsProduction() bool { return e == Production }

// String returns the NODE_ENV spelling.
func (e Environment) String() string { return string(e) }
