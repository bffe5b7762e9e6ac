package approach1_test

import (
	"crypto/rand"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// manyFiles is a repository whose files are each far below the sandbox
// limit (so no file-size limit stops their check-out) and together twice
// above it; packed, it is a few kilobytes (one blob of one byte repeated; not zeros,
// which git checks out as sparse files).
func manyFiles(n, size int) map[string]string {
	files := map[string]string{"README.md": "many\n"}
	for i := range n {
		files[fmt.Sprintf("part-%02d.bin", i)] = strings.Repeat("x", size)
	}
	return files
}

// TestSandboxLimitHoldsForManySmallFiles: a clone, or a pull, whose work
// tree is over the sandbox limit in many files each within the room left
// fails as resource_exhausted naming the limit, however fast git wrote
// them: the clone leaves no workspace and no files, the pull leaves the
// workspace (HEAD, files, uncommitted changes, origin/main) as it was.
func TestSandboxLimitHoldsForManySmallFiles(t *testing.T) {
	const limit = 8 << 20
	env := backendtest.NewEnv(t)
	env.Project.MaxSandboxBytes = limit
	ex := backendtest.NewApproach1(t, env)
	if err := env.Remote.CreateRepo(backendtest.Ctx(t), "many", manyFiles(24, 1<<20)); err != nil {
		t.Fatal(err)
	}
	want := "sandbox disk limit of 8 MiB"
	scope := func(ws string) backends.Scope { return backends.Scope{Workspace: ws} }
	err := backendtest.Fail(t, ex, env.Agent, &backends.CloneRequest{Scope: scope("many"), URL: env.Remote.RepoURL("many")})
	if backends.CategoryOf(err) != backends.ResourceExhausted || !strings.Contains(backends.MessageOf(err), want) {
		t.Fatalf("clone of many files over the sandbox limit: %v; want resource_exhausted naming the %s", err, want)
	}
	if n := filesUnder(env.SandboxRoots, "/ws/many"); n != 0 {
		t.Fatalf("the failed clone left %d files", n)
	}
	ls := backendtest.Do[*backends.ListWorkspacesResult](t, ex, env.Agent, &backends.ListWorkspacesRequest{})
	if len(ls.Workspaces) != 0 {
		t.Fatalf("the failed clone left workspaces: %+v", ls.Workspaces)
	}

	backendtest.Clone(t, ex, env, env.Agent, "w")
	backendtest.Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("w"), Path: "README.md", Content: "edited, not committed\n"})
	before := state(t, ex, env)
	// The pull changes a file HEAD has (restored from HEAD) and adds files
	// HEAD has not (removed from the work tree and the index).
	if _, err := env.Remote.CommitFile(backendtest.Ctx(t), "demo", "main", "src/main.go", "package main // changed upstream\n", ""); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if _, err := env.Remote.CommitFile(backendtest.Ctx(t), "demo", "main", fmt.Sprintf("part-%02d.bin", i), strings.Repeat("y", 1<<20), ""); err != nil {
			t.Fatal(err)
		}
	}
	err = backendtest.Fail(t, ex, env.Agent, &backends.PullRequest{Scope: scope("w")})
	if backends.CategoryOf(err) != backends.ResourceExhausted || !strings.Contains(backends.MessageOf(err), want) ||
		!strings.Contains(backends.MessageOf(err), "the workspace is unchanged") {
		t.Fatalf("pull of many files over the sandbox limit: %v; want resource_exhausted naming the %s", err, want)
	}
	if after := state(t, ex, env); after != before {
		t.Fatalf("the failed pull changed the workspace:\nbefore %s\nafter  %s", before, after)
	}
	if n := filesUnder(env.SandboxRoots, "/ws/w/part-"); n != 0 {
		t.Fatalf("the failed pull left %d of its files", n)
	}
}

// state is what a pull may change in the workspace "w".
func state(t *testing.T, ex backends.Executor, env *backendtest.Env) string {
	t.Helper()
	sc := backends.Scope{Workspace: "w"}
	st := backendtest.Do[*backends.StatusResult](t, ex, env.Agent, &backends.StatusRequest{Scope: sc})
	s := fmt.Sprintf("%s %s %v", st.Branch, st.Head, st.Entries)
	lf := backendtest.Do[*backends.ListFilesResult](t, ex, env.Agent, &backends.ListFilesRequest{Scope: sc, Recursive: true})
	for _, e := range lf.Entries {
		s += fmt.Sprintf(" %s:%d", e.Path, e.Size)
	}
	lg := backendtest.Do[*backends.LogResult](t, ex, env.Agent, &backends.LogRequest{Scope: sc, Ref: "refs/remotes/origin/main", Limit: 1})
	return s + " origin/main=" + lg.Commits[0].SHA
}

