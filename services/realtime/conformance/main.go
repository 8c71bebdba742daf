// Command conformance serves the reference configuration that the socketio/engine.io-protocol and
// socketio/socket.io-protocol test suites expect (see package testserver), by default on
// 127.0.0.1:3000:
//
//	go run ./services/realtime/conformance [-addr 127.0.0.1:3000]
//
// then, in a checkout of either suite's test-suite directory: npm ci && npm test.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/classwaves/classwaves/services/realtime/conformance/testserver"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3000", "listen address")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	srv, err := testserver.New(testserver.Options{})
	if err != nil {
		return err
	}
	hs := &http.Server{Addr: addr, Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	slog.Info("conformance server listening", "addr", addr, "socketio", "/socket.io/", "engineio", "/engine.io/")
	select {
	case err := <-errc:
		return errors.Join(err, srv.Close())
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Close the protocol servers first: long polls and WebSockets would otherwise hold Shutdown.
	closeErr := srv.Close()
	return errors.Join(closeErr, hs.Shutdown(shutdownCtx))
}
