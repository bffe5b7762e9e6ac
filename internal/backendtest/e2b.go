package backendtest

import (
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox/e2b"
	"github.com/gitgate/gitgate/internal/e2bfake"
)

// E2BKey is the API key of the local E2B that NewE2BEngine starts.
const E2BKey = "e2b_conformanceKEY0123456789abcdef"

// NewE2BOnce is NewApproach1Once on E2B sandboxes (see NewE2BEngine).
func NewE2BOnce(t testing.TB, env *Env, cfg e2bfake.Config) (backends.Executor, *e2bfake.Server) {
	t.Helper()
	locker := NewFileLocker(t)
	engine, s := NewE2BEngineWith(t, env, cfg, lock.Reentrant(locker))
	return WithOnce(t, engine, locker, NewDirJournal(t)), s
}

// NewE2BEngine is NewEngine on E2B sandboxes: it starts a local E2B (cfg,
// with E2BKey) whose sandbox directories join env.SandboxRoots, and
// returns the executor and the E2B (for tests that kill sandboxes or read
// what was sent).
func NewE2BEngine(t testing.TB, env *Env, cfg e2bfake.Config) (*approach1.Executor, *e2bfake.Server) {
	t.Helper()
	return NewE2BEngineWith(t, env, cfg, &lock.Memory{})
}

// NewE2BEngineWith is NewE2BEngine with the given workspace locker.
func NewE2BEngineWith(t testing.TB, env *Env, cfg e2bfake.Config, locker lock.Locker) (*approach1.Executor, *e2bfake.Server) {
	t.Helper()
	cfg.APIKey = E2BKey
	s, err := e2bfake.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	env.SandboxRoots = append(env.SandboxRoots, s.Root())
	a, err := e2b.NewAPI(e2b.APIConfig{BaseURL: s.URL(), APIKey: E2BKey})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e2b.NewProvider(e2b.ProviderConfig{API: a, EnvdURL: s.URL(), Template: "gitgate"})
	if err != nil {
		t.Fatal(err)
	}
	return NewEngineOn(t, env, p, locker, nil), s
}
