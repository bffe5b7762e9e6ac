package approach1_test

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/filebind"
	"github.com/gitgate/gitgate/backends/sandbox/local"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
)

// shelfWorld is an executor whose manager reaps on a fake clock and
// preserves unsaved work into a directory vault.
type shelfWorld struct {
	env      *backendtest.Env
	ex       *approach1.Executor
	mgr      *sandbox.Manager
	clock    *fakeClock
	bindings sandbox.BindingStore
	vault    sandbox.Vault
	vaultDir string
	reg      *prometheus.Registry
	log      *testkit.SyncBuffer
	// host maps a binding's sandbox paths to this machine's (identity for
	// local sandboxes).
	host func(sandbox.Binding) sandbox.Binding
}

type shelfOptions struct {
	provider sandbox.Provider     // nil: local
	bindings sandbox.BindingStore // nil: in memory
	vaultDir string               // "": a DirVault in a new temporary directory
	backend  string               // the executor's Backend name
	clock    *fakeClock           // nil: a new one
}

func newShelfWorld(t *testing.T, env *backendtest.Env, o shelfOptions) *shelfWorld {
	t.Helper()
	w := &shelfWorld{env: env, clock: &fakeClock{now: time.Unix(1_800_000_000, 0)}, reg: prometheus.NewRegistry(), log: &testkit.SyncBuffer{},
		host: func(b sandbox.Binding) sandbox.Binding { return b }}
	if o.clock != nil {
		w.clock = o.clock
	}
	if o.provider == nil {
		p, err := local.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		o.provider = p
	}
	if o.bindings == nil {
		o.bindings = sandbox.NewMemoryBindings()
	}
	w.bindings = o.bindings
	w.vaultDir = o.vaultDir
	if w.vaultDir == "" {
		w.vaultDir = filepath.Join(t.TempDir(), "vault")
	}
	v, err := sandbox.NewDirVault(w.vaultDir, sandbox.DirVaultOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.vault = v
	logger := slog.New(slog.NewTextHandler(w.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var ex *approach1.Executor
	mgr, err := sandbox.NewManager(sandbox.ManagerConfig{Provider: o.provider, Bindings: o.bindings, IdleTTL: time.Hour,
		Now: w.clock.Now, Logger: logger,
		Preserve: func(ctx context.Context, info sandbox.Info, forced bool) error { return ex.Preserve(ctx, info, forced) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close(context.WithoutCancel(t.Context())) })
	ex, err = approach1.New(approach1.Config{Sandboxes: mgr, Bindings: o.bindings, Locker: &lock.Memory{}, Vault: w.vault,
		Registerer: w.reg, Logger: logger, Backend: o.backend,
		Projects: approach1.ProjectMap{"alpha": {Remotes: gitcmd.RemotePolicy{Schemes: env.Project.Schemes, Hosts: env.Project.Hosts}, Token: env.Project.Token}}})
	if err != nil {
		t.Fatal(err)
	}
	w.ex, w.mgr = ex, mgr
	return w
}

// reap lets the sandboxes idle past the TTL and reaps them.
func (w *shelfWorld) reap(t *testing.T) int {
	t.Helper()
	w.clock.Advance(2 * time.Hour)
	return w.mgr.ReapIdle(t.Context())
}

func (w *shelfWorld) binding(t *testing.T, name string) sandbox.Binding {
	t.Helper()
	b, ok, err := w.bindings.Get(t.Context(), sandbox.WorkspaceKey{Project: "alpha", Name: name})
	if err != nil || !ok {
		t.Fatalf("binding of %s: %v, %v", name, ok, err)
	}
	return b
}

// hostBinding is the binding of name with its paths on this machine.
func (w *shelfWorld) hostBinding(t *testing.T, name string) sandbox.Binding {
	t.Helper()
	return w.host(w.binding(t, name))
}

// metric returns a counter's value by its one variable label.
func (w *shelfWorld) metric(t *testing.T, name, label, value string) float64 {
	t.Helper()
	families, err := w.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func (w *shelfWorld) vaultEntries(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(w.vaultDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// hostGit runs git on a workspace of a sandbox on this machine (what an
// agent cannot do through the tools: stage without committing).
func hostGit(t *testing.T, b sandbox.Binding, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "core.quotePath=false", "--git-dir=" + b.GitDir(), "--work-tree=" + b.WorkTree()}, args...)...)
	cmd.Dir = b.WorkTree()
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// workTreeFiles returns every file of the work tree and its content.
func workTreeFiles(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		rel, _ := filepath.Rel(root, path)
		files[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// workspaceState is everything restoring must bring back.
type workspaceState struct {
	status, porcelain, staged, unstaged, refs, config, log string
	files                                                  map[string]string
}

func stateOf(t *testing.T, w *shelfWorld, name string) workspaceState {
	t.Helper()
	return stateThrough(t, w, w.ex, name)
}

// stateThrough is stateOf with the status read through ex.
func stateThrough(t *testing.T, w *shelfWorld, ex backends.Executor, name string) workspaceState {
	t.Helper()
	st := backendtest.Do[*backends.StatusResult](t, ex, w.env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: name}})
	st.Served = backends.Served{}
	b := w.hostBinding(t, name)
	var config []string
	for line := range strings.Lines(hostGit(t, b, "config", "--local", "--list")) {
		if strings.HasPrefix(line, "branch.") || strings.HasPrefix(line, "remote.") {
			config = append(config, line)
		}
	}
	return workspaceState{
		status:    fmt.Sprintf("%+v", *st),
		porcelain: hostGit(t, b, "status", "--porcelain=v2", "--branch", "--untracked-files=all"),
		staged:    hostGit(t, b, "diff", "--cached"),
		unstaged:  hostGit(t, b, "diff"),
		refs:      hostGit(t, b, "for-each-ref", "--format=%(refname) %(objectname) %(upstream)", "refs/heads/", "refs/remotes/"),
		config:    strings.Join(config, ""),
		log:       hostGit(t, b, "log", "--all", "--format=%H %P %an %ae %at %s"),
		files:     workTreeFiles(t, b.WorkTree()),
	}
}

// makeUnsavedWork leaves workspace name with commits not pushed on two
// branches (main and the new branch topic, which is checked out), a
// staged new file, a staged modification modified again, an unstaged
// modification, an untracked file, and an unstaged and a staged deletion.
func makeUnsavedWork(t *testing.T, w *shelfWorld, name string) {
	t.Helper()
	makeUnsavedWorkThrough(t, w, w.ex, name)
}

// makeUnsavedWorkThrough is makeUnsavedWork through ex.
func makeUnsavedWorkThrough(t *testing.T, w *shelfWorld, ex backends.Executor, name string) {
	t.Helper()
	agent, ws := w.env.Agent, backends.Scope{Workspace: name}
	write := func(path, content string) {
		backendtest.Do[*backends.WriteFileResult](t, ex, agent, &backends.WriteFileRequest{Scope: ws, Path: path, Content: content})
	}
	write("main-only.txt", "committed on main, not pushed\n")
	backendtest.Do[*backends.CommitResult](t, ex, agent, &backends.CommitRequest{Scope: ws, Message: "main: local commit"})
	backendtest.Do[*backends.CheckoutResult](t, ex, agent, &backends.CheckoutRequest{Scope: ws, Branch: "topic", Create: true})
	write("topic.txt", "committed on topic, never pushed\n")
	write("doomed.txt", "deleted, staged\n")
	backendtest.Do[*backends.CommitResult](t, ex, agent, &backends.CommitRequest{Scope: ws, Message: "topic: local commit"})
	b := w.hostBinding(t, name)
	write("staged-new.txt", "staged new file\n")
	write("topic.txt", "staged change\n")
	hostGit(t, b, "add", "staged-new.txt", "topic.txt")
	hostGit(t, b, "rm", "-q", "doomed.txt")
	write("topic.txt", "staged change, then changed again\n")
	write("README.md", "# demo\n\nchanged, not staged\n")
	write("notes/untracked.txt", "untracked\n")
	backendtest.Do[*backends.DeleteFileResult](t, ex, agent, &backends.DeleteFileRequest{Scope: ws, Path: "src/main.go"})
	porcelain := hostGit(t, b, "status", "--porcelain")
	for _, want := range []string{"A  staged-new.txt", "MM topic.txt", "D  doomed.txt", " M README.md", "?? notes/", " D src/main.go"} {
		if !strings.Contains(porcelain, want) {
			t.Fatalf("setup: status lacks %q:\n%s", want, porcelain)
		}
	}
}

// TestReapedWorkspaceIsRestored: a workspace reaped at its idle TTL with
// commits not pushed on two branches and every kind of uncommitted change
// is saved to the vault (WARN, metric) and restored intact on its next
// use, which tells the agent; the vault entry is gone afterwards.
func TestReapedWorkspaceIsRestored(t *testing.T) {
	w := newShelfWorld(t, backendtest.NewEnv(t), shelfOptions{})
	backendtest.Clone(t, w.ex, w.env, w.env.Agent, "w")
	backendtest.Clone(t, w.ex, w.env, w.env.Agent, "clean") // nothing unsaved: goes with the sandbox, as before
	makeUnsavedWork(t, w, "w")
	before := stateOf(t, w, "w")
	old := w.binding(t, "w")

	if n := w.reap(t); n != 1 {
		t.Fatalf("reaped %d sandboxes, want 1", n)
	}
	shelved := w.binding(t, "w")
	if shelved.Shelf == "" || shelved.SandboxID != "" {
		t.Fatalf("binding after the reap = %+v, want it shelved", shelved)
	}
	if _, err := os.Stat(old.Root); !os.IsNotExist(err) {
		t.Fatalf("the reaped sandbox still exists (%v)", err)
	}
	if got := w.vaultEntries(t); len(got) != 1 || got[0] != shelved.Shelf {
		t.Fatalf("vault holds %v, want the one shelf %s", got, shelved.Shelf)
	}
	if _, ok, _ := w.bindings.Get(t.Context(), sandbox.WorkspaceKey{Project: "alpha", Name: "clean"}); ok {
		t.Error("the clean workspace's binding outlived its sandbox")
	}
	log := w.log.String()
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, "workspace=alpha/w") || !strings.Contains(log, "the work was saved") {
		t.Errorf("no WARN line for the shelved workspace:\n%s", log)
	}
	if strings.Contains(log, backendtest.Token) {
		t.Error("the token reached the log")
	}
	if got := w.metric(t, "gitgate_workspaces_shelved_total", "outcome", "ok"); got != 1 {
		t.Errorf("gitgate_workspaces_shelved_total{outcome=ok} = %v, want 1", got)
	}
	// Clone refuses the name: the workspace still exists.
	err := backendtest.Fail(t, w.ex, w.env.Agent, &backends.CloneRequest{Scope: backends.Scope{Workspace: "w"}, URL: w.env.RepoURL})
	backendtest.WantCategory(t, err, backends.Conflict)

	// The next use restores it and says so.
	st := backendtest.Do[*backends.StatusResult](t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: "w"}})
	if len(st.Notices) != 1 || !strings.Contains(st.Notices[0], "restored") || !strings.Contains(st.Notices[0], `"w"`) ||
		!strings.Contains(st.Notices[0], "after 1 hour unused") || !strings.Contains(st.Notices[0], "commits not pushed on main, topic") {
		t.Fatalf("notices = %q, want one telling of the restore", st.Notices)
	}
	restored := w.binding(t, "w")
	if restored.Shelf != "" || restored.SandboxID == "" || restored.SandboxID == old.SandboxID {
		t.Fatalf("binding after the restore = %+v", restored)
	}
	if restored.Dirty != old.Dirty || restored.Unpushed != old.Unpushed || restored.Branch != "topic" {
		t.Errorf("restored binding's state = %+v, want that of %+v", restored, old)
	}
	after := stateOf(t, w, "w")
	if !reflect.DeepEqual(after, before) {
		t.Errorf("restored workspace differs:\n got %+v\nwant %+v", after, before)
	}
	if got := w.vaultEntries(t); len(got) != 0 {
		t.Errorf("vault after the restore holds %v, want nothing", got)
	}
	if got := w.metric(t, "gitgate_workspaces_restored_total", "outcome", "ok"); got != 1 {
		t.Errorf("gitgate_workspaces_restored_total{outcome=ok} = %v, want 1", got)
	}
	if log := w.log.String(); !strings.Contains(log, "shelved workspace restored") {
		t.Errorf("no WARN line for the restore:\n%s", log)
	}
	// Only the first call is told; the work goes on as before.
	st = backendtest.Do[*backends.StatusResult](t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: "w"}})
	if len(st.Notices) != 0 {
		t.Errorf("a later call was told again: %q", st.Notices)
	}
	backendtest.Do[*backends.CommitResult](t, w.ex, w.env.Agent, &backends.CommitRequest{Scope: backends.Scope{Workspace: "w"}, Message: "topic: the rest"})
	backendtest.Do[*backends.PushResult](t, w.ex, w.env.Agent, &backends.PushRequest{Scope: backends.Scope{Workspace: "w"}})
	if got := w.env.RemoteRef(t, "refs/heads/topic"); got == "" {
		t.Error("topic did not reach the remote after the restore")
	}
}

