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
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/gateway/admin"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
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

// newServiceApp assembles the service: the git engine on its own warm
// sandbox pool, behind the exactly-once layer (PostgreSQL journal, workspace
// locks — in Redis when configured) and a router for metrics and logs.
func newServiceApp(ctx context.Context, cfg *configs.Config, logOut io.Writer) (*app, error) {
	a, err := newBase(cfg, logOut)
	if err != nil {
		return nil, err
	}
	if a.journal, err = journal.Open(ctx, cfg.Postgres.DSN, journal.Options{Logger: a.log}); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	a.closers = append(a.closers, a.journal.Close)
	a.auditor = a.journal
	locker, binds, err := a.sharedState(ctx)
	if err != nil {
		a.close(ctx)
		return nil, err
	}
	engine, err := a.newEngine(engineDeps{dir: serviceSandboxDir(cfg), backend: approach2.Name,
		locker: lock.Reentrant(locker), binds: binds, creator: a.newPool})
	if err != nil {
		a.close(ctx)
		return nil, err
	}
	a.predictor = engine
	// Interrupted entries are settled in the background while the service
	// serves; only writes to their workspaces wait for them. The lock wait
	// outlasts the lock TTL, so that a dead holder's lease expires during it.
	once, err := a.exactlyOnce(engine, locker, a.journal, a.lockWait())
	if err != nil {
		a.close(ctx)
		return nil, err
	}
	return a, a.newRouter(map[backends.Name]backends.Executor{approach2.Name: once}, approach2.Name)
}

// serviceSandboxDir is approach2.sandbox_dir, or the gateway's directory
// when it is shared, or a directory of the service's own beside it.
func serviceSandboxDir(cfg *configs.Config) string {
	if cfg.Approach2.SandboxDir != "" {
		return cfg.Approach2.SandboxDir
	}
	base := cfg.SandboxDir()
	if cfg.Sandbox.Local.Shared {
		return base
	}
	return filepath.Join(filepath.Dir(base), "service-sandboxes")
}

// newPool makes the warm pool the service's sandboxes come from; it is
// filled by a runner started with the reaper.
func (a *app) newPool(p sandbox.Provider) (sandbox.Creator, error) {
	c := a.cfg.Sandbox.Pool
	pool, err := sandbox.NewPool(sandbox.PoolConfig{Provider: p, MinIdle: c.MinIdle, MaxSize: c.MaxSize,
		MaxQueue: c.MaxQueue, AcquireTimeout: c.AcquireTimeout, Registerer: a.registry, Logger: a.log})
	if err != nil {
		return nil, err
	}
	a.pool = pool
	a.runners = append(a.runners, pool.Run)
	return pool, nil
}

// lockKey is the workspace lock key of a request, the same the gateway's
// engine uses, so that both backends serialise against each other.
func (a *app) lockKey(req backends.Request) string {
	s := req.GetScope()
	k := sandbox.WorkspaceKey{Project: s.Principal.Project, Name: s.Workspace}
	if a.cfg.Sandbox.Scope == "agent" {
		k.Agent = s.Principal.Agent
	}
	return approach1.LockKey(k)
}

func runBackend(ctx context.Context, cfg *configs.Config, logOut io.Writer) error {
	a, err := newServiceApp(ctx, cfg, logOut)
	if err != nil {
		return err
	}
	defer a.logShutdown(ctx, "approach2 service")() // deferred first: logs the exit after close
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
	var opts []grpc.ServerOption // svc.ServerOptions() add the keepalive policy the gateway's client needs
	if c := a.cfg.Approach2; c.TLSCert != "" {
		creds, err := serverTLS(c)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, grpc.Creds(creds))
	}
	svc := approach2.NewServer(approach2.ServerConfig{Engine: a.router, Predictor: a.predictor, Token: a.cfg.Approach2.Token, Logger: a.log,
		MaxFileBytes: a.cfg.Limits.MaxFileBytes, MaxOutputBytes: a.cfg.Limits.MaxOutputBytes})
	g := grpc.NewServer(append(opts, svc.ServerOptions()...)...)
	svc.Register(g)
	hs := health.NewServer()
	for _, name := range healthNames {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING) // until the first readiness check passes
	}
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)
	return g, hs, nil
}

// healthNames are the services the health service reports on: the server
// as a whole ("") and the GitService by name; both follow readiness.
var healthNames = []string{"", approach2.ServiceName}

// serveGRPC serves until ctx ends, then reports NOT_SERVING, drains calls in
// flight for up to drainTimeout and stops.
func (a *app) serveGRPC(ctx context.Context, g *grpc.Server, hs *health.Server, ln, adminLn net.Listener) error {
	adminSrv := newHTTPServer(admin.Handler(a.registry, a.ready, nil, ""), a.log)
	go func() { _ = adminSrv.Serve(adminLn) }()
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(ln) }()
	a.log.Info("gitgate backend serving", "grpc", ln.Addr().String(), "admin", "http://"+adminLn.Addr().String(), "version", version)
	watchCtx, stopWatch := context.WithCancel(ctx)
	go a.reportHealth(watchCtx, hs)
	select {
	case <-ctx.Done():
	case err := <-errc:
		stopWatch()
		return err
	}
	stopWatch()
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

// reportHealth sets the health service's status from readiness every
// second: SERVING only while Redis, PostgreSQL and the pool are ready.
func (a *app) reportHealth(ctx context.Context, hs *health.Server) {
	last := healthpb.HealthCheckResponse_UNKNOWN
	for {
		checkCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := a.ready(checkCtx)
		cancel()
		st := healthpb.HealthCheckResponse_SERVING
		if err != nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		if st != last && ctx.Err() == nil {
			for _, name := range healthNames {
				hs.SetServingStatus(name, st)
			}
			a.log.Info("health changed", "status", st.String(), "reason", fmt.Sprint(err))
			last = st
		}
		if !sleepCtx(ctx, time.Second) {
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// dialApproach2 connects the gateway to the service; l sizes its messages
// and refuses a write_file above the limit the service enforces.
func dialApproach2(c configs.Approach2Config, l configs.LimitsConfig, g configs.GitConfig) (*approach2.Client, error) {
	var opts []grpc.DialOption
	if !c.Insecure {
		creds, err := clientTLS(c)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithTransportCredentials(creds))
	}
	return approach2.Dial(c.Target, approach2.ClientConfig{Token: c.Token, Insecure: c.Insecure,
		MaxFileBytes: l.MaxFileBytes, MaxOutputBytes: l.MaxOutputBytes,
		ReadTimeout: c.ReadTimeout, WriteSlack: c.WriteSlack, CommandTimeout: g.CommandTimeout, RemoteTimeout: g.RemoteTimeout}, opts...)
}
