package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/admit"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/pause"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/gateway/admin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// serviceRoot is the Approach 2 service process (backend, and dev's
// in-process service): the base with the engine on a warm sandbox pool,
// behind the exactly-once layer on the PostgreSQL journal, served over
// gRPC.
type serviceRoot struct {
	*base
	journal   *journal.Journal   // the exactly-once journal, shared with the gateways; also the Redis locks' auditor
	pool      *sandbox.Pool      // the warm sandboxes the engine's come from
	predictor backends.Predictor // the engine, for the gateway's shadow predictions
	limiter   *admit.Limiter     // admission; drained when the service stops taking calls
	// seeds readies the pool's new sandboxes (sandbox.pool.seeds); set
	// once the engine is built, before the pool runs.
	seeds func(context.Context, sandbox.Info) (sandbox.Info, error)
}

// newServiceRoot assembles the service: the git engine on its own warm
// sandbox pool, behind the exactly-once layer (PostgreSQL journal, workspace
// locks — in Redis when configured) and a router for metrics and logs.
func newServiceRoot(ctx context.Context, cfg *configs.Config, logOut io.Writer) (*serviceRoot, error) {
	a := &serviceRoot{base: newBase(cfg, logOut)}
	var err error
	if a.journal, err = journal.Open(ctx, cfg.Postgres.DSN, journal.Options{Logger: a.log, DSN: journalDSN(cfg.Postgres)}); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	a.closers = append(a.closers, a.journal.Close)
	locker, binds, err := a.sharedState(ctx, a.journal)
	if err != nil {
		a.close(ctx)
		return nil, err
	}
	engine, err := a.newEngine(engineDeps{dir: cfg.ServiceSandboxDir(), backend: approach2.Name,
		locker: lock.Reentrant(locker), binds: binds, creator: a.newPool, relay: cfg.Relay.Service()})
	if err != nil {
		a.close(ctx)
		return nil, err
	}
	if seeds := cfg.Sandbox.Pool.Seeds; len(seeds) > 0 {
		if a.seeds, err = engine.Seeds(seeds); err != nil {
			a.close(ctx)
			return nil, fmt.Errorf("sandbox.pool.seeds: %w", err)
		}
	}
	// Admission before the exactly-once layer (a call waits for a slot
	// before it takes its workspace lock); predictions are shadow work.
	admission := a.admission(approach2.Name)
	a.limiter = admission
	a.predictor = admit.Predictor(engine, admission)
	// Interrupted entries are settled in the background while the service
	// serves; only writes to their workspaces wait for them. The lock wait
	// outlasts the lock TTL, so that a dead holder's lease expires during it.
	once, err := a.exactlyOnce(engine, locker, a.journal, a.lockWait())
	if err != nil {
		a.close(ctx)
		return nil, err
	}
	return a, a.newRouter(map[backends.Name]backends.Executor{approach2.Name: admit.Executor(once, admission)}, approach2.Name, gateway.RouterConfig{})
}

// newPool makes the warm pool the service's sandboxes come from; it is
// filled by a runner started with the reaper.
func (a *serviceRoot) newPool(p sandbox.Provider) (sandbox.Creator, error) {
	c := a.cfg.Sandbox.Pool
	pool, err := sandbox.NewPool(sandbox.PoolConfig{Provider: p, MinIdle: c.MinIdle, MaxSize: c.MaxSize,
		MaxQueue: c.MaxQueue, AcquireTimeout: c.AcquireTimeout, Registerer: a.registry, Logger: a.log,
		Prepare: a.prepare})
	if err != nil {
		return nil, err
	}
	a.pool = pool
	a.runners = append(a.runners, pool.Run)
	return pool, nil
}

// prepare readies a new warm sandbox: it clones the seed repositories
// into it, when sandbox.pool.seeds lists any.
func (a *serviceRoot) prepare(ctx context.Context, info sandbox.Info) (sandbox.Info, error) {
	if a.seeds == nil {
		return info, nil
	}
	return a.seeds(ctx, info)
}

// ready reports whether the service can serve: what the base needs, the
// journal, and a filled warm pool.
func (a *serviceRoot) ready(ctx context.Context) error {
	if err := a.base.ready(ctx); err != nil {
		return err
	}
	if err := a.journal.Ping(ctx); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if !a.pool.Ready() {
		return errors.New("the warm sandbox pool is not filled yet")
	}
	return nil
}

// grpcServer builds the gRPC server with the GitService, health and
// reflection.
func (a *serviceRoot) grpcServer() (*grpc.Server, *health.Server, error) {
	var opts []grpc.ServerOption // svc.ServerOptions() add the keepalive policy the gateway's client needs
	if c := a.cfg.Approach2; c.TLSCert != "" {
		creds, err := serverTLS(c)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, grpc.Creds(creds))
	}
	svc := approach2.NewServer(approach2.ServerConfig{Engine: a.router, Predictor: a.predictor, Token: a.cfg.Approach2.Token,
		Tokens: approach2Tokens(a.cfg.Approach2), Logger: a.log,
		MaxFileBytes: a.cfg.Limits.MaxFileBytes, MaxOutputBytes: a.cfg.Limits.MaxOutputBytes,
		MaxConnectionAge: a.cfg.Approach2.MaxConnectionAge})
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

// serveGRPC serves until ctx ends, then reports NOT_SERVING, keeps serving
// for approach2.drain_delay, drains calls in flight for up to
// approach2.drain_timeout and stops.
func (a *serviceRoot) serveGRPC(ctx context.Context, g *grpc.Server, hs *health.Server, ln, adminLn net.Listener) error {
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
	hs.Shutdown() // NOT_SERVING: balancers and the gateways' health checks stop sending
	// Still serving, while they notice, for approach2.drain_delay.
	time.Sleep(a.cfg.Approach2.DrainDelay)
	// Calls still waiting for a slot are refused as not started: their
	// gateways send them elsewhere now rather than after the drain
	// timeout cut them.
	a.limiter.Drain()
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(a.cfg.Approach2.DrainBound()):
		g.Stop()
	}
	_ = adminSrv.Close()
	return nil
}

// reportHealth sets the health service's status from readiness every
// second: SERVING only while Redis, PostgreSQL and the pool are ready.
func (a *serviceRoot) reportHealth(ctx context.Context, hs *health.Server) {
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
		if !pause.For(ctx, time.Second) {
			return
		}
	}
}
