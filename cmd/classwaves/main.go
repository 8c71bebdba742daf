// Command classwaves runs the ClassWaves backend: every service in one process (-target=all, the
// default) or the named modules only (-target=session,...). -modules lists them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/classwaves/classwaves/cmd/classwaves/app"
	"github.com/classwaves/classwaves/pkg/config"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// run is main without the process: arguments, environment and outputs are passed in, and the exit
// code is returned.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) >= 2 && args[0] == "audit" && args[1] == "replay-dlq" {
		return replayDLQ(ctx, args[2:], lookupEnv, stdout, stderr)
	}
	if len(args) >= 2 && args[0] == "session" && args[1] == "purge" {
		return purgeSessions(ctx, args[2:], lookupEnv, stdout, stderr)
	}
	f := config.NewFlagSet("classwaves", lookupEnv)
	f.Flags().SetOutput(stderr)
	var cfg app.Config
	cfg.RegisterFlags(f)
	listModules := f.Flags().Bool("modules", false, "list the modules -target accepts and exit")
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "classwaves: %v\n", err)
		return 2
	}
	if *listModules {
		fmt.Fprint(stdout, app.Describe())
		return 0
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	a, err := app.New(ctx, cfg, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "classwaves: %v\n", err)
		return 1
	}
	if err := a.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "classwaves: %v\n", err)
		return 1
	}
	return 0
}

// replayDLQ is `classwaves audit replay-dlq [-mode=stream|db] [flags]`.
func replayDLQ(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	f := config.NewFlagSet("classwaves audit replay-dlq", lookupEnv)
	f.Flags().SetOutput(stderr)
	var cfg app.Config
	cfg.RegisterFlags(f)
	mode := f.Flags().String("mode", "", "stream (re-enqueue to the audit stream) or db (store directly); default AUDIT_DLQ_REPLAY_MODE")
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "classwaves: %v\n", err)
		return 2
	}
	n, err := app.ReplayAuditDLQ(ctx, cfg, *mode, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "classwaves audit replay-dlq: %v\n", err)
		if n > 0 {
			fmt.Fprintf(stderr, "replayed %d entries before the error; running it again is safe\n", n)
		}
		return 1
	}
	fmt.Fprintf(stdout, "replayed %d audit DLQ entries\n", n)
	return 0
}

// purgeSessions is `classwaves session purge [-dry-run] [-retention-days=N] [flags]`.
func purgeSessions(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	f := config.NewFlagSet("classwaves session purge", lookupEnv)
	f.Flags().SetOutput(stderr)
	var cfg app.Config
	cfg.RegisterFlags(f)
	dryRun := f.Flags().Bool("dry-run", false, "list the sessions past retention without deleting them")
	days := f.Flags().Int("retention-days", 0, "retention in days (default RETENTION_DEFAULT_DAYS)")
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "classwaves: %v\n", err)
		return 2
	}
	ids, err := app.PurgeSessions(ctx, cfg, *dryRun, *days, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "classwaves session purge: %v\n", err)
		return 1
	}
	verb := "purged"
	if *dryRun {
		verb = "would purge"
	}
	fmt.Fprintf(stdout, "%s %d ended sessions past retention\n", verb, len(ids))
	for _, id := range ids {
		fmt.Fprintln(stdout, id)
	}
	return 0
}
