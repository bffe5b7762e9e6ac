package approach1_test

import (
	"fmt"
	"io/fs"
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

// seqWorld is an engine on local sandboxes whose bindings the test reads,
// with one cloned workspace.
type seqWorld struct {
	t        *testing.T
	env      *backendtest.Env
	ex       *approach1.Executor
	bindings sandbox.BindingStore
	ws       string
}

func newSeqWorld(t *testing.T) *seqWorld {
	t.Helper()
	env := backendtest.NewEnv(t)
	bindings := sandbox.NewMemoryBindings()
	s := &seqWorld{t: t, env: env, ex: backendtest.NewEngine(t, env, &lock.Memory{}, bindings), bindings: bindings, ws: "seq"}
	backendtest.Clone(t, s.ex, env, env.Agent, s.ws)
	return s
}

func (s *seqWorld) sc() backends.Scope { return backends.Scope{Workspace: s.ws} }

func seqDo[R backends.Result](s *seqWorld, req backends.Request) R {
	s.t.Helper()
	return backendtest.Do[R](s.t, s.ex, s.env.Agent, req)
}

func (s *seqWorld) fail(req backends.Request, want backends.Category, says ...string) {
	s.t.Helper()
	err := backendtest.Fail(s.t, s.ex, s.env.Agent, req)
	backendtest.WantCategory(s.t, err, want)
	for _, w := range says {
		if !strings.Contains(err.Error(), w) {
			s.t.Fatalf("%s: error %q does not say %q", req.Op(), err, w)
		}
	}
}

func (s *seqWorld) write(path, content string) {
	s.t.Helper()
	seqDo[*backends.WriteFileResult](s, &backends.WriteFileRequest{Scope: s.sc(), Path: path, Content: content})
}

func (s *seqWorld) commit(msg string) string {
	s.t.Helper()
	return seqDo[*backends.CommitResult](s, &backends.CommitRequest{Scope: s.sc(), Message: msg}).SHA
}

func (s *seqWorld) checkout(branch string, create bool) {
	s.t.Helper()
	seqDo[*backends.CheckoutResult](s, &backends.CheckoutRequest{Scope: s.sc(), Branch: branch, Create: create})
}

// commitFile writes path and commits it.
func (s *seqWorld) commitFile(path, content, msg string) string {
	s.t.Helper()
	s.write(path, content)
	return s.commit(msg)
}

func (s *seqWorld) binding() sandbox.Binding {
	s.t.Helper()
	b, ok, err := s.bindings.Get(s.t.Context(), sandbox.WorkspaceKey{Project: "alpha", Name: s.ws})
	if err != nil || !ok {
		s.t.Fatalf("binding: %v %v", ok, err)
	}
	return b
}

// git runs git in the workspace on this machine (local sandboxes).
func (s *seqWorld) git(args ...string) string {
	s.t.Helper()
	b := s.binding()
	cmd := exec.Command("/usr/bin/git", append([]string{"--git-dir=" + b.GitDir(), "--work-tree=" + b.WorkTree()}, args...)...)
	cmd.Dir = b.WorkTree()
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C", "GIT_OPTIONAL_LOCKS=0"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("git %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// snapshot is everything abort must bring back: HEAD, the branch, the
// index (every entry and stage), the status and every work-tree file's
// bytes.
func (s *seqWorld) snapshot() string {
	s.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "HEAD %s\nbranch %s\nindex\n%s\nstatus\n%s\n", s.git("rev-parse", "HEAD"), s.git("symbolic-ref", "-q", "HEAD"),
		s.git("ls-files", "--stage"), s.git("status", "--porcelain", "--untracked-files=all"))
	root := s.binding().WorkTree()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		fmt.Fprintf(&b, "file %s %q\n", strings.TrimPrefix(p, root), data)
		return err
	})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, f := range []string{"MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "rebase-merge", "sequencer"} {
		if _, err := os.Stat(filepath.Join(s.binding().GitDir(), f)); err == nil {
			fmt.Fprintf(&b, "gitdir has %s\n", f)
		}
	}
	return b.String()
}

func (s *seqWorld) status() *backends.StatusResult {
	s.t.Helper()
	return seqDo[*backends.StatusResult](s, &backends.StatusRequest{Scope: s.sc()})
}