// TestPreserveFailureKeepsSandbox: when the work cannot be saved (the
// vault is unwritable) the idle sandbox is not reaped, a WARN line and
// the metrics say so, and the work is intact; once the vault works again
// the next reap saves it.
func TestPreserveFailureKeepsSandbox(t *testing.T) {
	w := newShelfWorld(t, backendtest.NewEnv(t), shelfOptions{})
	backendtest.Clone(t, w.ex, w.env, w.env.Agent, "w")
	makeUnsavedWork(t, w, "w")
	before := stateOf(t, w, "w")
	old := w.binding(t, "w")
	// The vault's directory replaced by a file: nothing can be written.
	if err := os.Rename(w.vaultDir, w.vaultDir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.vaultDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if n := w.reap(t); n != 0 {
			t.Fatalf("reaped %d sandboxes although their work could not be saved", n)
		}
	}
	if b := w.binding(t, "w"); b.SandboxID != old.SandboxID || b.Shelf != "" {
		t.Fatalf("binding after the failed saves = %+v", b)
	}
	log := w.log.String()
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, "could not be saved") || !strings.Contains(log, "workspace=alpha/w") {
		t.Errorf("no WARN line for the failed save:\n%s", log)
	}
	if got := w.metric(t, "gitgate_workspaces_shelved_total", "outcome", "error"); got != 2 {
		t.Errorf("gitgate_workspaces_shelved_total{outcome=error} = %v, want 2", got)
	}
	if after := stateOf(t, w, "w"); !reflect.DeepEqual(after, before) {
		t.Errorf("work changed by the failed saves:\n got %+v\nwant %+v", after, before)
	}
	// No leftovers in the workspace from the attempts.
	if out := hostGit(t, old, "for-each-ref", "refs/gitgate/"); out != "" {
		t.Errorf("shelf refs left behind: %s", out)
	}
	if err := os.Remove(w.vaultDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(w.vaultDir+".away", w.vaultDir); err != nil {
		t.Fatal(err)
	}
	if n := w.reap(t); n != 1 {
		t.Fatalf("reaped %d once the vault works, want 1", n)
	}
	st := backendtest.Do[*backends.StatusResult](t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: "w"}})
	if len(st.Notices) != 1 {
		t.Fatalf("notices = %q", st.Notices)
	}
	if after := stateOf(t, w, "w"); !reflect.DeepEqual(after, before) {
		t.Errorf("restored workspace differs:\n got %+v\nwant %+v", after, before)
	}
}

