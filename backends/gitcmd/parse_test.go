package gitcmd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

func TestParseStatusRealRepo(t *testing.T) {
	repo := newRepo(t)
	for name, content := range map[string]string{"mod.txt": "a\n", "with space.txt": "a\n", "del.txt": "a\n", "gone.txt": "a\n",
		"old name.txt": "rename me\n", "mm.txt": "a\n", "conflict.txt": "base\n"} {
		writeFile(t, filepath.Join(repo, name), content, 0o644)
	}
	setupGit(t, repo, "add", "-A")
	setupGit(t, repo, "commit", "-q", "-m", "base")
	setupGit(t, repo, "checkout", "-q", "-b", "other")
	writeFile(t, filepath.Join(repo, "conflict.txt"), "other\n", 0o644)
	setupGit(t, repo, "commit", "-q", "-am", "other")
	setupGit(t, repo, "checkout", "-q", "main")
	writeFile(t, filepath.Join(repo, "conflict.txt"), "main\n", 0o644)
	setupGit(t, repo, "commit", "-q", "-am", "main")
	if out, err := plainGit(t, repo, "merge", "other"); err == nil || !strings.Contains(out, "CONFLICT") {
		t.Fatalf("merge should conflict: %v\n%s", err, out)
	}
	writeFile(t, filepath.Join(repo, "mod.txt"), "b\n", 0o644)
	writeFile(t, filepath.Join(repo, "with space.txt"), "b\n", 0o644)
	if err := os.Remove(filepath.Join(repo, "del.txt")); err != nil {
		t.Fatal(err)
	}
	setupGit(t, repo, "rm", "-q", "gone.txt")
	setupGit(t, repo, "mv", "old name.txt", "new name.txt")
	writeFile(t, filepath.Join(repo, "mm.txt"), "b\n", 0o644)
	setupGit(t, repo, "add", "mm.txt")
	writeFile(t, filepath.Join(repo, "mm.txt"), "c\n", 0o644)
	writeFile(t, filepath.Join(repo, "added.txt"), "new\n", 0o644)
	setupGit(t, repo, "add", "added.txt")
	writeFile(t, filepath.Join(repo, "caf\u00e9.txt"), "untracked\n", 0o644)
	if err := os.Mkdir(filepath.Join(repo, "new dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(repo, "new dir", "\u00e9 x.txt"), "untracked\n", 0o644)

	out := gatewayGit(t, repo, StatusArgs...)
	got := ParseStatus(out)
	want := backends.StatusResult{Branch: "main", Head: setupGit(t, repo, "rev-parse", "HEAD"), Entries: []backends.StatusEntry{
		{Path: "added.txt", Staged: "A", Unstaged: "."},
		{Path: "caf\u00e9.txt", Staged: ".", Unstaged: "?"},
		{Path: "conflict.txt", Staged: "U", Unstaged: "U"},
		{Path: "del.txt", Staged: ".", Unstaged: "D"},
		{Path: "gone.txt", Staged: "D", Unstaged: "."},
		{Path: "mm.txt", Staged: "M", Unstaged: "M"},
		{Path: "mod.txt", Staged: ".", Unstaged: "M"},
		{Path: "new dir/\u00e9 x.txt", Staged: ".", Unstaged: "?"},
		{Path: "new name.txt", OrigPath: "old name.txt", Staged: "R", Unstaged: "."},
		{Path: "with space.txt", Staged: ".", Unstaged: "M"},
	}}
	slices.SortFunc(got.Entries, func(a, b backends.StatusEntry) int { return strings.Compare(a.Path, b.Path) })
	if !statusEqual(got, want) {
		t.Errorf("ParseStatus:\n got %+v\nwant %+v\nraw %q", got, want, out)
	}

	// Every truncation of real output (the sandbox caps stdout) must parse
	// without panicking. Prefixes ending in a lone "?" record are the known
	// bug checked by TestParseStatusTruncatedUntrackedRecord.
	for i := range len(out) {
		if bytes.HasSuffix(out[:i], []byte("\x00?")) {
			continue
		}
		_ = ParseStatus(out[:i])
	}
}

func TestParseStatusTruncatedUntrackedRecord(t *testing.T) {
	_ = ParseStatus([]byte("# branch.oid (initial)\x00# branch.head main\x00? a.txt\x00?"))
}

func TestParseStatusHeads(t *testing.T) {
	t.Run("unborn", func(t *testing.T) {
		repo := newRepo(t)
		if got := ParseStatus(gatewayGit(t, repo, StatusArgs...)); !statusEqual(got, backends.StatusResult{Branch: "main", Clean: true, Entries: []backends.StatusEntry{}}) {
			t.Errorf("empty unborn repo: %+v", got)
		}
		writeFile(t, filepath.Join(repo, "x"), "x", 0o644)
		want := backends.StatusResult{Branch: "main", Entries: []backends.StatusEntry{{Path: "x", Staged: ".", Unstaged: "?"}}}
		if got := ParseStatus(gatewayGit(t, repo, StatusArgs...)); !statusEqual(got, want) {
			t.Errorf("unborn repo with untracked file: %+v, want %+v", got, want)
		}
	})
	t.Run("detached", func(t *testing.T) {
		repo := newRepo(t)
		setupGit(t, repo, "commit", "-q", "--allow-empty", "-m", "one")
		setupGit(t, repo, "checkout", "-q", "--detach")
		want := backends.StatusResult{Head: setupGit(t, repo, "rev-parse", "HEAD"), Clean: true, Entries: []backends.StatusEntry{}}
		if got := ParseStatus(gatewayGit(t, repo, StatusArgs...)); !statusEqual(got, want) {
			t.Errorf("detached: %+v, want %+v", got, want)
		}
	})
	t.Run("ahead and behind upstream", func(t *testing.T) {
		origin, a := cloneOf(t)
		_, b := cloneOf(t, origin)
		for range 2 {
			setupGit(t, b, "commit", "-q", "--allow-empty", "-m", "theirs")
		}
		setupGit(t, b, "push", "-q", "origin", "main")
		for range 3 {
			setupGit(t, a, "commit", "-q", "--allow-empty", "-m", "ours")
		}
		setupGit(t, a, "fetch", "-q")
		want := backends.StatusResult{Branch: "main", Head: setupGit(t, a, "rev-parse", "HEAD"), Upstream: "origin/main", Ahead: 3, Behind: 2, Clean: true, Entries: []backends.StatusEntry{}}
		if got := ParseStatus(gatewayGit(t, a, StatusArgs...)); !statusEqual(got, want) {
			t.Errorf("ahead/behind: %+v, want %+v", got, want)
		}
	})
}

func TestParseLogRealRepo(t *testing.T) {
	repo := newRepo(t)
	setupGit(t, repo, "commit", "-q", "--allow-empty", "-m", "Ün\u00efc\u00f8d\u00e9 \u2713 \u521d\u3081")
	setupGit(t, repo, "commit", "-q", "--allow-empty", "-m", "Second", "-m", "line one\nline two", "-m", "line three")
	setupGit(t, repo, "checkout", "-q", "-b", "side")
	setupGit(t, repo, "commit", "-q", "--allow-empty", "-m", "side work")
	setupGit(t, repo, "checkout", "-q", "main")
	setupGit(t, repo, "commit", "-q", "--allow-empty", "-m", "main work")
	setupGit(t, repo, "merge", "-q", "--no-ff", "-m", "Merge side", "side")

	got := ParseLog(gatewayGit(t, repo, "log", "-z", LogFormat, "--end-of-options", "--"))
	order := strings.Fields(setupGit(t, repo, "rev-list", "HEAD"))
	rev := func(r string) string { return setupGit(t, repo, "rev-parse", r) }
	commit := func(r, subject, body string, parents ...string) backends.Commit {
		return backends.Commit{SHA: rev(r), Parents: parents, AuthorName: "Ann Author", AuthorEmail: "ann@example.com",
			AuthorDate: "2024-01-02T03:04:05+00:00", Committer: "Cy Committer <cy@example.com>", Subject: subject, Body: body}
	}
	want := map[string]backends.Commit{}
	for _, c := range []backends.Commit{
		commit("HEAD", "Merge side", "", rev("HEAD^1"), rev("HEAD^2")),
		commit("HEAD^1", "main work", "", rev("HEAD~2")),
		commit("HEAD^2", "side work", "", rev("HEAD~2")),
		commit("HEAD~2", "Second", "line one\nline two\n\nline three", rev("HEAD~3")),
		commit("HEAD~3", "Ün\u00efc\u00f8d\u00e9 \u2713 \u521d\u3081", "", []string{}...),
	} {
		want[c.SHA] = c
	}
	if len(got) != len(order) {
		t.Fatalf("ParseLog returned %d commits, want %d: %+v", len(got), len(order), got)
	}
	for i, c := range got {
		w := want[c.SHA]
		if c.SHA != order[i] || !slices.Equal(c.Parents, w.Parents) || c.Parents == nil ||
			c.AuthorName != w.AuthorName || c.AuthorEmail != w.AuthorEmail || c.AuthorDate != w.AuthorDate ||
			c.Committer != w.Committer || c.Subject != w.Subject || c.Body != w.Body {
			t.Errorf("commit %d:\n got %+v\nwant %+v (sha %s)", i, c, w, order[i])
		}
	}
	if got := ParseLog(nil); got == nil || len(got) != 0 {
		t.Errorf("ParseLog(nil) = %#v, want empty non-nil", got)
	}
}

func TestParseBranchesRealRepo(t *testing.T) {
	origin, repo := cloneOf(t)
	setupGit(t, repo, "checkout", "-q", "-b", "feature")
	setupGit(t, repo, "commit", "-q", "--allow-empty", "-m", "feature")
	setupGit(t, repo, "push", "-q", "-u", "origin", "feature")
	setupGit(t, repo, "branch", "topic", "main")
	setupGit(t, repo, "commit", "-q", "--allow-empty", "-m", "local only")
	if _, err := os.Stat(filepath.Join(repo, ".git", "refs", "remotes", "origin", "HEAD")); err != nil {
		t.Fatalf("clone of %s did not create origin/HEAD: %v", origin, err)
	}
	got := ParseBranches(gatewayGit(t, repo, "for-each-ref", BranchesFormat, "refs/heads/", "refs/remotes/"))
	rev := func(r string) string { return setupGit(t, repo, "rev-parse", r) }
	want := []backends.Branch{
		{Name: "feature", Head: rev("feature"), Upstream: "origin/feature", Current: true},
		{Name: "main", Head: rev("main"), Upstream: "origin/main"},
		{Name: "topic", Head: rev("main")},
		{Name: "origin/feature", Head: rev("origin/feature"), Remote: true},
		{Name: "origin/main", Head: rev("origin/main"), Remote: true},
	}
	if got.Current != "feature" || !slices.Equal(got.Branches, want) {
		t.Errorf("ParseBranches:\n got %q %+v\nwant %q %+v", got.Current, got.Branches, "feature", want)
	}
	setupGit(t, repo, "checkout", "-q", "--detach")
	if got := ParseBranches(gatewayGit(t, repo, "for-each-ref", BranchesFormat, "refs/heads/")); got.Current != "" || len(got.Branches) != 3 {
		t.Errorf("detached HEAD: current %q, %d branches; want \"\", 3", got.Current, len(got.Branches))
	}
}

func TestParseBranchesLocalBranchNamedHEAD(t *testing.T) {
	repo := newRepo(t)
	setupGit(t, repo, "commit", "-q", "--allow-empty", "-m", "one")
	if err := ValidateBranch("release/HEAD"); err != nil {
		t.Fatal(err)
	}
	setupGit(t, repo, "branch", "release/HEAD")
	if got := ParseBranches(gatewayGit(t, repo, "for-each-ref", BranchesFormat, "refs/heads/")); len(got.Branches) != 2 {
		t.Errorf("branches %+v, want main and release/HEAD", got.Branches)
	}
}

func TestParsePush(t *testing.T) {
	// Captured from git 2.39 "push --porcelain" (stdout).
	out := "To https://github.com/o/r.git\n" +
		"*\trefs/heads/feat:refs/heads/feat\t[new branch]\n" +
		" \trefs/heads/main:refs/heads/main\t8347b75..609e15b\n" +
		"=\trefs/heads/same:refs/heads/same\t[up to date]\n" +
		"+\trefs/heads/f:refs/heads/f\t609e15b...c973814 (forced update)\n" +
		"-\t:refs/heads/old\t[deleted]\n" +
		"!\trefs/heads/dev:refs/heads/dev\t[rejected] (non-fast-forward)\n" +
		"!\trefs/heads/prot:refs/heads/prot\t[remote rejected] (protected branch hook declined)\n" +
		"Done\n"
	want := []PushStatus{
		{'*', "refs/heads/feat", "[new branch]"},
		{' ', "refs/heads/main", "8347b75..609e15b"},
		{'=', "refs/heads/same", "[up to date]"},
		{'+', "refs/heads/f", "609e15b...c973814 (forced update)"},
		{'-', "refs/heads/old", "[deleted]"},
		{'!', "refs/heads/dev", "[rejected] (non-fast-forward)"},
		{'!', "refs/heads/prot", "[remote rejected] (protected branch hook declined)"},
	}
	if got := ParsePush([]byte(out)); !slices.Equal(got, want) {
		t.Errorf("ParsePush:\n got %q\nwant %q", got, want)
	}
	if got := ParsePush([]byte("error: failed to push some refs to 'x'\nDone\n")); len(got) != 0 {
		t.Errorf("no ref lines: got %q", got)
	}
}

func statusEqual(a, b backends.StatusResult) bool {
	return a.Branch == b.Branch && a.Head == b.Head && a.Upstream == b.Upstream && a.Ahead == b.Ahead &&
		a.Behind == b.Behind && a.Clean == b.Clean && a.Entries != nil && slices.Equal(a.Entries, b.Entries)
}

// gatewayGit runs args through Build exactly as the gateway would (git dir
// and work tree given explicitly, read-only) and returns stdout.
func gatewayGit(t *testing.T, repo string, args ...string) []byte {
	t.Helper()
	home := t.TempDir()
	c := Build(DefaultGitPath, home, home, Invocation{GitDir: filepath.Join(repo, ".git"), WorkTree: repo, Args: args, ReadOnly: true})
	cmd := exec.CommandContext(t.Context(), c.Path, c.Args...)
	var stderr bytes.Buffer
	cmd.Dir, cmd.Env, cmd.Stderr = repo, c.Env, &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %q through Build: %v\n%s", args, err, stderr.String())
	}
	return out
}

func newRepo(t *testing.T) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "repo")
	setupGit(t, filepath.Dir(repo), "init", "-q", "-b", "main", repo)
	return repo
}

// cloneOf clones a bare origin (a new one with one commit on main when
// origin is not given) and returns the origin and the clone. Test setup
// only: the gateway itself never allows the file transport.
func cloneOf(t *testing.T, origin ...string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if len(origin) == 0 {
		seed := newRepo(t)
		setupGit(t, seed, "commit", "-q", "--allow-empty", "-m", "seed")
		origin = []string{filepath.Join(dir, "origin.git")}
		setupGit(t, dir, "clone", "-q", "--bare", seed, origin[0])
	}
	clone := filepath.Join(dir, "clone")
	setupGit(t, dir, "-c", "protocol.file.allow=always", "clone", "-q", "file://"+origin[0], clone)
	setupGit(t, clone, "config", "protocol.file.allow", "always")
	return origin[0], clone
}