func seqWantConflicts(t *testing.T, st backends.Stopped, op string, paths ...string) {
	t.Helper()
	var got []string
	for _, c := range st.Conflicts {
		got = append(got, c.Path)
	}
	if st.InProgress != op || !slices.Equal(got, paths) || st.Next == "" {
		t.Fatalf("stopped %+v, want %s in progress with conflicts %v and a next step", st, op, paths)
	}
}

// diverge makes branch "topic" (from main) change README.md one way and
// main another: merging either into the other conflicts.
func (s *seqWorld) diverge() (mainSHA, topicSHA string) {
	s.t.Helper()
	s.checkout("topic", true)
	topicSHA = s.commitFile("README.md", "# demo\n\ntopic's line\n", "Topic edits the README")
	s.checkout("main", false)
	mainSHA = s.commitFile("README.md", "# demo\n\nmain's line\n", "Main edits the README")
	return mainSHA, topicSHA
}

func TestSequencerMergeClean(t *testing.T) {
	s := newSeqWorld(t)
	base := s.git("rev-parse", "HEAD")
	s.checkout("topic", true)
	topic := s.commitFile("a.txt", "a\n", "Add a")
	s.checkout("main", false)
	ff := seqDo[*backends.MergeResult](s, &backends.MergeRequest{Scope: s.sc(), Branch: "topic"})
	if !ff.FastForward || ff.Merged || ff.UpToDate || ff.Before != base || ff.After != topic || ff.Branch != "main" || ff.InProgress != "" {
		t.Fatalf("fast-forward merge: %+v", ff)
	}
	if b := s.binding(); !strings.Contains(b.Unpushed, "main") {
		t.Fatalf("a fast-forwarded main is not unpushed: %+v", b)
	}
	s.checkout("side", true)
	side := s.commitFile("b.txt", "b\n", "Add b")
	s.checkout("main", false)
	s.fail(&backends.MergeRequest{Scope: s.sc(), Branch: "side", FFOnly: true, NoFF: true}, backends.InvalidArgument)
	m := seqDo[*backends.MergeResult](s, &backends.MergeRequest{Scope: s.sc(), Branch: "side", NoFF: true, Message: "Merge side\n\nbecause.\n"})
	if !m.Merged || m.FastForward || m.Before != topic || m.After == side {
		t.Fatalf("no-ff merge: %+v", m)
	}
	if got := s.git("log", "-1", "--format=%P|%an|%cn|%B"); got != topic+" "+side+"|Ada Agent|Ada Agent|Merge side\n\nbecause." {
		t.Fatalf("merge commit %q", got)
	}
	up := seqDo[*backends.MergeResult](s, &backends.MergeRequest{Scope: s.sc(), Branch: "side"})
	if !up.UpToDate || up.After != m.After {
		t.Fatalf("merge again: %+v", up)
	}
	// ff_only refuses a merge that needs a merge commit, and changes nothing.
	s.checkout("other", true)
	s.commitFile("c.txt", "c\n", "Add c")
	s.checkout("main", false)
	s.commitFile("d.txt", "d\n", "Add d")
	before := s.snapshot()
	s.fail(&backends.MergeRequest{Scope: s.sc(), Branch: "other", FFOnly: true}, backends.Conflict, "diverged")
	if after := s.snapshot(); after != before {
		t.Fatalf("a refused ff_only merge changed the workspace:\n%s\nthen\n%s", before, after)
	}
}