// TestShelfMissingIsReported: a shelf whose vault entry vanished is lost
// work: the agent is told what, the operator sees a WARN line and the
// lost metric, and the name is free again.
func TestShelfMissingIsReported(t *testing.T) {
	w := newShelfWorld(t, backendtest.NewEnv(t), shelfOptions{})
	backendtest.Clone(t, w.ex, w.env, w.env.Agent, "w")
	backendtest.Do[*backends.WriteFileResult](t, w.ex, w.env.Agent, &backends.WriteFileRequest{Scope: backends.Scope{Workspace: "w"}, Path: "a.txt", Content: "a"})
	if n := w.reap(t); n != 1 {
		t.Fatalf("reaped %d", n)
	}
	if err := os.Remove(filepath.Join(w.vaultDir, w.binding(t, "w").Shelf)); err != nil {
		t.Fatal(err)
	}
	err := backendtest.Fail(t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: "w"}})
	backendtest.WantCategory(t, err, backends.NotFound)
	if !strings.Contains(err.Error(), "uncommitted changes") || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("the agent is not told what was lost: %v", err)
	}
	if got := w.metric(t, "gitgate_workspaces_lost_total", "reason", "shelf_missing"); got != 1 {
		t.Errorf("gitgate_workspaces_lost_total{reason=shelf_missing} = %v, want 1", got)
	}
	if !strings.Contains(w.log.String(), "lost unsaved work") {
		t.Errorf("no WARN line for the lost work:\n%s", w.log.String())
	}
	backendtest.Clone(t, w.ex, w.env, w.env.Agent, "w")
}

