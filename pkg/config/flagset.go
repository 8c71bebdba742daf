// Package config is the configuration plumbing every component uses, in the Grafana Mimir style:
// each component owns a Config struct with RegisterFlags(*FlagSet) and Validate() error.
//
// A setting has a default in code, may be overridden by an environment variable (the names are the
// seed service's, e.g. PORT, NODE_ENV, LOG_LEVEL), and a command-line flag overrides both. Validation
// helpers return exact, human messages that name the setting by its environment variable, so an
// operator reads "PORT must be between 1 and 65535, got 0" rather than a Go error chain.
package config

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// FlagSet is a flag.FlagSet whose registration helpers also read the environment.
//
// Environment values are read when a setting is registered; a malformed value is remembered and
// reported by Parse, so every mistake is listed at once instead of one per restart.
type FlagSet struct {
	fs        *flag.FlagSet
	lookupEnv func(string) (string, bool)
	envErrs   []envError
}

// envError is a malformed environment value, kept with the flag that would override it.
type envError struct {
	flagName string
	err      error
}

// NewFlagSet returns an empty FlagSet that reports errors (flag.ContinueOnError) and reads the
// environment through lookupEnv: os.LookupEnv in production, a map in tests. A nil lookupEnv means
// os.LookupEnv.
func NewFlagSet(name string, lookupEnv func(string) (string, bool)) *FlagSet {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	return &FlagSet{
		fs:        flag.NewFlagSet(name, flag.ContinueOnError),
		lookupEnv: lookupEnv,
	}
}

// MapEnv returns a lookup function over m, for tests and for NewFlagSet callers that carry their
// own environment.
func MapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// Flags returns the underlying flag set, e.g. to set its Output or Usage or to visit flags.
func (f *FlagSet) Flags() *flag.FlagSet { return f.fs }

// Parse parses the command line. It returns the flag package's error when the arguments are bad
// (flag.ErrHelp for -h), otherwise every malformed environment value joined into one error, each
// like `invalid value "abc" for PORT: must be an integer`. A malformed environment value whose flag
// was given on the command line is not an error: the flag overrides it.
func (f *FlagSet) Parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if len(f.envErrs) == 0 {
		return nil
	}
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var errs []error
	for _, e := range f.envErrs {
		if !set[e.flagName] {
			errs = append(errs, e.err)
		}
	}
	return errors.Join(errs...)
}

// String registers a string setting. An empty environment value counts as unset, as in the seed
// (`process.env.X || default`).
func (f *FlagSet) String(p *string, flagName, envName, def, usage string) {
	register(f, p, flagName, envName, def, usage, parseString, parseString, formatString, nil)
}

// Int registers an int setting.
func (f *FlagSet) Int(p *int, flagName, envName string, def int, usage string) {
	register(f, p, flagName, envName, def, usage, parseInt, parseInt, strconv.Itoa, nil)
}

// Int64 registers an int64 setting.
func (f *FlagSet) Int64(p *int64, flagName, envName string, def int64, usage string) {
	register(f, p, flagName, envName, def, usage, parseInt64, parseInt64, formatInt64, nil)
}

// Float64 registers a float64 setting; NaN and infinities are refused.
func (f *FlagSet) Float64(p *float64, flagName, envName string, def float64, usage string) {
	register(f, p, flagName, envName, def, usage, parseFloat64, parseFloat64, formatFloat64, nil)
}

// Bool registers a boolean setting. Both the environment and the flag accept 1/0, true/false and
// yes/no, case-insensitively; a bare -flag means true.
func (f *FlagSet) Bool(p *bool, flagName, envName string, def bool, usage string) {
	register(f, p, flagName, envName, def, usage, parseBool, parseBool, strconv.FormatBool, func(v value[bool]) flag.Value { return boolValue{v} })
}

// Duration registers a duration setting written in Go syntax (500ms, 30s, 1m30s) in both the
// environment and the flag.
func (f *FlagSet) Duration(p *time.Duration, flagName, envName string, def time.Duration, usage string) {
	register(f, p, flagName, envName, def, usage, parseDuration, parseDuration, time.Duration.String, nil)
}

// DurationMS registers a duration whose environment variable is an integer number of milliseconds,
// as the seed's *_MS variables are (AUDIT_LOG_ENQUEUE_TIMEOUT_MS=50). The flag takes Go syntax (50ms).
func (f *FlagSet) DurationMS(p *time.Duration, flagName, envName string, def time.Duration, usage string) {
	register(f, p, flagName, envName, def, usage, parseDuration, parseMillis, time.Duration.String, nil)
}

