package approach1_test

import (
	"context"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/lock/redislock"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
	"github.com/gitgate/gitgate/backends/sandbox/redisbind"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// sharedEngine builds an engine (one process: its own provider and
// manager) on the shared sandbox directory, binding store and workspace
// locker, allowed to reach hosts.
func sharedEngine(t *testing.T, env *backendtest.Env, dir string, binds sandbox.BindingStore, locker lock.Locker, hosts []string) *approach1.Executor {
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
	ex, err := approach1.New(approach1.Config{Sandboxes: mgr, Bindings: binds, Locker: locker, Logger: quiet,
		Projects: approach1.ProjectMap{"alpha": {Remotes: gitcmd.RemotePolicy{Schemes: env.Project.Schemes, Hosts: hosts}, Token: env.Project.Token}}})
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// TestRecoveryLeavesAWorkspaceBeingClonedAlone: two processes share a
// sandbox directory, the Redis bindings and the Redis workspace locks. One
// clones a workspace whose remote stops answering, so that the clone is
// held half-way: its git directory exists (HEAD on the default branch), its
// binding is not recorded yet. Meanwhile the other lists the workspaces
// (which looks for workspaces the store lost) and reads the workspace.
// Neither may record the half-cloned workspace: before the fix the listing
// stored a binding rebuilt from it, which outlived the clone and, in the
// fleet, overwrote the branch the agent then checked out, so that its push
// was refused as a push to main. The read waits for the clone and then
// finds no workspace.
func TestRecoveryLeavesAWorkspaceBeingClonedAlone(t *testing.T) {
	env := backendtest.NewEnv(t)
	srv := backendtest.StartRedis(t)
	binds := redisbind.New(srv.Client(), redisbind.Options{TTL: time.Hour})
	locker := redislock.New(srv.Client(), redislock.Options{})
	remote, err := url.Parse(env.RepoURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := backendtest.NewProxy(t, remote.Host)
	proxy.Blackhole(true) // the clone connects, then hears nothing
	stalled := strings.Replace(env.RepoURL, remote.Host, proxy.Addr(), 1)
	hosts := append([]string{proxy.Addr()}, env.Project.Hosts...)
	dir := t.TempDir()
	cloner := sharedEngine(t, env, dir, binds, locker, hosts)
	lister := sharedEngine(t, env, dir, binds, locker, hosts)
	p := env.Agent
	k := sandbox.WorkspaceKey{Project: p.Project, Name: "ws"}

	cloneCtx, stopClone := context.WithCancel(t.Context())
	defer stopClone()
	cloned := make(chan error, 1)
	go func() {
		_, err := backends.Do[*backends.CloneResult](cloneCtx, cloner, &backends.CloneRequest{
			Scope: backends.Scope{Principal: p, Workspace: "ws"}, URL: stalled})
		cloned <- err
	}()
	testkit.Eventually(t, "the clone has created the workspace's git directory", func() bool {
		return gitDirHead(dir, "ws") != ""
	})
	if head := gitDirHead(dir, "ws"); !strings.HasPrefix(head, "ref: refs/heads/") {
		t.Fatalf("HEAD of the half-cloned workspace = %q", head)
	}

	list := &backends.ListWorkspacesRequest{}
	list.GetScope().Principal = p
	ws := backendtest.Do[*backends.ListWorkspacesResult](t, lister, p, list)
	for _, w := range ws.Workspaces {
		if w.Name == "ws" {
			t.Errorf("the listing shows the workspace another process is still cloning: %+v", w)
		}
	}
	if b, ok, err := binds.Get(t.Context(), k); err != nil || ok {
		t.Fatalf("while another process clones the workspace, listing stored its binding rebuilt half-way: %+v (found %v, err %v)", b, ok, err)
	}

	read := make(chan error, 1)
	go func() {
		_, err := backends.Do[*backends.StatusResult](t.Context(), lister, &backends.StatusRequest{
			Scope: backends.Scope{Principal: p, Workspace: "ws"}})
		read <- err
	}()
	select {
	case err := <-read:
		t.Fatalf("a read of the workspace being cloned did not wait for the clone: err %v", err)
	case err := <-cloned:
		t.Fatalf("the clone through a silent remote ended by itself: %v", err)
	case <-time.After(200 * time.Millisecond): // no result yet is the expected state; this only gives a wrong one time to show
	}

	stopClone()
	select {
	case err := <-cloned:
		if err == nil {
			t.Fatal("the clone through a silent remote succeeded")
		}
	case <-time.After(testkit.Patience):
		t.Fatal("the cancelled clone did not end")
	}
	select {
	case err := <-read:
		backendtest.WantCategory(t, err, backends.NotFound)
	case <-time.After(testkit.Patience):
		t.Fatal("the read did not end after the clone did")
	}
	if b, ok, err := binds.Get(t.Context(), k); err != nil || ok {
		t.Fatalf("the failed clone left a binding recorded by another process: %+v (found %v, err %v)", b, ok, err)
	}
}

// gitDirHead returns the content of workspace name's HEAD under the
// sandbox directory dir ("" when there is none yet).
func gitDirHead(dir, name string) string {
	var head string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil: // a directory the clone is creating or removing: look again later
			return fs.SkipDir
		case head != "":
			return fs.SkipAll
		case !d.IsDir() && strings.HasSuffix(path, filepath.Join("git", name+".git", "HEAD")):
			if data, rerr := os.ReadFile(path); rerr == nil {
				head = strings.TrimSpace(string(data))
			}
		}
		return nil
	})
	return head
}