// TestShelvedReleaseAndNoticeOnError: releasing a shelved workspace needs
// force (which discards the vault entry); an operation that restores the
// workspace and then fails still tells the agent of the restore.
func TestShelvedReleaseAndNoticeOnError(t *testing.T) {
	w := newShelfWorld(t, backendtest.NewEnv(t), shelfOptions{})
	for _, name := range []string{"a", "b"} {
		backendtest.Clone(t, w.ex, w.env, w.env.Agent, name)
		backendtest.Do[*backends.WriteFileResult](t, w.ex, w.env.Agent, &backends.WriteFileRequest{Scope: backends.Scope{Workspace: name}, Path: "x.txt", Content: "x"})
	}
	if n := w.reap(t); n != 1 {
		t.Fatalf("reaped %d", n)
	}
	if got := w.vaultEntries(t); len(got) != 2 {
		t.Fatalf("vault holds %v, want two shelves", got)
	}
	err := backendtest.Fail(t, w.ex, w.env.Agent, &backends.ReleaseWorkspaceRequest{Scope: backends.Scope{Workspace: "a"}})
	backendtest.WantCategory(t, err, backends.Conflict)
	backendtest.Do[*backends.ReleaseWorkspaceResult](t, w.ex, w.env.Agent, &backends.ReleaseWorkspaceRequest{Scope: backends.Scope{Workspace: "a"}, Force: true})
	if got := w.vaultEntries(t); len(got) != 1 || got[0] != w.binding(t, "b").Shelf {
		t.Fatalf("vault after the forced release holds %v, want b's shelf only", got)
	}
	err = backendtest.Fail(t, w.ex, w.env.Agent, &backends.CheckoutRequest{Scope: backends.Scope{Workspace: "b"}, Branch: "no-such-branch"})
	if !strings.Contains(err.Error(), "restored in a new sandbox") {
		t.Fatalf("a failed call after the restore does not tell of it: %v", err)
	}
	r := backendtest.Do[*backends.ReadFileResult](t, w.ex, w.env.Agent, &backends.ReadFileRequest{Scope: backends.Scope{Workspace: "b"}, Path: "x.txt"})
	if r.Content != "x" || len(r.Notices) != 0 {
		t.Fatalf("after the restore: %+v", r)
	}
}

