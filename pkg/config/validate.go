package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Number is the set of types the numeric checks accept (time.Duration included: it prints as 1.5s).
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 |
		~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 |
		~float32 | ~float64
}

// Errorf formats a validation error; it is fmt.Errorf, named here so Validate methods read as one
// vocabulary.
func Errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// Join joins validation errors, dropping nils; it returns nil when every err is nil. The message
// lists one problem per line.
func Join(errs ...error) error { return errors.Join(errs...) }

// Required reports an empty (or blank) value: `JWT_SECRET is required`.
func Required(name, v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("%s is required", name)
	}
	return nil
}

// Positive reports a value that is not above zero: `AUDIT_LOG_BATCH_SIZE must be positive, got 0`.
func Positive[T Number](name string, v T) error {
	if v <= 0 {
		return fmt.Errorf("%s must be positive, got %v", name, v)
	}
	return nil
}

// NonNegative reports a value below zero (zero often means "disabled"):
// `AUDIT_LOG_MAX_BACKLOG must not be negative, got -1`.
func NonNegative[T Number](name string, v T) error {
	if v < 0 {
		return fmt.Errorf("%s must not be negative, got %v", name, v)
	}
	return nil
}

// Range reports a value outside [lo, hi]: `OTEL_TRACES_SAMPLER_ARG must be between 0 and 1, got 2`.
func Range[T Number](name string, v, lo, hi T) error {
	if v < lo || v > hi {
		return fmt.Errorf("%s must be between %v and %v, got %v", name, lo, hi, v)
	}
	return nil
}

// Port reports a TCP port outside 1..65535: `PORT must be between 1 and 65535, got 0`.
func Port(name string, v int) error { return Range(name, v, 1, 65535) }

// OneOf reports a value not in allowed:
// `NODE_ENV must be one of development, test, production; got "prod"`.
func OneOf(name, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s must be one of %s; got %q", name, strings.Join(allowed, ", "), v)
}

// URL reports a value that is not an absolute http or https URL with a host:
// `FRONTEND_URL must be an absolute http or https URL, got "localhost:3001"`.
func URL(name, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s must be an absolute http or https URL, got %q", name, v)
	}
	return nil
}