func TestSequencerMergeConflictResolved(t *testing.T) {
	s := newSeqWorld(t)
	mainSHA, topicSHA := s.diverge()
	m := seqDo[*backends.MergeResult](s, &backends.MergeRequest{Scope: s.sc(), Branch: "topic"})
	seqWantConflicts(t, m.Stopped, "merge", "README.md")
	if m.After != mainSHA || m.Before != mainSHA || m.Merged {
		t.Fatalf("conflicting merge: %+v", m)
	}
	if c := m.Conflicts[0]; c.Kind != "both_modified" || !slices.Equal(c.Stages, []int{1, 2, 3}) {
		t.Fatalf("conflict %+v", c)
	}
	st := s.status()
	if st.InProgress != "merge" || len(st.Conflicts) != 1 || st.Conflicts[0].Path != "README.md" {
		t.Fatalf("status during the merge: %+v", st)
	}
	if b := s.binding(); !b.Dirty {
		t.Fatalf("a workspace in the middle of a merge is not dirty: %+v", b)
	}
	// What cannot run in the middle of it is refused, naming the way out.
	s.fail(&backends.CheckoutRequest{Scope: s.sc(), Branch: "topic"}, backends.Conflict, "merge is in progress")
	s.fail(&backends.MergeRequest{Scope: s.sc(), Branch: "topic"}, backends.Conflict, "merge is in progress")
	s.fail(&backends.CommitRequest{Scope: s.sc(), Message: "too early"}, backends.Conflict, "README.md", "mark_resolved")
	s.fail(&backends.ContinueRequest{Scope: s.sc()}, backends.Conflict, "README.md")
	s.fail(&backends.MarkResolvedRequest{Scope: s.sc(), Paths: []string{"src/main.go"}}, backends.InvalidArgument, "src/main.go", "README.md")
	s.write("README.md", "# demo\n\nboth lines\n")
	mr := seqDo[*backends.MarkResolvedResult](s, &backends.MarkResolvedRequest{Scope: s.sc(), Paths: []string{"README.md"}})
	if !slices.Equal(mr.Resolved, []string{"README.md"}) || len(mr.Remaining) != 0 {
		t.Fatalf("mark_resolved: %+v", mr)
	}
	if st := s.status(); st.InProgress != "merge" || len(st.Conflicts) != 0 {
		t.Fatalf("status once resolved: %+v", st)
	}
	// Marking it again (a retry) is no error; a path never conflicted is.
	if again := seqDo[*backends.MarkResolvedResult](s, &backends.MarkResolvedRequest{Scope: s.sc(), Paths: []string{"README.md"}}); len(again.Remaining) != 0 {
		t.Fatalf("mark_resolved again: %+v", again)
	}
	s.fail(&backends.MarkResolvedRequest{Scope: s.sc(), Paths: []string{"src/main.go"}}, backends.InvalidArgument, "src/main.go")
	c := seqDo[*backends.ContinueResult](s, &backends.ContinueRequest{Scope: s.sc()})
	if !c.Done || c.Operation != "merge" || c.Branch != "main" || c.InProgress != "" {
		t.Fatalf("continue: %+v", c)
	}
	if got := s.git("log", "-1", "--format=%H %P"); got != c.Head+" "+mainSHA+" "+topicSHA {
		t.Fatalf("merge commit %q, want %s with parents %s %s", got, c.Head, mainSHA, topicSHA)
	}
	if msg := s.git("log", "-1", "--format=%B"); strings.Contains(msg, "#") || !strings.Contains(msg, "Merge branch 'topic'") {
		t.Fatalf("merge message %q", msg)
	}
	if got := s.git("show", "HEAD:README.md"); got != "# demo\n\nboth lines" {
		t.Fatalf("merged README %q", got)
	}
	if st := s.status(); st.InProgress != "" || !st.Clean {
		t.Fatalf("status after continue: %+v", st)
	}
	if b := s.binding(); b.Dirty || !strings.Contains(b.Unpushed, "main") {
		t.Fatalf("binding after the merge: %+v", b)
	}
	s.fail(&backends.ContinueRequest{Scope: s.sc()}, backends.Conflict, "nothing to continue")
	s.fail(&backends.AbortRequest{Scope: s.sc()}, backends.Conflict, "nothing to abort")
}

func TestSequencerMergeConcludedByCommit(t *testing.T) {
	s := newSeqWorld(t)
	mainSHA, topicSHA := s.diverge()
	seqDo[*backends.MergeResult](s, &backends.MergeRequest{Scope: s.sc(), Branch: "topic"})
	s.write("README.md", "# demo\n\nresolved\n")
	seqDo[*backends.MarkResolvedResult](s, &backends.MarkResolvedRequest{Scope: s.sc(), Paths: []string{"README.md"}})
	s.fail(&backends.CommitRequest{Scope: s.sc(), Message: "partial", Paths: []string{"README.md"}}, backends.InvalidArgument, "without paths")
	sha := s.commit("Merge topic, by hand\n")
	if got := s.git("log", "-1", "--format=%P"); got != mainSHA+" "+topicSHA {
		t.Fatalf("commit during a merge made %s with parents %q", sha, got)
	}
	if st := s.status(); st.InProgress != "" {
		t.Fatalf("merge still in progress after commit: %+v", st)
	}
}

