package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/lock/filelock"
	"github.com/gitgate/gitgate/backends/lock/redislock"
	"github.com/gitgate/gitgate/backends/redact"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/e2b"
	"github.com/gitgate/gitgate/backends/sandbox/filebind"
	"github.com/gitgate/gitgate/backends/sandbox/local"
	"github.com/gitgate/gitgate/backends/sandbox/redisbind"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/gateway/admin"
	"github.com/gitgate/gitgate/gateway/mcpserver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
)

// app is one running gateway, assembled from a Config.
type app struct {
	cfg       *configs.Config
	log       *slog.Logger
	redactor  *redact.Redactor
	registry  *prometheus.Registry
	sandboxes *sandbox.Manager
	bindings  sandbox.BindingStore
	router    *gateway.Router
	predictor backends.Predictor // the service's engine, for shadow predictions
	directory *gateway.Directory
	stopReap  context.CancelFunc
	closers   []func()
	redis     *redis.Client           // when redis.addr is set
	auditor   lock.Auditor            // the journal, in the service
	journal   *journal.Journal        // the service's
	pool      *sandbox.Pool           // the service's
	starters  []func(context.Context) // run once before serving (they may start work of their own)
	runners   []func(context.Context)
	flags     *flags.Evaluator // the gateway's canary flags, when configured
	recorder  *canary.Recorder // the ledger and the automatic rollback, with flags
}

// newApp assembles the gateway. Logs go to logOut through the redactor;
// secrets lists values to redact besides the project tokens (a dev agent
// token, say).
func newApp(cfg *configs.Config, logOut io.Writer, secrets ...string) (*app, error) {
	a, err := newBase(cfg, logOut, secrets...)
	if err != nil {
		return nil, err
	}
	dir := cfg.SandboxDir()
	ctx := context.Background()
	locker, binds, err := a.sharedState(ctx)
	if err != nil {
		return nil, err
	}
	engine, err := a.newEngine(engineDeps{dir: dir, backend: approach1.Name, locker: lock.Reentrant(locker), binds: binds})
	if err != nil {
		return nil, err
	}
	j, err := a.gatewayJournal(ctx)
	if err != nil {
		a.close(ctx)
		return nil, err
	}
	once, err := a.exactlyOnce(engine, locker, j, a.lockWait())
	if err != nil {
		a.close(ctx)
		return nil, err
	}
	execs := map[backends.Name]backends.Executor{approach1.Name: once}
	if backends.Name(cfg.Backend.Default) == approach2.Name || cfg.Flags.Canary() {
		client, err := dialApproach2(cfg.Approach2, cfg.Limits, cfg.Git)
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, func() { _ = client.Close() })
		execs[approach2.Name] = client
	}
	if cfg.Flags.Canary() {
		if a.flags, err = a.openFlags(); err != nil {
			return nil, err
		}
	}
	return a, a.newRouter(execs, backends.Name(cfg.Backend.Default))
}

// openFlags starts evaluating the canary flags (file or sync source).
func (a *app) openFlags() (*flags.Evaluator, error) {
	override := a.cfg.Flags.OverridePath
	if override == "" {
		override = flags.OverridePath(a.cfg.Flags.Path)
	}
	ev, err := flags.Open(context.Background(), flags.Config{Path: a.cfg.Flags.Path, SyncAddr: a.cfg.Flags.SyncAddr,
		SyncSelector: a.cfg.Flags.SyncSelector, Ops: opNames(), OverridePath: override,
		Registerer: a.registry, Logger: a.log})
	if err != nil {
		return nil, fmt.Errorf("flags.override_path: %w", err)
	}
	a.closers = append(a.closers, ev.Close)
	return ev, nil
}