// TestShelfOnRewrittenRemote: saved work whose base the remote no longer
// has (its branch was force-pushed away and collected) cannot be
// restored; the agent is told why and what to do (conflict: retrying will
// not help), and the work stays in the vault for the operator.
func TestShelfOnRewrittenRemote(t *testing.T) {
	w := newShelfWorld(t, backendtest.NewEnv(t), shelfOptions{})
	ws := backends.Scope{Workspace: "w"}
	backendtest.Clone(t, w.ex, w.env, w.env.Agent, "w")
	backendtest.Do[*backends.WriteFileResult](t, w.ex, w.env.Agent, &backends.WriteFileRequest{Scope: ws, Path: "a.txt", Content: "a"})
	backendtest.Do[*backends.CommitResult](t, w.ex, w.env.Agent, &backends.CommitRequest{Scope: ws, Message: "local"})
	if n := w.reap(t); n != 1 {
		t.Fatalf("reaped %d", n)
	}
	// main rewritten on the remote: an unrelated commit, the old one collected.
	tree := w.env.RemoteGit(t, "rev-parse", "main^{tree}")
	orphan := w.env.RemoteGit(t, "-c", "user.name=x", "-c", "user.email=x@x", "commit-tree", "-m", "rewritten", tree)
	w.env.RemoteGit(t, "update-ref", "refs/heads/main", orphan)
	w.env.RemoteGit(t, "reflog", "expire", "--expire=now", "--all")
	w.env.RemoteGit(t, "gc", "-q", "--prune=now")
	err := backendtest.Fail(t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: ws})
	backendtest.WantCategory(t, err, backends.Conflict)
	if !strings.Contains(err.Error(), "no longer has") || !strings.Contains(err.Error(), "release the workspace with force") {
		t.Fatalf("the agent is not told why and what to do: %v", err)
	}
	if got := w.vaultEntries(t); len(got) != 1 {
		t.Fatalf("vault holds %v, want the shelf kept", got)
	}
	if got := w.metric(t, "gitgate_workspaces_restored_total", "outcome", "error"); got != 1 {
		t.Errorf("gitgate_workspaces_restored_total{outcome=error} = %v, want 1", got)
	}
	backendtest.Do[*backends.ReleaseWorkspaceResult](t, w.ex, w.env.Agent, &backends.ReleaseWorkspaceRequest{Scope: ws, Force: true})
	if got := w.vaultEntries(t); len(got) != 0 {
		t.Fatalf("vault after the forced release holds %v", got)
	}
}

