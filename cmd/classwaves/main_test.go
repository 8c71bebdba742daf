package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/classwaves/classwaves/pkg/grpcclient"
)

func TestModulesFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-modules"}, func(string) (string, bool) { return "", false }, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	for _, m := range []string{"all", "auth", "session", "stt", "guidance", "analytics", "audit", "gateway", "realtime"} {
		if !strings.Contains(out.String(), m+" ") {
			t.Errorf("-modules output lacks %q:\n%s", m, out.String())
		}
	}
}

func TestBadConfigExits(t *testing.T) {
	var out, errOut bytes.Buffer
	env := map[string]string{"PORT": "abc"}
	code := run(context.Background(), nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), `invalid value "abc" for PORT`) {
		t.Errorf("exit %d stderr %q, want 2 and the PORT error", code, errOut.String())
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestBinary builds the real binary, starts it as `make run` does (every module), calls its HTTP
// and gRPC servers on loopback ports, then sends SIGTERM and expects a clean exit 0.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "classwaves")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	httpPort, grpcPort := freePort(t), freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("PORT=%d", httpPort), fmt.Sprintf("GRPC_PORT=%d", grpcPort),
		"HOST=127.0.0.1", "GRPC_HOST=127.0.0.1", "LOG_LEVEL=info",
		"SQLITE_PATH="+filepath.Join(t.TempDir(), "classwaves.db"), "REDIS_URL=", "DATABASE_URL=", "DB_PROVIDER=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})

	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err = http.Get(base + "/api/v1/health"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("health never answered: %v\nstderr: %s", err, stderr.String())
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var body struct {
		Success bool `json:"success"`
		Data    struct {
			Status string `json:"status"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || resp.StatusCode != 200 || !body.Success || body.Data.Status != "healthy" {
		t.Errorf("health = %d %s, want 200 healthy envelope", resp.StatusCode, raw)
	}
	if resp.Header.Get("X-Trace-Id") == "" {
		t.Error("health answer has no X-Trace-Id")
	}

	conn, err := grpcclient.Dial(fmt.Sprintf("127.0.0.1:%d", grpcPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "classwaves.session.v1.SessionService"})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health = %v, %v; want SERVING", hc.GetStatus(), err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v (want 0)\nstderr: %s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20s of SIGTERM")
	}
	if !strings.Contains(stdout.String(), `"msg":"classwaves stopped"`) {
		t.Errorf("stdout lacks the clean stop log line:\n%s", stdout.String())
	}
}

func TestAdminCommands(t *testing.T) {
	env := map[string]string{"SQLITE_PATH": filepath.Join(t.TempDir(), "c.db"), "LOG_LEVEL": "warn"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		args     []string
		wantCode int
		wantOut  string // in stdout, or stderr for failures
	}{
		{[]string{"session", "purge", "-dry-run"}, 0, "would purge 0 ended sessions past retention"},
		{[]string{"session", "purge", "-retention-days=abc"}, 2, `invalid value "abc"`},
		{[]string{"audit", "replay-dlq"}, 1, "set REDIS_URL"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tt.args, lookup, &out, &errOut)
		if code != tt.wantCode || !strings.Contains(out.String()+errOut.String(), tt.wantOut) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d with %q", tt.args, code, out.String(), errOut.String(), tt.wantCode, tt.wantOut)
		}
	}
}
