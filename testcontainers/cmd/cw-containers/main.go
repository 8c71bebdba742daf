// Command cw-containers starts Redis and/or PostgreSQL in containers with testcontainers-go, prints
// their URLs as one line of JSON on standard output, and keeps them until its standard input closes
// (or it gets SIGINT/SIGTERM), then removes them.
//
// pkg/testenv runs it (`GOWORK=off go run ./cmd/cw-containers -services redis` in this module) when a
// test needs a server, no REDIS_URL / DATABASE_URL is set, no local binary is installed, and a
// Docker engine answers. It lives in its own module so testcontainers-go and its Docker client never
// become dependencies of the product module.
//
// Output, e.g.:
//
//	{"postgres":"postgres://postgres@localhost:32771/postgres?sslmode=disable","redis":"redis://localhost:32770/0"}
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// service describes how to run one kind of server.
type service struct {
	image string
	port  string
	opts  []testcontainers.ContainerCustomizer
	url   func(hostPort string) string
}

var services = map[string]service{
	"redis": {
		image: "redis:7-alpine",
		port:  "6379/tcp",
		opts: []testcontainers.ContainerCustomizer{
			testcontainers.WithCmd("redis-server", "--save", "", "--appendonly", "no"),
			testcontainers.WithWaitStrategy(wait.ForListeningPort("6379/tcp"), wait.ForLog("Ready to accept connections")),
		},
		url: func(hp string) string { return "redis://" + hp + "/0" },
	},
	"postgres": {
		image: "postgres:15-alpine",
		port:  "5432/tcp",
		opts: []testcontainers.ContainerCustomizer{
			testcontainers.WithEnv(map[string]string{"POSTGRES_HOST_AUTH_METHOD": "trust"}),
			testcontainers.WithCmd("postgres", "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=300"),
			// The entrypoint starts postgres twice (init, then for real): wait for the second.
			testcontainers.WithWaitStrategy(
				wait.ForLog("database system is ready to accept connections").WithOccurrence(2),
				wait.ForListeningPort("5432/tcp"),
			),
		},
		url: func(hp string) string { return "postgres://postgres@" + hp + "/postgres?sslmode=disable" },
	},
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cw-containers:", err)
		os.Exit(1)
	}
}

func run() error {
	list := flag.String("services", "redis,postgres", "comma-separated services to start: redis, postgres")
	timeout := flag.Duration("timeout", 5*time.Minute, "how long pulling and starting may take")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var started []testcontainers.Container
	defer func() {
		for _, c := range started {
			if err := testcontainers.TerminateContainer(c); err != nil {
				fmt.Fprintln(os.Stderr, "cw-containers: terminate:", err)
			}
		}
	}()

	urls := map[string]string{}
	startCtx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	for _, name := range strings.Split(*list, ",") {
		name = strings.TrimSpace(name)
		svc, ok := services[name]
		if !ok {
			return fmt.Errorf("unknown service %q (want redis or postgres)", name)
		}
		opts := append([]testcontainers.ContainerCustomizer{testcontainers.WithExposedPorts(svc.port)}, svc.opts...)
		c, err := testcontainers.Run(startCtx, svc.image, opts...)
		if c != nil {
			started = append(started, c)
		}
		if err != nil {
			return fmt.Errorf("starting %s: %w", name, err)
		}
		hp, err := c.PortEndpoint(startCtx, svc.port, "")
		if err != nil {
			return fmt.Errorf("%s endpoint: %w", name, err)
		}
		urls[name] = svc.url(hp)
	}
	if err := json.NewEncoder(os.Stdout).Encode(urls); err != nil {
		return err
	}

	// Hold the containers until our owner goes away: its end of stdin closes when it exits.
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-stdinClosed:
	case <-ctx.Done():
	}
	return nil
}
