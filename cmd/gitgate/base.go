package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/lock/filelock"
	"github.com/gitgate/gitgate/backends/lock/redislock"
	"github.com/gitgate/gitgate/backends/pause"
	"github.com/gitgate/gitgate/backends/redact"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/filebind"
	"github.com/gitgate/gitgate/backends/sandbox/redisbind"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/gateway"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
)

// base is what both processes assemble, the gateway (gatewayRoot) and the
// Approach 2 service (serviceRoot): logging, metrics, the git engine on its
// sandboxes and the state it shares with the other process, the router
// every call goes through, and what runs while the process serves and
// what it closes when it stops.
type base struct {
	cfg       *configs.Config         // the loaded configuration (dev rewrites parts of it first)
	log       *slog.Logger            // redacted by redactor
	redactor  *redact.Redactor        // the project tokens, the service token, the E2B key, and secrets given at start
	registry  *prometheus.Registry    // what the admin listener's /metrics serves
	sandboxes *sandbox.Manager        // the engine's sandboxes
	bindings  sandbox.BindingStore    // workspace → sandbox: in Redis when configured, else in the state directory
	redis     redis.UniversalClient   // when Redis is configured (newRedisClient): the locks and bindings shared with the other process
	router    *gateway.Router         // every call, with its metrics and logs (in the gateway also its routing)
	stopReap  context.CancelFunc      // ends what startReaper started
	starters  []func(context.Context) // run once before serving (they may start work of their own)
	runners   []func(context.Context) // run in the background while serving
	closers   []func()                // run in order by close
}

// newBase sets up what every process needs: redaction, logging and
// metrics. secrets lists values to redact besides the configured ones (a
// dev agent token, say).
func newBase(cfg *configs.Config, logOut io.Writer, secrets ...string) *base {
	a := &base{cfg: cfg, registry: prometheus.NewRegistry()}
	a.redactor = redact.New(secrets...)
	for _, p := range cfg.Projects {
		a.redactor.Add(p.Token)
		a.redactor.Add(p.ReadToken)
	}
	a.redactor.Add(cfg.Approach2.Token)
	a.redactor.Add(cfg.Sandbox.E2B.APIKey)
	a.watchSecrets()
	a.log = newLogger(cfg.Log, logOut, a.redactor)
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return a
}

func newLogger(c configs.LogConfig, out io.Writer, r *redact.Redactor) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(out, opts)
	if c.Format == "text" {
		h = slog.NewTextHandler(out, opts)
	}
	return slog.New(r.Handler(h))
}

// sharedState returns the locker and binding store: Redis when configured
// (shared with the other processes), otherwise the embedded ones in the
// state directory, shared by the processes of this machine (a gateway and
// stdio processes) and kept across restarts. auditor, when not nil, is
// told of Redis lock events (the service's journal).
func (a *base) sharedState(ctx context.Context, auditor lock.Auditor) (lock.Locker, sandbox.BindingStore, error) {
	if !a.cfg.Redis.Configured() {
		binds, err := filebind.Open(a.cfg.StatePath("bindings"), filebind.Options{TTL: a.cfg.Sandbox.TTL})
		if err != nil {
			return nil, nil, fmt.Errorf("state_dir: %w", err)
		}
		locker, err := filelock.New(a.cfg.StatePath("locks"), filelock.Options{})
		if err != nil {
			return nil, nil, fmt.Errorf("state_dir: %w", err)
		}
		return locker, binds, nil
	}
	rdb := newRedisClient(a.cfg.Redis)
	if err := checkRedis(ctx, rdb, a.cfg.Redis); err != nil {
		_ = rdb.Close()
		return nil, nil, err
	}
	a.redis = rdb
	a.closers = append(a.closers, func() { _ = rdb.Close() })
	lockOpts := redisLockOptions(a.cfg.Redis)
	lockOpts.Auditor, lockOpts.Logger, lockOpts.Registerer = auditor, a.log, a.registry
	locker := redislock.New(rdb, lockOpts)
	return locker, redisbind.New(rdb, redisbind.Options{Prefix: a.cfg.Redis.Prefix, TTL: a.cfg.Sandbox.TTL, Retention: a.cfg.Sandbox.Retention()}), nil
}

// lockWait bounds how long reconciliation waits for a workspace lock that
// a dead holder may still have: a Redis lease expires within its TTL; a
// file lock dies with its process.
func (a *base) lockWait() time.Duration {
	if a.cfg.Redis.Configured() {
		return a.cfg.Redis.LockTTL + 2*time.Second
	}
	return 2 * time.Second
}

// newRouter builds the router every call goes through, over execs with def
// as the default backend. routing holds what the gateway adds (its canary
// flags, the recorder, shadowing); the service passes the zero value.
func (a *base) newRouter(execs map[backends.Name]backends.Executor, def backends.Name, routing gateway.RouterConfig) error {
	names := make([]backends.Name, 0, len(execs))
	for n := range execs {
		names = append(names, n)
	}
	b := a.cfg.Approach2.Breaker
	routing.Backends, routing.Default = execs, def
	routing.Breakers = gateway.BreakerConfig{ConsecutiveFailures: b.ConsecutiveFailures, FailureRatio: b.FailureRatio,
		MinRequests: b.MinRequests, Interval: b.Interval, OpenFor: b.OpenFor, Probes: b.Probes}
	routing.Registerer, routing.Metrics, routing.Logger = a.registry, gateway.NewMetrics(a.registry, names...), a.log
	var err error
	a.router, err = gateway.NewRouter(routing)
	return err
}

// startReaper starts reaping idle sandboxes, and sweeping orphaned ones
// (warm sandboxes of a process that was killed) now and then, after the
// starters; then the runners.
func (a *base) startReaper(ctx context.Context) {
	ctx, a.stopReap = context.WithCancel(ctx)
	for _, start := range a.starters {
		start(ctx)
	}
	go a.sandboxes.Run(ctx)
	go func() {
		for {
			if n := a.sandboxes.SweepOrphans(ctx); n > 0 {
				a.log.Info("orphaned sandboxes swept", "count", n)
			}
			if !pause.For(ctx, 10*time.Minute) {
				return
			}
		}
	}()
	for _, run := range a.runners {
		go run(ctx)
	}
}

// close stops reaping and destroys the sandboxes (local ones do not outlive
// the process).
func (a *base) close(ctx context.Context) {
	if a.stopReap != nil {
		a.stopReap()
	}
	a.sandboxes.Close(ctx) // before the stores it reports to are closed
	for _, c := range a.closers {
		c()
	}
}

// ready reports whether the process can serve: the sandbox provider must
// answer, and Redis where it is used.
func (a *base) ready(ctx context.Context) error {
	if _, err := a.sandboxes.Provider().Find(ctx, sandbox.Owner{Project: "readiness-probe"}); err != nil {
		return fmt.Errorf("sandbox provider %s: %w", a.sandboxes.Provider().Name(), err)
	}
	if a.redis != nil {
		if err := a.redis.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
	}
	return nil
}

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}
