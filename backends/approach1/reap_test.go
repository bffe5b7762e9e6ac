package approach1_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
	"github.com/gitgate/gitgate/internal/backendtest"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// TestIdleSandboxIsReapedAfterEveryKindOfCall: no operation, including a
// refused one, leaves the sandbox marked busy; once idle past the TTL it is
// reaped and its workspaces report that they expired.
func TestIdleSandboxIsReapedAfterEveryKindOfCall(t *testing.T) {
	env := backendtest.NewEnv(t)
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	provider, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bindings := sandbox.NewMemoryBindings()
	mgr, err := sandbox.NewManager(sandbox.ManagerConfig{Provider: provider, Bindings: bindings, IdleTTL: time.Hour, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close(context.WithoutCancel(t.Context())) })
	ex, err := approach1.New(approach1.Config{Sandboxes: mgr, Bindings: bindings, Locker: &lock.Memory{},
		Projects: approach1.ProjectMap{"alpha": {Remotes: gitcmd.RemotePolicy{Schemes: env.Project.Schemes, Hosts: env.Project.Hosts}, Token: env.Project.Token}}})
	if err != nil {
		t.Fatal(err)
	}
	ws := backends.Scope{Workspace: "w"}
	backendtest.Clone(t, ex, env, env.Agent, "w")
	backendtest.WantCategory(t, backendtest.Fail(t, ex, env.Agent, &backends.CloneRequest{Scope: ws, URL: env.RepoURL}), backends.Conflict)
	backendtest.Do[*backends.StatusResult](t, ex, env.Agent, &backends.StatusRequest{Scope: ws})
	backendtest.WantCategory(t, backendtest.Fail(t, ex, env.Agent, &backends.ReadFileRequest{Scope: ws, Path: "absent"}), backends.NotFound)
	clock.Advance(59 * time.Minute)
	if n := mgr.ReapIdle(t.Context()); n != 0 {
		t.Fatalf("reaped %d sandboxes before the TTL", n)
	}
	clock.Advance(2 * time.Minute)
	if n := mgr.ReapIdle(t.Context()); n != 1 {
		t.Fatalf("reaped %d sandboxes after the TTL, want 1 (a call left it marked busy)", n)
	}
	err = backendtest.Fail(t, ex, env.Agent, &backends.StatusRequest{Scope: ws})
	backendtest.WantCategory(t, err, backends.NotFound)
	backendtest.Clone(t, ex, env, env.Agent, "w") // the name is free again
}