func TestSequencerRebaseConflict(t *testing.T) {
	s := newSeqWorld(t)
	s.checkout("topic", true)
	s.commitFile("README.md", "# demo\n\ntopic's line\n", "Topic edits the README")
	s.commitFile("t2.txt", "two\n", "Topic adds t2")
	s.checkout("main", false)
	mainSHA := s.commitFile("README.md", "# demo\n\nmain's line\n", "Main edits the README")
	s.checkout("topic", false)
	topicBefore := s.git("rev-parse", "HEAD")
	r := seqDo[*backends.RebaseResult](s, &backends.RebaseRequest{Scope: s.sc(), Onto: "main"})
	seqWantConflicts(t, r.Stopped, "rebase", "README.md")
	if r.Branch != "topic" || r.Before != topicBefore || r.After != topicBefore || r.Replayed != 0 {
		t.Fatalf("stopped rebase: %+v", r)
	}
	if st := s.status(); st.InProgress != "rebase" || len(st.Conflicts) != 1 {
		t.Fatalf("status during the rebase: %+v", st)
	}
	s.fail(&backends.PullRequest{Scope: s.sc()}, backends.Conflict, "rebase is in progress")
	s.write("README.md", "# demo\n\nmain's line\ntopic's line\n")
	seqDo[*backends.MarkResolvedResult](s, &backends.MarkResolvedRequest{Scope: s.sc(), Paths: []string{"README.md"}})
	c := seqDo[*backends.ContinueResult](s, &backends.ContinueRequest{Scope: s.sc()})
	if !c.Done || c.Operation != "rebase" || c.Branch != "topic" {
		t.Fatalf("continue: %+v", c)
	}
	if got := s.git("log", "--format=%s|%an|%cn", "main..topic"); got != "Topic adds t2|Ada Agent|Ada Agent\nTopic edits the README|Ada Agent|Ada Agent" {
		t.Fatalf("rebased commits:\n%s", got)
	}
	if got := s.git("merge-base", "main", "topic"); got != mainSHA {
		t.Fatalf("topic is not on main: merge base %s", got)
	}
	if got := s.git("rev-parse", "topic"); got != c.Head {
		t.Fatalf("head %s, topic %s", c.Head, got)
	}
	if st := s.status(); st.InProgress != "" || !st.Clean || st.Branch != "topic" {
		t.Fatalf("status after the rebase: %+v", st)
	}
	// A clean rebase replays the branch's own commits.
	s.checkout("main", false)
	s.commitFile("m2.txt", "m2\n", "Main adds m2")
	s.checkout("topic", false)
	clean := seqDo[*backends.RebaseResult](s, &backends.RebaseRequest{Scope: s.sc(), Onto: "main"})
	if clean.Replayed != 2 || clean.InProgress != "" || clean.After == clean.Before {
		t.Fatalf("clean rebase: %+v", clean)
	}
	up := seqDo[*backends.RebaseResult](s, &backends.RebaseRequest{Scope: s.sc(), Onto: "main"})
	if !up.UpToDate || up.After != clean.After {
		t.Fatalf("rebase again: %+v", up)
	}
}

