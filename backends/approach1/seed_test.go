package approach1_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// countingProvider counts, per kind, the commands run in its sandboxes:
// clones into a workspace (not into a seed), and seeds taken (the fetch
// of seedTakeScript).
type countingProvider struct {
	*local.Provider
	workspaceClones, seedFetches atomic.Int64
	// crashTake, when set, stops the next seed take right after the seed
	// moved into the workspace's place, as a killed process would, and
	// answers that the command may still run.
	crashTake atomic.Bool
}

func (c *countingProvider) Exec(ctx context.Context, id string, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	all := strings.Join(req.Args, "\x00")
	if strings.Contains(all, "--separate-git-dir=") && !strings.Contains(all, "/seed/git/") {
		c.workspaceClones.Add(1)
	}
	if strings.Contains(all, " fetch --prune") || strings.Contains(all, " ls-remote ") {
		c.seedFetches.Add(1)
	}
	if strings.Contains(all, "gitgate-seed") && c.crashTake.CompareAndSwap(true, false) {
		script := req.Args[1]
		moved := strings.Index(script, "T='")
		req.Args = append([]string{req.Args[0], script[:moved] + "exit 0\n"}, req.Args[2:]...)
		_, _ = c.Provider.Exec(ctx, id, req)
		return sandbox.ExecResult{}, sandbox.ErrMayStillRun
	}
	return c.Provider.Exec(ctx, id, req)
}

// seededWorld is an engine on local sandboxes from a warm pool whose
// sandboxes hold seeds of the given URLs.
type seededWorld struct {
	ex   *approach1.Executor
	pool *sandbox.Pool
	p    *countingProvider
	dir  string
}

func newSeededWorld(t *testing.T, env *backendtest.Env, seeds ...string) *seededWorld {
	t.Helper()
	dir := t.TempDir()
	lp, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	env.SandboxRoots = append(env.SandboxRoots, dir)
	w := &seededWorld{p: &countingProvider{Provider: lp}, dir: dir} // every optional interface of the local provider shows
	var prepare func(context.Context, sandbox.Info) (sandbox.Info, error)
	w.pool, err = sandbox.NewPool(sandbox.PoolConfig{Provider: w.p, MinIdle: 1, MaxSize: 4,
		Prepare: func(ctx context.Context, info sandbox.Info) (sandbox.Info, error) { return prepare(ctx, info) }})
	if err != nil {
		t.Fatal(err)
	}
	w.ex = backendtest.NewEngineWith(t, env, sandbox.ManagerConfig{Provider: w.p, Creator: w.pool}, &lock.Memory{})
	if prepare, err = w.ex.Seeds(seeds); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	var running sync.WaitGroup
	running.Go(func() { w.pool.Run(ctx) })
	t.Cleanup(func() { cancel(); running.Wait() })
	testkit.Eventually(t, "the warm pool fills", w.pool.Ready)
	return w
}

// counts is what a call ran: clones into a workspace, and seeds taken.
type counts struct{ clones, seeds int64 }

// clone clones url into ws as p and returns the answer and what it ran.
func (w *seededWorld) clone(t *testing.T, p backends.Principal, ws, url string) (*backends.CloneResult, counts, error) {
	t.Helper()
	c0, s0 := w.p.workspaceClones.Load(), w.p.seedFetches.Load()
	res, err := w.ex.Execute(backendtest.Ctx(t), withPrincipal(&backends.CloneRequest{Scope: backends.Scope{Workspace: ws}, URL: url}, p))
	n := counts{w.p.workspaceClones.Load() - c0, w.p.seedFetches.Load() - s0}
	if err != nil {
		return nil, n, err
	}
	return res.(*backends.CloneResult), n, nil
}

// dirs returns workspace ws's git directory and work tree on this
// machine ("" when none exists), and its sandbox's root.
func (w *seededWorld) dirs(t *testing.T, ws string) (gitDir, workTree, root string) {
	t.Helper()
	roots, _ := filepath.Glob(filepath.Join(w.dir, "*", "git"))
	for _, g := range roots {
		root = filepath.Dir(g)
		if _, err := os.Stat(filepath.Join(root, "git", ws+".git")); err == nil {
			return filepath.Join(root, "git", ws+".git"), filepath.Join(root, "ws", ws), root
		}
	}
	return "", "", ""
}

