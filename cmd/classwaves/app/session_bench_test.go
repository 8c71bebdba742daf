package app

import (
	"math"
	"path/filepath"
	"sort"
	"testing"
	"time"

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
			a, logs, _ := start(b, env)
			base := "http://" + a.Addrs().HTTP
			token := devSignIn(b, base)
			const createBody = `{"title":"Bench","groups":[{"name":"A","maxSize":4},{"name":"B","maxSize":4}]}`
			creates := make([]time.Duration, 0, b.N)
			gets := make([]time.Duration, 0, b.N)
			lists := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			b.StartTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				code, body := do(b, "POST", base+"/api/v1/sessions", createBody, token)
				creates = append(creates, time.Since(t0))
				if code/100 != 2 {
					b.Fatalf("POST /sessions = %d %v\nlogs:\n%s", code, body, tail(logs.String()))
				}
				id := sessionID(body)
				if id == "" {
					b.Fatalf("POST /sessions answered no session id: %v", body)
				}

				t0 = time.Now()
				code, body = do(b, "GET", base+"/api/v1/sessions/"+id, "", token)
				gets = append(gets, time.Since(t0))
				if code/100 != 2 {
					b.Fatalf("GET /sessions/%s = %d %v", id, code, body)
				}

				t0 = time.Now()
				code, body = do(b, "GET", base+"/api/v1/sessions?limit=20", "", token)
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
