package backendtest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
)

// NewApproach1 builds the embedded executor on local sandboxes, configured
// for env's projects, with in-process locks. Approach 2's service runs the
// same engine.
func NewApproach1(t testing.TB, env *Env) *approach1.Executor {
	t.Helper()
	return NewEngine(t, env, &lock.Memory{}, nil)
}

// NewEngine is NewApproach1 with the given locker and binding store (nil:
// in process).
func NewEngine(t testing.TB, env *Env, locker lock.Locker, bindings sandbox.BindingStore) *approach1.Executor {
	t.Helper()
	dir := t.TempDir()
	provider, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	env.SandboxRoots = append(env.SandboxRoots, dir)
	return NewEngineOn(t, env, provider, locker, bindings)
}

// NewEngineOn is NewEngine on the given sandbox provider (whose
// directories, if any on this machine, the caller adds to SandboxRoots).
func NewEngineOn(t testing.TB, env *Env, provider sandbox.Provider, locker lock.Locker, bindings sandbox.BindingStore) *approach1.Executor {
	t.Helper()
	return NewEngineWith(t, env, sandbox.ManagerConfig{Provider: provider, Bindings: bindings}, locker)
}

// NewEngineWith is Approach 1's engine for env's projects on a sandbox
// manager made from cfg (a Creator, such as a warm pool, included); its
// Bindings default to an in-process store, its Logger to none. The manager
// is closed when the test ends.
func NewEngineWith(t testing.TB, env *Env, cfg sandbox.ManagerConfig, locker lock.Locker, tune ...func(*approach1.Config)) *approach1.Executor {
	t.Helper()
	if cfg.Bindings == nil {
		cfg.Bindings = sandbox.NewMemoryBindings()
	}
	quiet := slog.New(slog.DiscardHandler)
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	mgr, err := sandbox.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close(context.WithoutCancel(context.Background())) })
	projects := approach1.ProjectMap{}
	for _, p := range []Project{env.Project, env.StrangerProject} {
		projects[p.Name] = approach1.Project{Remotes: gitcmd.RemotePolicy{Schemes: p.Schemes, Hosts: p.Hosts}, Token: p.Token, ReadToken: p.ReadToken, Username: "x-access-token",
			MaxRepoBytes: p.MaxRepoBytes, MaxSandboxBytes: p.MaxSandboxBytes}
	}
	ecfg := approach1.Config{Sandboxes: mgr, Bindings: cfg.Bindings, Locker: locker, Projects: projects, Logger: quiet}
	for _, f := range tune {
		f(&ecfg)
	}
	ex, err := approach1.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	return ex
}