// snapshot describes workspace ws as a clone leaves it: its refs (and
// where symbolic ones point), its git configuration, its index's entries
// and its work tree's files with their contents.
func (w *seededWorld) snapshot(t *testing.T, ws string) string {
	t.Helper()
	gitDir, workTree, _ := w.dirs(t, ws)
	if gitDir == "" {
		t.Fatalf("workspace %s is nowhere", ws)
	}
	git := func(args ...string) string {
		cmd := exec.Command("/usr/bin/git", append([]string{"--git-dir=" + gitDir, "--work-tree=" + workTree}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v in %s: %v: %s", args, ws, err, out)
		}
		return string(out)
	}
	var b strings.Builder
	b.WriteString(git("symbolic-ref", "HEAD"))
	b.WriteString(git("for-each-ref", "--format=%(refname) %(objectname) %(symref)"))
	b.WriteString(git("config", "--local", "--list"))
	b.WriteString(git("ls-files", "--stage"))
	b.WriteString(git("status", "--porcelain", "--untracked-files=all"))
	err := filepath.WalkDir(workTree, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		rel, _ := filepath.Rel(workTree, path)
		fmt.Fprintf(&b, "%s: %q\n", rel, data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(b.String(), "/"+ws, "/<ws>")
}

// publicRemote puts a proxy in front of env's remote that lets anyone
// read while public is true (a public repository, as seeds are cloned
// from): a request without credentials to fetch carries the read token
// on. Requests with credentials pass as they are. env's projects allow
// the proxy's host, and env.RepoURL names the repository through it.
func publicRemote(t testing.TB, env *backendtest.Env) (public *atomic.Bool) {
	t.Helper()
	target, err := url.Parse(env.Remote.URL())
	if err != nil {
		t.Fatal(err)
	}
	public = &atomic.Bool{}
	public.Store(true)
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		read := strings.HasSuffix(r.In.URL.Path, "/git-upload-pack") || r.In.URL.Query().Get("service") == "git-upload-pack"
		if read && public.Load() && r.In.Header.Get("Authorization") == "" {
			r.Out.SetBasicAuth("x-access-token", backendtest.ReadToken)
		}
	}}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	env.Project.Hosts = append(env.Project.Hosts, u.Host)
	env.StrangerProject.Hosts = append(env.StrangerProject.Hosts, u.Host)
	env.RepoURL = srv.URL + strings.TrimPrefix(env.RepoURL, env.Remote.URL())
	return public
}

// TestCloneStartsFromASeed: a clone of a seeded repository into a warm
// sandbox that holds its seed runs no clone — the seed becomes the
// workspace and one fetch with the agent's credential brings it up to the
// remote, which moved on since the seed was cloned — and leaves the
// workspace exactly as a clone without seed does (refs, configuration,
// index, files; no trace of the seed's place); the workspace then works
// as any other (commit, push), and the seed is used once.
func TestCloneStartsFromASeed(t *testing.T) {
	env := backendtest.NewEnv(t)
	publicRemote(t, env)
	w := newSeededWorld(t, env, env.RepoURL)
	later, err := env.Remote.CommitFile(t.Context(), "demo", "main", "later.txt", "after the seed\n", "Later")
	if err != nil {
		t.Fatal(err)
	}
	seeded, n, err := w.clone(t, env.Agent, "seeded", env.RepoURL)
	if err != nil {
		t.Fatal(err)
	}
	if n != (counts{clones: 0, seeds: 1}) {
		t.Fatalf("the clone ran %d clone(s) and took %d seed(s), want none and one", n.clones, n.seeds)
	}
	if seeded.Branch != "main" || seeded.Head != later || seeded.Workspace != "seeded" {
		t.Fatalf("clone from the seed answered %+v, want branch main at %s", seeded, later)
	}
	// The seed is taken: a second clone of the repository in the same
	// sandbox clones, and both workspaces are alike.
	plain, n, err := w.clone(t, env.Agent, "plain", env.RepoURL)
	if err != nil {
		t.Fatal(err)
	}
	if n != (counts{clones: 1, seeds: 0}) || plain.Branch != seeded.Branch || plain.Head != seeded.Head {
		t.Fatalf("second clone ran %+v and answered %+v, want one clone answering as the first %+v", n, plain, seeded)
	}
	if a, b := w.snapshot(t, "seeded"), w.snapshot(t, "plain"); a != b {
		t.Fatalf("the workspace made from the seed differs from a clone:\n--- from the seed\n%s--- clone\n%s", a, b)
	}
	gitDir, _, root := w.dirs(t, "seeded")
	if out, _ := exec.Command("/bin/grep", "-rl", "seed", gitDir).Output(); len(out) > 0 {
		t.Fatalf("the workspace's git directory names the seed's place: %s", out)
	}
	if _, err := os.Stat(filepath.Join(root, "git", "seeded.cloning")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the half-made mark is left: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(root, "tmp", "*")); len(left) > 0 {
		t.Fatalf("the clone left files in the sandbox's tmp: %v", left)
	}
	list := backendtest.Do[*backends.ListWorkspacesResult](t, w.ex, env.Agent, &backends.ListWorkspacesRequest{})
	if len(list.Workspaces) != 2 {
		t.Fatalf("workspaces %+v, want the two cloned", list.Workspaces)
	}
	// It works as any workspace.
	sc := backends.Scope{Workspace: "seeded"}
	backendtest.Do[*backends.CheckoutResult](t, w.ex, env.Agent, &backends.CheckoutRequest{Scope: sc, Branch: "agent/seeded", Create: true})
	backendtest.Do[*backends.WriteFileResult](t, w.ex, env.Agent, &backends.WriteFileRequest{Scope: sc, Path: "notes.md", Content: "from a seed\n"})
	c := backendtest.Do[*backends.CommitResult](t, w.ex, env.Agent, &backends.CommitRequest{Scope: sc, Message: "Notes"})
	p := backendtest.Do[*backends.PushResult](t, w.ex, env.Agent, &backends.PushRequest{Scope: sc})
	if p.Head != c.SHA || env.RemoteRef(t, "refs/heads/agent/seeded") != c.SHA {
		t.Fatalf("push %+v of commit %s: the remote has %s", p, c.SHA, env.RemoteRef(t, "refs/heads/agent/seeded"))
	}
	st := backendtest.Do[*backends.StatusResult](t, w.ex, env.Agent, &backends.StatusRequest{Scope: sc})
	if !st.Clean || st.Upstream != "origin/agent/seeded" {
		t.Fatalf("status after push %+v", st)
	}
}

// TestSeedFollowsTheRemotesDefaultBranch: when the remote's default
// branch changed after the seed was cloned, the clone from the seed is on
// the new one, as a clone without seed is.
func TestSeedFollowsTheRemotesDefaultBranch(t *testing.T) {
	env := backendtest.NewEnv(t)
	publicRemote(t, env)
	w := newSeededWorld(t, env, env.RepoURL)
	env.RemoteGit(t, "branch", "trunk", "main")
	tip, err := env.Remote.CommitFile(t.Context(), "demo", "trunk", "trunk.txt", "on trunk\n", "Trunk")
	if err != nil {
		t.Fatal(err)
	}
	env.RemoteGit(t, "symbolic-ref", "HEAD", "refs/heads/trunk")
	seeded, n, err := w.clone(t, env.Agent, "seeded", env.RepoURL)
	if err != nil {
		t.Fatal(err)
	}
	if n != (counts{clones: 0, seeds: 1}) || seeded.Branch != "trunk" || seeded.Head != tip {
		t.Fatalf("clone from the seed ran %+v and answered %+v, want the seed taken and branch trunk at %s", n, seeded, tip)
	}
	if _, _, err := w.clone(t, env.Agent, "plain", env.RepoURL); err != nil {
		t.Fatal(err)
	}
	if a, b := w.snapshot(t, "seeded"), w.snapshot(t, "plain"); a != b {
		t.Fatalf("the workspace made from the seed differs from a clone:\n--- from the seed\n%s--- clone\n%s", a, b)
	}
}

// TestSeedRefusedAnswersAsAClone: an agent whose token the remote refuses
// — the repository went private after its seed was cloned — gets from a
// seeded sandbox the answer a clone without seeds gives it (category and
// message), and no workspace: nothing of the seed's attempt is left.
func TestSeedRefusedAnswersAsAClone(t *testing.T) {
	env := backendtest.NewEnv(t)
	public := publicRemote(t, env)
	env.StrangerProject.Token = "ghs_refusedTOKEN0123456789abcdefXYZ012"
	w := newSeededWorld(t, env, env.RepoURL)
	plain := backendtest.NewEngine(t, env, &lock.Memory{}, nil)
	public.Store(false)
	_, n, err := w.clone(t, env.Stranger, "refused", env.RepoURL)
	if err == nil {
		t.Fatal("a clone with a refused token succeeded from the seed")
	}
	if n.seeds != 1 {
		t.Fatalf("the clone took %d seeds, want it to try the one its sandbox holds", n.seeds)
	}
	want := backendtest.Fail(t, plain, env.Stranger, &backends.CloneRequest{Scope: backends.Scope{Workspace: "refused"}, URL: env.RepoURL})
	if backends.CategoryOf(err) != backends.CategoryOf(want) || backends.MessageOf(err) != backends.MessageOf(want) {
		t.Fatalf("refused clone from a seed answered %v (%s), a clone without seed %v (%s)",
			err, backends.CategoryOf(err), want, backends.CategoryOf(want))
	}
	if gitDir, workTree, _ := w.dirs(t, "refused"); gitDir != "" || workTree != "" {
		t.Fatalf("the refused clone left %s", gitDir)
	}
	left, _ := filepath.Glob(filepath.Join(w.dir, "*", "*", "refused*"))
	if len(left) > 0 {
		t.Fatalf("the refused clone left %v", left)
	}
	list := backendtest.Do[*backends.ListWorkspacesResult](t, w.ex, env.Stranger, &backends.ListWorkspacesRequest{})
	if len(list.Workspaces) != 0 {
		t.Fatalf("workspaces %+v after a refused clone", list.Workspaces)
	}
}

// TestSeedOfAnotherRepositoryIsNotUsed: a sandbox's seed serves clones of
// its own URL only; a clone of another repository clones.
func TestSeedOfAnotherRepositoryIsNotUsed(t *testing.T) {
	env := backendtest.NewEnv(t)
	if err := env.Remote.CreateRepo(t.Context(), "other", map[string]string{"other.txt": "another repository\n"}); err != nil {
		t.Fatal(err)
	}
	publicRemote(t, env)
	other := strings.TrimSuffix(env.RepoURL, "demo.git") + "other.git"
	w := newSeededWorld(t, env, other)
	res, n, err := w.clone(t, env.Agent, "demo", env.RepoURL)
	if err != nil {
		t.Fatal(err)
	}
	if n != (counts{clones: 1, seeds: 0}) || res.Head != env.RemoteRef(t, "refs/heads/main") {
		t.Fatalf("clone of the unseeded repository ran %+v and answered %+v, want one clone", n, res)
	}
	if _, n, err = w.clone(t, env.Agent, "other", other); err != nil || n != (counts{clones: 0, seeds: 1}) {
		t.Fatalf("clone of the seeded repository ran %+v (%v), want the seed taken", n, err)
	}
}

// TestSeedPastASizeLimitAnswersAsAClone: a seed larger than the project's
// repository limit does not become a workspace; the clone answers as a
// clone without seed does (resource_exhausted, nothing kept).
func TestSeedPastASizeLimitAnswersAsAClone(t *testing.T) {
	env := backendtest.NewEnv(t)
	publicRemote(t, env)
	env.Project.MaxRepoBytes = 1024
	w := newSeededWorld(t, env, env.RepoURL)
	_, n, err := w.clone(t, env.Agent, "big", env.RepoURL)
	if n.seeds != 1 {
		t.Fatalf("the clone took %d seeds, want it to try the one its sandbox holds", n.seeds)
	}
	backendtest.WantCategory(t, err, backends.ResourceExhausted)
	if !strings.Contains(backends.MessageOf(err), "repository size limit") || !strings.Contains(backends.MessageOf(err), "nothing was kept") {
		t.Fatalf("clone past the repository limit answered %q", backends.MessageOf(err))
	}
	if gitDir, workTree, _ := w.dirs(t, "big"); gitDir != "" || workTree != "" {
		t.Fatalf("the clone past the limit left %s", gitDir)
	}
}

// TestSeedTakeCutShortIsNotAWorkspace: a take stopped after the seed moved
// into the workspace's place (its process killed) leaves the half-made
// mark: the workspace answers "the clone … did not finish", is removed,
// and cloning again works.
func TestSeedTakeCutShortIsNotAWorkspace(t *testing.T) {
	env := backendtest.NewEnv(t)
	publicRemote(t, env)
	w := newSeededWorld(t, env, env.RepoURL)
	w.p.crashTake.Store(true)
	if _, n, err := w.clone(t, env.Agent, "cut", env.RepoURL); err == nil || n.seeds != 1 {
		t.Fatalf("clone cut short answered %v after taking %d seeds, want an error after taking one", err, n.seeds)
	}
	if gitDir, _, root := w.dirs(t, "cut"); gitDir == "" {
		t.Fatal("the cut take left no git directory: the test cut it too early")
	} else if _, err := os.Stat(filepath.Join(root, "git", "cut.cloning")); err != nil {
		t.Fatalf("the cut take left no half-made mark: %v", err)
	}
	err := backendtest.Fail(t, w.ex, env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: "cut"}})
	if backends.CategoryOf(err) != backends.NotFound || !strings.Contains(backends.MessageOf(err), "did not finish") {
		t.Fatalf("status of the cut workspace answered %v, want not_found: the clone did not finish", err)
	}
	res, _, err := w.clone(t, env.Agent, "cut", env.RepoURL)
	if err != nil || res.Head != env.RemoteRef(t, "refs/heads/main") {
		t.Fatalf("cloning again answered %+v, %v", res, err)
	}
	backendtest.Do[*backends.StatusResult](t, w.ex, env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: "cut"}})
}
