package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/gitgate/gitgate/configs"
	"github.com/spf13/cobra"
)

func newBackendCmd(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "backend",
		Short: "Run the Approach 2 service (gRPC GitService)",
		Long: `backend serves the gRPC GitService the gateway calls when an operation is routed
to Approach 2, with the standard health service, server reflection and its own
admin listener. SIGTERM stops accepting calls, drains those in flight and exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := configs.Load(o.configPath, os.Getenv)
			if err != nil {
				return err
			}
			if err := cfg.NeedService(); err != nil {
				return fmt.Errorf("config: %w", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runBackend(ctx, cfg, cmd.ErrOrStderr())
		},
	}
}

func runBackend(ctx context.Context, cfg *configs.Config, logOut io.Writer) error {
	a, err := newServiceRoot(ctx, cfg, logOut)
	if err != nil {
		return err
	}
	defer a.logShutdown(ctx, "approach2 service", cfg.Approach2.DrainTimeout)() // deferred first: logs the exit after close
	defer a.close(context.WithoutCancel(ctx))
	g, hs, err := a.grpcServer()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Approach2.Listen)
	if err != nil {
		return fmt.Errorf("approach2.listen %s: %w", cfg.Approach2.Listen, err)
	}
	adminLn, err := net.Listen("tcp", cfg.Approach2.Admin)
	if err != nil {
		ln.Close()
		return fmt.Errorf("approach2.admin %s: %w", cfg.Approach2.Admin, err)
	}
	a.startReaper(ctx)
	return a.serveGRPC(ctx, g, hs, ln, adminLn)
}