func TestSequencerCherryPickAndRevert(t *testing.T) {
	s := newSeqWorld(t)
	s.checkout("topic", true)
	t1 := s.commitFile("README.md", "# demo\n\ntopic's line\n", "Topic edits the README")
	t2 := s.commitFile("t2.txt", "two\n", "Topic adds t2")
	s.checkout("main", false)
	// Clean: t2 alone applies.
	cp := seqDo[*backends.CherryPickResult](s, &backends.CherryPickRequest{Scope: s.sc(), Commits: []string{t2}})
	if len(cp.Created) != 1 || cp.After != cp.Created[0] || cp.InProgress != "" || cp.Branch != "main" {
		t.Fatalf("clean cherry-pick: %+v", cp)
	}
	if got := s.git("log", "-1", "--format=%s|%P"); got != "Topic adds t2|"+cp.Before {
		t.Fatalf("picked commit %q", got)
	}
	rv := seqDo[*backends.RevertResult](s, &backends.RevertRequest{Scope: s.sc(), Commits: []string{cp.After}})
	if len(rv.Created) != 1 || rv.Before != cp.After || rv.InProgress != "" {
		t.Fatalf("clean revert: %+v", rv)
	}
	if got := s.git("log", "-1", "--format=%s"); got != `Revert "Topic adds t2"` {
		t.Fatalf("revert commit %q", got)
	}
	// Conflicting: the first of two picks conflicts.
	mainSHA := s.commitFile("README.md", "# demo\n\nmain's line\n", "Main edits the README")
	pick := seqDo[*backends.CherryPickResult](s, &backends.CherryPickRequest{Scope: s.sc(), Commits: []string{t1, t2}})
	seqWantConflicts(t, pick.Stopped, "cherry_pick", "README.md")
	if pick.After != mainSHA || len(pick.Created) != 0 {
		t.Fatalf("stopped cherry-pick: %+v", pick)
	}
	s.write("README.md", "# demo\n\npicked\n")
	seqDo[*backends.MarkResolvedResult](s, &backends.MarkResolvedRequest{Scope: s.sc(), Paths: []string{"README.md"}})
	c := seqDo[*backends.ContinueResult](s, &backends.ContinueRequest{Scope: s.sc()})
	if !c.Done || c.Operation != "cherry_pick" {
		t.Fatalf("continue: %+v", c)
	}
	if got := s.git("log", "--format=%s", mainSHA+".."+c.Head); got != "Topic adds t2\nTopic edits the README" {
		t.Fatalf("picked commits:\n%s", got)
	}
	if msg := s.git("log", "-1", "--format=%B", c.Head+"~1"); strings.Contains(msg, "Conflicts") {
		t.Fatalf("resolved pick's message keeps git's conflict comments: %q", msg)
	}
	// Conflicting revert: undoing t1's README edit after it was changed again.
	s.commitFile("README.md", "# demo\n\nchanged again\n", "Change the README again")
	head := s.git("rev-parse", "HEAD")
	r := seqDo[*backends.RevertResult](s, &backends.RevertRequest{Scope: s.sc(), Commits: []string{c.Head + "~1"}})
	seqWantConflicts(t, r.Stopped, "revert", "README.md")
	if r.After != head || len(r.Created) != 0 {
		t.Fatalf("stopped revert: %+v", r)
	}
	s.write("README.md", "# demo\n\nreverted\n")
	seqDo[*backends.MarkResolvedResult](s, &backends.MarkResolvedRequest{Scope: s.sc(), Paths: []string{"README.md"}})
	rc := seqDo[*backends.ContinueResult](s, &backends.ContinueRequest{Scope: s.sc()})
	if !rc.Done || rc.Operation != "revert" {
		t.Fatalf("continue revert: %+v", rc)
	}
	if got := s.git("log", "-1", "--format=%s|%P"); got != `Revert "Topic edits the README"|`+head {
		t.Fatalf("revert commit %q", got)
	}
	if st := s.status(); st.InProgress != "" || !st.Clean {
		t.Fatalf("status: %+v", st)
	}
}

