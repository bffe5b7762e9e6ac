package backendtest

import (
	"context"
	"crypto/rand"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// The project limits testTransferLimits configures for env.Project
// (approach1.Project.MaxRepoBytes and MaxSandboxBytes); env.StrangerProject
// keeps the defaults.
//
// They are small so that the repositories built to cross them are small:
// each case moves its repository through git (and through gRPC or the
// local E2B on those backends) on every backend the suite runs on.
const (
	LimitRepoBytes    = 2 << 20
	LimitSandboxBytes = 6 << 20
)

// bigBlobBytes is the incompressible file of the repository "big": four
// times the repository limit, and above the sandbox limit too, so that a
// peak below that limit shows the clone was stopped. zerosBytes is the
// file of "bomb", twice the sandbox limit checked out, a few kilobytes
// packed.
const (
	bigBlobBytes = 8 << 20
	zerosBytes   = 12 << 20
)

// testTransferLimits: with per-project limits on the repository size and
// the sandbox's disk use, a clone of a repository over the repository
// limit, or whose check-out is over the sandbox limit, fails as
// resource_exhausted with a sentence naming the limit, leaves no workspace
// and no files, and peaks near the limit (not at the repository's size);
// another project clones the same repository; a pull that brings in too
// much (in its transfer, or in the files it would write) fails the same
// way and leaves the workspace, its remote-tracking branch and its object
// store as they were.
func testTransferLimits(t *testing.T, f Factory) {
	env := NewEnv(t)
	env.Project.MaxRepoBytes, env.Project.MaxSandboxBytes = LimitRepoBytes, LimitSandboxBytes
	ex := f(t, env)
	big := make([]byte, bigBlobBytes)
	_, _ = rand.Read(big)
	if err := env.Remote.CreateRepo(Ctx(t), "big", map[string]string{"README.md": "big\n", "big.bin": string(big)}); err != nil {
		t.Fatal(err)
	}
	if err := env.Remote.CreateRepo(Ctx(t), "bomb", map[string]string{"README.md": "bomb\n", "zeros.bin": strings.Repeat("z", zerosBytes)}); err != nil {
		t.Fatal(err)
	}

	cases := []struct{ repo, limit string }{
		{"big", "repository size limit of 2 MiB"},
		{"bomb", "sandbox disk limit of 6 MiB"},
	}
	for _, c := range cases {
		peak := watchPeak(t, env.SandboxRoots)
		err := Fail(t, ex, env.Agent, &backends.CloneRequest{Scope: scope(c.repo), URL: env.Remote.RepoURL(c.repo)})
		max := peak()
		t.Logf("clone of %q over the %s: peak disk use of the sandboxes %.1f MiB", c.repo, c.limit, float64(max)/(1<<20))
		if backends.CategoryOf(err) != backends.ResourceExhausted || !strings.Contains(backends.MessageOf(err), c.limit) ||
			!strings.Contains(backends.MessageOf(err), "nothing was kept") {
			t.Fatalf("clone of %q: %v; want resource_exhausted naming the %s", c.repo, err, c.limit)
		}
		if max > LimitSandboxBytes+1<<20 {
			t.Errorf("clone of %q: the sandboxes grew to %d bytes, past the limits", c.repo, max)
		}
		if used := treeSize(t, env.SandboxRoots); used > 1<<20 {
			t.Errorf("clone of %q: %d bytes left in the sandboxes", c.repo, used)
		}
	}
	ls := Do[*backends.ListWorkspacesResult](t, ex, env.Agent, &backends.ListWorkspacesRequest{})
	if len(ls.Workspaces) != 0 {
		t.Fatalf("failed clones left workspaces: %+v", ls.Workspaces)
	}
	// Another project, with the default limits, clones the same repository.
	Do[*backends.CloneResult](t, ex, env.Stranger, &backends.CloneRequest{Scope: scope("big"), URL: env.Remote.RepoURL("big")})

	// Pulls: one that brings in too much, one whose files are too large.
	Clone(t, ex, env, env.Agent, "pull")
	Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("pull"), Path: "notes.txt", Content: "uncommitted\n"})
	for _, c := range []struct{ path, content, limit string }{
		{"big.bin", string(big), "repository size limit of 2 MiB"},
		{"zeros.bin", strings.Repeat("z", zerosBytes), "sandbox disk limit of 6 MiB"},
	} {
		before := snapshotWS(t, ex, env, "pull")
		tracking := trackingTip(t, ex, env)
		if _, err := env.Remote.CommitFile(Ctx(t), "demo", "main", c.path, c.content, ""); err != nil {
			t.Fatal(err)
		}
		err := Fail(t, ex, env.Agent, &backends.PullRequest{Scope: scope("pull")})
		if backends.CategoryOf(err) != backends.ResourceExhausted || !strings.Contains(backends.MessageOf(err), c.limit) ||
			!strings.Contains(backends.MessageOf(err), "the workspace is unchanged") {
			t.Fatalf("pull of %s: %v; want resource_exhausted naming the %s", c.path, err, c.limit)
		}
		if after := snapshotWS(t, ex, env, "pull"); after != before {
			t.Errorf("pull of %s changed the workspace:\n%s\n%s", c.path, before, after)
		}
		if got := trackingTip(t, ex, env); got != tracking {
			t.Errorf("pull of %s moved origin/main from %s to %s", c.path, tracking, got)
		}
		if tmp := tempObjects(t, env.SandboxRoots); len(tmp) > 0 {
			t.Errorf("pull of %s left temporary objects: %v", c.path, tmp)
		}
		// Undo the remote's commit, so that the next case is on its own.
		env.RemoteGit(t, "update-ref", "refs/heads/main", "refs/heads/main~1")
	}
	// Within the limits, the same workspace still pulls.
	if _, err := env.Remote.CommitFile(Ctx(t), "demo", "main", "small.txt", "small\n", ""); err != nil {
		t.Fatal(err)
	}
	if res := Do[*backends.PullResult](t, ex, env.Agent, &backends.PullRequest{Scope: scope("pull")}); !res.Updated {
		t.Fatalf("pull within the limits: %+v", res)
	}
}

// trackingTip is the commit origin/main of the workspace "pull" names.
func trackingTip(t *testing.T, ex backends.Executor, env *Env) string {
	t.Helper()
	lg := Do[*backends.LogResult](t, ex, env.Agent, &backends.LogRequest{Scope: scope("pull"), Ref: "refs/remotes/origin/main", Limit: 1})
	if len(lg.Commits) != 1 {
		t.Fatalf("log of origin/main: %+v", lg)
	}
	return lg.Commits[0].SHA
}

// watchPeak measures the disk use under roots until the returned function
// is called, which returns the largest measure.
func watchPeak(t *testing.T, roots []string) func() int64 {
	var peak atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if n := treeSize(t, roots); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() int64 { cancel(); wg.Wait(); return peak.Load() }
}

// treeSize is the size of the files under roots (apparent sizes).
func treeSize(_ *testing.T, roots []string) int64 {
	var n int64
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					n += fi.Size()
				}
			}
			return nil
		})
	}
	return n
}

// tempObjects lists what a stopped fetch leaves in object stores under
// roots.
func tempObjects(_ *testing.T, roots []string) []string {
	var found []string
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && strings.Contains(path, "/objects/") &&
				(strings.HasPrefix(d.Name(), "tmp_") || strings.HasPrefix(d.Name(), "incoming-")) {
				found = append(found, path)
			}
			return nil
		})
	}
	slices.Sort(found)
	return found
}
