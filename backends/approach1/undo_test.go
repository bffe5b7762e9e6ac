package approach1_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// undoWorld is one test's engine, remote and workspace "u", with helpers.
type undoWorld struct {
	t     *testing.T
	env   *backendtest.Env
	ex    *approach1.Executor
	binds sandbox.BindingStore
}

func newUndoWorld(t *testing.T) *undoWorld {
	env := backendtest.NewEnv(t)
	binds := sandbox.NewMemoryBindings()
	u := &undoWorld{t: t, env: env, ex: backendtest.NewEngine(t, env, &lock.Memory{}, binds), binds: binds}
	backendtest.Clone(t, u.ex, env, env.Agent, "u")
	return u
}

func uscope() backends.Scope { return backends.Scope{Workspace: "u"} }

// do runs req and returns its result.
func do[R backends.Result](u *undoWorld, req backends.Request) R {
	u.t.Helper()
	return backendtest.Do[R](u.t, u.ex, u.env.Agent, req)
}

func (u *undoWorld) write(path, content string) {
	u.t.Helper()
	do[*backends.WriteFileResult](u, &backends.WriteFileRequest{Scope: uscope(), Path: path, Content: content})
}

func (u *undoWorld) commit(msg string) string {
	u.t.Helper()
	return do[*backends.CommitResult](u, &backends.CommitRequest{Scope: uscope(), Message: msg}).SHA
}

func (u *undoWorld) read(path string) string {
	u.t.Helper()
	return do[*backends.ReadFileResult](u, &backends.ReadFileRequest{Scope: uscope(), Path: path}).Content
}

func (u *undoWorld) status() *backends.StatusResult {
	u.t.Helper()
	return do[*backends.StatusResult](u, &backends.StatusRequest{Scope: uscope()})
}

func (u *undoWorld) binding() sandbox.Binding {
	u.t.Helper()
	b, ok, err := u.binds.Get(u.t.Context(), sandbox.WorkspaceKey{Project: u.env.Agent.Project, Name: "u"})
	if err != nil || !ok {
		u.t.Fatalf("binding: %v %v", ok, err)
	}
	return b
}

// sandboxGit runs git in workspace u's repository, outside the engine.
func (u *undoWorld) sandboxGit(args ...string) string {
	u.t.Helper()
	b := u.binding()
	full := append([]string{"--git-dir=" + b.GitDir(), "--work-tree=" + b.WorkTree()}, args...)
	return undoGit(u.t, full...)
}

// fingerprint hashes every file of every sandbox (tmp/ excepted) and the
// remote's refs and pushes: what a refused request must leave alone and
// a prediction must not change.
func (u *undoWorld) fingerprint() string {
	u.t.Helper()
	h := sha256.New()
	for _, root := range u.env.SandboxRoots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "tmp" {
				return filepath.SkipDir
			}
			rel, _ := filepath.Rel(root, path)
			info, err := d.Info()
			if err != nil {
				return err
			}
			h.Write([]byte(rel + "\x00" + info.Mode().String() + "\x00"))
			if info.Mode().IsRegular() {
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				h.Write(data)
			}
			return nil
		})
		if err != nil {
			u.t.Fatal(err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)) + " " + u.env.RemoteGit(u.t, "for-each-ref", "--format=%(refname) %(objectname)") +
		strings.Repeat("|", 1+u.env.Remote.Pushes("demo"))
}

// refused runs req, wants category want and a message containing says,
// and wants nothing changed in the sandboxes nor on the remote.
func (u *undoWorld) refused(req backends.Request, want backends.Category, says ...string) {
	u.t.Helper()
	before := u.fingerprint()
	err := backendtest.Fail(u.t, u.ex, u.env.Agent, req)
	if backends.CategoryOf(err) != want {
		u.t.Fatalf("%s %+v: category %q, want %q (%v)", req.Op(), req, backends.CategoryOf(err), want, err)
	}
	for _, s := range says {
		if !strings.Contains(backends.MessageOf(err), s) {
			u.t.Fatalf("%s: message %q does not say %q", req.Op(), backends.MessageOf(err), s)
		}
	}
	if after := u.fingerprint(); after != before {
		u.t.Fatalf("refused %s %+v changed the workspace or the remote", req.Op(), req)
	}
}