// newBase sets up what every process needs: redaction, logging, metrics
// and the agent directory.
func newBase(cfg *configs.Config, logOut io.Writer, secrets ...string) (*app, error) {
	a := &app{cfg: cfg, registry: prometheus.NewRegistry()}
	a.redactor = redact.New(secrets...)
	for _, p := range cfg.Projects {
		a.redactor.Add(p.Token)
		a.redactor.Add(p.ReadToken)
	}
	a.redactor.Add(cfg.Approach2.Token)
	a.redactor.Add(cfg.Sandbox.E2B.APIKey)
	a.log = newLogger(cfg.Log, logOut, a.redactor)
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	dir, err := cfg.Directory()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	a.directory = dir
	return a, nil
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

// engineDeps are the shared-state parts of an engine.
type engineDeps struct {
	dir     string        // local sandbox directory
	backend backends.Name // name in results and metrics
	locker  lock.Locker
	binds   sandbox.BindingStore
	creator func(sandbox.Provider) (sandbox.Creator, error) // nil: cold creation by the provider
}

// killSwitch is the admin listener's override, when flags are configured.
func (a *app) killSwitch() admin.KillSwitch {
	if a.flags == nil {
		return nil
	}
	return a.flags
}

// newEngine builds the git engine (the embedded executor) on local
// sandboxes.
func (a *app) newEngine(d engineDeps) (*approach1.Executor, error) {
	provider, err := a.newProvider(d.dir)
	if err != nil {
		return nil, err
	}
	var creator sandbox.Creator
	if d.creator != nil {
		if creator, err = d.creator(provider); err != nil {
			return nil, err
		}
	}
	a.bindings = d.binds
	vault, err := a.openVault()
	if err != nil {
		return nil, err
	}
	var engine *approach1.Executor
	// What a sandbox holds unsaved is shelved in the vault before it is
	// destroyed, and restored on the workspace's next use.
	preserve := func(ctx context.Context, info sandbox.Info, forced bool) error {
		return engine.Preserve(ctx, info, forced)
	}
	a.sandboxes, err = sandbox.NewManager(sandbox.ManagerConfig{Provider: provider, Creator: creator, Bindings: d.binds,
		IdleTTL: a.cfg.Sandbox.TTL, Registerer: a.registry, Logger: a.log, KeepOnClose: a.sandboxesShared(), Preserve: preserve})
	if err != nil {
		return nil, err
	}
	engine, err = approach1.New(approach1.Config{
		Sandboxes: a.sandboxes, Bindings: d.binds, Locker: d.locker, Projects: a.projects(),
		PerAgent: a.cfg.Sandbox.Scope == "agent", GitPath: a.cfg.Git.Path, Limits: a.limits(),
		Registerer: a.registry, Logger: a.log, Backend: d.backend.String(), Vault: vault,
	})
	return engine, err
}

// openVault opens the vault of shelved work and sweeps, daily, entries
// kept well past the retention (their bindings are gone).
func (a *app) openVault() (*sandbox.DirVault, error) {
	vault, err := sandbox.NewDirVault(a.cfg.VaultDir(), sandbox.DirVaultOptions{MaxBytes: a.cfg.Sandbox.Vault.MaxBytes})
	if err != nil {
		return nil, fmt.Errorf("sandbox.vault.dir: %w", err)
	}
	a.runners = append(a.runners, func(ctx context.Context) {
		for {
			if n, err := vault.Sweep(ctx, 2*a.shelfRetention()); err != nil {
				a.log.Warn("vault sweep failed", "err", err)
			} else if n > 0 {
				a.log.Info("shelved work past its retention removed from the vault", "entries", n)
			}
			if !sleepCtx(ctx, 24*time.Hour) {
				return
			}
		}
	})
	return vault, nil
}

// shelfRetention is sandbox.shelf_retention, never shorter than the TTL.
func (a *app) shelfRetention() time.Duration {
	return max(a.cfg.Sandbox.ShelfRetention, a.cfg.Sandbox.TTL, time.Hour)
}

// newProvider returns the configured sandbox provider.
func (a *app) newProvider(dir string) (sandbox.Provider, error) {
	if a.cfg.Sandbox.Provider != "e2b" {
		p, err := local.OpenWith(dir, local.Options{Shared: a.cfg.Sandbox.Local.Shared})
		if err != nil {
			return nil, fmt.Errorf("sandbox directory: %w", err)
		}
		return p, nil
	}
	c := a.cfg.Sandbox.E2B
	api, err := e2b.NewAPI(e2b.APIConfig{BaseURL: c.APIEndpoint(), APIKey: c.APIKey})
	if err != nil {
		return nil, err
	}
	return e2b.NewProvider(e2b.ProviderConfig{API: api, EnvdURL: c.EnvdEndpoint(), Template: c.Template, User: c.User,
		Root: c.Root, Lifetime: c.Lifetime, Keepalive: c.Keepalive, VCPUSecondUSD: c.VCPUSecondUSD, GiBSecondUSD: c.GiBSecondUSD,
		Registerer: a.registry})
}

// sandboxesShared reports whether the sandboxes outlive this process
// (another process, or this one restarted, adopts or reaps them). Local
// sandboxes always do: they cost nothing while idle, and they hold the
// agents' work. E2B sandboxes are billed while they run: without Redis
// nobody else adopts them, so a stopping gateway ends them (what they hold
// unsaved is shelved first).
func (a *app) sandboxesShared() bool {
	if a.cfg.Sandbox.Provider == "e2b" {
		return a.cfg.Redis.Addr != ""
	}
	return true
}

// sharedState returns the locker and binding store: Redis when configured
// (shared with the other processes), otherwise the embedded ones in the
// state directory, shared by the processes of this machine (a gateway and
// stdio processes) and kept across restarts.
func (a *app) sharedState(ctx context.Context) (lock.Locker, sandbox.BindingStore, error) {
	if a.cfg.Redis.Addr == "" {
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
	rdb := redis.NewClient(&redis.Options{Addr: a.cfg.Redis.Addr})
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pingCtx).Err(); err != nil {
		_ = rdb.Close()
		return nil, nil, fmt.Errorf("redis.addr %s: %w", a.cfg.Redis.Addr, err)
	}
	a.redis = rdb
	a.closers = append(a.closers, func() { _ = rdb.Close() })
	locker := redislock.New(rdb, redislock.Options{TTL: a.cfg.Redis.LockTTL, Prefix: a.cfg.Redis.Prefix, Auditor: a.auditor, Logger: a.log})
	return locker, redisbind.New(rdb, redisbind.Options{Prefix: a.cfg.Redis.Prefix, TTL: a.cfg.Sandbox.TTL, Retention: a.shelfRetention()}), nil
}

// lockWait bounds how long reconciliation waits for a workspace lock that
// a dead holder may still have: a Redis lease expires within its TTL; a
// file lock dies with its process.
func (a *app) lockWait() time.Duration {
	if a.cfg.Redis.Addr != "" {
		return a.cfg.Redis.LockTTL + 2*time.Second
	}
	return 2 * time.Second
}

func (a *app) newRouter(execs map[backends.Name]backends.Executor, def backends.Name) error {
	names := make([]backends.Name, 0, len(execs))
	for n := range execs {
		names = append(names, n)
	}
	var decider gateway.Decider
	var observer func(canary.Entry)
	var shadow gateway.ShadowConfig
	if a.flags != nil {
		decider = a.flags
		rec, err := a.canaryRecorder()
		if err != nil {
			return err
		}
		observer, shadow.Observe = rec.Record, rec.Record
		shadow.Self, shadow.Budget = a.cfg.Canary.ShadowSelf, a.cfg.Canary.ShadowBudget
	}
	var err error
	b := a.cfg.Approach2.Breaker
	a.router, err = gateway.NewRouter(gateway.RouterConfig{Backends: execs, Default: def, Flags: decider, Observe: observer, Shadow: shadow,
		Breakers: gateway.BreakerConfig{ConsecutiveFailures: b.ConsecutiveFailures, FailureRatio: b.FailureRatio, MinRequests: b.MinRequests,
			Interval: b.Interval, OpenFor: b.OpenFor, Probes: b.Probes},
		Registerer: a.registry, Metrics: gateway.NewMetrics(a.registry, names...), Logger: a.log})
	return err
}

func (a *app) projects() approach1.ProjectMap {
	m := approach1.ProjectMap{}
	for name, p := range a.cfg.Projects {
		m[name] = approach1.Project{Remotes: gitcmd.RemotePolicy{Schemes: p.AllowedSchemes, Hosts: p.AllowedHosts},
			Token: p.Token, ReadToken: p.ReadToken, Username: p.TokenUsername,
			MaxRepoBytes: p.MaxRepoBytes, MaxSandboxBytes: p.MaxSandboxBytes}
	}
	return m
}

func (a *app) limits() approach1.Limits {
	return approach1.Limits{MaxOutputBytes: a.cfg.Limits.MaxOutputBytes, MaxFileBytes: a.cfg.Limits.MaxFileBytes,
		MaxListEntries: a.cfg.Limits.MaxListEntries, CommandTimeout: a.cfg.Git.CommandTimeout, RemoteTimeout: a.cfg.Git.RemoteTimeout,
		MaxRepoBytes: a.cfg.Limits.MaxRepoBytes, MaxSandboxBytes: a.cfg.Limits.MaxSandboxBytes, DiskPollInterval: a.cfg.Limits.DiskPollInterval}
}

// mcpServer builds the MCP server; hosts are the Host values it answers to.
func (a *app) mcpServer(hosts []string) (*mcpserver.Server, error) {
	return mcpserver.New(mcpserver.Config{
		Executor: a.router, Directory: a.directory, Redactor: a.redactor, Logger: a.log, Version: version,
		HTTP: mcpserver.HTTPConfig{Path: a.cfg.MCP.Path, AllowedHosts: append(hosts, a.cfg.MCP.AllowedHosts...),
			AllowedOrigins: a.cfg.MCP.AllowedOrigins, SessionIdleTTL: a.cfg.MCP.SessionIdleTTL,
			MaxSessionsPerAgent: a.cfg.MCP.MaxSessionsPerAgent},
		HidePaths: a.hiddenPaths(),
	})
}

// hiddenPaths are the gateway's own directories, which no text an agent
// gets may show (as configured and with symbolic links resolved).
func (a *app) hiddenPaths() []string {
	dirs := []string{a.cfg.StateDir, a.cfg.Approach2.SandboxDir, a.cfg.SandboxDir()}
	var out []string
	for _, d := range dirs {
		if d == "" {
			continue
		}
		out = append(out, d)
		if real, err := filepath.EvalSymlinks(d); err == nil && real != d {
			out = append(out, real)
		}
	}
	return out
}

// startReaper starts reaping idle sandboxes, and sweeping orphaned ones
// (warm sandboxes of a process that was killed) now and then.
func (a *app) startReaper(ctx context.Context) {
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
			if !sleepCtx(ctx, 10*time.Minute) {
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
func (a *app) close(ctx context.Context) {
	if a.stopReap != nil {
		a.stopReap()
	}
	a.sandboxes.Close(ctx) // before the stores it reports to are closed
	for _, c := range a.closers {
		c()
	}
}

// serveHTTP serves MCP on mcpLn and the admin endpoints on adminLn until ctx
// ends, then drains in-flight requests for up to drain.
func (a *app) serveHTTP(ctx context.Context, mcpLn, adminLn net.Listener, drain time.Duration) error {
	srv, err := a.mcpServer(mcpserver.LoopbackHosts(mcpLn.Addr().String()))
	if err != nil {
		return err
	}
	servers := []*http.Server{newHTTPServer(srv.HTTPHandler(), a.log), newHTTPServer(a.adminHandler(), a.log)}
	errc := make(chan error, 2)
	for i, ln := range []net.Listener{mcpLn, adminLn} {
		go func() { errc <- servers[i].Serve(ln) }()
	}
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shutdownCtx)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}

// ready reports whether the process can serve: the sandbox provider must
// answer, and Redis, the journal and the warm pool where they are used.
func (a *app) ready(ctx context.Context) error {
	if _, err := a.sandboxes.Provider().Find(ctx, sandbox.Owner{Project: "readiness-probe"}); err != nil {
		return fmt.Errorf("sandbox provider %s: %w", a.sandboxes.Provider().Name(), err)
	}
	if a.redis != nil {
		if err := a.redis.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
	}
	if a.journal != nil {
		if err := a.journal.Ping(ctx); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	if a.pool != nil && !a.pool.Ready() {
		return errors.New("the warm sandbox pool is not filled yet")
	}
	return nil
}

// opNames lists the operations, as flags name them.
func opNames() []string {
	var names []string
	for _, info := range backends.Ops() {
		names = append(names, string(info.Op))
	}
	return names
}
