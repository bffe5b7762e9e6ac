package approach1_test

import (
	"context"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/backendtest"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
)

// newExecutor builds Approach 1 on local sandboxes for env.
func newExecutor(t *testing.T, env *backendtest.Env) backends.Executor {
	t.Helper()
	provider, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bindings := sandbox.NewMemoryBindings()
	mgr, err := sandbox.NewManager(sandbox.ManagerConfig{Provider: provider, Bindings: bindings})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close(context.WithoutCancel(t.Context())) })
	projects := approach1.ProjectMap{}
	for _, p := range []backendtest.Project{env.Project, env.StrangerProject} {
		projects[p.Name] = approach1.Project{Remotes: gitcmd.RemotePolicy{Schemes: p.Schemes, Hosts: p.Hosts}, Token: p.Token, Username: "x-access-token"}
	}
	ex, err := approach1.New(approach1.Config{Sandboxes: mgr, Bindings: bindings, Locker: &lock.Memory{}, Projects: projects})
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, newExecutor)
}
