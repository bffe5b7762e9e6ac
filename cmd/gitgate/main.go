// Command gitgate is one git endpoint for AI agents: an MCP server that runs
// git in sandboxes through a backend chosen per operation. Subcommands:
// serve (the gateway), backend (the Approach 2 service), dev (a gateway, a
// service and a demo remote on loopback, for a first look), flags (show,
// serve: the canary flags), canary (set, advance, rollback, shadow: move
// operations between the backends), kill (the kill switch), report (the
// canary comparison and the stay-or-migrate decision), hash-token and
// version.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// defaultGCPercent is the garbage collector's target when GOGC is not set.
// The gateway's live heap is a few megabytes while every call allocates
// short-lived request data, so the default of 100 makes the collector run
// constantly; 400 trades a few megabytes for CPU that git needs.
const defaultGCPercent = 400

// tuneRuntime applies defaultGCPercent unless GOGC is set.
func tuneRuntime() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

func main() {
	tuneRuntime()
	if code := execute(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr); code != 0 {
		os.Exit(code)
	}
}

// execute runs gitgate's command line with args (without the program's
// name) and returns its exit code: 0, or once the error is printed to
// stderr 1, or the code an exitError carries (report: 3 for a rollback). main and the CLI tests both run it.
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "gitgate:", err)
		if exit, ok := errors.AsType[*exitError](err); ok {
			return exit.code
		}
		return 1
	}
	return 0
}
