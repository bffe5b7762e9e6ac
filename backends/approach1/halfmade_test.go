package approach1_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// TestHalfMadeWorkspaceIsRemovedAndClonedAgain: what a process killed
// part-way through a clone leaves — a git directory whose clone had not
// finished, with no binding; or a binding whose git directory the killed
// process's git removed afterwards (git clone removes its files when a
// signal stops it) — answers not_found "the clone … did not finish; clone
// again", never internal ("fatal: not a git repository") nor a workspace
// rebuilt from the half-made files; the half-made files are removed, and
// cloning again works.
func TestHalfMadeWorkspaceIsRemovedAndClonedAgain(t *testing.T) {
	env := backendtest.NewEnv(t)
	binds := sandbox.NewMemoryBindings()
	ex := engineOn(t, env, t.TempDir(), binds, "approach1")
	p := env.Agent
	key := sandbox.WorkspaceKey{Project: p.Project, Name: "half"}
	status := &backends.StatusRequest{Scope: backends.Scope{Workspace: "half"}}
	wantHalfMade := func(when string) {
		t.Helper()
		err := backendtest.Fail(t, ex, p, status)
		if backends.CategoryOf(err) != backends.NotFound || !strings.Contains(backends.MessageOf(err), `the clone into workspace "half" did not finish; clone again`) {
			t.Fatalf("%s: status answered %v, want not_found: the clone did not finish; clone again", when, err)
		}
	}

	// The binding outlived its git directory.
	backendtest.Clone(t, ex, env, p, "half")
	b, ok, err := binds.Get(t.Context(), key)
	if err != nil || !ok {
		t.Fatalf("binding after the clone: %v %v", ok, err)
	}
	if _, err := os.Stat(b.Root + "/git/half.cloning"); !os.IsNotExist(err) {
		t.Fatalf("a finished clone left its mark (%v)", err)
	}
	if err := os.RemoveAll(b.GitDir()); err != nil {
		t.Fatal(err)
	}
	wantHalfMade("git directory gone")
	backendtest.Clone(t, ex, env, p, "half")
	backendtest.Do[*backends.StatusResult](t, ex, p, status)

	// A clone killed before its checkout: the git directory (a complete
	// transfer, HEAD on main), the work tree without files, the clone's
	// mark, and no binding.
	release := &backends.ReleaseWorkspaceRequest{Scope: backends.Scope{Workspace: "half"}}
	backendtest.Do[*backends.ReleaseWorkspaceResult](t, ex, p, release)
	killedClone(t, env, b)
	wantHalfMade("clone killed before its checkout")
	for _, dir := range []string{b.GitDir(), b.WorkTree()} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", dir, err)
		}
	}
	backendtest.Clone(t, ex, env, p, "half")
	if st := backendtest.Do[*backends.StatusResult](t, ex, p, status); !st.Clean {
		t.Fatalf("status after cloning again: %+v", st)
	}

	// And a clone over such leftovers works at once.
	backendtest.Do[*backends.ReleaseWorkspaceResult](t, ex, p, release)
	killedClone(t, env, b)
	backendtest.Clone(t, ex, env, p, "half")
	if st := backendtest.Do[*backends.StatusResult](t, ex, p, status); !st.Clean {
		t.Fatalf("status after cloning over the leftovers: %+v", st)
	}
}

// killedClone leaves in b's sandbox what a clone into b's workspace leaves
// when its process is killed between the transfer and the checkout.
func killedClone(t *testing.T, env *backendtest.Env, b sandbox.Binding) {
	t.Helper()
	if err := os.WriteFile(b.Root+"/git/"+b.Key.Name+".cloning", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"clone", "-q", "--no-checkout", "--separate-git-dir=" + b.GitDir(), filepath.Join(env.RemoteFS, "demo.git"), b.WorkTree()},
		{"--git-dir=" + b.GitDir(), "config", "remote.origin.url", env.RepoURL},
	} {
		cmd := exec.Command("/usr/bin/git", args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C"}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
}
