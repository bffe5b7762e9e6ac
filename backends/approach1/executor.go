// Package approach1 is the embedded executor: it runs every operation in the
// workspace's sandbox, in the gateway's own process, serialising writes per
// workspace with a lock and running reads lock-free with
// GIT_OPTIONAL_LOCKS=0.
package approach1

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/recovery"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/prometheus/client_golang/prometheus"
)

// Name is the backend name reported in results, logs and metrics.
const Name = backends.Approach1

// Project is what the executor needs to know about a project.
type Project struct {
	Remotes gitcmd.RemotePolicy
	// Token is the project's git token; "" means anonymous access.
	Token string
	// Username is sent with the token; if empty, "x-access-token".
	Username string
	// ReadToken, if set, is a read-only token for the same remotes. Shadow
	// predictions read the remote (ls-remote) with it; without it they use
	// Token, for ls-remote only, which cannot change the remote.
	ReadToken string
	// MaxRepoBytes and MaxSandboxBytes override Limits' values of the same
	// names for this project: 0 takes Limits', a negative value means no
	// limit.
	MaxRepoBytes, MaxSandboxBytes int64
}

// Projects resolves project names.
type Projects interface {
	Project(name string) (Project, bool)
}

// ProjectMap is a fixed set of projects.
type ProjectMap map[string]Project

// Project returns the named project.
func (m ProjectMap) Project(name string) (Project, bool) {
	p, ok := m[name]
	return p, ok
}

// Limits caps sizes and times.
type Limits struct {
	// MaxOutputBytes caps one page of diff, log-like output and file reads.
	// If zero, 256 KiB.
	MaxOutputBytes int
	// MaxFileBytes caps write_file content. If zero, 10 MiB.
	MaxFileBytes int
	// MaxListEntries caps one page of list_files. If zero, 1000.
	MaxListEntries int
	// CommandTimeout bounds local git commands. If zero, one minute.
	CommandTimeout time.Duration
	// RemoteTimeout bounds commands that talk to the remote. If zero, ten
	// minutes.
	RemoteTimeout time.Duration
	// MaxRepoBytes caps a workspace's git directory (the repository a
	// clone, pull or fetch brings in, all of it), enforced while the
	// transfer runs (transferlimit.go). Projects may override it. If zero,
	// DefaultMaxRepoBytes; negative: no limit.
	MaxRepoBytes int64
	// MaxSandboxBytes caps the disk use of a whole sandbox (every
	// workspace's work tree and git directory in it), enforced while a
	// transfer and the check-out after it run. Projects may override it.
	// If zero, DefaultMaxSandboxBytes; negative: no limit.
	MaxSandboxBytes int64
	// DiskPollInterval is how often disk use is measured while a transfer
	// runs (on E2B each measure is a round trip to the sandbox). If zero,
	// one second.
	DiskPollInterval time.Duration
}

// The default size limits: generous enough for any repository an agent
// should clone whole, small enough that one hostile repository cannot fill
// the disk every project's sandboxes share.
const (
	DefaultMaxRepoBytes    int64 = 2 << 30
	DefaultMaxSandboxBytes int64 = 4 << 30
)

// Config configures an Executor.
type Config struct {
	Sandboxes *sandbox.Manager     // required
	Bindings  sandbox.BindingStore // required: the shared workspace bindings
	Locker    lock.Locker          // required: the shared workspace locks
	Projects  Projects             // required
	// PerAgent gives each agent its own sandbox and workspaces (sandbox.scope
	// "agent"); otherwise a project's agents share them.
	PerAgent bool
	// GitPath is git's absolute path in sandboxes. If empty,
	// gitcmd.DefaultGitPath.
	GitPath    string
	Limits     Limits
	Registerer prometheus.Registerer // if nil, metrics are not registered
	Logger     *slog.Logger          // if nil, slog.Default()
	// Backend names this executor in results and metrics. If empty, Name;
	// the Approach 2 service runs the same engine as "approach2".
	Backend string
	// Vault keeps the unsaved work of workspaces whose sandbox is removed
	// (see Preserve, shelf.go). Every backend sharing the bindings must
	// reach the same vault. If nil, such work is not saved.
	Vault sandbox.Vault
	// PooledSandboxes says the Sandboxes' sandboxes come from a warm pool
	// (the Approach 2 service): the time a call spends acquiring one (in
	// the pool's queue, or creating one when none is idle) counts in its
	// Served.Wait beside the lock wait. Approach 1 creates its sandboxes
	// on demand, which is not queueing.
	PooledSandboxes bool
	// Relay, if set, sends every remote git command through a git relay
	// that holds the tokens (relay.go): git in the sandbox gets a
	// capability, never a token.
	Relay *RelayConfig
}

