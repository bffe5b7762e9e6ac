package approach1_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// hostGitMayFail is hostGit for a command that may exit non-zero (a
// merge that stops on conflicts).
func hostGitMayFail(t *testing.T, b sandbox.Binding, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=Ada", "-c", "user.email=ada@agents.example",
		"--git-dir=" + b.GitDir(), "--work-tree=" + b.WorkTree()}, args...)...)
	cmd.Dir = b.WorkTree()
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1", "LC_ALL=C"}
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// conflictWorld clones workspace "w" and leaves it in the middle of what
// stop does (a merge, a rebase or a cherry-pick) with README.md
// conflicted and, for the merge, clean.txt merged cleanly (staged); plus
// an untracked file the agent wrote meanwhile. It returns the work
// tree's files.
func conflictWorld(t *testing.T, stop string) (*shelfWorld, map[string]string) {
	t.Helper()
	w := newShelfWorld(t, backendtest.NewEnv(t), shelfOptions{})
	agent, ws := w.env.Agent, backends.Scope{Workspace: "w"}
	backendtest.Clone(t, w.ex, w.env, agent, "w")
	write := func(path, content string) {
		backendtest.Do[*backends.WriteFileResult](t, w.ex, agent, &backends.WriteFileRequest{Scope: ws, Path: path, Content: content})
	}
	commit := func(msg string) {
		backendtest.Do[*backends.CommitResult](t, w.ex, agent, &backends.CommitRequest{Scope: ws, Message: msg})
	}
	backendtest.Do[*backends.CheckoutResult](t, w.ex, agent, &backends.CheckoutRequest{Scope: ws, Branch: "other", Create: true})
	write("README.md", "# demo\n\ntheirs\n")
	write("clean.txt", "merged cleanly\n")
	commit("other: change README, add clean.txt")
	backendtest.Do[*backends.CheckoutResult](t, w.ex, agent, &backends.CheckoutRequest{Scope: ws, Branch: "main"})
	write("README.md", "# demo\n\nours\n")
	commit("main: change README")
	b := w.hostBinding(t, "w")
	var out string
	switch stop {
	case "merge":
		out = hostGitMayFail(t, b, "merge", "--no-edit", "other")
	case "rebase":
		out = hostGitMayFail(t, b, "rebase", "other")
	case "cherry_pick":
		out = hostGitMayFail(t, b, "cherry-pick", "other")
	}
	if !strings.Contains(out, "CONFLICT") {
		t.Fatalf("setup: the %s did not stop on a conflict:\n%s", stop, out)
	}
	if u := hostGit(t, b, "ls-files", "--unmerged"); !strings.Contains(u, "README.md") {
		t.Fatalf("setup: README.md is not unmerged:\n%s", u)
	}
	write("notes.txt", "written while resolving\n") // the binding now says: uncommitted changes
	return w, workTreeFiles(t, b.WorkTree())
}

