package config

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// settings registers one of every kind, as a component's RegisterFlags would.
type settings struct {
	Port     int
	Name     string
	Big      int64
	Ratio    float64
	Enabled  bool
	Timeout  time.Duration
	Enqueue  time.Duration
	Origins  []string
	Alerts   []int
	FlagOnly string
}

func (s *settings) RegisterFlags(f *FlagSet) {
	f.Int(&s.Port, "port", "PORT", 3000, "HTTP port")
	f.String(&s.Name, "name", "NAME", "classwaves", "service name")
	f.Int64(&s.Big, "big", "BIG", 1<<40, "a large number")
	f.Float64(&s.Ratio, "ratio", "RATIO", 0.5, "a ratio")
	f.Bool(&s.Enabled, "enabled", "ENABLED", false, "a switch")
	f.Duration(&s.Timeout, "timeout", "TIMEOUT", 30*time.Second, "a timeout")
	f.DurationMS(&s.Enqueue, "enqueue-timeout", "AUDIT_LOG_ENQUEUE_TIMEOUT_MS", 50*time.Millisecond, "enqueue timeout")
	f.StringList(&s.Origins, "origins", "ORIGINS", []string{"http://localhost:3001"}, "allowed origins")
	f.IntList(&s.Alerts, "alerts", "STT_BUDGET_ALERT_PCTS", []int{50, 75, 90, 100}, "budget alerts")
	f.String(&s.FlagOnly, "flag-only", "", "x", "no env")
}