// predict predicts res of req and wants nothing changed by it.
func (u *undoWorld) predict(req backends.Request, res backends.Result) *backends.Prediction {
	u.t.Helper()
	req.GetScope().Principal = u.env.Agent
	before := u.fingerprint()
	pred, err := u.ex.Predict(backendtest.Ctx(u.t), req, res)
	if err != nil {
		u.t.Fatalf("predict %s: %v", req.Op(), err)
	}
	if after := u.fingerprint(); after != before {
		u.t.Fatalf("predicting %s changed the workspace or the remote", req.Op())
	}
	return pred
}

// match runs req and wants its prediction (A/A) to match it exactly.
func match[R backends.Result](u *undoWorld, req backends.Request) R {
	u.t.Helper()
	res := do[R](u, req)
	pred := u.predict(req, res)
	if pred.Stale != "" || len(pred.Expected) == 0 || !maps.Equal(pred.Expected, pred.Found) {
		u.t.Fatalf("%s %+v: prediction does not match:\nexpected %v\nfound    %v\nstale %q", req.Op(), req, pred.Expected, pred.Found, pred.Stale)
	}
	return res
}

func mismatch(t *testing.T, pred *backends.Prediction, key string) {
	t.Helper()
	if pred.Stale != "" || pred.Expected[key] == pred.Found[key] {
		t.Fatalf("want a mismatch in %q: expected %v, found %v, stale %q", key, pred.Expected, pred.Found, pred.Stale)
	}
}

