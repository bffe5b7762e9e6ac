package approach1_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
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

func forkScope(ws string) backends.Scope { return backends.Scope{Workspace: ws} }

// gitAt runs the host's git on a workspace's git directory (as an
// operator would, outside the gateway) and returns its trimmed output.
func gitAt(t testing.TB, gitDir string, args ...string) string {
	t.Helper()
	out, err := gitAtErr(gitDir, args...)
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return out
}

func gitAtErr(gitDir string, args ...string) (string, error) {
	cmd := exec.Command("/usr/bin/git", append([]string{"--git-dir=" + gitDir}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func bindingOf(t testing.TB, binds sandbox.BindingStore, p backends.Principal, ws string) sandbox.Binding {
	t.Helper()
	b, ok, err := binds.Get(context.Background(), sandbox.WorkspaceKey{Project: p.Project, Name: ws})
	if err != nil || !ok {
		t.Fatalf("binding of %q: ok %v, err %v", ws, ok, err)
	}
	return b
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestForkWorkspace: a fork starts from the source's HEAD (an unpushed
// commit), in the source's sandbox, sharing its object files (hard
// links), looking like a clone of the real remote (origin's URL without a
// token, the source's remote-tracking refs, the new branch its only
// local branch); the prediction agrees with it and catches an injected
// difference; the fork commits and pushes its branch to the remote
// without touching the source; and it keeps working after the source is
// released.
func TestForkWorkspace(t *testing.T) {
	env := backendtest.NewEnv(t)
	binds := sandbox.NewMemoryBindings()
	ex := backendtest.NewEngine(t, env, &lock.Memory{}, binds)
	p := env.Agent
	ctx := backendtest.Ctx(t)

	backendtest.Clone(t, ex, env, p, "src")
	backendtest.Do[*backends.CheckoutResult](t, ex, p, &backends.CheckoutRequest{Scope: forkScope("src"), Branch: "work", Create: true})
	backendtest.Do[*backends.WriteFileResult](t, ex, p, &backends.WriteFileRequest{Scope: forkScope("src"), Path: "a.txt", Content: "from the source\n"})
	srcCommit := backendtest.Do[*backends.CommitResult](t, ex, p, &backends.CommitRequest{Scope: forkScope("src"), Message: "Source work"})

	req := &backends.ForkWorkspaceRequest{Scope: forkScope("fk"), Source: "src", Branch: "feat"}
	res := backendtest.Do[*backends.ForkWorkspaceResult](t, ex, p, req)
	if res.Workspace != "fk" || res.Branch != "feat" || res.Head != srcCommit.SHA {
		t.Fatalf("fork result %+v, want workspace fk on feat at the source's HEAD %s", res, srcCommit.SHA)
	}

	// The prediction agrees (A/A).
	pred, err := ex.Predict(ctx, req, res)
	if err != nil {
		t.Fatal(err)
	}
	if pred.Stale != "" || !maps.Equal(pred.Expected, pred.Found) {
		t.Fatalf("prediction of the fork: stale %q\nexpected %v\nfound    %v", pred.Stale, pred.Expected, pred.Found)
	}

	src, fk := bindingOf(t, binds, p, "src"), bindingOf(t, binds, p, "fk")
	if fk.SandboxID != src.SandboxID || fk.URL != src.URL || fk.Branch != "feat" || !slices.Contains(strings.Fields(fk.Unpushed), "feat") || fk.Dirty {
		t.Fatalf("fork's binding %+v, source's %+v", fk, src)
	}
	if got := gitAt(t, fk.GitDir(), "config", "--get", "remote.origin.url"); got != src.URL || got != env.RepoURL {
		t.Fatalf("fork's origin is %q, want the source's %q", got, src.URL)
	}
	cfg, err := os.ReadFile(fk.GitDir() + "/config")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), backendtest.Token) || strings.Contains(string(cfg), src.GitDir()) || strings.Contains(string(cfg), "[branch") {
		t.Fatalf("fork's configuration names a token, the source or a branch upstream:\n%s", cfg)
	}
	// The configuration passes the check every remote command makes.
	list := gitAt(t, fk.GitDir(), "config", "--file="+fk.GitDir()+"/config", "--no-includes", "--null", "--list")
	if key, err := gitcmd.CheckLocalConfig([]byte(list), src.URL); err != nil {
		t.Fatalf("fork's configuration refused (%s): %v", key, err)
	}
	tracking := func(gitDir string) string {
		return gitAt(t, gitDir, "for-each-ref", "--format=%(refname) %(objectname) %(symref)", "refs/remotes/")
	}
	if a, b := tracking(fk.GitDir()), tracking(src.GitDir()); a != b || !strings.Contains(a, "refs/remotes/origin/main ") {
		t.Fatalf("fork's remote-tracking refs\n%s\nsource's\n%s", a, b)
	}
	if got := gitAt(t, fk.GitDir(), "for-each-ref", "--format=%(refname)", "refs/heads/"); got != "refs/heads/feat" {
		t.Fatalf("fork's local branches: %q, want refs/heads/feat only", got)
	}
	if _, err := os.Stat(fk.WorkTree() + "/.git"); !os.IsNotExist(err) {
		t.Fatalf("the fork's work tree holds a .git (%v)", err)
	}
	if _, err := os.Stat(fk.Root + "/git/fk.cloning"); !os.IsNotExist(err) {
		t.Fatalf("a finished fork left its mark (%v)", err)
	}
	// Objects are shared: the source's pack is the fork's (hard link).
	packs, _ := filepath.Glob(src.GitDir() + "/objects/pack/*.pack")
	if len(packs) == 0 {
		t.Fatal("the source has no pack")
	}
	if inode(t, packs[0]) != inode(t, fk.GitDir()+"/objects/pack/"+filepath.Base(packs[0])) {
		t.Fatal("the fork's pack is a copy, not a hard link of the source's")
	}
	st := backendtest.Do[*backends.StatusResult](t, ex, p, &backends.StatusRequest{Scope: forkScope("fk")})
	if !st.Clean || st.Branch != "feat" {
		t.Fatalf("fork's status %+v", st)
	}
	if f := backendtest.Do[*backends.ReadFileResult](t, ex, p, &backends.ReadFileRequest{Scope: forkScope("fk"), Path: "a.txt"}); f.Content != "from the source\n" {
		t.Fatalf("fork's a.txt: %q", f.Content)
	}

	// Injected differences are caught.
	mainSHA := gitAt(t, fk.GitDir(), "rev-parse", "refs/remotes/origin/main")
	gitAt(t, fk.GitDir(), "update-ref", "refs/remotes/origin/main", srcCommit.SHA)
	pred, err = ex.Predict(ctx, req, res)
	if err != nil {
		t.Fatal(err)
	}
	wantForkMismatch(t, pred, "remote_tracking")
	gitAt(t, fk.GitDir(), "update-ref", "refs/remotes/origin/main", mainSHA)
	gitAt(t, fk.GitDir(), "config", "remote.origin.url", env.RepoURL+"-other")
	pred, err = ex.Predict(ctx, req, res)
	if err != nil {
		t.Fatal(err)
	}
	wantForkMismatch(t, pred, "origin_url")
	gitAt(t, fk.GitDir(), "config", "remote.origin.url", env.RepoURL)
	if pred, err = ex.Predict(ctx, req, res); err != nil || pred.Stale != "" || !maps.Equal(pred.Expected, pred.Found) {
		t.Fatalf("prediction after undoing the injections: %+v %v", pred, err)
	}

	// The source moves: the prediction is stale, not a mismatch.
	backendtest.Do[*backends.WriteFileResult](t, ex, p, &backends.WriteFileRequest{Scope: forkScope("src"), Path: "later.txt", Content: "later\n"})
	if pred, err = ex.Predict(ctx, req, res); err != nil || pred.Stale == "" {
		t.Fatalf("prediction after the source moved: %+v %v, want stale", pred, err)
	}

	// The fork commits and pushes; the source does not see it.
	srcRefs := gitAt(t, src.GitDir(), "for-each-ref")
	backendtest.Do[*backends.WriteFileResult](t, ex, p, &backends.WriteFileRequest{Scope: forkScope("fk"), Path: "b.txt", Content: "from the fork\n"})
	fc := backendtest.Do[*backends.CommitResult](t, ex, p, &backends.CommitRequest{Scope: forkScope("fk"), Message: "Fork work"})
	if fc.Branch != "feat" {
		t.Fatalf("fork's commit on %q", fc.Branch)
	}
	push := backendtest.Do[*backends.PushResult](t, ex, p, &backends.PushRequest{Scope: forkScope("fk")})
	if !push.Created || env.RemoteRef(t, "refs/heads/feat") != fc.SHA {
		t.Fatalf("push of the fork's branch: %+v, remote has %q, want %s", push, env.RemoteRef(t, "refs/heads/feat"), fc.SHA)
	}
	if got := gitAt(t, src.GitDir(), "for-each-ref"); got != srcRefs {
		t.Fatalf("the source's refs changed with the fork's commit and push:\n%s\nwas\n%s", got, srcRefs)
	}
	if st := backendtest.Do[*backends.StatusResult](t, ex, p, &backends.StatusRequest{Scope: forkScope("src")}); st.Branch != "work" || len(st.Entries) != 1 {
		t.Fatalf("source's status after the fork's work: %+v", st)
	}
	err = backendtest.Fail(t, ex, p, &backends.ReadFileRequest{Scope: forkScope("src"), Path: "b.txt"})
	backendtest.WantCategory(t, err, backends.NotFound)

	// The source goes; the fork stays whole.
	backendtest.Do[*backends.ReleaseWorkspaceResult](t, ex, p, &backends.ReleaseWorkspaceRequest{Scope: forkScope("src"), Force: true})
	if _, err := os.Stat(src.GitDir()); !os.IsNotExist(err) {
		t.Fatalf("the source's git directory is still there (%v)", err)
	}
	if out, err := gitAtErr(fk.GitDir(), "fsck", "--no-dangling"); err != nil {
		t.Fatalf("fsck of the fork after its source was released: %v\n%s", err, out)
	}
	backendtest.Do[*backends.WriteFileResult](t, ex, p, &backends.WriteFileRequest{Scope: forkScope("fk"), Path: "c.txt", Content: "after the source\n"})
	fc2 := backendtest.Do[*backends.CommitResult](t, ex, p, &backends.CommitRequest{Scope: forkScope("fk"), Message: "After the source"})
	backendtest.Do[*backends.PushResult](t, ex, p, &backends.PushRequest{Scope: forkScope("fk")})
	if env.RemoteRef(t, "refs/heads/feat") != fc2.SHA {
		t.Fatal("the fork's push after its source was released did not reach the remote")
	}
	lg := backendtest.Do[*backends.LogResult](t, ex, p, &backends.LogRequest{Scope: forkScope("fk")})
	var subjects []string
	for _, c := range lg.Commits {
		subjects = append(subjects, c.Subject)
	}
	if want := []string{"After the source", "Fork work", "Source work", "Initial commit"}; !slices.Equal(subjects, want) {
		t.Fatalf("fork's log %q, want %q", subjects, want)
	}
}

func wantForkMismatch(t *testing.T, pred *backends.Prediction, key string) {
	t.Helper()
	if pred.Stale != "" || pred.Expected[key] == pred.Found[key] {
		t.Fatalf("want a mismatch in %q: expected %v, found %v, stale %q", key, pred.Expected, pred.Found, pred.Stale)
	}
}

// sandboxFingerprint hashes every file and directory of the sandboxes'
// work trees and git directories (ws/ and git/), and the bindings.
func sandboxFingerprint(t *testing.T, env *backendtest.Env, binds sandbox.BindingStore) string {
	t.Helper()
	h := sha256.New()
	for _, root := range env.SandboxRoots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			parts := strings.Split(rel, string(filepath.Separator))
			if len(parts) < 2 || (parts[1] != "ws" && parts[1] != "git") {
				if d.IsDir() && len(parts) == 2 {
					return filepath.SkipDir
				}
				return nil
			}
			fmt.Fprintf(h, "%s %v\n", rel, d.Type())
			if d.Type().IsRegular() {
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				h.Write(data)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	list, err := binds.List(context.Background(), "alpha")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range list {
		fmt.Fprintf(h, "%s %s %s %s %v %q %d\n", b.Key, b.SandboxID, b.URL, b.Branch, b.Dirty, b.Unpushed, b.Writes)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestForkWorkspaceBadInput: an existing name, a missing source, an
// option-looking or ambiguous branch, a bad start point are refused with
// their category and change nothing (no sandbox file, no binding, no
// remote ref).
func TestForkWorkspaceBadInput(t *testing.T) {
	env := backendtest.NewEnv(t)
	binds := sandbox.NewMemoryBindings()
	ex := backendtest.NewEngine(t, env, &lock.Memory{}, binds)
	p := env.Agent
	backendtest.Clone(t, ex, env, p, "src")
	backendtest.Clone(t, ex, env, p, "taken")
	gitAt(t, bindingOf(t, binds, p, "src").GitDir(), "tag", "v1") // a tag of the source's
	before := sandboxFingerprint(t, env, binds)
	remoteBefore := env.RemoteGit(t, "for-each-ref")

	fork := func(ws, source, branch, start string) *backends.ForkWorkspaceRequest {
		return &backends.ForkWorkspaceRequest{Scope: forkScope(ws), Source: source, Branch: branch, StartPoint: start}
	}
	for _, c := range []struct {
		name string
		req  *backends.ForkWorkspaceRequest
		want backends.Category
		says string
	}{
		{"existing name", fork("taken", "src", "x", ""), backends.Conflict, `"taken" already exists`},
		{"the source's own name", fork("src", "src", "x", ""), backends.InvalidArgument, "another name"},
		{"missing source", fork("new", "nope", "x", ""), backends.NotFound, `"nope"`},
		{"no source", fork("new", "", "x", ""), backends.InvalidArgument, "source"},
		{"option-looking source", fork("new", "--upload-pack=x", "x", ""), backends.InvalidArgument, ""},
		{"option-looking workspace", fork("-rf", "src", "x", ""), backends.InvalidArgument, ""},
		{"option-looking branch", fork("new", "src", "--force", ""), backends.InvalidArgument, ""},
		{"option-looking branch -D", fork("new", "src", "-D", ""), backends.InvalidArgument, ""},
		{"no branch", fork("new", "src", "", ""), backends.InvalidArgument, ""},
		{"branch shadowing origin's", fork("new", "src", "origin/main", ""), backends.InvalidArgument, "origin"},
		{"branch named as a tag", fork("new", "src", "v1", ""), backends.InvalidArgument, "tag"},
		{"option-looking start point", fork("new", "src", "x", "--output=/tmp/pwn"), backends.InvalidArgument, ""},
		{"start point with a range", fork("new", "src", "x", "main..HEAD"), backends.InvalidArgument, ""},
		{"missing start point", fork("new", "src", "x", "no-such-branch"), backends.NotFound, "no-such-branch"},
		{"start point not a commit id of the repository", fork("new", "src", "x", "0123456789abcdef"), backends.NotFound, ""},
	} {
		err := backendtest.Fail(t, ex, p, c.req)
		if backends.CategoryOf(err) != c.want || !strings.Contains(backends.MessageOf(err), c.says) {
			t.Errorf("%s: %v (%s), want %s saying %q", c.name, err, backends.CategoryOf(err), c.want, c.says)
		}
	}
	if after := sandboxFingerprint(t, env, binds); after != before {
		t.Fatal("refused forks changed the sandboxes or the bindings")
	}
	if got := env.RemoteGit(t, "for-each-ref"); got != remoteBefore {
		t.Fatalf("refused forks changed the remote:\n%s", got)
	}
	// A source whose configuration holds a key the gateway does not write
	// is not cloned from (its git upload-pack would read it).
	taken := bindingOf(t, binds, p, "taken")
	gitAt(t, taken.GitDir(), "config", "core.fsmonitor", "touch /tmp/pwned-by-fork")
	before = sandboxFingerprint(t, env, binds)
	err := backendtest.Fail(t, ex, p, fork("new", "taken", "x", ""))
	backendtest.WantCategory(t, err, backends.Internal)
	if !strings.Contains(backends.MessageOf(err), "core.fsmonitor") {
		t.Errorf("refusal of a planted configuration: %v", err)
	}
	if after := sandboxFingerprint(t, env, binds); after != before {
		t.Fatal("a fork refused for its source's configuration changed the sandboxes or the bindings")
	}
	// A tag is a start point.
	res := backendtest.Do[*backends.ForkWorkspaceResult](t, ex, p, fork("new", "src", "x", "v1"))
	if want := gitAt(t, bindingOf(t, binds, p, "src").GitDir(), "rev-parse", "v1^{commit}"); res.Head != want {
		t.Fatalf("fork from tag v1 at %s, want %s", res.Head, want)
	}
}

// mutableProjects is a project map whose size limits a test changes.
type mutableProjects struct {
	mu sync.Mutex
	m  approach1.ProjectMap
}

func (m *mutableProjects) Project(name string) (approach1.Project, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.m[name]
	return p, ok
}

func (m *mutableProjects) setSandboxLimit(name string, n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.m[name]
	p.MaxSandboxBytes = n
	m.m[name] = p
}

// TestForkStoppedPartWayLeavesNothing: a fork that fails after its clone
// (here at its check-out, on the sandbox's size limit) removes what it
// made — git directory, work tree, mark, no binding — and leaves the
// source as it was; what a fork killed part-way leaves (the mark, a git
// directory, no binding) is removed like a half-made clone, and a fork
// into the name then works.
func TestForkStoppedPartWayLeavesNothing(t *testing.T) {
	env := backendtest.NewEnv(t)
	binds := sandbox.NewMemoryBindings()
	dir := t.TempDir()
	provider, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	env.SandboxRoots = append(env.SandboxRoots, dir)
	quiet := slog.New(slog.DiscardHandler)
	mgr, err := sandbox.NewManager(sandbox.ManagerConfig{Provider: provider, Bindings: binds, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close(context.WithoutCancel(context.Background())) })
	projects := &mutableProjects{m: approach1.ProjectMap{"alpha": {Remotes: gitcmd.RemotePolicy{Schemes: env.Project.Schemes, Hosts: env.Project.Hosts},
		Token: env.Project.Token, ReadToken: env.Project.ReadToken, Username: "x-access-token", MaxSandboxBytes: -1}}}
	ex, err := approach1.New(approach1.Config{Sandboxes: mgr, Bindings: binds, Locker: &lock.Memory{}, Projects: projects, Logger: quiet,
		Limits: approach1.Limits{DiskPollInterval: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	p := env.Agent
	backendtest.Clone(t, ex, env, p, "src")
	src := bindingOf(t, binds, p, "src")
	used, err := provider.DiskUsage(t.Context(), src.SandboxID, []string{src.Root})
	if err != nil {
		t.Fatal(err)
	}
	// Room for nothing more: the fork's clone (a few files and links) is
	// made, its check-out is refused.
	projects.setSandboxLimit("alpha", used[0]+1)
	before := sandboxFingerprint(t, env, binds)
	req := &backends.ForkWorkspaceRequest{Scope: forkScope("fk"), Source: "src", Branch: "feat"}
	err = backendtest.Fail(t, ex, p, req)
	backendtest.WantCategory(t, err, backends.ResourceExhausted)
	if !strings.Contains(backends.MessageOf(err), "nothing was kept") {
		t.Fatalf("message %q does not say that nothing was kept", backends.MessageOf(err))
	}
	if after := sandboxFingerprint(t, env, binds); after != before {
		t.Fatal("a failed fork left something behind (or changed the source)")
	}
	fkGit, fkTree := sandbox.GitDirPath(src.Root, "fk"), sandbox.WorkTreePath(src.Root, "fk")
	for _, path := range []string{fkGit, fkTree, src.Root + "/git/fk.cloning"} {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("%s is there after a failed fork (%v)", path, err)
		}
	}
	projects.setSandboxLimit("alpha", -1)

	// A fork killed part-way: the mark and the clone's git directory,
	// no binding.
	if err := os.WriteFile(src.Root+"/git/fk.cloning", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/git", "clone", "-q", "--local", "--no-checkout", "--separate-git-dir="+fkGit, src.GitDir(), fkTree)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	err = backendtest.Fail(t, ex, p, &backends.StatusRequest{Scope: forkScope("fk")})
	if backends.CategoryOf(err) != backends.NotFound || !strings.Contains(backends.MessageOf(err), "did not finish") {
		t.Fatalf("status of a fork killed part-way: %v", err)
	}
	for _, path := range []string{fkGit, fkTree, src.Root + "/git/fk.cloning"} {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("%s is still there (%v)", path, err)
		}
	}
	res := backendtest.Do[*backends.ForkWorkspaceResult](t, ex, p, req)
	if st := backendtest.Do[*backends.StatusResult](t, ex, p, &backends.StatusRequest{Scope: forkScope("fk")}); !st.Clean || st.Branch != "feat" || res.Branch != "feat" {
		t.Fatalf("fork after the leftovers: %+v, status %+v", res, st)
	}
}

// BenchmarkForkVsClone compares a fork with a fresh clone from the remote,
// on two repositories of 5,000 files of about 1 KiB in 50 directories:
//
//   - "flat": one commit (a pack of about 450 KiB; writing the work tree
//     is most of either's time and disk);
//   - "history": the same first commit and 300 more, each replacing 30
//     files with 1–4 KiB of new random text (a pack of tens of MiB, the
//     shape of a real repository: history outweighs the work tree).
//
// Each round (b.N rounds, -benchtime Nx) makes one clone and one fork, in
// alternating order, each after a sync (so that neither pays for the
// other's write-back), and releases them untimed. Reported per case:
// "clone-ms", "fork-ms" (mean times); "clone-KiB", "fork-KiB" (what each
// adds to the sandbox's disk, du -s over its git directory and work tree;
// for the fork over the source's and the fork's in one invocation, minus
// the source's, so hard-linked blocks count once); "clone-obj-KiB" (the
// packs the clone received) and "fork-obj-KiB" (the bytes in the fork's
// object store not hard-linked to another file: objects it holds alone).
// The parent prints a table of both cases.
//
//	make bench-fork
//	go test -run '^$' -bench '^BenchmarkForkVsClone$' -benchtime 3x ./backends/approach1/
func BenchmarkForkVsClone(b *testing.B) {
	var rows []forkBenchRow
	for _, c := range []struct {
		name    string
		commits int
	}{{"flat", 0}, {"history", 300}} {
		b.Run(c.name, func(b *testing.B) { rows = append(rows, benchForkVsClone(b, c.name, c.commits)) })
	}
	if len(rows) == 0 {
		return
	}
	var out strings.Builder
	fmt.Fprintf(&out, "\nfork vs fresh clone (5,000 files; mean of N rounds, alternating)\n")
	fmt.Fprintf(&out, "%-8s %7s %3s %9s %9s %11s %11s %13s %13s %11s\n", "case", "commits", "N", "clone-ms", "fork-ms", "clone-KiB", "fork-KiB", "clone-obj-KiB", "fork-obj-KiB", "source-KiB")
	for _, r := range rows {
		fmt.Fprintf(&out, "%-8s %7d %3d %9.0f %9.0f %11d %11d %13d %13d %11d\n", r.name, r.commits+1, r.n, r.cloneMS, r.forkMS, r.cloneKiB, r.forkKiB, r.cloneObjKiB, r.forkObjKiB, r.srcKiB)
	}
	fmt.Fprint(os.Stdout, out.String())
}

type forkBenchRow struct {
	name                string
	commits, n          int
	cloneMS, forkMS     float64
	cloneKiB, forkKiB   int64
	cloneObjKiB, srcKiB int64
	forkObjKiB          int64
}

// benchForkVsClone runs one case of BenchmarkForkVsClone: a remote
// repository of 5,000 files and commits more commits after the first.
func benchForkVsClone(b *testing.B, name string, commits int) forkBenchRow {
	env := backendtest.NewEnv(b)
	ctx := context.Background()
	if err := env.Remote.CreateRepo(ctx, name, nil); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	backendtest.WriteHistory(b, filepath.Join(env.RemoteFS, name+".git"), 5000, commits)
	b.Logf("%s: remote repository of %d commits written in %v", name, commits+1, time.Since(start).Round(time.Millisecond))
	url := env.Remote.RepoURL(name)
	binds := sandbox.NewMemoryBindings()
	ex := backendtest.NewEngine(b, env, &lock.Memory{}, binds)
	p := env.Agent
	backendtest.Do[*backends.CloneResult](b, ex, p, &backends.CloneRequest{Scope: forkScope("source"), URL: url})
	src := bindingOf(b, binds, p, "source")
	duKiB := func(paths ...string) int64 {
		out, err := exec.Command("du", append([]string{"-s", "-k", "--total"}, paths...)...).Output()
		if err != nil {
			b.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var n int64
		if _, err := fmt.Sscan(lines[len(lines)-1], &n); err != nil {
			b.Fatalf("du: %q: %v", out, err)
		}
		return n
	}
	// objKiB sums the sizes of the regular files under a git directory's
	// objects: all of them, or (alone) those with no other hard link.
	objKiB := func(gitDir string, alone bool) int64 {
		var n int64
		err := filepath.WalkDir(filepath.Join(gitDir, "objects"), func(_ string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); !alone || (ok && st.Nlink == 1) {
				n += fi.Size()
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return n / 1024
	}
	row := forkBenchRow{name: name, commits: commits, srcKiB: duKiB(src.GitDir(), src.WorkTree())}
	var cloneTime, forkTime time.Duration
	release := func(ws string) {
		backendtest.Do[*backends.ReleaseWorkspaceResult](b, ex, p, &backends.ReleaseWorkspaceRequest{Scope: forkScope(ws), Force: true})
	}
	clone := func(i int) {
		ws := fmt.Sprintf("clone%d", i)
		syscall.Sync()
		start := time.Now()
		backendtest.Do[*backends.CloneResult](b, ex, p, &backends.CloneRequest{Scope: forkScope(ws), URL: url})
		cloneTime += time.Since(start)
		w := bindingOf(b, binds, p, ws)
		row.cloneKiB = duKiB(w.GitDir(), w.WorkTree())
		row.cloneObjKiB = objKiB(w.GitDir(), false)
		release(ws)
	}
	fork := func(i int) {
		ws := fmt.Sprintf("fork%d", i)
		syscall.Sync()
		start := time.Now()
		backendtest.Do[*backends.ForkWorkspaceResult](b, ex, p, &backends.ForkWorkspaceRequest{Scope: forkScope(ws), Source: "source", Branch: fmt.Sprintf("b%d", i)})
		forkTime += time.Since(start)
		w := bindingOf(b, binds, p, ws)
		row.forkKiB = duKiB(src.GitDir(), src.WorkTree(), w.GitDir(), w.WorkTree()) - row.srcKiB
		row.forkObjKiB = objKiB(w.GitDir(), true)
		release(ws)
	}
	for b.Loop() {
		b.StopTimer()
		if row.n%2 == 0 {
			clone(row.n)
			fork(row.n)
		} else {
			fork(row.n)
			clone(row.n)
		}
		row.n++
		b.StartTimer()
	}
	row.cloneMS = float64(cloneTime.Milliseconds()) / float64(row.n)
	row.forkMS = float64(forkTime.Milliseconds()) / float64(row.n)
	b.ReportMetric(row.cloneMS, "clone-ms")
	b.ReportMetric(row.forkMS, "fork-ms")
	b.ReportMetric(float64(row.cloneKiB), "clone-KiB")
	b.ReportMetric(float64(row.forkKiB), "fork-KiB")
	b.ReportMetric(float64(row.cloneObjKiB), "clone-obj-KiB")
	b.ReportMetric(float64(row.forkObjKiB), "fork-obj-KiB")
	b.Logf("%s: source workspace %d KiB (git directory and work tree), its objects %d KiB", name, row.srcKiB, objKiB(src.GitDir(), false))
	return row
}

// TestForkOnE2BIsShelvedAndRestored: on E2B sandboxes too, a fork shares
// its source's objects (hard links, made through the provider's commands)
// and, when its sandbox is reaped with its unpushed branch, is saved and
// restored like any workspace; its prediction is then stale, not a
// mismatch (the restored workspace no longer holds the fork's record).
func TestForkOnE2BIsShelvedAndRestored(t *testing.T) {
	w, _ := newE2BShelfWorld(t)
	p := w.env.Agent
	backendtest.Clone(t, w.ex, w.env, p, "src")
	req := &backends.ForkWorkspaceRequest{Scope: forkScope("fk"), Source: "src", Branch: "feat", StartPoint: "origin/main"}
	res := backendtest.Do[*backends.ForkWorkspaceResult](t, w.ex, p, req)
	if pred, err := w.ex.Predict(t.Context(), req, res); err != nil || pred.Stale != "" || !maps.Equal(pred.Expected, pred.Found) {
		t.Fatalf("prediction of the fork on E2B: %+v %v", pred, err)
	}
	src, fk := w.hostBinding(t, "src"), w.hostBinding(t, "fk")
	packs, _ := filepath.Glob(src.GitDir() + "/objects/pack/*.pack")
	if len(packs) == 0 || inode(t, packs[0]) != inode(t, fk.GitDir()+"/objects/pack/"+filepath.Base(packs[0])) {
		t.Fatalf("the fork's objects are not hard links of the source's (%v)", packs)
	}
	backendtest.Do[*backends.WriteFileResult](t, w.ex, p, &backends.WriteFileRequest{Scope: forkScope("fk"), Path: "f.txt", Content: "fork\n"})
	fc := backendtest.Do[*backends.CommitResult](t, w.ex, p, &backends.CommitRequest{Scope: forkScope("fk"), Message: "Fork work"})

	if n := w.reap(t); n != 1 {
		t.Fatalf("reaped %d sandboxes, want 1", n)
	}
	if b := w.binding(t, "fk"); b.Shelf == "" {
		t.Fatalf("the fork's binding after the reap: %+v, want it shelved", b)
	}
	st := backendtest.Do[*backends.StatusResult](t, w.ex, p, &backends.StatusRequest{Scope: forkScope("fk")})
	if st.Branch != "feat" || st.Head != fc.SHA || len(st.Notices) == 0 {
		t.Fatalf("restored fork's status %+v", st)
	}
	if pred, err := w.ex.Predict(t.Context(), req, res); err != nil || pred.Stale == "" {
		t.Fatalf("prediction after the restore: %+v %v, want stale", pred, err)
	}
	backendtest.Do[*backends.PushResult](t, w.ex, p, &backends.PushRequest{Scope: forkScope("fk")})
	if w.env.RemoteRef(t, "refs/heads/feat") != fc.SHA {
		t.Fatal("the restored fork's push did not reach the remote")
	}
}
