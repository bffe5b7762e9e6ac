package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

// newFlagsServeCmd serves a flag file to a fleet of gateways as a flagd
// sync source (their flags.sync_addr).
func newFlagsServeCmd(o *globalOptions) *cobra.Command {
	c := &changeOptions{o: o}
	var addr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the flag file to gateways as a flagd sync source (their flags.sync_addr)",
		Long: `Serve the flag file over gRPC as a flagd sync source (flagd.sync.v1.FlagSyncService),
so that every gateway whose flags.sync_addr points here follows it. Changes made with
gitgate canary/kill on this file reach the gateways within a second. While the file is
missing or invalid the gateways' streams are ended and they send everything to Approach 1.
The stream carries no secrets but steers traffic: serve it on a private network.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := c.path()
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			srv := flags.NewSyncServer(path, backends.OpNames(), log)
			g := grpc.NewServer()
			srv.Register(g)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go srv.Watch(ctx, 250*time.Millisecond)
			go func() {
				<-ctx.Done()
				g.Stop() // streams are endless: a graceful stop would wait for ever
			}()
			fmt.Fprintf(cmd.OutOrStdout(), "serving %s as a flagd sync source on %s\n", path, ln.Addr())
			if err := g.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&c.file, "file", "", "flag file (default: flags.path of the configuration)")
	cmd.Flags().StringVar(&addr, "listen", "127.0.0.1:8015", "address to serve on")
	return cmd
}