// TestShelfOfEmptyRepository: work in a clone of an empty repository
// (no commit yet, HEAD on an unborn branch) is saved and restored too.
func TestShelfOfEmptyRepository(t *testing.T) {
	env := backendtest.NewEnv(t)
	if err := env.Remote.CreateRepo(t.Context(), "empty", nil); err != nil {
		t.Fatal(err)
	}
	w := newShelfWorld(t, env, shelfOptions{})
	ws := backends.Scope{Workspace: "e"}
	backendtest.Do[*backends.CloneResult](t, w.ex, env.Agent, &backends.CloneRequest{Scope: ws, URL: env.Remote.RepoURL("empty")})
	backendtest.Do[*backends.WriteFileResult](t, w.ex, env.Agent, &backends.WriteFileRequest{Scope: ws, Path: "first.txt", Content: "first\n"})
	before := stateOf(t, w, "e")
	if n := w.reap(t); n != 1 {
		t.Fatalf("reaped %d\n%s", n, w.log.String())
	}
	if after := stateOf(t, w, "e"); !reflect.DeepEqual(after, before) {
		t.Errorf("restored workspace differs:\n got %+v\nwant %+v", after, before)
	}
	backendtest.Do[*backends.CommitResult](t, w.ex, env.Agent, &backends.CommitRequest{Scope: ws, Message: "first"})
}