// TestSequencerAbortRestoresExactly stops each operation on conflicts,
// half-resolves it, and aborts: HEAD, the branch, the index and every
// file are back byte for byte (an untracked file included).
func TestSequencerAbortRestoresExactly(t *testing.T) {
	s := newSeqWorld(t)
	s.checkout("topic", true)
	t1 := s.commitFile("README.md", "# demo\n\ntopic's line\n", "Topic edits the README")
	t2 := s.commitFile("src/main.go", "package main\n\n// topic\nfunc main() {}\n", "Topic edits main.go")
	s.checkout("main", false)
	s.commitFile("README.md", "# demo\n\nmain's line\n", "Main edits the README")
	s.commitFile("src/main.go", "package main\n\n// main\nfunc main() {}\n", "Main edits main.go")
	s.write("notes.txt", "untracked, kept\n")
	cases := []struct {
		op     string
		branch string
		req    backends.Request
	}{
		{"merge", "main", &backends.MergeRequest{Branch: "topic"}},
		{"cherry_pick", "main", &backends.CherryPickRequest{Commits: []string{t1, t2}}},
		{"revert", "main", &backends.RevertRequest{Commits: []string{t2, t1}}},
		{"rebase", "topic", &backends.RebaseRequest{Onto: "main"}},
	}
	for _, tc := range cases {
		if tc.branch != "main" {
			s.checkout(tc.branch, false)
		}
		before := s.snapshot()
		*tc.req.GetScope() = s.sc()
		res, err := s.ex.Execute(backendtest.Ctx(t), seqAs(tc.req, s.env.Agent))
		if err != nil {
			t.Fatalf("%s: %v", tc.op, err)
		}
		if got := seqStoppedOf(res); got.InProgress != tc.op || len(got.Conflicts) == 0 {
			t.Fatalf("%s did not stop on conflicts: %+v", tc.op, res)
		}
		// Half a resolution: one file edited and marked, then abort.
		path := seqStoppedOf(res).Conflicts[0].Path
		s.write(path, "half resolved\n")
		seqDo[*backends.MarkResolvedResult](s, &backends.MarkResolvedRequest{Scope: s.sc(), Paths: []string{path}})
		a := seqDo[*backends.AbortResult](s, &backends.AbortRequest{Scope: s.sc()})
		if a.Operation != tc.op || a.Branch != tc.branch {
			t.Fatalf("abort %s: %+v", tc.op, a)
		}
		if after := s.snapshot(); after != before {
			t.Fatalf("abort of the %s did not restore the workspace:\nbefore:\n%s\nafter:\n%s", tc.op, before, after)
		}
		if st := s.status(); st.InProgress != "" || len(st.Conflicts) != 0 {
			t.Fatalf("status after abort of %s: %+v", tc.op, st)
		}
	}
}

func seqAs(req backends.Request, p backends.Principal) backends.Request {
	req.GetScope().Principal = p
	return req
}

func seqStoppedOf(res backends.Result) backends.Stopped {
	switch r := res.(type) {
	case *backends.MergeResult:
		return r.Stopped
	case *backends.RebaseResult:
		return r.Stopped
	case *backends.CherryPickResult:
		return r.Stopped
	case *backends.RevertResult:
		return r.Stopped
	case *backends.PullResult:
		return r.Stopped
	}
	return backends.Stopped{}
}

func TestSequencerPullConflictStops(t *testing.T) {
	s := newSeqWorld(t)
	if _, err := s.env.Remote.CommitFile(backendtest.Ctx(t), "demo", "main", "README.md", "# demo\n\nupstream's line\n", "Upstream edits the README"); err != nil {
		t.Fatal(err)
	}
	local := s.commitFile("README.md", "# demo\n\nlocal line\n", "Local edit")
	// ff-only is refused as before.
	s.fail(&backends.PullRequest{Scope: s.sc()}, backends.Conflict)
	before := s.snapshot()
	p := seqDo[*backends.PullResult](s, &backends.PullRequest{Scope: s.sc(), Mode: "merge"})
	seqWantConflicts(t, p.Stopped, "merge", "README.md")
	if p.Before != local || p.After != local || p.Updated || p.Merged || p.Branch != "main" {
		t.Fatalf("conflicting pull: %+v", p)
	}
	s.fail(&backends.PullRequest{Scope: s.sc(), Mode: "merge"}, backends.Conflict, "merge is in progress")
	seqDo[*backends.AbortResult](s, &backends.AbortRequest{Scope: s.sc()})
	if after := s.snapshot(); after != before {
		t.Fatalf("abort of the pull's merge:\n%s\nthen\n%s", before, after)
	}
	seqDo[*backends.PullResult](s, &backends.PullRequest{Scope: s.sc(), Mode: "merge"})
	s.write("README.md", "# demo\n\nboth\n")
	seqDo[*backends.MarkResolvedResult](s, &backends.MarkResolvedRequest{Scope: s.sc(), Paths: []string{"README.md"}})
	c := seqDo[*backends.ContinueResult](s, &backends.ContinueRequest{Scope: s.sc(), Message: "Merge upstream\n"})
	if !c.Done {
		t.Fatalf("continue: %+v", c)
	}
	if got := s.git("log", "-1", "--format=%P|%B"); got != local+" "+s.git("rev-parse", "origin/main")+"|Merge upstream" {
		t.Fatalf("merge commit %q", got)
	}
}

