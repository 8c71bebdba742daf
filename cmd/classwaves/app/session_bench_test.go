package app

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classwaves/classwaves/pkg/config"
	"github.com/classwaves/classwaves/pkg/testenv"
)

// BenchmarkSessionREST measures create, get and list of sessions through the gateway (HTTP on
// loopback) of the real all-in-one process, on SQLite and on PostgreSQL, and reports p50/p99
// latency per operation in milliseconds.
func BenchmarkSessionREST(b *testing.B) {
	backends := []struct {
		name string
		env  func(b *testing.B) map[string]string
	}{
		{"sqlite", func(b *testing.B) map[string]string {
			return map[string]string{"DB_PROVIDER": "sqlite", "SQLITE_PATH": filepath.Join(b.TempDir(), "bench.db")}
		}},
		{"postgres", func(b *testing.B) map[string]string {
			pg := testenv.Postgres(b)
			return map[string]string{"DB_PROVIDER": "postgres", "DATABASE_URL": pg.URL}
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			b.StopTimer()
			env := be.env(b)
			env["RATE_LIMIT_MAX_REQUESTS"] = "1000000"
			a, logs, _ := startTB(b, env)
			base := "http://" + a.Addrs().HTTP
			token := devSignInTB(b, base)
			const createBody = `{"title":"Bench","groups":[{"name":"A","maxSize":4},{"name":"B","maxSize":4}]}`
			creates := make([]time.Duration, 0, b.N)
			gets := make([]time.Duration, 0, b.N)
			lists := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			b.StartTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				code, body := doTB(b, "POST", base+"/api/v1/sessions", createBody, token)
				creates = append(creates, time.Since(t0))
				if code/100 != 2 {
					b.Fatalf("POST /sessions = %d %v\nlogs:\n%s", code, body, tail(logs.String()))
				}
				id := sessionID(body)
				if id == "" {
					b.Fatalf("POST /sessions answered no session id: %v", body)
				}

				t0 = time.Now()
				code, body = doTB(b, "GET", base+"/api/v1/sessions/"+id, "", token)
				gets = append(gets, time.Since(t0))
				if code/100 != 2 {
					b.Fatalf("GET /sessions/%s = %d %v", id, code, body)
				}

				t0 = time.Now()
				code, body = doTB(b, "GET", base+"/api/v1/sessions?limit=20", "", token)
				lists = append(lists, time.Since(t0))
				if code/100 != 2 {
					b.Fatalf("GET /sessions?limit=20 = %d %v", code, body)
				}
			}
			b.StopTimer()
			for _, op := range []struct {
				name string
				d    []time.Duration
			}{{"create", creates}, {"get", gets}, {"list", lists}} {
				b.ReportMetric(percentileMS(op.d, 50), op.name+"-p50-ms")
				b.ReportMetric(percentileMS(op.d, 99), op.name+"-p99-ms")
			}
		})
	}
}

// sessionID reads data.session.id (or data.id) from a create answer.
func sessionID(body map[string]any) string {
	data, _ := body["data"].(map[string]any)
	if s, ok := data["session"].(map[string]any); ok {
		if id, _ := s["id"].(string); id != "" {
			return id
		}
	}
	id, _ := data["id"].(string)
	return id
}

// percentileMS returns the p-th percentile (nearest rank) of d in milliseconds; d is sorted in place.
func percentileMS(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	rank := int(math.Ceil(p/100*float64(len(d)))) - 1
	if rank < 0 {
		rank = 0
	}
	return float64(d[rank]) / float64(time.Millisecond)
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}

// startTB is start for a testing.TB (benchmarks included).
func startTB(t testing.TB, env map[string]string, args ...string) (*App, *syncBuffer, func() error) {
	t.Helper()
	base := map[string]string{"PORT": "0", "GRPC_PORT": "0", "HOST": "127.0.0.1", "GRPC_HOST": "127.0.0.1",
		"SQLITE_PATH": filepath.Join(t.TempDir(), "classwaves.db")}
	for k, v := range env {
		base[k] = v
	}
	f := config.NewFlagSet("bench", config.MapEnv(base))
	var cfg Config
	cfg.RegisterFlags(f)
	if err := f.Parse(args); err != nil {
		t.Fatalf("Parse(%v): %v", args, err)
	}
	logs := &syncBuffer{}
	a, err := New(context.Background(), cfg, logs)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(20 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	url := "http://" + a.Addrs().HTTP + "/api/v1/health"
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered", url)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return a, logs, stop
}

// doTB is do for a testing.TB.
func doTB(t testing.TB, method, url, body, token string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// devSignInTB is devSignIn for a testing.TB.
func devSignInTB(t testing.TB, base string) string {
	t.Helper()
	code, body := doTB(t, "POST", base+"/api/v1/auth/google", `{}`, "")
	data, _ := body["data"].(map[string]any)
	tokens, _ := data["tokens"].(map[string]any)
	token, _ := tokens["accessToken"].(string)
	if code != 200 || token == "" {
		t.Fatalf("dev sign-in = %d %v, want 200 with an access token", code, body)
	}
	return token
}