// TestShelvedMergeIsRestored: a workspace reaped in the middle of a
// merge stopped on conflicts is saved and restored with the merge: the
// same index (unmerged entries included), MERGE_HEAD and MERGE_MSG, the
// work tree byte for byte; status shows the merge and its conflicts, the
// agent is told, and finishing the merge makes a merge commit.
func TestShelvedMergeIsRestored(t *testing.T) {
	w, files := conflictWorld(t, "merge")
	old := w.hostBinding(t, "w")
	index := hostGit(t, old, "ls-files", "--stage")
	mergeHead := hostGit(t, old, "rev-parse", "MERGE_HEAD")
	mergeMsg, err := os.ReadFile(old.GitDir() + "/MERGE_MSG")
	if err != nil {
		t.Fatal(err)
	}
	refs := hostGit(t, old, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/")
	if n := w.reap(t); n != 1 {
		t.Fatalf("reaped %d sandboxes, want 1 (the workspace's work could not be saved?):\n%s", n, w.log.String())
	}
	st := backendtest.Do[*backends.StatusResult](t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: "w"}})
	if len(st.Notices) != 2 || !strings.Contains(st.Notices[1], "the merge was restored with it") || !strings.Contains(st.Notices[1], "README.md") {
		t.Fatalf("notices = %q, want the restore's and one telling that the merge was restored with its conflicts", st.Notices)
	}
	if st.InProgress != "merge" || len(st.Conflicts) != 1 || st.Conflicts[0].Path != "README.md" || st.Branch != "main" {
		t.Fatalf("status after the restore: %+v, want the merge in progress with README.md conflicted", st)
	}
	nb := w.hostBinding(t, "w")
	if nb.SandboxID == old.SandboxID {
		t.Fatal("not restored into a new sandbox")
	}
	if got := hostGit(t, nb, "ls-files", "--stage"); got != index {
		t.Errorf("restored index\n%s\nwant\n%s", got, index)
	}
	if got := hostGit(t, nb, "rev-parse", "MERGE_HEAD"); got != mergeHead {
		t.Errorf("restored MERGE_HEAD %s, want %s", got, mergeHead)
	}
	if got, _ := os.ReadFile(nb.GitDir() + "/MERGE_MSG"); string(got) != string(mergeMsg) {
		t.Errorf("restored MERGE_MSG %q, want %q", got, mergeMsg)
	}
	if got := workTreeFiles(t, nb.WorkTree()); !reflect.DeepEqual(got, files) {
		t.Errorf("restored work tree differs:\n got %q\nwant %q", got, files)
	}
	if got := hostGit(t, nb, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/"); got != refs {
		t.Errorf("restored branches\n%s\nwant\n%s", got, refs)
	}
	// The agent finishes the merge.
	backendtest.Do[*backends.WriteFileResult](t, w.ex, w.env.Agent, &backends.WriteFileRequest{Scope: backends.Scope{Workspace: "w"}, Path: "README.md", Content: "# demo\n\nboth\n"})
	hostGit(t, nb, "add", "README.md")
	hostGitMayFail(t, nb, "commit", "--no-edit")
	if parents := strings.Fields(hostGit(t, nb, "rev-list", "--parents", "-1", "HEAD")); len(parents) != 3 || parents[2]+"\n" != mergeHead {
		t.Fatalf("the finished merge's commit and parents: %q, want a merge of %s", parents, mergeHead)
	}
}

// TestShelvedMergeRestoreFailureIsToldLost: a merge whose saved state
// cannot be put back (here: an object its conflict names is missing) is
// restored without it — index and git directory as for a lost operation
// — and the agent told it was lost, never left half-restored.
func TestShelvedMergeRestoreFailureIsToldLost(t *testing.T) {
	w, files := conflictWorld(t, "merge")
	if n := w.reap(t); n != 1 {
		t.Fatalf("reaped %d sandboxes, want 1", n)
	}
	entry := filepath.Join(w.vaultDir, w.binding(t, "w").Shelf)
	data, err := os.ReadFile(entry)
	if err != nil {
		t.Fatal(err)
	}
	missing := regexp.MustCompile(`("unmerged":\[\{"mode":"[0-7]+","object":")[0-9a-f]{40}`)
	if !missing.Match(data) {
		t.Fatalf("the shelf's manifest holds no unmerged entry:\n%.2000s", data)
	}
	if err := os.WriteFile(entry, missing.ReplaceAll(data, []byte("${1}"+strings.Repeat("e", 40))), 0o600); err != nil {
		t.Fatal(err)
	}
	st := backendtest.Do[*backends.StatusResult](t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: "w"}})
	if len(st.Notices) != 2 || !strings.Contains(st.Notices[1], "could not be saved") || !strings.Contains(st.Notices[1], "merge again") {
		t.Fatalf("notices = %q, want one telling that the merge was lost", st.Notices)
	}
	nb := w.hostBinding(t, "w")
	if st.InProgress != "" || len(st.Conflicts) != 0 || hostGit(t, nb, "ls-files", "--unmerged") != "" {
		t.Fatalf("status after a failed merge restore: %+v", st)
	}
	if _, err := os.Stat(nb.GitDir() + "/MERGE_HEAD"); !os.IsNotExist(err) {
		t.Fatalf("MERGE_HEAD left after a failed merge restore (%v)", err)
	}
	if got := workTreeFiles(t, nb.WorkTree()); !reflect.DeepEqual(got, files) {
		t.Errorf("restored work tree differs:\n got %q\nwant %q", got, files)
	}
}

