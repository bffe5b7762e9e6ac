// Command gitgate is one git endpoint for AI agents: an MCP server that runs
// git in sandboxes through a backend chosen per operation. Subcommands:
// serve (the gateway), dev (the gateway plus a demo remote, for a first
// look), hash-token and version.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "gitgate:", err)
		os.Exit(1)
	}
}