// Executor is the Approach 1 backend.
type Executor struct {
	cfg        Config
	metrics    *metrics
	recoveries recoveryClock // when each owner's sandboxes were last searched for lost bindings
	shelf      *shelfMetrics
	// seeds are the repositories planted in warm sandboxes (Seeds, seed.go);
	// nil when none are.
	seeds atomic.Pointer[seedSet]
}

var _ backends.Executor = (*Executor)(nil)

// New returns an Executor.
func New(cfg Config) (*Executor, error) {
	if cfg.Sandboxes == nil || cfg.Bindings == nil || cfg.Locker == nil || cfg.Projects == nil {
		return nil, errors.New("approach1: Config needs Sandboxes, Bindings, Locker and Projects")
	}
	if cfg.GitPath == "" {
		cfg.GitPath = gitcmd.DefaultGitPath
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Backend == "" {
		cfg.Backend = Name.String()
	}
	return &Executor{cfg: cfg, metrics: newMetrics(cfg.Registerer, cfg.Backend), shelf: newShelfMetrics(cfg.Registerer, cfg.Backend)}, nil
}

func (l Limits) withDefaults() Limits {
	if l.MaxOutputBytes <= 0 {
		l.MaxOutputBytes = 256 << 10
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = 10 << 20
	}
	if l.MaxListEntries <= 0 {
		l.MaxListEntries = 1000
	}
	if l.CommandTimeout <= 0 {
		l.CommandTimeout = time.Minute
	}
	if l.RemoteTimeout <= 0 {
		l.RemoteTimeout = 10 * time.Minute
	}
	if l.MaxRepoBytes == 0 {
		l.MaxRepoBytes = DefaultMaxRepoBytes
	}
	if l.MaxSandboxBytes == 0 {
		l.MaxSandboxBytes = DefaultMaxSandboxBytes
	}
	if l.DiskPollInterval <= 0 {
		l.DiskPollInterval = time.Second
	}
	return l
}

// Execute runs req. See backends.Executor.
func (e *Executor) Execute(ctx context.Context, req backends.Request) (backends.Result, error) {
	if req == nil {
		return nil, backends.Errorf(backends.InvalidArgument, "no request")
	}
	start := time.Now()
	ctx, notes := withNotices(ctx)
	ctx, facts := withCallFacts(ctx, req.GetScope().Principal)
	res, err := e.dispatch(ctx, req)
	if err != nil {
		return nil, backends.WithOp(req.Op(), notes.onError(backends.CallerGaveUp(ctx, err)))
	}
	served := res.GetServed()
	served.Notices = append(served.Notices, notes.get()...)
	served.Backend = e.cfg.Backend
	facts.fill(ctx, e.cfg.Bindings, served)
	served.DurationMS = time.Since(start).Milliseconds()
	return res, nil
}

func (e *Executor) dispatch(ctx context.Context, req backends.Request) (backends.Result, error) {
	h, ok := handlers[req.Op()]
	if !ok {
		return nil, backends.Errorf(backends.InvalidArgument, "operation %q is not supported", req.Op())
	}
	return h(e, ctx, req)
}

type metrics struct {
	recovered      prometheus.Counter
	lockWait       prometheus.Histogram
	processes      *prometheus.CounterVec
	sandboxSeconds *prometheus.CounterVec
	sandboxCost    *prometheus.CounterVec
	recovery       *recovery.Metrics // re-clones and restores (shared with the gateway's fallbacks)
}

func newMetrics(reg prometheus.Registerer, backend string) *metrics {
	m := &metrics{
		recovered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitgate_bindings_recovered_total", Help: "Workspace bindings the bindings store had lost (a Redis restarted without persistence), rebuilt from the sandboxes that hold the workspaces.",
			ConstLabels: prometheus.Labels{"backend": backend},
		}),
		lockWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gitgate_lock_wait_seconds", Help: "Time write operations waited for their workspace lock.",
			ConstLabels: prometheus.Labels{"backend": backend}, Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		processes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_git_processes_total", Help: "git processes started in sandboxes, by operation.",
			ConstLabels: prometheus.Labels{"backend": backend},
		}, []string{"op"}),
	}
	m.sandboxSeconds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitgate_sandbox_seconds_total", Help: "Sandbox time the operations' commands took, in seconds, by operation.",
		ConstLabels: prometheus.Labels{"backend": backend},
	}, []string{"op"})
	m.sandboxCost = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitgate_sandbox_cost_usd_total", Help: "What the operations' commands cost at the sandbox provider's per-second price (E2B), in US dollars, by operation.",
		ConstLabels: prometheus.Labels{"backend": backend},
	}, []string{"op"})
	if reg != nil {
		reg.MustRegister(m.recovered, m.lockWait, m.processes, m.sandboxSeconds, m.sandboxCost)
	}
	m.recovery = recovery.NewMetrics(reg)
	return m
}