func defaults() settings {
	return settings{
		Port: 3000, Name: "classwaves", Big: 1 << 40, Ratio: 0.5, Timeout: 30 * time.Second,
		Enqueue: 50 * time.Millisecond, Origins: []string{"http://localhost:3001"},
		Alerts: []int{50, 75, 90, 100}, FlagOnly: "x",
	}
}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		modify func(*settings)
	}{
		{"defaults", nil, nil, func(*settings) {}},
		{
			"environment overrides defaults",
			map[string]string{
				"PORT": "3001", "NAME": "cw", "BIG": "9", "RATIO": "0.25", "ENABLED": "YES",
				"TIMEOUT": "1m30s", "AUDIT_LOG_ENQUEUE_TIMEOUT_MS": "75",
				"ORIGINS": " https://a.example , ,https://b.example", "STT_BUDGET_ALERT_PCTS": "10, 20,,30",
			},
			nil,
			func(s *settings) {
				s.Port, s.Name, s.Big, s.Ratio, s.Enabled = 3001, "cw", 9, 0.25, true
				s.Timeout, s.Enqueue = 90*time.Second, 75*time.Millisecond
				s.Origins = []string{"https://a.example", "https://b.example"}
				s.Alerts = []int{10, 20, 30}
			},
		},
		{
			"flags override environment",
			map[string]string{"PORT": "3001", "ENABLED": "1", "AUDIT_LOG_ENQUEUE_TIMEOUT_MS": "75"},
			[]string{"-port=4000", "-enabled=no", "-enqueue-timeout=2s", "-alerts=1,2", "-flag-only=y"},
			func(s *settings) {
				s.Port, s.Enabled, s.Enqueue, s.Alerts, s.FlagOnly = 4000, false, 2*time.Second, []int{1, 2}, "y"
			},
		},
		{"bare bool flag", nil, []string{"-enabled"}, func(s *settings) { s.Enabled = true }},
		{"empty environment value is unset", map[string]string{"PORT": "", "NAME": ""}, nil, func(*settings) {}},
		{"env ignored for flag-only setting", map[string]string{"": "z"}, nil, func(*settings) {}},
		{
			"bad env overridden by flag is not an error",
			map[string]string{"PORT": "abc"}, []string{"-port", "5000"},
			func(s *settings) { s.Port = 5000 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got settings
			f := NewFlagSet("test", MapEnv(tt.env))
			got.RegisterFlags(f)
			if err := f.Parse(tt.args); err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			want := defaults()
			tt.modify(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("settings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnvErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"int", map[string]string{"PORT": "abc"}, `invalid value "abc" for PORT: must be an integer`},
		{"int64", map[string]string{"BIG": "1.5"}, `invalid value "1.5" for BIG: must be an integer`},
		{"float", map[string]string{"RATIO": "NaN"}, `invalid value "NaN" for RATIO: must be a number`},
		{"bool", map[string]string{"ENABLED": "maybe"}, `invalid value "maybe" for ENABLED: must be one of 1, 0, true, false, yes, no`},
		{"duration", map[string]string{"TIMEOUT": "30"}, `invalid value "30" for TIMEOUT: must be a duration such as 500ms, 30s or 1m30s`},
		{"millis", map[string]string{"AUDIT_LOG_ENQUEUE_TIMEOUT_MS": "50ms"}, `invalid value "50ms" for AUDIT_LOG_ENQUEUE_TIMEOUT_MS: must be an integer number of milliseconds`},
		{"int list", map[string]string{"STT_BUDGET_ALERT_PCTS": "50,x"}, `invalid value "50,x" for STT_BUDGET_ALERT_PCTS: must be a comma-separated list of integers`},
		{
			"every error is reported",
			map[string]string{"PORT": "abc", "ENABLED": "2"},
			"invalid value \"abc\" for PORT: must be an integer\ninvalid value \"2\" for ENABLED: must be one of 1, 0, true, false, yes, no",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s settings
			f := NewFlagSet("test", MapEnv(tt.env))
			s.RegisterFlags(f)
			err := f.Parse(nil)
			if err == nil {
				t.Fatalf("Parse() error = nil, want %q", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse() error = %q, want %q", got, tt.want)
			}
			if want := defaults(); s.Port != want.Port && tt.env["PORT"] != "" {
				t.Errorf("Port = %d after a bad PORT, want the default %d", s.Port, want.Port)
			}
		})
	}
}

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad int", []string{"-port=x"}, `invalid value "x" for flag -port: must be an integer`},
		{"bad bool", []string{"-enabled=maybe"}, `invalid boolean value "maybe" for -enabled: must be one of 1, 0, true, false, yes, no`},
		{"unknown flag", []string{"-nope"}, "flag provided but not defined: -nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s settings
			// A bad environment value too: the flag error wins.
			f := NewFlagSet("test", MapEnv(map[string]string{"NAME": "ok", "BIG": "x"}))
			f.Flags().SetOutput(&bytes.Buffer{})
			s.RegisterFlags(f)
			err := f.Parse(tt.args)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Parse() error = %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("help", func(t *testing.T) {
		var s settings
		f := NewFlagSet("test", MapEnv(nil))
		var out bytes.Buffer
		f.Flags().SetOutput(&out)
		s.RegisterFlags(f)
		if err := f.Parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("Parse(-h) error = %v, want flag.ErrHelp", err)
		}
		for _, want := range []string{"HTTP port (env PORT) (default 3000)", "enqueue timeout (env AUDIT_LOG_ENQUEUE_TIMEOUT_MS) (default 50ms)", "no env (default x)"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("usage output lacks %q:\n%s", want, out.String())
			}
		}
	})
}

func TestDefaultSliceNotAliased(t *testing.T) {
	def := []int{1, 2}
	var got []int
	f := NewFlagSet("test", MapEnv(nil))
	f.IntList(&got, "l", "", def, "list")
	got[0] = 9
	if def[0] != 1 {
		t.Errorf("default slice was modified through the setting: %v", def)
	}
}

func TestValidators(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string // "" means no error
	}{
		{"port zero", Port("PORT", 0), "PORT must be between 1 and 65535, got 0"},
		{"port high", Port("GRPC_PORT", 70000), "GRPC_PORT must be between 1 and 65535, got 70000"},
		{"port ok", Port("PORT", 3000), ""},
		{"one of", OneOf("NODE_ENV", "prod", "development", "test", "production"), `NODE_ENV must be one of development, test, production; got "prod"`},
		{"one of ok", OneOf("NODE_ENV", "test", "development", "test", "production"), ""},
		{"positive int", Positive("AUDIT_LOG_BATCH_SIZE", 0), "AUDIT_LOG_BATCH_SIZE must be positive, got 0"},
		{"positive duration", Positive("AUDIT_LOG_BLOCK_MS", -time.Second), "AUDIT_LOG_BLOCK_MS must be positive, got -1s"},
		{"positive ok", Positive("X", 0.1), ""},
		{"non-negative", NonNegative("AUDIT_LOG_MAX_BACKLOG", -1), "AUDIT_LOG_MAX_BACKLOG must not be negative, got -1"},
		{"non-negative zero ok", NonNegative("X", 0), ""},
		{"range float", Range("OTEL_TRACES_SAMPLER_ARG", 2.0, 0, 1), "OTEL_TRACES_SAMPLER_ARG must be between 0 and 1, got 2"},
		{"range ok", Range("X", 5, 1, 10), ""},
		{"required", Required("JWT_SECRET", "  "), "JWT_SECRET is required"},
		{"required ok", Required("JWT_SECRET", "s"), ""},
		{"url no scheme", URL("FRONTEND_URL", "localhost:3001"), `FRONTEND_URL must be an absolute http or https URL, got "localhost:3001"`},
		{"url ftp", URL("FRONTEND_URL", "ftp://x.example"), `FRONTEND_URL must be an absolute http or https URL, got "ftp://x.example"`},
		{"url relative", URL("FRONTEND_URL", "/app"), `FRONTEND_URL must be an absolute http or https URL, got "/app"`},
		{"url empty", URL("FRONTEND_URL", ""), `FRONTEND_URL must be an absolute http or https URL, got ""`},
		{"url ok", URL("FRONTEND_URL", "http://localhost:3001"), ""},
		{"errorf", Errorf("%s must be set when %s is", "A", "B"), "A must be set when B is"},
		{"join", Join(nil, Port("PORT", 0), nil, Required("X", "")), "PORT must be between 1 and 65535, got 0\nX is required"},
		{"join all nil", Join(nil, nil), ""},
		{"environment", Environment("prod").Validate(), `NODE_ENV must be one of development, test, production; got "prod"`},
		{"environment ok", Production.Validate(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if tt.err != nil {
				got = tt.err.Error()
			}
			if got != tt.want {
				t.Errorf("error = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	tests := []struct {
		env            map[string]string
		want           Environment
		wantProduction bool
	}{
		{nil, Development, false},
		{map[string]string{"NODE_ENV": "test"}, Test, false},
		{map[string]string{"NODE_ENV": "production"}, Production, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.want), func(t *testing.T) {
			var e Environment
			f := NewFlagSet("test", MapEnv(tt.env))
			e.RegisterFlags(f)
			if err := f.Parse(nil); err != nil {
				t.Fatal(err)
			}
			if e != tt.want || e.IsProduction() != tt.wantProduction {
				t.Errorf("got %q (production %v), want %q (production %v)", e, e.IsProduction(), tt.want, tt.wantProduction)
			}
		})
	}
}