// TestSequencerRefusals: bad input and operations that cannot start are
// refused and change nothing.
func TestSequencerRefusals(t *testing.T) {
	s := newSeqWorld(t)
	s.checkout("topic", true)
	s.commitFile("a.txt", "a\n", "Add a")
	s.checkout("main", false)
	fifty := make([]string, 51)
	for i := range fifty {
		fifty[i] = "HEAD"
	}
	cases := []struct {
		req  backends.Request
		want backends.Category
	}{
		{&backends.MergeRequest{Branch: "--upload-pack=x"}, backends.InvalidArgument},
		{&backends.MergeRequest{Branch: "nosuch"}, backends.NotFound},
		{&backends.MergeRequest{Branch: "a..b"}, backends.InvalidArgument},
		{&backends.MergeRequest{Branch: "topic", Message: "bad\x00message"}, backends.InvalidArgument},
		{&backends.RebaseRequest{Onto: "-x"}, backends.InvalidArgument},
		{&backends.RebaseRequest{Onto: "nosuch"}, backends.NotFound},
		{&backends.CherryPickRequest{Commits: nil}, backends.InvalidArgument},
		{&backends.CherryPickRequest{Commits: fifty}, backends.InvalidArgument},
		{&backends.CherryPickRequest{Commits: []string{"topic", "--exec=x"}}, backends.InvalidArgument},
		{&backends.CherryPickRequest{Commits: []string{"topic", "nosuch"}}, backends.NotFound},
		{&backends.RevertRequest{Commits: []string{"../x"}}, backends.InvalidArgument},
		{&backends.MarkResolvedRequest{Paths: []string{"../x"}}, backends.InvalidArgument},
		{&backends.MarkResolvedRequest{Paths: nil}, backends.InvalidArgument},
		{&backends.MarkResolvedRequest{Paths: []string{"README.md"}}, backends.InvalidArgument},
		{&backends.ContinueRequest{}, backends.Conflict},
		{&backends.AbortRequest{}, backends.Conflict},
	}
	before := s.snapshot()
	for _, tc := range cases {
		*tc.req.GetScope() = s.sc()
		s.fail(tc.req, tc.want)
		if after := s.snapshot(); after != before {
			t.Fatalf("refused %s %+v changed the workspace:\n%s\nthen\n%s", tc.req.Op(), tc.req, before, after)
		}
	}
	// Uncommitted changes to tracked files: refused, so that abort can
	// restore exactly.
	s.write("README.md", "changed\n")
	before = s.snapshot()
	s.fail(&backends.MergeRequest{Scope: s.sc(), Branch: "topic"}, backends.Conflict, "README.md", "commit")
	if after := s.snapshot(); after != before {
		t.Fatalf("a refused merge changed the workspace")
	}
}

