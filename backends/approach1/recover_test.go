package approach1_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
	"github.com/gitgate/gitgate/backends/sandbox/redisbind"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// engineOn builds an engine (one process: its own provider and manager) on
// the shared sandbox directory and binding store, named backend.
func engineOn(t *testing.T, env *backendtest.Env, dir string, binds sandbox.BindingStore, backend string) *approach1.Executor {
	t.Helper()
	provider, err := local.OpenWith(dir, local.Options{Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	mgr, err := sandbox.NewManager(sandbox.ManagerConfig{Provider: provider, Bindings: binds, IdleTTL: time.Hour, Logger: quiet, KeepOnClose: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close(context.WithoutCancel(t.Context())) })
	ex, err := approach1.New(approach1.Config{Sandboxes: mgr, Bindings: binds, Locker: &lock.Memory{}, Logger: quiet, Backend: backend,
		Projects: approach1.ProjectMap{"alpha": {Remotes: gitcmd.RemotePolicy{Schemes: env.Project.Schemes, Hosts: env.Project.Hosts}, Token: env.Project.Token}}})
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// TestRedisRestartLosesNoWorkspace: two processes (the gateway's engine
// and the service's) share sandboxes and Redis bindings; Redis restarts
// without persistence. Every workspace is found again through both, with
// its uncommitted changes and unpushed commits, listed, protected from a
// clone over it and from a release that would lose its work.
func TestRedisRestartLosesNoWorkspace(t *testing.T) {
	env := backendtest.NewEnv(t)
	srv := backendtest.StartRedis(t)
	binds := redisbind.New(srv.Client(), redisbind.Options{TTL: time.Hour})
	dir := t.TempDir()
	gateway := engineOn(t, env, dir, binds, approach1.Name.String())
	service := engineOn(t, env, dir, binds, "approach2")
	p := env.Agent
	sc := func(ws string) backends.Scope { return backends.Scope{Workspace: ws} }

	backendtest.Clone(t, gateway, env, p, "dirty")
	backendtest.Clone(t, service, env, p, "clean")
	backendtest.Do[*backends.CheckoutResult](t, gateway, p, &backends.CheckoutRequest{Scope: sc("dirty"), Branch: "feature", Create: true})
	backendtest.Do[*backends.WriteFileResult](t, gateway, p, &backends.WriteFileRequest{Scope: sc("dirty"), Path: "a.txt", Content: "committed\n"})
	commit := backendtest.Do[*backends.CommitResult](t, service, p, &backends.CommitRequest{Scope: sc("dirty"), Message: "Not pushed"})
	backendtest.Do[*backends.WriteFileResult](t, service, p, &backends.WriteFileRequest{Scope: sc("dirty"), Path: "b.txt", Content: "uncommitted\n"})

	srv.Restart()
	if list, err := binds.List(t.Context(), "alpha"); err != nil || len(list) != 0 {
		t.Fatalf("after the restart Redis still has bindings %v (err %v): the test proves nothing", list, err)
	}

	for name, ex := range map[string]backends.Executor{"gateway": gateway, "service": service} {
		st := backendtest.Do[*backends.StatusResult](t, ex, p, &backends.StatusRequest{Scope: sc("dirty")})
		if st.Branch != "feature" || st.Clean || !slices.ContainsFunc(st.Entries, func(f backends.StatusEntry) bool { return f.Path == "b.txt" }) {
			t.Errorf("%s: status of the recovered workspace = %+v", name, st)
		}
		log := backendtest.Do[*backends.LogResult](t, ex, p, &backends.LogRequest{Scope: sc("dirty"), Limit: 1})
		if len(log.Commits) != 1 || log.Commits[0].SHA != commit.SHA {
			t.Errorf("%s: the unpushed commit is not there: %+v", name, log.Commits)
		}
		backendtest.Do[*backends.StatusResult](t, ex, p, &backends.StatusRequest{Scope: sc("clean")})
	}
	srv.Restart() // and once more, found this time by listing
	for name, ex := range map[string]backends.Executor{"gateway": gateway, "service": service} {
		list := backendtest.Do[*backends.ListWorkspacesResult](t, ex, p, &backends.ListWorkspacesRequest{})
		var names []string
		for _, w := range list.Workspaces {
			names = append(names, w.Name)
			if w.URL != env.RepoURL {
				t.Errorf("%s: recovered %s with URL %q", name, w.Name, w.URL)
			}
		}
		if strings.Join(names, ",") != "clean,dirty" {
			t.Errorf("%s: list_workspaces after the restart = %v", name, names)
		}
	}
	srv.Restart()
	backendtest.WantCategory(t, backendtest.Fail(t, gateway, p, &backends.CloneRequest{Scope: sc("dirty"), URL: env.RepoURL}), backends.Conflict)
	srv.Restart()
	err := backendtest.Fail(t, service, p, &backends.ReleaseWorkspaceRequest{Scope: sc("dirty")})
	backendtest.WantCategory(t, err, backends.Conflict)
	b, ok, gerr := binds.Get(t.Context(), sandbox.WorkspaceKey{Project: "alpha", Name: "dirty"})
	if gerr != nil || !ok || !b.Dirty || !strings.Contains(b.Unpushed, "feature") {
		t.Errorf("recovered binding = %+v (ok %v, err %v); want dirty with feature unpushed", b, ok, gerr)
	}
	st := backendtest.Do[*backends.StatusResult](t, gateway, p, &backends.StatusRequest{Scope: sc("dirty")})
	if st.Clean {
		t.Error("the uncommitted change is gone")
	}
	// Another project never finds alpha's workspace.
	backendtest.WantCategory(t, backendtest.Fail(t, gateway, env.Stranger, &backends.StatusRequest{Scope: sc("dirty")}), backends.NotFound)
}

// findFails is a local provider whose sandboxes cannot be listed by owner.
type findFails struct{ *local.Provider }

func (findFails) Find(context.Context, sandbox.Owner) ([]sandbox.Info, error) {
	return nil, errors.New("the sandbox API did not answer")
}

// TestUnlistableSandboxesAreNotAbsence: when the binding store does not
// know a workspace and its owner's sandboxes cannot be listed, the
// workspace may still exist: a read is not told "not found" and a clone
// does not go ahead over it; both fail Unavailable, and nothing is created.
func TestUnlistableSandboxesAreNotAbsence(t *testing.T) {
	env := backendtest.NewEnv(t)
	lp, err := local.OpenWith(t.TempDir(), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	binds := sandbox.NewMemoryBindings()
	quiet := slog.New(slog.DiscardHandler)
	mgr, err := sandbox.NewManager(sandbox.ManagerConfig{Provider: findFails{lp}, Bindings: binds, IdleTTL: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close(context.WithoutCancel(t.Context())) })
	ex, err := approach1.New(approach1.Config{Sandboxes: mgr, Bindings: binds, Locker: &lock.Memory{}, Logger: quiet,
		Projects: approach1.ProjectMap{"alpha": {Remotes: gitcmd.RemotePolicy{Schemes: env.Project.Schemes, Hosts: env.Project.Hosts}, Token: env.Project.Token}}})
	if err != nil {
		t.Fatal(err)
	}
	p := env.Agent
	sc := backends.Scope{Workspace: "maybe"}
	for _, req := range []backends.Request{&backends.StatusRequest{Scope: sc}, &backends.CloneRequest{Scope: sc, URL: env.RepoURL}} {
		err := backendtest.Fail(t, ex, p, req)
		backendtest.WantCategory(t, err, backends.Unavailable)
		if !strings.Contains(backends.MessageOf(err), `cannot tell whether workspace "maybe" exists`) {
			t.Errorf("%s: message %q", req.Op(), backends.MessageOf(err))
		}
	}
	if list, err := binds.List(t.Context(), "alpha"); err != nil || len(list) != 0 {
		t.Fatalf("bindings after the refusals: %v (err %v), want none", list, err)
	}
}