// filesUnder counts the regular files under roots whose path contains
// part.
func filesUnder(roots []string, part string) int {
	n := 0
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && strings.Contains(path, part) {
				n++
			}
			return nil
		})
	}
	return n
}

// TestWatcherStopsAPullMidTransfer: a pull whose transfer outgrows the
// repository limit is stopped while it runs, by the disk-use watcher (the
// sandbox limit, far above, leaves the file-size limit no part in it): the
// remote sends 16 MiB at 4 MiB/s, the limit is 4 MiB, and the workspace's
// git directory never holds the whole transfer. The workspace is left as
// it was, without temporary objects.
func TestWatcherStopsAPullMidTransfer(t *testing.T) {
	t.Parallel() // the remote's paced transfer is mostly waiting
	const limit, size = 4 << 20, 16 << 20
	env := backendtest.NewEnv(t)
	env.Project.MaxRepoBytes, env.Project.MaxSandboxBytes = limit, 256<<20
	ex := backendtest.NewApproach1(t, env)
	backendtest.Clone(t, ex, env, env.Agent, "w")
	before := state(t, ex, env)
	blob := make([]byte, size)
	_, _ = rand.Read(blob)
	if _, err := env.Remote.CommitFile(backendtest.Ctx(t), "demo", "main", "big.bin", string(blob), ""); err != nil {
		t.Fatal(err)
	}
	env.Remote.SetUploadRate(4 << 20)
	var peak atomic.Int64
	stop := make(chan struct{})
	measured := make(chan struct{})
	go func() {
		defer close(measured)
		for {
			var n int64
			for _, root := range env.SandboxRoots {
				_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
					if err == nil && d.Type().IsRegular() && strings.Contains(path, "/git/w.git/") {
						if fi, err := d.Info(); err == nil {
							n += fi.Size()
						}
					}
					return nil
				})
			}
			if n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	err := backendtest.Fail(t, ex, env.Agent, &backends.PullRequest{Scope: backends.Scope{Workspace: "w"}})
	close(stop)
	<-measured
	t.Logf("pull of %d MiB over a %d MiB repository limit: peak size of the workspace's git directory %.1f MiB", size>>20, limit>>20, float64(peak.Load())/(1<<20))
	want := "repository size limit of 4 MiB"
	if backends.CategoryOf(err) != backends.ResourceExhausted || !strings.Contains(backends.MessageOf(err), want) {
		t.Fatalf("pull over the repository limit: %v; want resource_exhausted naming the %s", err, want)
	}
	if peak.Load() >= size {
		t.Errorf("the git directory grew to %d bytes: the transfer was not stopped while it ran", peak.Load())
	}
	if after := state(t, ex, env); after != before {
		t.Fatalf("the stopped pull changed the workspace:\nbefore %s\nafter  %s", before, after)
	}
	if n := filesUnder(env.SandboxRoots, "/tmp_"); n != 0 {
		t.Fatalf("the stopped pull left %d temporary files", n)
	}
}

// TestReachabilityFetchHeldToTheRepositoryLimit: the fetch a reachability
// check (RemoteReach, for settling a push nobody saw) makes into a
// workspace is held to the repository limit like a pull's, and leaves no
// temporary objects.
func TestReachabilityFetchHeldToTheRepositoryLimit(t *testing.T) {
	env := backendtest.NewEnv(t)
	env.Project.MaxRepoBytes = 4 << 20
	ex := backendtest.NewApproach1(t, env)
	head := backendtest.Clone(t, ex, env, env.Agent, "w").Head
	blob := make([]byte, 16<<20)
	_, _ = rand.Read(blob)
	if _, err := env.Remote.CommitFile(backendtest.Ctx(t), "demo", "main", "big.bin", string(blob), ""); err != nil {
		t.Fatal(err)
	}
	s := backends.Scope{Principal: env.Agent, Workspace: "w"}
	_, _, err := ex.RemoteReach(backendtest.Ctx(t), s, env.RepoURL, "refs/heads/main", head)
	if backends.CategoryOf(err) != backends.ResourceExhausted || !strings.Contains(backends.MessageOf(err), "repository size limit of 4 MiB") {
		t.Fatalf("reachability check over the repository limit: %v; want resource_exhausted naming the limit", err)
	}
	if n := filesUnder(env.SandboxRoots, "/tmp_"); n != 0 {
		t.Fatalf("the stopped fetch left %d temporary files", n)
	}
}