// TestSequencerEdges: a pick whose changes the branch has already stops
// with nothing to resolve and continues into an empty commit; a merge
// commit cannot be picked; a rebase whose resolution drops a commit's
// change drops the commit.
func TestSequencerEdges(t *testing.T) {
	s := newSeqWorld(t)
	s.checkout("topic", true)
	t1 := s.commitFile("README.md", "# demo\n\ntopic's line\n", "Topic edits the README")
	s.commitFile("t2.txt", "two\n", "Topic adds t2")
	s.checkout("main", false)
	s.commitFile("README.md", "# demo\n\ntopic's line\n", "Main makes the same edit")
	head := s.git("rev-parse", "HEAD")
	empty := seqDo[*backends.CherryPickResult](s, &backends.CherryPickRequest{Scope: s.sc(), Commits: []string{t1}})
	if empty.InProgress != "cherry_pick" || len(empty.Conflicts) != 0 || !strings.Contains(empty.Next, "already") || empty.After != head {
		t.Fatalf("pick of a change the branch has: %+v", empty)
	}
	c := seqDo[*backends.ContinueResult](s, &backends.ContinueRequest{Scope: s.sc()})
	if !c.Done || s.git("log", "-1", "--format=%s|%P") != "Topic edits the README|"+head || s.git("diff", "HEAD~1", "HEAD") != "" {
		t.Fatalf("continue of the empty pick: %+v", c)
	}

	// A merge commit is refused, and nothing changes.
	m := seqDo[*backends.MergeResult](s, &backends.MergeRequest{Scope: s.sc(), Branch: "topic", NoFF: true})
	if !m.Merged {
		t.Fatalf("merge: %+v", m)
	}
	before := s.snapshot()
	s.fail(&backends.CherryPickRequest{Scope: s.sc(), Commits: []string{m.After}}, backends.InvalidArgument, "merge commit")
	s.fail(&backends.RevertRequest{Scope: s.sc(), Commits: []string{m.After}}, backends.InvalidArgument, "merge commit")
	if after := s.snapshot(); after != before {
		t.Fatalf("a refused pick of a merge commit changed the workspace:\n%s\nthen\n%s", before, after)
	}

	// Rebase: resolving to the new base's version drops the commit.
	s.checkout("feature", true)
	s.commitFile("README.md", "# demo\n\nfeature's line\n", "Feature edits the README")
	s.commitFile("f2.txt", "f2\n", "Feature adds f2")
	s.checkout("main", false)
	s.commitFile("README.md", "# demo\n\nmain's new line\n", "Main edits the README again")
	s.checkout("feature", false)
	r := seqDo[*backends.RebaseResult](s, &backends.RebaseRequest{Scope: s.sc(), Onto: "main"})
	seqWantConflicts(t, r.Stopped, "rebase", "README.md")
	s.write("README.md", "# demo\n\nmain's new line\n")
	seqDo[*backends.MarkResolvedResult](s, &backends.MarkResolvedRequest{Scope: s.sc(), Paths: []string{"README.md"}})
	rc := seqDo[*backends.ContinueResult](s, &backends.ContinueRequest{Scope: s.sc()})
	if !rc.Done || rc.Branch != "feature" {
		t.Fatalf("continue: %+v", rc)
	}
	if got := s.git("log", "--format=%s", "main..feature"); got != "Feature adds f2" {
		t.Fatalf("rebased commits after dropping one:\n%s", got)
	}
}

// TestSequencerConflictKinds: a file deleted on one side and changed on
// the other, and a file added on both, are reported with git's kinds and
// stages; a deletion resolves by deleting the file.
func TestSequencerConflictKinds(t *testing.T) {
	s := newSeqWorld(t)
	s.checkout("topic", true)
	s.write("src/main.go", "package main\n\n// topic\nfunc main() {}\n")
	s.write("new.txt", "topic's new file\n")
	s.commit("Topic changes main.go and adds new.txt")
	s.checkout("main", false)
	seqDo[*backends.DeleteFileResult](s, &backends.DeleteFileRequest{Scope: s.sc(), Path: "src/main.go"})
	s.write("new.txt", "main's new file\n")
	s.commit("Main deletes main.go and adds new.txt")
	m := seqDo[*backends.MergeResult](s, &backends.MergeRequest{Scope: s.sc(), Branch: "topic"})
	want := []backends.ConflictPath{
		{Path: "new.txt", Kind: "both_added", Stages: []int{2, 3}},
		{Path: "src/main.go", Kind: "deleted_by_us", Stages: []int{1, 3}},
	}
	if m.InProgress != "merge" || fmt.Sprint(m.Conflicts) != fmt.Sprint(want) {
		t.Fatalf("conflicts %+v, want %+v", m.Conflicts, want)
	}
	seqDo[*backends.DeleteFileResult](s, &backends.DeleteFileRequest{Scope: s.sc(), Path: "src/main.go"})
	mr := seqDo[*backends.MarkResolvedResult](s, &backends.MarkResolvedRequest{Scope: s.sc(), Paths: []string{"src/main.go"}})
	if len(mr.Remaining) != 1 || mr.Remaining[0].Path != "new.txt" {
		t.Fatalf("mark_resolved of the deletion: %+v", mr)
	}
	s.write("new.txt", "both new files\n")
	seqDo[*backends.MarkResolvedResult](s, &backends.MarkResolvedRequest{Scope: s.sc(), Paths: []string{"new.txt"}})
	c := seqDo[*backends.ContinueResult](s, &backends.ContinueRequest{Scope: s.sc()})
	if !c.Done {
		t.Fatalf("continue: %+v", c)
	}
	if got := s.git("ls-tree", "-r", "--name-only", "HEAD"); got != "README.md\nnew.txt" {
		t.Fatalf("merged tree:\n%s", got)
	}
}