// TestShutdownShelvesWork: a manager closing (the gateway shutting down)
// saves the unsaved work of the sandboxes it destroys; the next process,
// sharing the bindings and the vault, restores it and says why.
func TestShutdownShelvesWork(t *testing.T) {
	env := backendtest.NewEnv(t)
	bindings := sandbox.NewMemoryBindings()
	first := newShelfWorld(t, env, shelfOptions{bindings: bindings})
	backendtest.Clone(t, first.ex, env, env.Agent, "w")
	makeUnsavedWork(t, first, "w")
	before := stateOf(t, first, "w")
	first.mgr.Close(t.Context())
	if b := first.binding(t, "w"); b.Shelf == "" {
		t.Fatalf("binding after the shutdown = %+v, want it shelved", b)
	}
	next := newShelfWorld(t, env, shelfOptions{bindings: bindings, vaultDir: first.vaultDir})
	st := backendtest.Do[*backends.StatusResult](t, next.ex, env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: "w"}})
	if len(st.Notices) != 1 || !strings.Contains(st.Notices[0], "shut down") {
		t.Fatalf("notices = %q, want one saying the gateway shut down", st.Notices)
	}
	if after := stateOf(t, next, "w"); !reflect.DeepEqual(after, before) {
		t.Errorf("restored workspace differs:\n got %+v\nwant %+v", after, before)
	}
}

// TestShelfOfShallowClone: a shallow clone's unsaved work is saved and
// restored (into a full clone: more history, the same state).
func TestShelfOfShallowClone(t *testing.T) {
	env := backendtest.NewEnv(t)
	w := newShelfWorld(t, env, shelfOptions{})
	ws := backends.Scope{Workspace: "s"}
	if _, err := env.Remote.CommitFile(t.Context(), "demo", "other", "other.txt", "other\n", "another branch"); err != nil {
		t.Fatal(err) // a branch the single-branch shallow clone does not see
	}
	backendtest.Do[*backends.CloneResult](t, w.ex, env.Agent, &backends.CloneRequest{Scope: ws, URL: env.RepoURL, Depth: 1})
	backendtest.Do[*backends.WriteFileResult](t, w.ex, env.Agent, &backends.WriteFileRequest{Scope: ws, Path: "a.txt", Content: "a\n"})
	backendtest.Do[*backends.CommitResult](t, w.ex, env.Agent, &backends.CommitRequest{Scope: ws, Message: "local"})
	backendtest.Do[*backends.WriteFileResult](t, w.ex, env.Agent, &backends.WriteFileRequest{Scope: ws, Path: "b.txt", Content: "b\n"})
	before := stateOf(t, w, "s")
	if n := w.reap(t); n != 1 {
		t.Fatalf("reaped %d\n%s", n, w.log.String())
	}
	after := stateOf(t, w, "s")
	for line := range strings.Lines(before.log) {
		if !strings.Contains(after.log, line) {
			t.Errorf("commit lost in the restore: %s", line)
		}
	}
	before.log, after.log = "", "" // the restore is a full clone: more history
	if !reflect.DeepEqual(after, before) {
		t.Errorf("restored workspace differs:\n got %+v\nwant %+v", after, before)
	}
}

// TestShelfWithFileBindings: the embedded binding store (filebind) keeps
// a shelved binding, so the default single-machine setup restores too.
func TestShelfWithFileBindings(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	store, err := filebind.Open(t.TempDir(), filebind.Options{TTL: time.Hour, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w := newShelfWorld(t, backendtest.NewEnv(t), shelfOptions{bindings: store, clock: clock})
	backendtest.Clone(t, w.ex, w.env, w.env.Agent, "w")
	makeUnsavedWork(t, w, "w")
	before := stateOf(t, w, "w")
	if n := w.reap(t); n != 1 {
		t.Fatalf("reaped %d\n%s", n, w.log.String())
	}
	if b := w.binding(t, "w"); b.Shelf == "" {
		t.Fatalf("binding after the reap = %+v, want it shelved", b)
	}
	if after := stateOf(t, w, "w"); !reflect.DeepEqual(after, before) {
		t.Errorf("restored workspace differs:\n got %+v\nwant %+v", after, before)
	}
}