// TestShelvedConflictIsToldLost: a workspace reaped in the middle of a
// rebase or a cherry-pick stopped on conflicts is saved and restored
// (branches, commits, the work tree byte for byte with its conflict
// markers, what the operation had staged), and since the operation itself
// cannot be, the agent is told on the next call that it was lost, which
// paths were conflicted and how to redo it.
func TestShelvedConflictIsToldLost(t *testing.T) {
	for _, c := range []struct {
		stop, says string
		detached   bool
	}{
		{stop: "rebase", says: `branch "main" is still at its commit from before the rebase`, detached: true},
		{stop: "cherry_pick", says: "cherry-pick again"},
	} {
		t.Run(c.stop, func(t *testing.T) {
			w, files := conflictWorld(t, c.stop)
			old := w.hostBinding(t, "w")
			refs := hostGit(t, old, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/")
			head := strings.TrimSpace(hostGit(t, old, "rev-parse", "HEAD"))
			staged := hostGit(t, old, "diff", "--cached", "--name-only")
			if n := w.reap(t); n != 1 {
				t.Fatalf("reaped %d sandboxes, want 1 (the workspace's work could not be saved?):\n%s", n, w.log.String())
			}
			if b := w.binding(t, "w"); b.Shelf == "" {
				t.Fatalf("binding after the reap = %+v, want it shelved", b)
			}
			st := backendtest.Do[*backends.StatusResult](t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: "w"}})
			var lost string
			for _, n := range st.Notices {
				if strings.Contains(n, "could not be saved") {
					lost = n
				}
			}
			word := strings.ReplaceAll(c.stop, "_", "-")
			if len(st.Notices) != 2 || !strings.Contains(st.Notices[0], "restored") || lost == "" ||
				!strings.Contains(lost, "middle of a "+word) || !strings.Contains(lost, "README.md") || !strings.Contains(lost, c.says) {
				t.Fatalf("notices = %q, want the restore's and one telling that the %s was lost, naming README.md and saying %q", st.Notices, word, c.says)
			}
			nb := w.hostBinding(t, "w")
			if got := workTreeFiles(t, nb.WorkTree()); !reflect.DeepEqual(got, files) {
				t.Errorf("restored work tree differs:\n got %q\nwant %q", got, files)
			}
			if !strings.Contains(files["README.md"], "<<<<<<<") {
				t.Errorf("README.md lost its conflict markers: %q", files["README.md"])
			}
			if got := hostGit(t, nb, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/"); got != refs {
				t.Errorf("restored branches\n%s\nwant\n%s", got, refs)
			}
			if got := strings.TrimSpace(hostGit(t, nb, "rev-parse", "HEAD")); got != head {
				t.Errorf("restored HEAD %s, want %s", got, head)
			}
			if got := hostGit(t, nb, "diff", "--cached", "--name-only"); strings.ReplaceAll(got, "README.md\n", "") != strings.ReplaceAll(staged, "README.md\n", "") {
				t.Errorf("restored staged paths %q, want %q (README.md aside)", got, staged)
			}
			if u := hostGit(t, nb, "ls-files", "--unmerged"); u != "" {
				t.Errorf("restored index has unmerged entries:\n%s", u)
			}
			for _, f := range []string{"MERGE_HEAD", "CHERRY_PICK_HEAD", "rebase-merge", "rebase-apply", "sequencer"} {
				if _, err := os.Stat(nb.GitDir() + "/" + f); !os.IsNotExist(err) {
					t.Errorf("restored git directory has %s (%v), but the notice says the operation was lost", f, err)
				}
			}
			if st.InProgress != "" || (st.Branch == "") != c.detached {
				t.Errorf("status after the restore: in progress %q, branch %q", st.InProgress, st.Branch)
			}
			// The restored workspace works: the agent can finish by hand.
			backendtest.Do[*backends.CommitResult](t, w.ex, w.env.Agent, &backends.CommitRequest{Scope: backends.Scope{Workspace: "w"}, Message: "Resolved by hand"})
		})
	}
}
