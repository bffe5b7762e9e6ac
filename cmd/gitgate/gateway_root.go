package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/admit"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/gateway/admin"
	"github.com/gitgate/gitgate/gateway/mcpserver"
	"google.golang.org/grpc"
)

// gatewayRoot is the gateway process (serve, dev): the base with Approach 1
// embedded and, when configured, the client of the Approach 2 service;
// the agents it serves over MCP; the canary flags that route between the
// backends and the recorder of what they did; the admin listener.
type gatewayRoot struct {
	*base
	directory *gateway.Directory // the agents, found by their tokens
	flags     *flags.Evaluator   // the canary flags, when configured
	recorder  *canary.Recorder   // the ledger and the automatic rollback, with flags
	drill     *gateway.DrillMark // the kill-switch drill's mark, with flags
	agentExec backends.Executor  // what agents' calls go to: the router behind the branch policy (brancheswire.go)
}

// newGatewayRoot assembles the gateway. Logs go to logOut through the
// redactor; secrets lists values to redact besides the project tokens (a
// dev agent token, say).
func newGatewayRoot(cfg *configs.Config, logOut io.Writer, secrets ...string) (*gatewayRoot, error) {
	a := &gatewayRoot{base: newBase(cfg, logOut, secrets...)}
	dir, err := cfg.Directory()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	a.directory = dir
	ctx := context.Background()
	locker, binds, err := a.sharedState(ctx, nil)
	if err != nil {
		return nil, err
	}
	engine, err := a.newEngine(engineDeps{dir: cfg.SandboxDir(), backend: approach1.Name, locker: lock.Reentrant(locker), binds: binds,
		onEnd: a.sandboxEnded, relay: cfg.Relay.Gateway()})
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
	// Admission before the exactly-once layer: a call waits for a slot
	// before it takes its workspace lock.
	execs := map[backends.Name]backends.Executor{approach1.Name: admit.Executor(once, a.admission(approach1.Name))}
	if cfg.Backend.Default == approach2.Name || cfg.Flags.Canary() {
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
	routing, err := a.routing()
	if err != nil {
		return nil, err
	}
	if err := a.newRouter(execs, cfg.Backend.Default, routing); err != nil {
		return nil, err
	}
	return a, a.guardBranches(ctx)
}

// sandboxEnded records the end of one of Approach 1's sandboxes in the
// canary ledger — its life and what that cost, for the monthly figure —
// when the gateway keeps one (the recorder is made before anything runs).
func (a *gatewayRoot) sandboxEnded(_ string, life time.Duration, costUSD float64) {
	if a.recorder == nil {
		return
	}
	a.recorder.Record(canary.Entry{At: time.Now(), Kind: canary.KindSandbox, Backend: approach1.Name, Duration: life, CostUSD: costUSD})
}

// gatewayJournal opens the journal the gateway's Approach 1 records its
// writes in: the PostgreSQL journal when postgres.dsn_env is set — the
// Approach 2 service's, so that a key used on one backend is honoured by
// the other — and otherwise the embedded one in the state directory,
// shared by the processes of this machine.
func (a *gatewayRoot) gatewayJournal(ctx context.Context) (journal.Store, error) {
	if a.cfg.Postgres.DSN != "" {
		j, err := journal.Open(ctx, a.cfg.Postgres.DSN, journal.Options{Logger: a.log, DSN: journalDSN(a.cfg.Postgres)})
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		a.closers = append(a.closers, j.Close)
		return j, nil
	}
	j, err := journal.OpenDir(a.cfg.StatePath("journal"), journal.DirOptions{Logger: a.log})
	if err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	a.closers = append(a.closers, j.Close)
	return j, nil
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
	return approach2.DialAll(c.DialTargets(), approach2.ClientConfig{Token: c.Token, Tokens: approach2Tokens(c), Insecure: c.Insecure,
		MaxFileBytes: l.MaxFileBytes, MaxOutputBytes: l.MaxOutputBytes,
		ReadTimeout: c.ReadTimeout, WriteSlack: c.WriteSlack, CommandTimeout: g.CommandTimeout, RemoteTimeout: g.RemoteTimeout}, opts...)
}

// openFlags starts evaluating the canary flags (file or sync source).
func (a *gatewayRoot) openFlags() (*flags.Evaluator, error) {
	override := a.cfg.Flags.OverridePath
	if override == "" {
		override = flags.OverridePath(a.cfg.Flags.Path)
	}
	ev, err := flags.Open(context.Background(), flags.Config{Path: a.cfg.Flags.Path, SyncAddr: a.cfg.Flags.SyncAddr,
		SyncSelector: a.cfg.Flags.SyncSelector, Ops: backends.OpNames(), OverridePath: override,
		Domain:     fmt.Sprintf("gitgate-%p", a), // an OpenFeature provider of its own: a process may run several gateways (tests do)
		Registerer: a.registry, Logger: a.log})
	if err != nil {
		return nil, fmt.Errorf("flags.override_path: %w", err)
	}
	a.closers = append(a.closers, ev.Close)
	return ev, nil
}

// routing is what the gateway's router adds with canary flags: routing by
// them, the recorder of every call and comparison, and shadowing. Without
// flags it is the zero value (every call to the default backend).
func (a *gatewayRoot) routing() (gateway.RouterConfig, error) {
	if a.flags == nil {
		return gateway.RouterConfig{}, nil
	}
	rec, err := a.canaryRecorder()
	if err != nil {
		return gateway.RouterConfig{}, err
	}
	// The drill mark, shared by the router (which stamps its id on the
	// ledger's entries) and the admin listener (which sets and clears it);
	// a drill's window goes to the ledger when its mark ends.
	a.drill = gateway.NewDrillMark(rec.Record, a.log)
	return gateway.RouterConfig{Flags: a.flags, Observe: rec.Record, Shadow: gateway.ShadowConfig{Observe: rec.Record,
		Self: a.cfg.Canary.ShadowSelf, Budget: a.cfg.Canary.ShadowBudget}, Drill: a.drill,
		BreakerChanged: func(c gateway.BreakerChange) { a.flags.RecordBreaker(string(c.Op), c.Forced, c.By, c.Reason) }}, nil
}

// killSwitch is the admin listener's override, when flags are configured.
func (a *gatewayRoot) killSwitch() admin.KillSwitch {
	if a.flags == nil {
		return nil
	}
	return a.flags
}

// mcpServer builds the MCP server; hosts are the Host values it answers to.
func (a *gatewayRoot) mcpServer(hosts []string) (*mcpserver.Server, error) {
	httpCfg := mcpserver.HTTPConfig{Path: a.cfg.MCP.Path, AllowedHosts: append(hosts, a.cfg.MCP.AllowedHosts...),
		AllowedOrigins: a.cfg.MCP.AllowedOrigins, SessionIdleTTL: a.cfg.MCP.SessionIdleTTL,
		MaxSessionsPerAgent: a.cfg.MCP.MaxSessionsPerAgent}
	if a.redis != nil && a.cfg.MCP.SessionsInRedis(true) { // mcp.session_store: sessions shared by the replicas
		httpCfg.SessionRedis, httpCfg.SessionKeyPrefix = a.redis, a.cfg.Redis.Prefix
	}
	return mcpserver.New(mcpserver.Config{
		Executor: a.agentExec, Directory: a.directory, Redactor: a.redactor, Logger: a.log, Version: version,
		Metrics: mcpserver.NewAPIMetrics(a.registry), HTTP: httpCfg, HidePaths: a.hiddenPaths(),
	})
}

// hiddenPaths are the gateway's own directories, which no text an agent
// gets may show (as configured and with symbolic links resolved).
func (a *gatewayRoot) hiddenPaths() []string {
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

// stoppingAnswerTime bounds, past the drain timeout, the wait for the calls
// cut by it to send their answer (unavailable: retry).
const stoppingAnswerTime = 2 * time.Second

// serveHTTP serves MCP on mcpLn and the admin endpoints on adminLn until ctx
// ends, then drains: /readyz answers 503 "draining" at once while MCP is
// still served, each answer closing its connection, for listen.drain_delay (the load balancer's
// check turns traffic away meanwhile); then the MCP listener closes and the
// calls in flight get up to drain to finish; the admin listener closes last.
func (a *gatewayRoot) serveHTTP(ctx context.Context, mcpLn, adminLn net.Listener, drain time.Duration) error {
	srv, err := a.mcpServer(mcpserver.LoopbackHosts(mcpLn.Addr().String()))
	if err != nil {
		return err
	}
	var draining drainState
	mcpHTTP := newHTTPServer(draining.closeAfter(srv.HTTPHandler()), a.log)
	// The calls still in flight at the drain timeout are cancelled with
	// mcpserver.ErrStopping, so that they answer unavailable (retry), and
	// get a moment to write that answer.
	calls, stopCalls := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopCalls(nil)
	mcpHTTP.BaseContext = func(net.Listener) context.Context { return calls }
	adminHTTP := newHTTPServer(draining.readyz(a.adminHandler()), a.log)
	errc := make(chan error, 2)
	go func() { errc <- mcpHTTP.Serve(mcpLn) }()
	go func() { errc <- adminHTTP.Serve(adminLn) }()
	select {
	case <-ctx.Done():
		err = a.turnAway(&draining, a.cfg.Listen.DrainDelay, errc)
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	if mcpHTTP.Shutdown(shutdownCtx) != nil { // stops accepting, then waits for the calls in flight
		stopCalls(mcpserver.ErrStopping)
		answered, cancelAnswered := context.WithTimeout(context.WithoutCancel(ctx), stoppingAnswerTime)
		_ = mcpHTTP.Shutdown(answered)
		cancelAnswered()
	}
	srv.Close(shutdownCtx)
	if adminHTTP.Shutdown(shutdownCtx) != nil {
		_ = adminHTTP.Close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