func undoGitCommand(args ...string) *exec.Cmd {
	cmd := exec.Command("/usr/bin/git", args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C"}
	return cmd
}

func undoGit(t *testing.T, args ...string) string {
	t.Helper()
	out, err := undoGitCommand(args...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestUndoReset(t *testing.T) {
	u := newUndoWorld(t)
	base := u.status().Head
	u.write("a.txt", "a\n")
	a := u.commit("A")
	u.write("b.txt", "b\n")
	b := u.commit("B")

	// mixed (default): HEAD~1; B's file stays in the work tree, untracked
	res := match[*backends.ResetResult](u, &backends.ResetRequest{Scope: uscope(), Ref: "HEAD~1"})
	if res.Before != b || res.After != a || res.Mode != "mixed" || res.Branch != "main" {
		t.Fatalf("reset HEAD~1: %+v", res)
	}
	if got := u.read("b.txt"); got != "b\n" {
		t.Fatalf("mixed reset changed the work tree: b.txt = %q", got)
	}
	if bd := u.binding(); !bd.Dirty || !strings.Contains(bd.Unpushed, "main") {
		t.Fatalf("binding after a mixed reset keeping changes and an unpushed commit: dirty %v unpushed %q", bd.Dirty, bd.Unpushed)
	}

	// soft, back to B through the reflog: HEAD@{1}
	res = match[*backends.ResetResult](u, &backends.ResetRequest{Scope: uscope(), Ref: "HEAD@{1}", Mode: "soft"})
	if res.After != b || res.Mode != "soft" {
		t.Fatalf("reset HEAD@{1}: %+v", res)
	}
	if got := u.sandboxGit("diff", "--cached", "--name-status"); got != "D\tb.txt" {
		t.Fatalf("a soft reset changed the index: staged %q", got)
	}

	// hard, to HEAD (the default ref): the index and the work tree match B
	res = match[*backends.ResetResult](u, &backends.ResetRequest{Scope: uscope(), Hard: true})
	if res.After != b || res.Before != b {
		t.Fatalf("reset --hard: %+v", res)
	}
	if st := u.status(); !st.Clean {
		t.Fatalf("status after a hard reset: %+v", st)
	}
	if bd := u.binding(); bd.Dirty || !strings.Contains(bd.Unpushed, "main") {
		t.Fatalf("binding after a hard reset onto unpushed commits: dirty %v unpushed %q", bd.Dirty, bd.Unpushed)
	}

	// hard, to the remote's branch: every local commit and change gone
	res = match[*backends.ResetResult](u, &backends.ResetRequest{Scope: uscope(), Ref: "origin/main", Hard: true})
	if res.After != base || res.Mode != "hard" {
		t.Fatalf("reset --hard origin/main: %+v", res)
	}
	if st := u.status(); !st.Clean || st.Head != base {
		t.Fatalf("status after a hard reset: %+v", st)
	}
	if bd := u.binding(); bd.Dirty || bd.Unpushed != "" {
		t.Fatalf("binding after a hard reset to the remote's branch: dirty %v unpushed %q", bd.Dirty, bd.Unpushed)
	}
	// ...and undone through the reflog: B again, unpushed again
	res = match[*backends.ResetResult](u, &backends.ResetRequest{Scope: uscope(), Ref: "HEAD@{1}", Hard: true})
	if res.After != b {
		t.Fatalf("reset --hard HEAD@{1}: %+v", res)
	}
	if bd := u.binding(); !strings.Contains(bd.Unpushed, "main") {
		t.Fatalf("a reset back onto unpushed commits left the branch marked pushed: %q", bd.Unpushed)
	}

	// refused, changing nothing
	for _, ref := range []string{"--hard", "-q", "../x", "HEAD@{x}", "HEAD@{-1}", "main..origin/main", "main:README.md", "@{upstream}", "HEAD@{1}:x", "a b"} {
		u.refused(&backends.ResetRequest{Scope: uscope(), Ref: ref}, backends.InvalidArgument)
	}
	u.refused(&backends.ResetRequest{Scope: uscope(), Mode: "hard"}, backends.InvalidArgument, "hard: true")
	u.refused(&backends.ResetRequest{Scope: uscope(), Mode: "keep"}, backends.InvalidArgument)
	u.refused(&backends.ResetRequest{Scope: uscope(), Mode: "soft", Hard: true}, backends.InvalidArgument)
	u.refused(&backends.ResetRequest{Scope: uscope(), Ref: "no-such-branch"}, backends.NotFound, "no-such-branch")
	u.refused(&backends.ResetRequest{Scope: uscope(), Ref: "HEAD@{999}"}, backends.NotFound)

	// a prediction of another reset than the one made: a mismatch
	u.write("c.txt", "c\n")
	u.commit("C")
	req := &backends.ResetRequest{Scope: uscope(), Ref: "HEAD~1", Hard: true}
	made := do[*backends.ResetResult](u, req)
	other := *req
	other.Ref = "HEAD~2"
	mismatch(t, u.predict(&other, made), "after")
	soft := *req
	soft.Hard, soft.Mode = false, "soft"
	mismatch(t, u.predict(&soft, made), "mode")
	// a result claiming another before: a mismatch
	claim := *made
	claim.Before = base
	mismatch(t, u.predict(req, &claim), "before")
	// a work tree changed behind the engine's back: a mismatch
	if err := os.WriteFile(filepath.Join(u.binding().WorkTree(), "a.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mismatch(t, u.predict(req, made), "worktree")
	// and a later write makes it stale
	u.write("later.txt", "l")
	if pred := u.predict(req, made); pred.Stale == "" {
		t.Fatalf("prediction of a superseded reset is not stale: %+v", pred)
	}
}

func TestUndoResetRefusedDuringMerge(t *testing.T) {
	u := newUndoWorld(t)
	do[*backends.CheckoutResult](u, &backends.CheckoutRequest{Scope: uscope(), Branch: "other", Create: true})
	u.write("README.md", "theirs\n")
	u.commit("theirs")
	do[*backends.CheckoutResult](u, &backends.CheckoutRequest{Scope: uscope(), Branch: "main"})
	u.write("README.md", "mine\n")
	u.commit("mine")
	// a merge stopped on conflicts, made outside the engine
	b := u.binding()
	cmd := undoGitCommand("--git-dir="+b.GitDir(), "--work-tree="+b.WorkTree(), "-c", "user.name=x", "-c", "user.email=x@x", "merge", "other")
	cmd.Dir = b.WorkTree()
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("the merge did not stop on conflicts: %s", out)
	}
	u.refused(&backends.ResetRequest{Scope: uscope(), Hard: true}, backends.Conflict, "merge is in progress", "abort")
}

func TestUndoRestore(t *testing.T) {
	u := newUndoWorld(t)
	seed := backendtest.SeedFiles["README.md"]
	u.write("README.md", "changed\n")
	u.write("src/main.go", "package main // changed\n")

	// unknown paths: not found, naming them, nothing restored
	u.refused(&backends.RestoreRequest{Scope: uscope(), Paths: []string{"nope.txt", "README.md", "dir/also-nope"}}, backends.NotFound, `"nope.txt"`, `"dir/also-nope"`)
	for _, paths := range [][]string{nil, {}, {"../x"}, {"/etc/passwd"}, {"a/../../x"}, {".git/config"}, {"ok.txt", "x\ny"}, {""}} {
		u.refused(&backends.RestoreRequest{Scope: uscope(), Paths: paths}, map[bool]backends.Category{true: backends.Forbidden, false: backends.InvalidArgument}[slices.Contains(paths, ".git/config")])
	}
	for _, src := range []string{"--staged", "-p", "HEAD@{x}", "main..x", "../x"} {
		u.refused(&backends.RestoreRequest{Scope: uscope(), Paths: []string{"README.md"}, Source: src}, backends.InvalidArgument)
	}
	u.refused(&backends.RestoreRequest{Scope: uscope(), Paths: []string{"README.md"}, Source: "no-such"}, backends.NotFound)
	// an option-looking path is a path (after "--"): not found, nothing changed
	u.refused(&backends.RestoreRequest{Scope: uscope(), Paths: []string{"--source=HEAD~1"}}, backends.NotFound)

	res := match[*backends.RestoreResult](u, &backends.RestoreRequest{Scope: uscope(), Paths: []string{"./README.md"}})
	if !slices.Equal(res.Paths, []string{"README.md"}) || u.read("README.md") != seed {
		t.Fatalf("restore README.md: %+v, content %q", res, u.read("README.md"))
	}
	if u.read("src/main.go") != "package main // changed\n" {
		t.Fatal("restore of README.md touched src/main.go")
	}
	match[*backends.RestoreResult](u, &backends.RestoreRequest{Scope: uscope(), Paths: []string{"."}})
	if st := u.status(); !st.Clean {
		t.Fatalf("restore '.' left changes: %+v", st)
	}
	if u.binding().Dirty {
		t.Fatal("binding still dirty after everything was restored")
	}

	// from a source, and unstaging (the staged change from a soft reset)
	u.write("README.md", "second\n")
	u.commit("second")
	do[*backends.TagResult](u, &backends.TagRequest{Scope: uscope(), Name: "second"})
	match[*backends.RestoreResult](u, &backends.RestoreRequest{Scope: uscope(), Paths: []string{"README.md"}, Source: "HEAD~1"})
	if u.read("README.md") != seed {
		t.Fatal("restore from HEAD~1 did not bring the old content back")
	}
	do[*backends.RestoreResult](u, &backends.RestoreRequest{Scope: uscope(), Paths: []string{"README.md"}})
	do[*backends.ResetResult](u, &backends.ResetRequest{Scope: uscope(), Ref: "HEAD~1", Mode: "soft"})
	if got := u.sandboxGit("diff", "--cached", "--name-only"); got != "README.md" {
		t.Fatalf("staged after the soft reset: %q", got)
	}
	match[*backends.RestoreResult](u, &backends.RestoreRequest{Scope: uscope(), Paths: []string{"README.md"}, Staged: true})
	if got := u.sandboxGit("diff", "--cached", "--name-only"); got != "" {
		t.Fatalf("still staged after restore staged: %q", got)
	}
	if u.read("README.md") != "second\n" {
		t.Fatal("restore staged changed the work tree")
	}
	if !u.binding().Dirty {
		t.Fatal("binding not dirty with an unstaged change")
	}

	// a prediction of another restore than the one made: a mismatch
	u.write("README.md", "third\n")
	req := &backends.RestoreRequest{Scope: uscope(), Paths: []string{"README.md"}, Source: "HEAD"}
	made := do[*backends.RestoreResult](u, req)
	other := *req
	other.Source = "second" // the tag: "second", not HEAD's (the seed's)
	do[*backends.ResetResult](u, &backends.ResetRequest{Scope: uscope()})
	if pred := u.predict(&other, made); pred.Stale == "" {
		t.Fatalf("prediction of a superseded restore is not stale: %+v", pred)
	}
	u.write("README.md", "fourth\n")
	made = do[*backends.RestoreResult](u, req)
	mismatch(t, u.predict(&other, made), "worktree")
	claim := *made
	claim.Paths = []string{"src/main.go"}
	mismatch(t, u.predict(req, &claim), "paths")
}

func TestUndoStash(t *testing.T) {
	u := newUndoWorld(t)
	seed := backendtest.SeedFiles["README.md"]
	release := &backends.ReleaseWorkspaceRequest{Scope: uscope()}

	u.refused(&backends.StashRequest{Scope: uscope(), Action: "push"}, backends.Conflict, "nothing to stash")
	u.write("README.md", "stashed\n")
	u.write("new.txt", "untracked\n")
	push := &backends.StashRequest{Scope: uscope(), Action: "push", Message: "wip one", IncludeUntracked: true}
	res := match[*backends.StashResult](u, push)
	if res.Action != "push" || len(res.SHA) != 40 {
		t.Fatalf("stash push: %+v", res)
	}
	if st := u.status(); !st.Clean || u.read("README.md") != seed {
		t.Fatalf("stash push left changes: %+v", st)
	}
	if got := u.sandboxGit("rev-parse", "stash@{0}"); got != res.SHA {
		t.Fatalf("stash@{0} is %s, the result says %s", got, res.SHA)
	}
	// stash entries are work: the record keeps them, release refuses
	if !u.binding().Dirty {
		t.Fatal("binding not dirty with a stash entry (a new sandbox would lose it)")
	}
	u.refused(release, backends.Conflict, "stash")

	// bad input
	for _, req := range []*backends.StashRequest{
		{Action: ""}, {Action: "clear"}, {Action: "--help"}, {Action: "show"},
		{Action: "pop", Index: -1}, {Action: "drop", Message: "m"}, {Action: "apply", IncludeUntracked: true},
		{Action: "push", Index: 1}, {Action: "push", Message: "two\nlines"}, {Action: "push", Message: "bidi \u202e"},
	} {
		req.Scope = uscope()
		u.refused(req, backends.InvalidArgument)
	}
	u.refused(&backends.StashRequest{Scope: uscope(), Action: "pop", Index: 1}, backends.NotFound, "stash@{1}")
	u.refused(&backends.StashRequest{Scope: uscope(), Action: "drop", Index: 7}, backends.NotFound)

	pop := match[*backends.StashResult](u, &backends.StashRequest{Scope: uscope(), Action: "pop"})
	if pop.SHA != res.SHA || len(pop.Conflicts) != 0 {
		t.Fatalf("stash pop: %+v", pop)
	}
	if u.read("README.md") != "stashed\n" || u.read("new.txt") != "untracked\n" {
		t.Fatal("stash pop did not bring the changes back")
	}
	u.refused(&backends.StashRequest{Scope: uscope(), Action: "pop"}, backends.NotFound, "no stash entries")

	// two entries: apply the older, drop both
	first := match[*backends.StashResult](u, &backends.StashRequest{Scope: uscope(), Action: "push", Message: "tracked only"})
	if u.read("new.txt") != "untracked\n" {
		t.Fatal("a push without include_untracked set the untracked file aside")
	}
	u.write("src/main.go", "package main // second\n")
	second := match[*backends.StashResult](u, &backends.StashRequest{Scope: uscope(), Action: "push"})
	applied := match[*backends.StashResult](u, &backends.StashRequest{Scope: uscope(), Action: "apply", Index: 1})
	if applied.SHA != first.SHA || u.read("README.md") != "stashed\n" {
		t.Fatalf("apply stash@{1}: %+v", applied)
	}
	dropped := match[*backends.StashResult](u, &backends.StashRequest{Scope: uscope(), Action: "drop", Index: 1})
	if dropped.SHA != first.SHA {
		t.Fatalf("drop stash@{1} dropped %s, want %s", dropped.SHA, first.SHA)
	}
	if got := u.sandboxGit("rev-parse", "stash@{0}"); got != second.SHA {
		t.Fatalf("stash@{0} after dropping stash@{1}: %s, want %s", got, second.SHA)
	}

	// committing everything keeps the record dirty while an entry is left
	u.commit("everything")
	if !u.binding().Dirty {
		t.Fatal("a commit of everything cleared the record although a stash entry is left")
	}

	// a prediction of another action than the one made: a mismatch
	asked := &backends.StashRequest{Scope: uscope(), Action: "drop"}
	made := do[*backends.StashResult](u, asked)
	mismatch(t, u.predict(&backends.StashRequest{Scope: uscope(), Action: "apply"}, made), "action")
	claim := *made
	claim.SHA = first.SHA // an entry that was never dropped by this call: still... gone as well
	if pred := u.predict(asked, &claim); !maps.Equal(pred.Expected, pred.Found) {
		t.Fatalf("drop prediction of an entry that is gone: %v / %v", pred.Expected, pred.Found)
	}

	// a pop whose changes conflict: the result says so, the entry is kept
	do[*backends.RestoreResult](u, &backends.RestoreRequest{Scope: uscope(), Paths: []string{"."}})
	u.write("README.md", "from the stash\n")
	kept := do[*backends.StashResult](u, &backends.StashRequest{Scope: uscope(), Action: "push", Message: "conflicting"})
	u.write("README.md", "committed meanwhile\n")
	u.commit("meanwhile")
	stopped := do[*backends.StashResult](u, &backends.StashRequest{Scope: uscope(), Action: "pop"})
	if stopped.SHA != kept.SHA || stopped.InProgress != "" || stopped.Next == "" ||
		!slices.ContainsFunc(stopped.Conflicts, func(c backends.ConflictPath) bool { return c.Path == "README.md" }) {
		t.Fatalf("conflicting pop: %+v", stopped)
	}
	if got := u.sandboxGit("rev-parse", "stash@{0}"); got != kept.SHA {
		t.Fatalf("the conflicting pop's entry was not kept: stash@{0} = %s", got)
	}
	pred := u.predict(&backends.StashRequest{Scope: uscope(), Action: "pop"}, stopped)
	if !maps.Equal(pred.Expected, pred.Found) || pred.Stale != "" {
		t.Fatalf("prediction of the conflicting pop: %v / %v %q", pred.Expected, pred.Found, pred.Stale)
	}
	// conflicted paths: restore and a soft reset refuse, changing nothing
	u.refused(&backends.RestoreRequest{Scope: uscope(), Paths: []string{"README.md"}}, backends.Conflict, "unresolved conflicts")
	u.refused(&backends.ResetRequest{Scope: uscope(), Mode: "soft"}, backends.Conflict, "unresolved conflict")
	// released only once nothing is set aside any more (or with force)
	do[*backends.ResetResult](u, &backends.ResetRequest{Scope: uscope(), Hard: true})
	do[*backends.StashResult](u, &backends.StashRequest{Scope: uscope(), Action: "drop"})
	u.refused(release, backends.Conflict, "not pushed") // the commit "meanwhile"; no stash any more
	do[*backends.ResetResult](u, &backends.ResetRequest{Scope: uscope(), Ref: "origin/main", Hard: true})
	if u.binding().Dirty {
		t.Fatal("binding dirty with no change and no stash entry")
	}
	do[*backends.ReleaseWorkspaceResult](u, release)
}

func TestUndoTag(t *testing.T) {
	u := newUndoWorld(t)
	base := u.status().Head
	u.write("a.txt", "a")
	head := u.commit("A")

	light := match[*backends.TagResult](u, &backends.TagRequest{Scope: uscope(), Name: "v1.0"})
	if light.Target != head || light.Annotated || light.Name != "v1.0" {
		t.Fatalf("lightweight tag: %+v", light)
	}
	ann := match[*backends.TagResult](u, &backends.TagRequest{Scope: uscope(), Name: "release/0.9", Target: "HEAD~1", Message: "Release 0.9\n\nnotes"})
	if ann.Target != base || !ann.Annotated {
		t.Fatalf("annotated tag: %+v", ann)
	}
	if got := u.sandboxGit("cat-file", "-t", "refs/tags/release/0.9"); got != "tag" {
		t.Fatalf("release/0.9 is a %s, want an annotated tag object", got)
	}
	if got := u.sandboxGit("for-each-ref", "--format=%(taggername) %(taggeremail)", "refs/tags/release/0.9"); got != "Ada Agent <ada@agents.example>" {
		t.Fatalf("tagger %q", got)
	}
	match[*backends.TagResult](u, &backends.TagRequest{Scope: uscope(), Name: "from-reflog", Target: "HEAD@{1}"})

	u.refused(&backends.TagRequest{Scope: uscope(), Name: "v1.0", Target: "HEAD~1"}, backends.Conflict, "already exists")
	for _, name := range []string{"", "-f", "--force", "-d", "v1..0", "v1.lock", "refs/tags/x", "tags/x", "heads/x", "HEAD", "stash", "a b", "x:y", "x^", "x~1", "@{1}", "v1/", ".hidden", "main", "V1.0", strings.Repeat("a", 40), "cafe1234"} {
		u.refused(&backends.TagRequest{Scope: uscope(), Name: name}, backends.InvalidArgument)
	}
	for _, target := range []string{"--all", "-x", "HEAD@{x}", "a..b", "../x"} {
		u.refused(&backends.TagRequest{Scope: uscope(), Name: "t-bad", Target: target}, backends.InvalidArgument)
	}
	u.refused(&backends.TagRequest{Scope: uscope(), Name: "t-bad", Target: "no-such"}, backends.NotFound)
	u.refused(&backends.TagRequest{Scope: uscope(), Name: "t-bad", Message: "bidi \u202e"}, backends.InvalidArgument)

	// predictions of another tag than the one made: mismatches
	req := &backends.TagRequest{Scope: uscope(), Name: "v2", Message: "two"}
	made := do[*backends.TagResult](u, req)
	other := *req
	other.Message = "what another backend would have written"
	mismatch(t, u.predict(&other, made), "message")
	other = *req
	other.Target = "HEAD~1"
	mismatch(t, u.predict(&other, made), "target")
	other = *req
	other.Message = ""
	mismatch(t, u.predict(&other, made), "annotated")
}

func TestUndoPushTags(t *testing.T) {
	u := newUndoWorld(t)
	u.write("a.txt", "a")
	head := u.commit("A")
	do[*backends.TagResult](u, &backends.TagRequest{Scope: uscope(), Name: "v1"})
	do[*backends.TagResult](u, &backends.TagRequest{Scope: uscope(), Name: "v1-notes", Message: "notes"})

	for _, tags := range [][]string{{"-f"}, {"+v1"}, {":v1"}, {"v1:v2"}, {"refs/tags/v1"}, {"*"}, {"v1", "--delete"}} {
		u.refused(&backends.PushRequest{Scope: uscope(), Tags: tags}, backends.InvalidArgument)
	}
	u.refused(&backends.PushRequest{Scope: uscope(), Tags: []string{"v1", "nope", "nope2"}}, backends.NotFound, `"nope"`, `"nope2"`)

	res := do[*backends.PushResult](u, &backends.PushRequest{Scope: uscope(), Tags: []string{"v1", "v1-notes", "v1"}})
	if !slices.Equal(res.Tags, []string{"v1", "v1-notes"}) || res.Head != head || res.UpToDate {
		t.Fatalf("push with tags: %+v", res)
	}
	if got := u.env.RemoteRef(t, "refs/tags/v1"); got != head {
		t.Fatalf("remote v1 = %q, want %s", got, head)
	}
	if got, want := u.env.RemoteGit(t, "rev-parse", "refs/tags/v1-notes"), u.sandboxGit("rev-parse", "refs/tags/v1-notes"); got != want {
		t.Fatalf("remote v1-notes = %s, want the tag object %s", got, want)
	}
	again := do[*backends.PushResult](u, &backends.PushRequest{Scope: uscope(), Tags: []string{"v1"}})
	if !again.UpToDate || !slices.Equal(again.Tags, []string{"v1"}) {
		t.Fatalf("push again: %+v", again)
	}

	// the remote has v2 on another commit: rejected, naming the tag; the
	// remote keeps its tag, and the branch is not pushed either (atomic)
	other, err := u.env.Remote.CommitFile(backendtest.Ctx(t), "demo", "side", "s.txt", "s", "side")
	if err != nil {
		t.Fatal(err)
	}
	u.env.RemoteGit(t, "tag", "v2", other)
	u.write("b.txt", "b")
	u.commit("B")
	do[*backends.TagResult](u, &backends.TagRequest{Scope: uscope(), Name: "v2"})
	u.refused(&backends.PushRequest{Scope: uscope(), Tags: []string{"v2"}}, backends.Conflict, `tag "v2"`, "never moved")
	if got := u.env.RemoteRef(t, "refs/tags/v2"); got != other {
		t.Fatalf("the remote's v2 moved to %s", got)
	}
	if got := u.env.RemoteRef(t, "refs/heads/main"); got != head {
		t.Fatalf("the branch was pushed although its tag was rejected: main = %s", got)
	}
	// without the tag the branch goes
	if res := do[*backends.PushResult](u, &backends.PushRequest{Scope: uscope()}); res.UpToDate || len(res.Tags) != 0 {
		t.Fatalf("push without tags: %+v", res)
	}
}

// TestUndoStashShelved: stash entries are work the shelf keeps: a
// workspace whose only unsaved work is two stash entries is shelved when
// its sandbox is reaped, and restored with both entries, in order, with
// their messages and commits.
func TestUndoStashShelved(t *testing.T) {
	w := newShelfWorld(t, backendtest.NewEnv(t), shelfOptions{})
	p, ws := w.env.Agent, backends.Scope{Workspace: "s"}
	backendtest.Clone(t, w.ex, w.env, p, "s")
	backendtest.Do[*backends.WriteFileResult](t, w.ex, p, &backends.WriteFileRequest{Scope: ws, Path: "README.md", Content: "first\n"})
	backendtest.Do[*backends.WriteFileResult](t, w.ex, p, &backends.WriteFileRequest{Scope: ws, Path: "new.txt", Content: "untracked\n"})
	first := backendtest.Do[*backends.StashResult](t, w.ex, p, &backends.StashRequest{Scope: ws, Action: "push", Message: "one", IncludeUntracked: true})
	backendtest.Do[*backends.WriteFileResult](t, w.ex, p, &backends.WriteFileRequest{Scope: ws, Path: "README.md", Content: "second\n"})
	second := backendtest.Do[*backends.StashResult](t, w.ex, p, &backends.StashRequest{Scope: ws, Action: "push", Message: "two"})
	if st := backendtest.Do[*backends.StatusResult](t, w.ex, p, &backends.StatusRequest{Scope: ws}); !st.Clean {
		t.Fatalf("status after the pushes: %+v", st)
	}
	before := hostGit(t, w.hostBinding(t, "s"), "stash", "list", "--format=%H %gs")
	if n := w.reap(t); n != 1 {
		t.Fatalf("reaped %d sandboxes, want 1", n)
	}
	if b := w.binding(t, "s"); b.Shelf == "" {
		t.Fatalf("a workspace holding stash entries was not shelved: %+v", b)
	}
	backendtest.Do[*backends.StatusResult](t, w.ex, p, &backends.StatusRequest{Scope: ws})
	after := hostGit(t, w.hostBinding(t, "s"), "stash", "list", "--format=%H %gs")
	if after != before || !strings.Contains(after, first.SHA+" On main: one") || !strings.Contains(after, second.SHA+" On main: two") {
		t.Fatalf("stash entries after the restore:\n%s\nwant\n%s", after, before)
	}
	if refs := hostGit(t, w.hostBinding(t, "s"), "for-each-ref", "refs/gitgate/"); refs != "" {
		t.Fatalf("the shelf's refs were left: %s", refs)
	}
	pop := backendtest.Do[*backends.StashResult](t, w.ex, p, &backends.StashRequest{Scope: ws, Action: "pop", Index: 1})
	if pop.SHA != first.SHA {
		t.Fatalf("pop stash@{1}: %+v", pop)
	}
	got := backendtest.Do[*backends.ReadFileResult](t, w.ex, p, &backends.ReadFileRequest{Scope: ws, Path: "new.txt"})
	if got.Content != "untracked\n" {
		t.Fatalf("the restored entry's untracked file: %q", got.Content)
	}
}

// TestUndoPushTagsPrediction: a push with tags predicts the tags on the
// remote (A/A), and a result that did not push them is a mismatch. It
// needs predictPush (predict.go) to call predictPushTags.
func TestUndoPushTagsPrediction(t *testing.T) {
	u := newUndoWorld(t)
	u.write("a.txt", "a")
	u.commit("A")
	do[*backends.TagResult](u, &backends.TagRequest{Scope: uscope(), Name: "v1"})
	do[*backends.TagResult](u, &backends.TagRequest{Scope: uscope(), Name: "v1-notes", Message: "notes"})
	do[*backends.TagResult](u, &backends.TagRequest{Scope: uscope(), Name: "v2"}) // never pushed
	res := match[*backends.PushResult](u, &backends.PushRequest{Scope: uscope(), Tags: []string{"v1", "v1-notes"}})
	if len(res.Tags) != 2 {
		t.Fatalf("push: %+v", res)
	}
	// a tag the remote does not have: a mismatch naming it
	claim := *res
	claim.Tags = []string{"v1", "v2"}
	pred := u.predict(&backends.PushRequest{Scope: uscope(), Tags: []string{"v1", "v2"}}, &claim)
	mismatch(t, pred, "tag v2")
	// a result that leaves a tag out: a mismatch
	claim.Tags = []string{"v1"}
	mismatch(t, u.predict(&backends.PushRequest{Scope: uscope(), Tags: []string{"v1", "v1-notes"}}, &claim), "tags")
}

// TestUndoStashRecovered: a binding rebuilt from its sandbox (the store
// lost it) counts stash entries as work, as the engine's own records do.
func TestUndoStashRecovered(t *testing.T) {
	u := newUndoWorld(t)
	u.write("README.md", "set aside\n")
	do[*backends.StashResult](u, &backends.StashRequest{Scope: uscope(), Action: "push"})
	if err := u.binds.Delete(t.Context(), sandbox.WorkspaceKey{Project: u.env.Agent.Project, Name: "u"}); err != nil {
		t.Fatal(err)
	}
	if st := u.status(); !st.Clean {
		t.Fatalf("status: %+v", st)
	}
	if b := u.binding(); !b.Dirty {
		t.Fatalf("the recovered binding of a workspace holding a stash entry is not dirty: %+v", b)
	}
}
