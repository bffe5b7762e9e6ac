package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/gateway/admin"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
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
			cfg, err := loadConfig(o.configPath, os.Getenv)
			if err != nil {
				return err
			}
			if err := cfg.needApproach2(); err != nil {
				return fmt.Errorf("config: %w", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runBackend(ctx, cfg, cmd.ErrOrStderr())
		},
	}
}

// newServiceApp assembles the service: the git engine on its own sandboxes,
// wrapped by a router for metrics and logs.
func newServiceApp(cfg *Config, logOut io.Writer) (*app, error) {
	a, err := newBase(cfg, logOut)
	if err != nil {
		return nil, err
	}
	dir := cfg.Approach2.SandboxDir
	if dir == "" {
		base, err := cfg.sandboxDir()
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(filepath.Dir(base), "service-sandboxes")
	}
	engine, err := a.newEngine(dir, approach2.Name)
	if err != nil {
		return nil, err
	}
	return a, a.newRouter(map[string]backends.Executor{approach2.Name: engine}, approach2.Name)
}

func runBackend(ctx context.Context, cfg *Config, logOut io.Writer) error {
	a, err := newServiceApp(cfg, logOut)
	if err != nil {
		return err
	}
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

// grpcServer builds the gRPC server with the GitService, health and
// reflection.
func (a *app) grpcServer() (*grpc.Server, *health.Server, error) {
	opts := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 20 * time.Second, PermitWithoutStream: true}),
	}
	if c := a.cfg.Approach2; c.TLSCert != "" {
		creds, err := credentials.NewServerTLSFromFile(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, nil, fmt.Errorf("approach2.tls_cert/tls_key: %w", err)
		}
		opts = append(opts, grpc.Creds(creds))
	}
	svc := approach2.NewServer(approach2.ServerConfig{Engine: a.router, Token: a.cfg.Approach2.Token, Logger: a.log})
	g := grpc.NewServer(append(opts, grpc.ChainStreamInterceptor(svc.AuthInterceptor))...)
	svc.Register(g)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)
	return g, hs, nil
}

// serveGRPC serves until ctx ends, then reports NOT_SERVING, drains calls in
// flight for up to drainTimeout and stops.
func (a *app) serveGRPC(ctx context.Context, g *grpc.Server, hs *health.Server, ln, adminLn net.Listener) error {
	adminSrv := newHTTPServer(admin.Handler(a.registry, a.ready), a.log)
	go func() { _ = adminSrv.Serve(adminLn) }()
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(ln) }()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	a.log.Info("gitgate backend serving", "grpc", ln.Addr().String(), "admin", "http://"+adminLn.Addr().String(), "version", version)
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	hs.Shutdown() // NOT_SERVING: balancers and the gateway stop sending
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(drainTimeout):
		g.Stop()
	}
	_ = adminSrv.Close()
	return nil
}

// dialApproach2 connects the gateway to the service.
func dialApproach2(c Approach2Config) (*approach2.Client, error) {
	var opts []grpc.DialOption
	if !c.Insecure {
		creds, err := credentials.NewClientTLSFromFile(c.TLSCA, "")
		if err != nil {
			return nil, fmt.Errorf("approach2.tls_ca: %w", err)
		}
		opts = append(opts, grpc.WithTransportCredentials(creds))
	}
	return approach2.Dial(c.Target, approach2.ClientConfig{Token: c.Token, Insecure: c.Insecure}, opts...)
}