// StringList registers a comma-separated list; items are trimmed and empty items dropped.
func (f *FlagSet) StringList(p *[]string, flagName, envName string, def []string, usage string) {
	register(f, p, flagName, envName, clone(def), usage, parseStringList, parseStringList, formatStringList, nil)
}

// IntList registers a comma-separated list of integers (STT_BUDGET_ALERT_PCTS=50,75,90,100);
// items are trimmed and empty items dropped.
func (f *FlagSet) IntList(p *[]int, flagName, envName string, def []int, usage string) {
	register(f, p, flagName, envName, clone(def), usage, parseIntList, parseIntList, formatIntList, nil)
}

// register sets *p to def, registers the flag (wrapped by wrap when the flag needs extra methods), then applies the environment value if there is one.
// The flag's default (shown by -h) is def; the usage names the environment variable.
func register[T any](f *FlagSet, p *T, flagName, envName string, def T, usage string,
	parseFlag, parseEnv func(string) (T, error), format func(T) string, wrap func(value[T]) flag.Value,
) {
	*p = def
	if envName != "" {
		usage += " (env " + envName + ")"
	}
	v := value[T]{p: p, parse: parseFlag, format: format}
	var fv flag.Value = v
	if wrap != nil {
		fv = wrap(v)
	}
	f.fs.Var(fv, flagName, usage)
	if envName == "" {
		return
	}
	raw, ok := f.lookupEnv(envName)
	if !ok || strings.TrimSpace(raw) == "" {
		return
	}
	got, err := parseEnv(raw)
	if err != nil {
		f.envErrs = append(f.envErrs, envError{
			flagName: flagName,
			err:      fmt.Errorf("invalid value %q for %s: %w", raw, envName, err),
		})
		return
	}
	*p = got
}

// value adapts a typed setting to flag.Value. Its zero value (made by the flag package to decide
// whether to print a default) must not panic, hence the nil checks.
type value[T any] struct {
	p      *T
	parse  func(string) (T, error)
	format func(T) string
}

func (v value[T]) String() string {
	if v.p == nil || v.format == nil {
		return ""
	}
	return v.format(*v.p)
}

func (v value[T]) Set(s string) error {
	got, err := v.parse(s)
	if err != nil {
		return err
	}
	*v.p = got
	return nil
}

// boolValue lets `-flag` stand for `-flag=true`.
type boolValue struct{ value[bool] }

func (boolValue) IsBoolFlag() bool { return true }

// String lets the flag package recognise false as the zero value and leave it out of -h.
func (v boolValue) String() string {
	if v.p == nil {
		return "false"
	}
	return v.value.String()
}

var (
	errInt      = errors.New("must be an integer")
	errFloat    = errors.New("must be a number")
	errBool     = errors.New("must be one of 1, 0, true, false, yes, no")
	errDuration = errors.New("must be a duration such as 500ms, 30s or 1m30s")
	errMillis   = errors.New("must be an integer number of milliseconds")
	errIntList  = errors.New("must be a comma-separated list of integers")
)

func parseString(s string) (string, error) { return s, nil }
func formatString(s string) string         { return s }

func parseInt(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, errInt
	}
	return n, nil
}

func parseInt64(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, errInt
	}
	return n, nil
}

func formatInt64(n int64) string { return strconv.FormatInt(n, 10) }

func parseFloat64(s string) (float64, error) {
	x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, errFloat
	}
	return x, nil
}

func formatFloat64(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes":
		return true, nil
	case "0", "false", "no":
		return false, nil
	}
	return false, errBool
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, errDuration
	}
	return d, nil
}

func parseMillis(s string) (time.Duration, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n > math.MaxInt64/int64(time.Millisecond) || n < math.MinInt64/int64(time.Millisecond) {
		return 0, errMillis
	}
	return time.Duration(n) * time.Millisecond, nil
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func parseStringList(s string) ([]string, error) { return splitList(s), nil }
func formatStringList(l []string) string         { return strings.Join(l, ",") }

func parseIntList(s string) ([]int, error) {
	items := splitList(s)
	out := make([]int, 0, len(items))
	for _, item := range items {
		n, err := strconv.Atoi(item)
		if err != nil {
			return nil, errIntList
		}
		out = append(out, n)
	}
	return out, nil
}

func formatIntList(l []int) string {
	parts := make([]string, len(l))
	for i, n := range l {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

// clone copies a default slice so a caller's literal is never aliased by the setting.
func clone[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append([]T(nil), s...)
}
