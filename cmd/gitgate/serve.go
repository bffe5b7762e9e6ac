package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/gateway"
	"github.com/spf13/cobra"
)

func newServeCmd(o *globalOptions) *cobra.Command {
	var stdio bool
	var agent string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway (MCP over Streamable HTTP, or over stdio with --stdio)",
		Example: `  gitgate serve --config /etc/gitgate/gitgate.yaml
  gitgate serve --stdio --agent web-builder   # for MCP clients that start a process`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := configs.Load(o.configPath, os.Getenv)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if stdio {
				return runStdio(ctx, cfg, agent, cmd)
			}
			return runHTTP(ctx, cfg, cmd, logServing)
		},
	}
	cmd.Flags().BoolVar(&stdio, "stdio", false, "serve MCP on standard input/output as one agent (logs go to standard error)")
	cmd.Flags().StringVar(&agent, "agent", "", "with --stdio: the agent to run as (default: mcp.stdio_agent)")
	return cmd
}

// runHTTP serves MCP over HTTP and the admin endpoints until ctx ends.
// announce is told the URLs once both listeners are up; secrets are values
// to redact besides the project tokens.
func runHTTP(ctx context.Context, cfg *configs.Config, cmd *cobra.Command, announce func(a *gatewayRoot, mcpURL, adminURL string), secrets ...string) error {
	a, err := newGatewayRoot(cfg, cmd.ErrOrStderr(), secrets...)
	if err != nil {
		return err
	}
	defer a.logShutdown(ctx, "gateway", cfg.Listen.DrainTimeout)() // deferred first: logs the exit after close
	defer a.close(context.WithoutCancel(ctx))
	mcpLn, adminLn, err := listen(cfg)
	if err != nil {
		return err
	}
	a.startReaper(ctx)
	announce(a, "http://"+mcpLn.Addr().String()+cfg.MCP.Path, "http://"+adminLn.Addr().String())
	return a.serveHTTP(ctx, mcpLn, adminLn, cfg.Listen.DrainTimeout)
}

// logShutdown logs, at info level, the shutdown of a process (the gateway
// or the Approach 2 service) serving until ctx ends: when ctx ends, that
// the shutdown starts (with the signal, from ctx's cause) and drains the
// calls then in flight, for up to drain; when the returned function is called (once the
// process has stopped serving and closed its stores), that it stopped,
// with the calls in flight at the start, how long the shutdown took and
// the calls still in flight (abandoned past the drain timeout).
func (a *base) logShutdown(ctx context.Context, process string, drain time.Duration) (stopped func()) {
	var began time.Time
	inFlightAtStart := 0
	watching := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ctx.Done():
		case <-watching:
			return
		}
		began, inFlightAtStart = time.Now(), gateway.CallsInFlight(a.registry)
		reason := "stopped"
		if cause := context.Cause(ctx); cause != nil {
			reason = cause.Error()
		}
		a.log.Info("shutting down", "process", process, "reason", reason, "in_flight", inFlightAtStart)
		a.log.Info("draining calls in flight", "process", process, "in_flight", inFlightAtStart, "timeout", drain.String())
	}()
	return func() {
		close(watching)
		<-done
		if began.IsZero() {
			a.log.Info("stopped", "process", process, "reason", "serving ended without a shutdown request")
			return
		}
		took := time.Since(began)
		a.log.Info("stopped", "process", process, "in_flight_at_start", inFlightAtStart, "in_flight_left", gateway.CallsInFlight(a.registry),
			"took", took.Round(time.Millisecond).String(), "took_ms", took.Milliseconds())
	}
}

func logServing(a *gatewayRoot, mcpURL, adminURL string) {
	a.log.Info("gitgate serving", "mcp", mcpURL, "admin", adminURL, "version", version)
}

func listen(cfg *configs.Config) (net.Listener, net.Listener, error) {
	mcpLn, err := net.Listen("tcp", cfg.Listen.MCP)
	if err != nil {
		return nil, nil, fmt.Errorf("listen.mcp %s: %w (set GITGATE_LISTEN_MCP to another address)", cfg.Listen.MCP, err)
	}
	adminLn, err := net.Listen("tcp", cfg.Listen.Admin)
	if err != nil {
		mcpLn.Close()
		return nil, nil, fmt.Errorf("listen.admin %s: %w (set GITGATE_LISTEN_ADMIN to another address)", cfg.Listen.Admin, err)
	}
	return mcpLn, adminLn, nil
}

// runStdio serves one agent over standard input and output. There is no
// admin listener: several such processes may run side by side.
func runStdio(ctx context.Context, cfg *configs.Config, agentName string, cmd *cobra.Command) error {
	if agentName == "" {
		agentName = cfg.MCP.StdioAgent
	}
	if cfg.Relay.Listen != "" {
		// Several stdio processes run side by side, beside an HTTP gateway
		// holding relay.listen: each relays its own sandboxes' git on a
		// loopback port of its own (local sandboxes; E2B sandboxes, which
		// need a public URL, get the token per command, with a warning).
		own := *cfg
		own.Relay.Listen, own.Relay.PublicURL = "127.0.0.1:0", ""
		cfg = &own
	}
	a, err := newGatewayRoot(cfg, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer a.logShutdown(ctx, "gateway (stdio)", cfg.Listen.DrainTimeout)()
	defer a.close(context.WithoutCancel(ctx))
	agent, ok := a.directory.Agent(agentName)
	if !ok {
		return fmt.Errorf("--agent / mcp.stdio_agent: agent %q is not configured", agentName)
	}
	srv, err := a.mcpServer(nil)
	if err != nil {
		return err
	}
	a.startReaper(ctx)
	a.log.Info("gitgate serving MCP on stdio", "agent", agent.Name, "project", agent.Project, "version", version)
	return srv.ServeStdio(ctx, agent, cmd.InOrStdin(), cmd.OutOrStdout())
}
