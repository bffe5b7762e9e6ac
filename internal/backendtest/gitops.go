package backendtest

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// The operations of issue 16 (backends/gitops.go): history reads (fetch,
// show, blame, tags, reflog, stashes), integration (merge, rebase,
// cherry_pick, revert) with the conflicts they leave for the agent
// (mark_resolved, continue, abort), undo (reset, restore, stash), tags and
// their push, and fork_workspace.

// testGitOps runs the happy paths and the conflict flows of the new
// operations; bad input and predictions run in testGitOpsBadInput and
// testGitOpsPredictions.
func testGitOps(t *testing.T, f Factory) {
	t.Run("Reads", func(t *testing.T) { testGitOpsReads(t, f) })
	t.Run("Undo", func(t *testing.T) { testGitOpsUndo(t, f) })
	t.Run("Tags", func(t *testing.T) { testGitOpsTags(t, f) })
	t.Run("Integrate", func(t *testing.T) { testGitOpsIntegrate(t, f) })
	t.Run("MergeConflict", func(t *testing.T) { testGitOpsMergeConflict(t, f) })
	t.Run("RebaseConflict", func(t *testing.T) { testGitOpsRebaseConflict(t, f) })
	t.Run("PickRevertConflict", func(t *testing.T) { testGitOpsPickRevertConflict(t, f) })
	t.Run("PullConflict", func(t *testing.T) { testGitOpsPullConflict(t, f) })
	t.Run("Fork", func(t *testing.T) { testGitOpsFork(t, f) })
}

// agentOps is a short hand for the calls the tests below make as one
// principal.
type agentOps struct {
	t   *testing.T
	ex  backends.Executor
	env *Env
	p   backends.Principal
}

func newAgentOps(t *testing.T, f Factory) *agentOps {
	env := NewEnv(t)
	return &agentOps{t: t, ex: f(t, env), env: env, p: env.Agent}
}

func (a *agentOps) clone(ws string) string {
	a.t.Helper()
	return Clone(a.t, a.ex, a.env, a.p, ws).Head
}

func (a *agentOps) write(ws, path, content string) {
	a.t.Helper()
	Do[*backends.WriteFileResult](a.t, a.ex, a.p, &backends.WriteFileRequest{Scope: scope(ws), Path: path, Content: content})
}

func (a *agentOps) commit(ws, msg string) string {
	a.t.Helper()
	return Do[*backends.CommitResult](a.t, a.ex, a.p, &backends.CommitRequest{Scope: scope(ws), Message: msg}).SHA
}

// commitFile writes path and commits it alone.
func (a *agentOps) commitFile(ws, path, content, msg string) string {
	a.t.Helper()
	a.write(ws, path, content)
	return Do[*backends.CommitResult](a.t, a.ex, a.p, &backends.CommitRequest{Scope: scope(ws), Message: msg, Paths: []string{path}}).SHA
}

func (a *agentOps) checkout(ws, branch string, create bool) string {
	a.t.Helper()
	return Do[*backends.CheckoutResult](a.t, a.ex, a.p, &backends.CheckoutRequest{Scope: scope(ws), Branch: branch, Create: create}).Head
}

func (a *agentOps) status(ws string) *backends.StatusResult {
	a.t.Helper()
	return Do[*backends.StatusResult](a.t, a.ex, a.p, &backends.StatusRequest{Scope: scope(ws)})
}

func (a *agentOps) read(ws, path string) string {
	a.t.Helper()
	return Do[*backends.ReadFileResult](a.t, a.ex, a.p, &backends.ReadFileRequest{Scope: scope(ws), Path: path}).Content
}

// fails runs req and fails the test unless it is refused with want.
func (a *agentOps) fails(req backends.Request, want backends.Category) {
	a.t.Helper()
	err := Fail(a.t, a.ex, a.p, req)
	if got := backends.CategoryOf(err); got != want {
		a.t.Fatalf("%s: category %q, want %q (%v)", req.Op(), got, want, err)
	}
}

// parents returns the parents of commit rev in ws.
func (a *agentOps) parents(ws, rev string) []string {
	a.t.Helper()
	lg := Do[*backends.LogResult](a.t, a.ex, a.p, &backends.LogRequest{Scope: scope(ws), Ref: rev, Limit: 1})
	if len(lg.Commits) != 1 {
		a.t.Fatalf("log %s: %+v", rev, lg)
	}
	return lg.Commits[0].Parents
}

// state describes everything an agent can see of workspace ws: its
// status with what is in progress and the conflicts, its local branches,
// tags, stashes, and every file with its content; with reflog, also where
// HEAD has been.
func (a *agentOps) state(ws string, reflog bool) string {
	a.t.Helper()
	return WorkspaceState(a.t, a.ex, a.p, ws, reflog)
}

// WorkspaceState is agentOps.state for any executor and principal.
func WorkspaceState(t testing.TB, ex backends.Executor, p backends.Principal, ws string, reflog bool) string {
	t.Helper()
	var b strings.Builder
	st := Do[*backends.StatusResult](t, ex, p, &backends.StatusRequest{Scope: scope(ws)})
	fmt.Fprintf(&b, "branch=%s head=%s upstream=%s ahead=%d behind=%d clean=%v in_progress=%q conflicts=%v\n",
		st.Branch, st.Head, st.Upstream, st.Ahead, st.Behind, st.Clean, st.InProgress, st.Conflicts)
	for _, e := range st.Entries {
		fmt.Fprintf(&b, "  %s%s %s %s\n", e.Staged, e.Unstaged, e.Path, e.OrigPath)
	}
	for _, br := range Do[*backends.BranchesResult](t, ex, p, &backends.BranchesRequest{Scope: scope(ws), Remote: true}).Branches {
		fmt.Fprintf(&b, "branch %s %s %s current=%v\n", br.Name, br.Head, br.Upstream, br.Current)
	}
	for _, tg := range Do[*backends.TagsResult](t, ex, p, &backends.TagsRequest{Scope: scope(ws)}).Tags {
		fmt.Fprintf(&b, "tag %+v\n", tg)
	}
	for _, s := range Do[*backends.StashesResult](t, ex, p, &backends.StashesRequest{Scope: scope(ws)}).Stashes {
		fmt.Fprintf(&b, "stash %+v\n", s)
	}
	ls := Do[*backends.ListFilesResult](t, ex, p, &backends.ListFilesRequest{Scope: scope(ws), Recursive: true, Page: backends.Page{Limit: 1000}})
	for _, e := range ls.Entries {
		fmt.Fprintf(&b, "%s:%s", e.Type, e.Path)
		if e.Type == "file" {
			r := Do[*backends.ReadFileResult](t, ex, p, &backends.ReadFileRequest{Scope: scope(ws), Path: e.Path})
			fmt.Fprintf(&b, " %s %q", r.Encoding, r.Content)
		}
		b.WriteString("\n")
	}
	if reflog {
		for _, e := range Do[*backends.ReflogResult](t, ex, p, &backends.ReflogRequest{Scope: scope(ws), Limit: 200}).Entries {
			fmt.Fprintf(&b, "reflog %s %s %s\n", e.Selector, e.SHA, e.Action)
		}
	}
	return b.String()
}

// testGitOpsReads: fetch moves only remote-tracking branches and reports
// them; show, blame, tags, reflog and stashes read what the workspace holds.
func testGitOpsReads(t *testing.T, f Factory) {
	a := newAgentOps(t, f)
	ws := "reads"
	seed := a.clone(ws)
	c1 := a.commitFile(ws, "README.md", SeedFiles["README.md"]+"Second line by ada\n", "Edit readme\n\nWith a body.")
	Do[*backends.TagResult](t, a.ex, a.p, &backends.TagRequest{Scope: scope(ws), Name: "v1"})
	Do[*backends.TagResult](t, a.ex, a.p, &backends.TagRequest{Scope: scope(ws), Name: "v2", Message: "Release two"})

	// fetch
	up, err := a.env.Remote.CommitFile(Ctx(t), "demo", "main", "upstream.txt", "up\n", "Upstream change")
	if err != nil {
		t.Fatal(err)
	}
	other, err := a.env.Remote.CommitFile(Ctx(t), "demo", "other", "other.txt", "o\n", "Other branch")
	if err != nil {
		t.Fatal(err)
	}
	before := a.status(ws)
	fr := Do[*backends.FetchResult](t, a.ex, a.p, &backends.FetchRequest{Scope: scope(ws)})
	wantUpdates := []backends.RefUpdate{{Ref: "origin/main", Before: seed, After: up}, {Ref: "origin/other", After: other}}
	if !slices.Equal(sortedUpdates(fr.Updated), wantUpdates) {
		t.Fatalf("fetch updated %+v, want %+v", fr.Updated, wantUpdates)
	}
	after := a.status(ws)
	if after.Head != c1 || after.Branch != "main" || !after.Clean || after.Behind != 1 || after.Ahead != 1 || before.Behind != 0 {
		t.Fatalf("fetch: status before %+v, after %+v: want HEAD and work tree unchanged, one behind", before, after)
	}
	if _, err := a.ex.Execute(Ctx(t), withPrincipal(&backends.ReadFileRequest{Scope: scope(ws), Path: "upstream.txt"}, a.p)); backends.CategoryOf(err) != backends.NotFound {
		t.Fatalf("fetch changed the work tree: reading upstream.txt: %v", err)
	}
	if again := Do[*backends.FetchResult](t, a.ex, a.p, &backends.FetchRequest{Scope: scope(ws)}); len(again.Updated) != 0 {
		t.Fatalf("second fetch updated %+v, want nothing", again.Updated)
	}
	a.env.RemoteGit(t, "update-ref", "-d", "refs/heads/other")
	kept := Do[*backends.FetchResult](t, a.ex, a.p, &backends.FetchRequest{Scope: scope(ws)})
	if len(kept.Updated) != 0 {
		t.Fatalf("fetch without prune updated %+v", kept.Updated)
	}
	pruned := Do[*backends.FetchResult](t, a.ex, a.p, &backends.FetchRequest{Scope: scope(ws), Prune: true})
	if want := []backends.RefUpdate{{Ref: "origin/other", Before: other}}; !slices.Equal(pruned.Updated, want) {
		t.Fatalf("fetch with prune updated %+v, want %+v", pruned.Updated, want)
	}

	// show
	sh := Do[*backends.ShowResult](t, a.ex, a.p, &backends.ShowRequest{Scope: scope(ws)})
	if sh.SHA != c1 || sh.Subject != "Edit readme" || !slices.Equal(sh.Parents, []string{seed}) || sh.AuthorName != a.p.AuthorName ||
		!strings.Contains(sh.Diff, "+Second line by ada") || !strings.Contains(sh.Diff, "README.md") || sh.Truncated || sh.Content != "" {
		t.Fatalf("show HEAD: %+v", sh)
	}
	var paged strings.Builder
	for offset, i := 0, 0; ; i++ {
		page := Do[*backends.ShowResult](t, a.ex, a.p, &backends.ShowRequest{Scope: scope(ws), Rev: c1, Page: backends.Page{Offset: offset, Limit: 40}})
		if page.SHA != c1 {
			t.Fatalf("show page at %d: %+v", offset, page)
		}
		paged.WriteString(page.Diff)
		if !page.Truncated {
			break
		}
		if page.NextOffset <= offset || i > 100 {
			t.Fatalf("show paging does not advance: %+v", page)
		}
		offset = page.NextOffset
	}
	if paged.String() != sh.Diff {
		t.Fatalf("paged show differs:\n%q\nwant\n%q", paged.String(), sh.Diff)
	}
	old := Do[*backends.ShowResult](t, a.ex, a.p, &backends.ShowRequest{Scope: scope(ws), Rev: "HEAD~1", Path: "README.md"})
	if old.Content != SeedFiles["README.md"] || old.Encoding != "utf-8" || old.Path != "README.md" || old.Diff != "" {
		t.Fatalf("show README.md at HEAD~1: %+v", old)
	}
	if tagged := Do[*backends.ShowResult](t, a.ex, a.p, &backends.ShowRequest{Scope: scope(ws), Rev: "v2"}); tagged.SHA != c1 {
		t.Fatalf("show of the annotated tag v2: %+v, want commit %s", tagged, c1)
	}
	if remote := Do[*backends.ShowResult](t, a.ex, a.p, &backends.ShowRequest{Scope: scope(ws), Rev: "origin/main", Path: "upstream.txt"}); remote.Content != "up\n" {
		t.Fatalf("show upstream.txt at origin/main: %+v", remote)
	}
	a.fails(&backends.ShowRequest{Scope: scope(ws), Rev: "HEAD~1", Path: "nope.txt"}, backends.NotFound)
	a.fails(&backends.ShowRequest{Scope: scope(ws), Rev: "no-such-rev"}, backends.NotFound)

	// blame
	bl := Do[*backends.BlameResult](t, a.ex, a.p, &backends.BlameRequest{Scope: scope(ws), Path: "README.md"})
	lines := strings.SplitAfter(strings.TrimSuffix(SeedFiles["README.md"]+"Second line by ada\n", "\n"), "\n")
	if bl.Path != "README.md" || len(bl.Lines) != len(lines) || bl.Truncated {
		t.Fatalf("blame: %+v", bl)
	}
	for i, l := range bl.Lines {
		wantSHA := seed
		if i == len(lines)-1 {
			wantSHA = c1
		}
		if l.Line != i+1 || l.SHA != wantSHA || l.Content != strings.TrimSuffix(lines[i], "\n") {
			t.Fatalf("blame line %d: %+v, want sha %s content %q", i+1, l, wantSHA, lines[i])
		}
		if _, err := time.Parse(time.RFC3339, l.Date); err != nil {
			t.Fatalf("blame line %d date %q: %v", i+1, l.Date, err)
		}
	}
	if last := bl.Lines[len(bl.Lines)-1]; last.Author != a.p.AuthorName || last.Summary != "Edit readme" {
		t.Fatalf("blame of ada's line: %+v", last)
	}
	page := Do[*backends.BlameResult](t, a.ex, a.p, &backends.BlameRequest{Scope: scope(ws), Path: "README.md", Limit: 2})
	if len(page.Lines) != 2 || !page.Truncated || page.NextLine != 3 {
		t.Fatalf("blame page: %+v", page)
	}
	rest := Do[*backends.BlameResult](t, a.ex, a.p, &backends.BlameRequest{Scope: scope(ws), Path: "README.md", StartLine: page.NextLine})
	if len(rest.Lines) != len(lines)-2 || rest.Lines[0].Line != 3 || rest.Truncated {
		t.Fatalf("blame from line 3: %+v", rest)
	}
	if atSeed := Do[*backends.BlameResult](t, a.ex, a.p, &backends.BlameRequest{Scope: scope(ws), Path: "README.md", Rev: seed}); len(atSeed.Lines) != len(lines)-1 {
		t.Fatalf("blame at the seed commit: %+v", atSeed)
	}
	a.fails(&backends.BlameRequest{Scope: scope(ws), Path: "nope.txt"}, backends.NotFound)

	// tags
	tags := Do[*backends.TagsResult](t, a.ex, a.p, &backends.TagsRequest{Scope: scope(ws)}).Tags
	if len(tags) != 2 || tags[0] != (backends.Tag{Name: "v1", Target: c1}) ||
		tags[1].Name != "v2" || tags[1].Target != c1 || !tags[1].Annotated || strings.TrimSpace(tags[1].Message) != "Release two" {
		t.Fatalf("tags %+v", tags)
	}

	// reflog
	rl := Do[*backends.ReflogResult](t, a.ex, a.p, &backends.ReflogRequest{Scope: scope(ws)})
	if len(rl.Entries) < 2 || rl.Entries[0].SHA != c1 || rl.Entries[0].Selector != "HEAD@{0}" || !strings.HasPrefix(rl.Entries[0].Action, "commit") ||
		rl.Entries[1].SHA != seed || rl.Entries[1].Selector != "HEAD@{1}" || rl.Truncated {
		t.Fatalf("reflog %+v", rl)
	}
	if _, err := time.Parse(time.RFC3339, rl.Entries[0].Date); err != nil {
		t.Fatalf("reflog date %q: %v", rl.Entries[0].Date, err)
	}
	// A selector names its entry in the reads.
	if sh := Do[*backends.ShowResult](t, a.ex, a.p, &backends.ShowRequest{Scope: scope(ws), Rev: rl.Entries[1].Selector}); sh.SHA != seed {
		t.Fatalf("show %s: commit %s, want %s", rl.Entries[1].Selector, sh.SHA, seed)
	}
	if lg := Do[*backends.LogResult](t, a.ex, a.p, &backends.LogRequest{Scope: scope(ws), Ref: rl.Entries[1].Selector, Limit: 1}); len(lg.Commits) != 1 || lg.Commits[0].SHA != seed {
		t.Fatalf("log %s: %+v, want %s", rl.Entries[1].Selector, lg.Commits, seed)
	}
	first := Do[*backends.ReflogResult](t, a.ex, a.p, &backends.ReflogRequest{Scope: scope(ws), Limit: 1})
	if len(first.Entries) != 1 || !first.Truncated || first.NextSkip != 1 || first.Entries[0] != rl.Entries[0] {
		t.Fatalf("reflog page: %+v", first)
	}
	second := Do[*backends.ReflogResult](t, a.ex, a.p, &backends.ReflogRequest{Scope: scope(ws), Limit: 1, Skip: first.NextSkip})
	if len(second.Entries) != 1 || second.Entries[0] != rl.Entries[1] {
		t.Fatalf("reflog second page: %+v", second)
	}

	// stashes
	if st := Do[*backends.StashesResult](t, a.ex, a.p, &backends.StashesRequest{Scope: scope(ws)}); len(st.Stashes) != 0 {
		t.Fatalf("stashes of a fresh workspace: %+v", st)
	}
	a.write(ws, "README.md", "stashed\n")
	push := Do[*backends.StashResult](t, a.ex, a.p, &backends.StashRequest{Scope: scope(ws), Action: "push", Message: "first wip"})
	a.write(ws, "src/main.go", "package main\n// stashed too\n")
	push2 := Do[*backends.StashResult](t, a.ex, a.p, &backends.StashRequest{Scope: scope(ws), Action: "push", Message: "second wip"})
	st := Do[*backends.StashesResult](t, a.ex, a.p, &backends.StashesRequest{Scope: scope(ws)}).Stashes
	if len(st) != 2 || st[0].Index != 0 || st[0].SHA != push2.SHA || !strings.Contains(st[0].Message, "second wip") ||
		st[1].Index != 1 || st[1].SHA != push.SHA || !strings.Contains(st[1].Message, "first wip") {
		t.Fatalf("stashes %+v (pushed %s then %s)", st, push.SHA, push2.SHA)
	}
}

func sortedUpdates(u []backends.RefUpdate) []backends.RefUpdate {
	u = slices.Clone(u)
	slices.SortFunc(u, func(x, y backends.RefUpdate) int { return strings.Compare(x.Ref, y.Ref) })
	return u
}

func withPrincipal(req backends.Request, p backends.Principal) backends.Request {
	req.GetScope().Principal = p
	return req
}

// testGitOpsUndo: reset (soft, mixed, hard, to a reflog entry), restore
// (work tree, staged, from a source) and stash (push, apply, pop, drop,
// a pop that conflicts).
func testGitOpsUndo(t *testing.T, f Factory) {
	a := newAgentOps(t, f)
	ws := "undo"
	seed := a.clone(ws)
	c1 := a.commitFile(ws, "x.txt", "x\n", "Add x")

	// reset --soft keeps the change staged
	soft := Do[*backends.ResetResult](t, a.ex, a.p, &backends.ResetRequest{Scope: scope(ws), Ref: "HEAD~1", Mode: "soft"})
	if soft.Before != c1 || soft.After != seed || soft.Mode != "soft" || soft.Branch != "main" {
		t.Fatalf("soft reset %+v", soft)
	}
	if st := a.status(ws); st.Head != seed || len(st.Entries) != 1 || st.Entries[0] != (backends.StatusEntry{Path: "x.txt", Staged: "A", Unstaged: "."}) {
		t.Fatalf("after a soft reset: %+v", st)
	}
	// restore --staged unstages it
	rs := Do[*backends.RestoreResult](t, a.ex, a.p, &backends.RestoreRequest{Scope: scope(ws), Paths: []string{"x.txt"}, Staged: true})
	if !slices.Equal(rs.Paths, []string{"x.txt"}) {
		t.Fatalf("restore staged %+v", rs)
	}
	if st := a.status(ws); len(st.Entries) != 1 || st.Entries[0] != (backends.StatusEntry{Path: "x.txt", Staged: ".", Unstaged: "?"}) || a.read(ws, "x.txt") != "x\n" {
		t.Fatalf("after restore --staged: %+v", st)
	}
	c2 := a.commit(ws, "Add x again")

	// reset (mixed, the default) keeps the change in the work tree, unstaged
	mixed := Do[*backends.ResetResult](t, a.ex, a.p, &backends.ResetRequest{Scope: scope(ws), Ref: "HEAD~1"})
	if mixed.Before != c2 || mixed.After != seed || mixed.Mode != "mixed" {
		t.Fatalf("mixed reset %+v", mixed)
	}
	if st := a.status(ws); st.Head != seed || len(st.Entries) != 1 || st.Entries[0].Unstaged != "?" {
		t.Fatalf("after a mixed reset: %+v", st)
	}

	// the reflog names the lost commit: resetting to its entry undoes
	var sel string
	for _, e := range Do[*backends.ReflogResult](t, a.ex, a.p, &backends.ReflogRequest{Scope: scope(ws)}).Entries {
		if e.SHA == c2 {
			sel = e.Selector
			break
		}
	}
	if sel == "" {
		t.Fatalf("the reflog does not show %s", c2)
	}
	back := Do[*backends.ResetResult](t, a.ex, a.p, &backends.ResetRequest{Scope: scope(ws), Ref: sel})
	if back.After != c2 || !a.status(ws).Clean {
		t.Fatalf("reset to %s: %+v, status %+v", sel, back, a.status(ws))
	}

	// reset --hard discards uncommitted changes, only when asked for
	a.write(ws, "README.md", "scribbles\n")
	hard := Do[*backends.ResetResult](t, a.ex, a.p, &backends.ResetRequest{Scope: scope(ws), Hard: true})
	if hard.Mode != "hard" || hard.After != c2 || hard.Before != c2 || a.read(ws, "README.md") != SeedFiles["README.md"] || !a.status(ws).Clean {
		t.Fatalf("hard reset %+v, status %+v", hard, a.status(ws))
	}

	// restore: the work tree from the index, or from a source
	a.write(ws, "README.md", "changed\n")
	a.write(ws, "src/main.go", "package main\n// changed\n")
	r := Do[*backends.RestoreResult](t, a.ex, a.p, &backends.RestoreRequest{Scope: scope(ws), Paths: []string{"README.md"}})
	if !slices.Equal(r.Paths, []string{"README.md"}) || a.read(ws, "README.md") != SeedFiles["README.md"] || a.read(ws, "src/main.go") != "package main\n// changed\n" {
		t.Fatalf("restore README.md: %+v", r)
	}
	Do[*backends.RestoreResult](t, a.ex, a.p, &backends.RestoreRequest{Scope: scope(ws), Paths: []string{"."}})
	if st := a.status(ws); !st.Clean {
		t.Fatalf("restore . left %+v", st)
	}
	Do[*backends.RestoreResult](t, a.ex, a.p, &backends.RestoreRequest{Scope: scope(ws), Paths: []string{"x.txt"}, Source: seed})
	if _, err := a.ex.Execute(Ctx(t), withPrincipal(&backends.ReadFileRequest{Scope: scope(ws), Path: "x.txt"}, a.p)); backends.CategoryOf(err) != backends.NotFound {
		t.Fatalf("restore x.txt from %s (where it does not exist) kept it: %v", seed, err)
	}
	Do[*backends.RestoreResult](t, a.ex, a.p, &backends.RestoreRequest{Scope: scope(ws), Paths: []string{"x.txt"}})
	if !a.status(ws).Clean {
		t.Fatalf("restore x.txt from the index: %+v", a.status(ws))
	}

	// stash push, apply, pop, drop
	a.write(ws, "README.md", "wip\n")
	a.write(ws, "untracked.txt", "u\n")
	p1 := Do[*backends.StashResult](t, a.ex, a.p, &backends.StashRequest{Scope: scope(ws), Action: "push", Message: "wip", IncludeUntracked: true})
	if p1.Action != "push" || len(p1.SHA) != 40 || p1.InProgress != "" || len(p1.Conflicts) != 0 {
		t.Fatalf("stash push %+v", p1)
	}
	if st := a.status(ws); !st.Clean {
		t.Fatalf("after stash push (with untracked): %+v", st)
	}
	ap := Do[*backends.StashResult](t, a.ex, a.p, &backends.StashRequest{Scope: scope(ws), Action: "apply"})
	if ap.SHA != p1.SHA || a.read(ws, "README.md") != "wip\n" || a.read(ws, "untracked.txt") != "u\n" {
		t.Fatalf("stash apply %+v", ap)
	}
	if n := len(Do[*backends.StashesResult](t, a.ex, a.p, &backends.StashesRequest{Scope: scope(ws)}).Stashes); n != 1 {
		t.Fatalf("apply dropped the entry: %d left", n)
	}
	Do[*backends.RestoreResult](t, a.ex, a.p, &backends.RestoreRequest{Scope: scope(ws), Paths: []string{"README.md"}})
	Do[*backends.DeleteFileResult](t, a.ex, a.p, &backends.DeleteFileRequest{Scope: scope(ws), Path: "untracked.txt"})
	pop := Do[*backends.StashResult](t, a.ex, a.p, &backends.StashRequest{Scope: scope(ws), Action: "pop", Index: 0})
	if pop.SHA != p1.SHA || pop.Action != "pop" || a.read(ws, "README.md") != "wip\n" || len(pop.Conflicts) != 0 {
		t.Fatalf("stash pop %+v", pop)
	}
	if n := len(Do[*backends.StashesResult](t, a.ex, a.p, &backends.StashesRequest{Scope: scope(ws)}).Stashes); n != 0 {
		t.Fatalf("pop kept the entry: %d left", n)
	}
	p2 := Do[*backends.StashResult](t, a.ex, a.p, &backends.StashRequest{Scope: scope(ws), Action: "push"})
	if st := a.status(ws); len(st.Entries) != 1 || st.Entries[0].Path != "untracked.txt" {
		t.Fatalf("a stash push without include_untracked: %+v", st)
	}
	dr := Do[*backends.StashResult](t, a.ex, a.p, &backends.StashRequest{Scope: scope(ws), Action: "drop"})
	if dr.SHA != p2.SHA || a.read(ws, "README.md") != SeedFiles["README.md"] {
		t.Fatalf("stash drop %+v", dr)
	}
	a.fails(&backends.StashRequest{Scope: scope(ws), Action: "pop"}, backends.NotFound)
	a.fails(&backends.StashRequest{Scope: scope(ws), Action: "drop", Index: 3}, backends.NotFound)

	// a pop that conflicts reports the conflicts (nothing to continue)
	a.write(ws, "README.md", "stashed line\n")
	p3 := Do[*backends.StashResult](t, a.ex, a.p, &backends.StashRequest{Scope: scope(ws), Action: "push"})
	a.commitFile(ws, "README.md", "committed line\n", "Change the readme")
	cp := Do[*backends.StashResult](t, a.ex, a.p, &backends.StashRequest{Scope: scope(ws), Action: "pop"})
	if cp.SHA != p3.SHA || cp.InProgress != "" || len(cp.Conflicts) != 1 || cp.Conflicts[0].Path != "README.md" || cp.Conflicts[0].Kind != "both_modified" || cp.Next == "" {
		t.Fatalf("conflicting stash pop %+v", cp)
	}
	if st := a.status(ws); st.InProgress != "" || len(st.Conflicts) != 1 || st.Conflicts[0].Path != "README.md" {
		t.Fatalf("status after a conflicting pop: %+v", st)
	}
	if n := len(Do[*backends.StashesResult](t, a.ex, a.p, &backends.StashesRequest{Scope: scope(ws)}).Stashes); n != 1 {
		t.Fatalf("a conflicting pop must keep its entry (git does): %d left", n)
	}
	a.write(ws, "README.md", "both lines\n")
	mr := Do[*backends.MarkResolvedResult](t, a.ex, a.p, &backends.MarkResolvedRequest{Scope: scope(ws), Paths: []string{"README.md"}})
	if !slices.Equal(mr.Resolved, []string{"README.md"}) || len(mr.Remaining) != 0 {
		t.Fatalf("mark_resolved after a pop: %+v", mr)
	}
	if st := a.status(ws); len(st.Conflicts) != 0 || st.InProgress != "" {
		t.Fatalf("status after resolving a pop: %+v", st)
	}
}

// testGitOpsTags: tag makes lightweight and annotated tags; push sends a
// tag only when it names it, and never moves a tag the remote has.
func testGitOpsTags(t *testing.T, f Factory) {
	a := newAgentOps(t, f)
	ws := "tags"
	seed := a.clone(ws)
	c1 := a.commitFile(ws, "t.txt", "t\n", "Add t")
	lt := Do[*backends.TagResult](t, a.ex, a.p, &backends.TagRequest{Scope: scope(ws), Name: "v1.0"})
	if lt.Name != "v1.0" || lt.Target != c1 || lt.Annotated {
		t.Fatalf("lightweight tag %+v", lt)
	}
	at := Do[*backends.TagResult](t, a.ex, a.p, &backends.TagRequest{Scope: scope(ws), Name: "v0.9", Target: "HEAD~1", Message: "The seed"})
	if at.Name != "v0.9" || at.Target != seed || !at.Annotated {
		t.Fatalf("annotated tag %+v", at)
	}
	a.fails(&backends.TagRequest{Scope: scope(ws), Name: "v1.0"}, backends.Conflict)
	a.fails(&backends.TagRequest{Scope: scope(ws), Name: "v9", Target: "no-such-rev"}, backends.NotFound)

	p := Do[*backends.PushResult](t, a.ex, a.p, &backends.PushRequest{Scope: scope(ws)})
	if p.Head != c1 || len(p.Tags) != 0 {
		t.Fatalf("push %+v", p)
	}
	if refs := a.env.RemoteGit(t, "for-each-ref", "refs/tags"); refs != "" {
		t.Fatalf("a push naming no tag sent tags: %s", refs)
	}
	p = Do[*backends.PushResult](t, a.ex, a.p, &backends.PushRequest{Scope: scope(ws), Tags: []string{"v1.0"}})
	if !slices.Equal(p.Tags, []string{"v1.0"}) {
		t.Fatalf("push with tag v1.0: %+v", p)
	}
	if got := a.env.RemoteRef(t, "refs/tags/v1.0"); got != c1 {
		t.Fatalf("remote v1.0 = %q, want %s", got, c1)
	}
	if got := a.env.RemoteRef(t, "refs/tags/v0.9"); got != "" {
		t.Fatalf("v0.9 was pushed without being named: %s", got)
	}
	p = Do[*backends.PushResult](t, a.ex, a.p, &backends.PushRequest{Scope: scope(ws), Tags: []string{"v1.0", "v0.9"}})
	if got := slices.Sorted(slices.Values(p.Tags)); !slices.Equal(got, []string{"v0.9", "v1.0"}) {
		t.Fatalf("push with both tags: %+v", p)
	}
	if got := a.env.RemoteGit(t, "rev-parse", "refs/tags/v0.9^{commit}"); got != seed {
		t.Fatalf("remote v0.9 points to %s, want %s", got, seed)
	}
	if got := a.env.RemoteGit(t, "cat-file", "-t", "refs/tags/v0.9"); got != "tag" {
		t.Fatalf("remote v0.9 is a %s, want an annotated tag", got)
	}

	// a tag the remote already has elsewhere is never moved
	a.env.RemoteGit(t, "update-ref", "refs/tags/fixed", seed)
	Do[*backends.TagResult](t, a.ex, a.p, &backends.TagRequest{Scope: scope(ws), Name: "fixed"})
	err := Fail(t, a.ex, a.p, &backends.PushRequest{Scope: scope(ws), Tags: []string{"fixed"}})
	if c := backends.CategoryOf(err); c != backends.Conflict {
		t.Fatalf("pushing a tag the remote has elsewhere: %v, want conflict", err)
	}
	if got := a.env.RemoteRef(t, "refs/tags/fixed"); got != seed {
		t.Fatalf("a push moved the remote's tag fixed to %s", got)
	}
	a.fails(&backends.PushRequest{Scope: scope(ws), Tags: []string{"no-such-tag"}}, backends.NotFound)

	// fetch brings the remote's tags and never moves a local one
	a.env.RemoteGit(t, "update-ref", "refs/tags/upstream-tag", seed)
	Do[*backends.FetchResult](t, a.ex, a.p, &backends.FetchRequest{Scope: scope(ws), Prune: true})
	tags := map[string]string{}
	for _, tg := range Do[*backends.TagsResult](t, a.ex, a.p, &backends.TagsRequest{Scope: scope(ws)}).Tags {
		tags[tg.Name] = tg.Target
	}
	if tags["upstream-tag"] != seed || tags["fixed"] != c1 || tags["v1.0"] != c1 || tags["v0.9"] != seed {
		t.Fatalf("tags after a fetch: %v (the remote's new tag at %s; local ones unmoved)", tags, seed)
	}
	a.env.RemoteGit(t, "update-ref", "-d", "refs/tags/v1.0")
	Do[*backends.FetchResult](t, a.ex, a.p, &backends.FetchRequest{Scope: scope(ws), Prune: true})
	if got := Do[*backends.TagsResult](t, a.ex, a.p, &backends.TagsRequest{Scope: scope(ws)}).Tags; len(got) != 4 {
		t.Fatalf("a pruning fetch removed a local tag: %+v", got)
	}
}

// testGitOpsIntegrate: merge (fast-forward, no-ff, ff-only refused, up to
// date, the upstream by default), rebase onto the upstream, cherry_pick and
// revert without conflicts.
func testGitOpsIntegrate(t *testing.T, f Factory) {
	a := newAgentOps(t, f)
	ws := "integ"
	seed := a.clone(ws)
	a.checkout(ws, "topic", true)
	t1 := a.commitFile(ws, "topic.txt", "topic\n", "Topic work")
	a.checkout(ws, "main", false)

	ff := Do[*backends.MergeResult](t, a.ex, a.p, &backends.MergeRequest{Scope: scope(ws), Branch: "topic"})
	if ff.Branch != "main" || ff.Before != seed || ff.After != t1 || !ff.FastForward || ff.Merged || ff.InProgress != "" {
		t.Fatalf("fast-forward merge %+v", ff)
	}
	if up := Do[*backends.MergeResult](t, a.ex, a.p, &backends.MergeRequest{Scope: scope(ws), Branch: "topic"}); !up.UpToDate || up.After != t1 {
		t.Fatalf("merge again %+v, want up to date", up)
	}
	a.checkout(ws, "topic", false)
	t2 := a.commitFile(ws, "topic2.txt", "topic2\n", "More topic work")
	a.checkout(ws, "main", false)
	m1 := a.commitFile(ws, "main.txt", "main\n", "Main work")
	before := a.state(ws, false)
	a.fails(&backends.MergeRequest{Scope: scope(ws), Branch: "topic", FFOnly: true}, backends.Conflict)
	if after := a.state(ws, false); after != before {
		t.Fatalf("a refused ff_only merge changed the workspace:\n%s\nwas\n%s", after, before)
	}
	mm := Do[*backends.MergeResult](t, a.ex, a.p, &backends.MergeRequest{Scope: scope(ws), Branch: "topic", Message: "Merge the topic"})
	if !mm.Merged || mm.FastForward || mm.Before != m1 || mm.After == m1 || mm.InProgress != "" {
		t.Fatalf("merge %+v", mm)
	}
	if got := a.parents(ws, mm.After); !slices.Equal(got, []string{m1, t2}) {
		t.Fatalf("merge commit parents %v, want %s %s", got, m1, t2)
	}
	if lg := Do[*backends.LogResult](t, a.ex, a.p, &backends.LogRequest{Scope: scope(ws), Limit: 1}); lg.Commits[0].Subject != "Merge the topic" || lg.Commits[0].AuthorName != a.p.AuthorName {
		t.Fatalf("merge commit %+v", lg.Commits[0])
	}
	a.checkout(ws, "noff", true)
	a.checkout(ws, "main", false)
	a.checkout(ws, "ahead", true)
	ah := a.commitFile(ws, "ahead.txt", "a\n", "Ahead")
	a.checkout(ws, "noff", false)
	no := Do[*backends.MergeResult](t, a.ex, a.p, &backends.MergeRequest{Scope: scope(ws), Branch: "ahead", NoFF: true})
	if !no.Merged || no.FastForward || no.After == ah {
		t.Fatalf("no_ff merge %+v", no)
	}
	if got := a.parents(ws, no.After); !slices.Equal(got, []string{mm.After, ah}) {
		t.Fatalf("no_ff merge parents %v", got)
	}

	// the default is the upstream; rebase onto it replays own commits
	a.checkout(ws, "main", false)
	Do[*backends.PushResult](t, a.ex, a.p, &backends.PushRequest{Scope: scope(ws)})
	up, err := a.env.Remote.CommitFile(Ctx(t), "demo", "main", "upstream.txt", "up\n", "Upstream change")
	if err != nil {
		t.Fatal(err)
	}
	Do[*backends.FetchResult](t, a.ex, a.p, &backends.FetchRequest{Scope: scope(ws)})
	du := Do[*backends.MergeResult](t, a.ex, a.p, &backends.MergeRequest{Scope: scope(ws)})
	if !du.FastForward || du.After != up {
		t.Fatalf("merge of the upstream %+v, want a fast-forward to %s", du, up)
	}
	local := a.commitFile(ws, "local.txt", "l\n", "Local change")
	up2, err := a.env.Remote.CommitFile(Ctx(t), "demo", "main", "upstream2.txt", "up2\n", "Second upstream change")
	if err != nil {
		t.Fatal(err)
	}
	Do[*backends.FetchResult](t, a.ex, a.p, &backends.FetchRequest{Scope: scope(ws)})
	rb := Do[*backends.RebaseResult](t, a.ex, a.p, &backends.RebaseRequest{Scope: scope(ws)})
	if rb.Branch != "main" || rb.Before != local || rb.After == local || rb.Replayed != 1 || rb.InProgress != "" {
		t.Fatalf("rebase onto the upstream %+v", rb)
	}
	if got := a.parents(ws, rb.After); !slices.Equal(got, []string{up2}) {
		t.Fatalf("rebased commit's parents %v, want %s", got, up2)
	}
	if st := a.status(ws); st.Branch != "main" || st.Head != rb.After || st.Ahead != 1 || st.Behind != 0 || !st.Clean {
		t.Fatalf("status after the rebase %+v", st)
	}
	if again := Do[*backends.RebaseResult](t, a.ex, a.p, &backends.RebaseRequest{Scope: scope(ws)}); !again.UpToDate || again.After != rb.After {
		t.Fatalf("rebase again %+v, want up to date", again)
	}
	Do[*backends.PushResult](t, a.ex, a.p, &backends.PushRequest{Scope: scope(ws)})
	if got := a.env.RemoteRef(t, "refs/heads/main"); got != rb.After {
		t.Fatalf("remote main %s after pushing the rebased branch, want %s", got, rb.After)
	}

	// cherry_pick and revert
	a.checkout(ws, "picks", true)
	p1 := a.commitFile(ws, "pick1.txt", "1\n", "Pick one")
	p2 := a.commitFile(ws, "pick2.txt", "2\n", "Pick two")
	a.checkout(ws, "main", false)
	head := a.status(ws).Head
	cp := Do[*backends.CherryPickResult](t, a.ex, a.p, &backends.CherryPickRequest{Scope: scope(ws), Commits: []string{p1, p2}})
	if cp.Branch != "main" || cp.Before != head || len(cp.Created) != 2 || cp.After != cp.Created[1] || cp.InProgress != "" {
		t.Fatalf("cherry_pick %+v", cp)
	}
	if got := a.parents(ws, cp.Created[1]); !slices.Equal(got, []string{cp.Created[0]}) {
		t.Fatalf("picked commits are not in order: %v", got)
	}
	if sh := Do[*backends.ShowResult](t, a.ex, a.p, &backends.ShowRequest{Scope: scope(ws), Rev: cp.Created[0]}); sh.Subject != "Pick one" || a.read(ws, "pick2.txt") != "2\n" {
		t.Fatalf("picked commit %+v", sh)
	}
	rv := Do[*backends.RevertResult](t, a.ex, a.p, &backends.RevertRequest{Scope: scope(ws), Commits: []string{cp.Created[1]}})
	if rv.Before != cp.After || len(rv.Created) != 1 || rv.After != rv.Created[0] || rv.InProgress != "" {
		t.Fatalf("revert %+v", rv)
	}
	if _, err := a.ex.Execute(Ctx(t), withPrincipal(&backends.ReadFileRequest{Scope: scope(ws), Path: "pick2.txt"}, a.p)); backends.CategoryOf(err) != backends.NotFound {
		t.Fatalf("the revert kept pick2.txt: %v", err)
	}
	if st := a.status(ws); !st.Clean || st.Head != rv.After || st.InProgress != "" {
		t.Fatalf("status after revert %+v", st)
	}
	// a retried write with its idempotency key applies once: the same
	// result, HEAD moved once
	key := keyed(ws, "pick-once")
	first := Do[*backends.CherryPickResult](t, a.ex, a.p, &backends.CherryPickRequest{Scope: key, Commits: []string{p2}})
	retry := Do[*backends.CherryPickResult](t, a.ex, a.p, &backends.CherryPickRequest{Scope: key, Commits: []string{p2}})
	if len(first.Created) != 1 || !slices.Equal(first.Created, retry.Created) || retry.After != first.After || a.status(ws).Head != first.After {
		t.Fatalf("a cherry_pick retried with its key: %+v then %+v, HEAD %s", first, retry, a.status(ws).Head)
	}
	tkey := keyed(ws, "tag-once")
	tg := Do[*backends.TagResult](t, a.ex, a.p, &backends.TagRequest{Scope: tkey, Name: "once"})
	if again := Do[*backends.TagResult](t, a.ex, a.p, &backends.TagRequest{Scope: tkey, Name: "once"}); again.Target != tg.Target {
		t.Fatalf("a tag retried with its key: %+v then %+v", tg, again)
	}

	// a pick whose changes the branch already has stops (nothing
	// conflicts): continue would make an empty commit, abort goes back
	empty := Do[*backends.CherryPickResult](t, a.ex, a.p, &backends.CherryPickRequest{Scope: scope(ws), Commits: []string{p1}})
	if empty.InProgress != "cherry_pick" || len(empty.Conflicts) != 0 || empty.Next == "" || len(empty.Created) != 0 || empty.After != first.After {
		t.Fatalf("an empty cherry_pick %+v", empty)
	}
	if ab := Do[*backends.AbortResult](t, a.ex, a.p, &backends.AbortRequest{Scope: scope(ws)}); ab.Head != first.After || ab.Operation != "cherry_pick" {
		t.Fatalf("abort of an empty cherry_pick %+v", ab)
	}

	// nothing in progress: continue and abort are refused
	a.fails(&backends.ContinueRequest{Scope: scope(ws)}, backends.Conflict)
	a.fails(&backends.AbortRequest{Scope: scope(ws)}, backends.Conflict)
}

// conflictSetup makes workspace ws (cloned) hold a branch "theirs" and
// "main" that both changed README.md's last line, main checked out.
func (a *agentOps) conflictSetup(ws, theirs string) (mine, their string) {
	a.t.Helper()
	a.checkout(ws, theirs, true)
	their = a.commitFile(ws, "README.md", "# demo\n\nTheir version.\n", "Their readme")
	a.checkout(ws, "main", false)
	mine = a.commitFile(ws, "README.md", "# demo\n\nMy version.\n", "My readme")
	return mine, their
}

var readmeConflict = []backends.ConflictPath{{Path: "README.md", Kind: "both_modified", Stages: []int{1, 2, 3}}}

func wantStopped(t *testing.T, what string, s backends.Stopped, op string, conflicts []backends.ConflictPath) {
	t.Helper()
	if s.InProgress != op || fmt.Sprint(s.Conflicts) != fmt.Sprint(conflicts) || s.Next == "" {
		t.Fatalf("%s: stopped %+v, want %s in progress with conflicts %v and what to do next", what, s, op, conflicts)
	}
}

// testGitOpsMergeConflict: a merge that conflicts waits for the agent
// (status shows it), refuses to continue until every conflict is resolved
// (a deletion resolves by deletion), then continues into a merge commit
// that pushes; an aborted merge leaves the workspace exactly as it was,
// untracked files included; a merge over uncommitted changes to tracked
// files is refused and changes nothing.
func testGitOpsMergeConflict(t *testing.T, f Factory) {
	a := newAgentOps(t, f)
	ws := "mc"
	a.clone(ws)
	a.checkout(ws, "theirs", true)
	a.write(ws, "README.md", "# demo\n\nTheir version.\n")
	Do[*backends.DeleteFileResult](t, a.ex, a.p, &backends.DeleteFileRequest{Scope: scope(ws), Path: "src/main.go"})
	their := a.commit(ws, "Their readme, and no main.go")
	a.checkout(ws, "main", false)
	a.write(ws, "README.md", "# demo\n\nMy version.\n")
	a.write(ws, "src/main.go", "package main\n\nfunc main() { println() }\n")
	mine := a.commit(ws, "My readme and main.go")
	a.write(ws, "notes.txt", "untracked notes\n")
	conflicts := []backends.ConflictPath{readmeConflict[0], {Path: "src/main.go", Kind: "deleted_by_them", Stages: []int{1, 2}}}

	// uncommitted changes to a tracked file: refused, nothing changed
	a.write(ws, "README.md", "uncommitted\n")
	dirty := a.state(ws, false)
	a.fails(&backends.MergeRequest{Scope: scope(ws), Branch: "theirs"}, backends.Conflict)
	if after := a.state(ws, false); after != dirty {
		t.Fatalf("a refused merge changed the workspace:\n%s\nwas\n%s", after, dirty)
	}
	Do[*backends.RestoreResult](t, a.ex, a.p, &backends.RestoreRequest{Scope: scope(ws), Paths: []string{"README.md"}})
	before := a.state(ws, false)

	m := Do[*backends.MergeResult](t, a.ex, a.p, &backends.MergeRequest{Scope: scope(ws), Branch: "theirs"})
	wantStopped(t, "merge", m.Stopped, "merge", conflicts)
	if m.Before != mine || (m.After != "" && m.After != mine) || m.Merged || m.FastForward || m.Branch != "main" {
		t.Fatalf("merge that stopped %+v", m)
	}
	st := a.status(ws)
	if st.InProgress != "merge" || fmt.Sprint(st.Conflicts) != fmt.Sprint(conflicts) || st.Head != mine || st.Branch != "main" || st.Clean {
		t.Fatalf("status during the merge %+v", st)
	}
	if c := a.read(ws, "README.md"); !strings.Contains(c, "<<<<<<<") || !strings.Contains(c, "My version.") || !strings.Contains(c, "Their version.") {
		t.Fatalf("conflicted README.md %q", c)
	}
	a.fails(&backends.ContinueRequest{Scope: scope(ws)}, backends.Conflict)
	a.fails(&backends.MergeRequest{Scope: scope(ws), Branch: "theirs"}, backends.Conflict)
	a.fails(&backends.RebaseRequest{Scope: scope(ws), Onto: "theirs"}, backends.Conflict)
	a.fails(&backends.CherryPickRequest{Scope: scope(ws), Commits: []string{their}}, backends.Conflict)
	if err := Fail(t, a.ex, a.p, &backends.MarkResolvedRequest{Scope: scope(ws), Paths: []string{"notes.txt"}}); !slices.Contains([]backends.Category{backends.InvalidArgument, backends.Conflict}, backends.CategoryOf(err)) {
		t.Fatalf("mark_resolved of a path that is not conflicted: %v", err)
	}

	// abort: back to exactly where it was
	ab := Do[*backends.AbortResult](t, a.ex, a.p, &backends.AbortRequest{Scope: scope(ws)})
	if ab.Operation != "merge" || ab.Branch != "main" || ab.Head != mine {
		t.Fatalf("abort %+v", ab)
	}
	if after := a.state(ws, false); after != before {
		t.Fatalf("abort did not restore the workspace:\n%s\nwas\n%s", after, before)
	}

	// again, resolved this time: one path after the other
	m = Do[*backends.MergeResult](t, a.ex, a.p, &backends.MergeRequest{Scope: scope(ws), Branch: "theirs"})
	wantStopped(t, "merge again", m.Stopped, "merge", conflicts)
	resolution := "# demo\n\nBoth versions.\n"
	a.write(ws, "README.md", resolution)
	mr := Do[*backends.MarkResolvedResult](t, a.ex, a.p, &backends.MarkResolvedRequest{Scope: scope(ws), Paths: []string{"README.md"}})
	if !slices.Equal(mr.Resolved, []string{"README.md"}) || fmt.Sprint(mr.Remaining) != fmt.Sprint(conflicts[1:]) {
		t.Fatalf("mark_resolved README.md: %+v, want %v remaining", mr, conflicts[1:])
	}
	// mark_resolved is idempotent (the table says so: a started one whose
	// answer was lost is run again): marking the same path again succeeds
	if again, err := backends.Do[*backends.MarkResolvedResult](Ctx(t), a.ex, withPrincipal(&backends.MarkResolvedRequest{Scope: scope(ws), Paths: []string{"README.md"}}, a.p)); err != nil {
		t.Errorf("mark_resolved again (it is declared idempotent, so a lost answer is settled by running it again): %v", err)
	} else if fmt.Sprint(again.Remaining) != fmt.Sprint(conflicts[1:]) {
		t.Errorf("mark_resolved again %+v", again)
	}
	if st := a.status(ws); st.InProgress != "merge" || fmt.Sprint(st.Conflicts) != fmt.Sprint(conflicts[1:]) {
		t.Fatalf("status with one conflict left %+v", st)
	}
	a.fails(&backends.ContinueRequest{Scope: scope(ws)}, backends.Conflict)
	Do[*backends.DeleteFileResult](t, a.ex, a.p, &backends.DeleteFileRequest{Scope: scope(ws), Path: "src/main.go"})
	mr = Do[*backends.MarkResolvedResult](t, a.ex, a.p, &backends.MarkResolvedRequest{Scope: scope(ws), Paths: []string{"src/main.go"}})
	if !slices.Equal(mr.Resolved, []string{"src/main.go"}) || len(mr.Remaining) != 0 {
		t.Fatalf("mark_resolved of a deletion %+v", mr)
	}
	if st := a.status(ws); st.InProgress != "merge" || len(st.Conflicts) != 0 {
		t.Fatalf("status once resolved %+v", st)
	}
	c := Do[*backends.ContinueResult](t, a.ex, a.p, &backends.ContinueRequest{Scope: scope(ws), Message: "Merge theirs, keeping both"})
	if c.Operation != "merge" || !c.Done || c.Branch != "main" || c.Head == mine || c.InProgress != "" || len(c.Conflicts) != 0 {
		t.Fatalf("continue %+v", c)
	}
	if got := a.parents(ws, c.Head); !slices.Equal(got, []string{mine, their}) {
		t.Fatalf("merge commit parents %v, want %s %s", got, mine, their)
	}
	if sh := Do[*backends.ShowResult](t, a.ex, a.p, &backends.ShowRequest{Scope: scope(ws)}); sh.Subject != "Merge theirs, keeping both" || sh.AuthorName != a.p.AuthorName {
		t.Fatalf("merge commit %+v", sh)
	}
	st = a.status(ws)
	if st.InProgress != "" || len(st.Conflicts) != 0 || st.Head != c.Head || len(st.Entries) != 1 || st.Entries[0].Path != "notes.txt" || st.Entries[0].Unstaged != "?" {
		t.Fatalf("status after continue %+v (only the untracked notes.txt may remain)", st)
	}
	p := Do[*backends.PushResult](t, a.ex, a.p, &backends.PushRequest{Scope: scope(ws)})
	if p.Head != c.Head || a.env.RemoteRef(t, "refs/heads/main") != c.Head {
		t.Fatalf("push after the merge %+v", p)
	}
	if got := a.env.RemoteGit(t, "show", c.Head+":README.md"); got != strings.TrimSpace(resolution) {
		t.Fatalf("remote README.md %q", got)
	}
	if got := a.env.RemoteGit(t, "ls-tree", "-r", "--name-only", c.Head); got != "README.md" {
		t.Fatalf("remote tree of the merge: %q, want only README.md (src/main.go resolved by deletion, notes.txt untracked)", got)
	}
}

// testGitOpsRebaseConflict: a rebase that conflicts on the branch's second
// commit stops after replaying the first; an abort then returns the
// branch, HEAD and work tree to where they were (not to the half-replayed
// state); resolved and continued it replays the rest and keeps the branch.
func testGitOpsRebaseConflict(t *testing.T, f Factory) {
	a := newAgentOps(t, f)
	ws := "rc"
	a.clone(ws)
	a.checkout(ws, "feature", true)
	f1 := a.commitFile(ws, "feature.txt", "f\n", "Feature file")
	f2 := a.commitFile(ws, "README.md", "# demo\n\nFeature version.\n", "Feature readme")
	a.checkout(ws, "main", false)
	m1 := a.commitFile(ws, "README.md", "# demo\n\nMain version.\n", "Main readme")
	a.checkout(ws, "feature", false)
	before := a.state(ws, false)

	r := Do[*backends.RebaseResult](t, a.ex, a.p, &backends.RebaseRequest{Scope: scope(ws), Onto: "main"})
	wantStopped(t, "rebase", r.Stopped, "rebase", readmeConflict)
	if r.Branch != "feature" || r.Before != f2 || r.Replayed != 1 {
		t.Fatalf("rebase that stopped on the second commit %+v, want one replayed", r)
	}
	if st := a.status(ws); st.InProgress != "rebase" || fmt.Sprint(st.Conflicts) != fmt.Sprint(readmeConflict) {
		t.Fatalf("status during the rebase %+v", st)
	}
	a.fails(&backends.ContinueRequest{Scope: scope(ws)}, backends.Conflict)
	a.fails(&backends.CheckoutRequest{Scope: scope(ws), Branch: "main"}, backends.Conflict)
	ab := Do[*backends.AbortResult](t, a.ex, a.p, &backends.AbortRequest{Scope: scope(ws)})
	if ab.Operation != "rebase" || ab.Branch != "feature" || ab.Head != f2 {
		t.Fatalf("abort of the rebase %+v", ab)
	}
	if after := a.state(ws, false); after != before {
		t.Fatalf("abort did not restore the workspace:\n%s\nwas\n%s", after, before)
	}

	r = Do[*backends.RebaseResult](t, a.ex, a.p, &backends.RebaseRequest{Scope: scope(ws), Onto: "main"})
	wantStopped(t, "rebase again", r.Stopped, "rebase", readmeConflict)
	a.write(ws, "README.md", "# demo\n\nMain and feature.\n")
	Do[*backends.MarkResolvedResult](t, a.ex, a.p, &backends.MarkResolvedRequest{Scope: scope(ws), Paths: []string{"README.md"}})
	c := Do[*backends.ContinueResult](t, a.ex, a.p, &backends.ContinueRequest{Scope: scope(ws)})
	if c.Operation != "rebase" || !c.Done || c.Branch != "feature" || c.Head == f2 || c.InProgress != "" {
		t.Fatalf("continue of the rebase %+v", c)
	}
	f1n := a.parents(ws, c.Head)
	if len(f1n) != 1 || f1n[0] == f1 || !slices.Equal(a.parents(ws, f1n[0]), []string{m1}) {
		t.Fatalf("rebased history: %s <- %v, want two new commits on %s", c.Head, f1n, m1)
	}
	if sh := Do[*backends.ShowResult](t, a.ex, a.p, &backends.ShowRequest{Scope: scope(ws)}); sh.Subject != "Feature readme" || sh.AuthorName != a.p.AuthorName {
		t.Fatalf("rebased commit %+v", sh)
	}
	if st := a.status(ws); st.Branch != "feature" || st.Head != c.Head || !st.Clean || st.InProgress != "" {
		t.Fatalf("status after the rebase %+v", st)
	}
	if a.read(ws, "README.md") != "# demo\n\nMain and feature.\n" || a.read(ws, "feature.txt") != "f\n" {
		t.Fatal("the rebased work tree lost the resolution or the feature's file")
	}
	p := Do[*backends.PushResult](t, a.ex, a.p, &backends.PushRequest{Scope: scope(ws)})
	if !p.Created || a.env.RemoteRef(t, "refs/heads/feature") != c.Head {
		t.Fatalf("push of the rebased branch %+v", p)
	}
}

// testGitOpsPickRevertConflict: cherry_pick and revert stop on conflicts
// like merge; continue finishes them, abort undoes them.
func testGitOpsPickRevertConflict(t *testing.T, f Factory) {
	a := newAgentOps(t, f)
	ws := "prc"
	a.clone(ws)
	mine, their := a.conflictSetup(ws, "theirs")
	before := a.state(ws, false)

	cp := Do[*backends.CherryPickResult](t, a.ex, a.p, &backends.CherryPickRequest{Scope: scope(ws), Commits: []string{their}})
	wantStopped(t, "cherry_pick", cp.Stopped, "cherry_pick", readmeConflict)
	if cp.Before != mine || len(cp.Created) != 0 {
		t.Fatalf("cherry_pick that stopped %+v", cp)
	}
	if st := a.status(ws); st.InProgress != "cherry_pick" {
		t.Fatalf("status during the cherry-pick %+v", st)
	}
	ab := Do[*backends.AbortResult](t, a.ex, a.p, &backends.AbortRequest{Scope: scope(ws)})
	if ab.Operation != "cherry_pick" || ab.Head != mine || ab.Branch != "main" {
		t.Fatalf("abort of the cherry-pick %+v", ab)
	}
	if after := a.state(ws, false); after != before {
		t.Fatalf("abort did not restore the workspace:\n%s\nwas\n%s", after, before)
	}
	cp = Do[*backends.CherryPickResult](t, a.ex, a.p, &backends.CherryPickRequest{Scope: scope(ws), Commits: []string{their}})
	wantStopped(t, "cherry_pick again", cp.Stopped, "cherry_pick", readmeConflict)
	a.write(ws, "README.md", "# demo\n\nPicked.\n")
	Do[*backends.MarkResolvedResult](t, a.ex, a.p, &backends.MarkResolvedRequest{Scope: scope(ws), Paths: []string{"README.md"}})
	c := Do[*backends.ContinueResult](t, a.ex, a.p, &backends.ContinueRequest{Scope: scope(ws)})
	if c.Operation != "cherry_pick" || !c.Done || c.Head == mine || !slices.Equal(a.parents(ws, c.Head), []string{mine}) {
		t.Fatalf("continue of the cherry-pick %+v", c)
	}
	if sh := Do[*backends.ShowResult](t, a.ex, a.p, &backends.ShowRequest{Scope: scope(ws)}); sh.Subject != "Their readme" {
		t.Fatalf("picked commit %+v", sh)
	}

	// revert "My readme", whose line the pick changed since: a conflict
	picked := c.Head
	before = a.state(ws, false)
	rv := Do[*backends.RevertResult](t, a.ex, a.p, &backends.RevertRequest{Scope: scope(ws), Commits: []string{mine}})
	wantStopped(t, "revert", rv.Stopped, "revert", readmeConflict)
	if rv.Before != picked || len(rv.Created) != 0 {
		t.Fatalf("revert that stopped %+v", rv)
	}
	if st := a.status(ws); st.InProgress != "revert" {
		t.Fatalf("status during the revert %+v", st)
	}
	ab = Do[*backends.AbortResult](t, a.ex, a.p, &backends.AbortRequest{Scope: scope(ws)})
	if ab.Operation != "revert" || ab.Head != picked {
		t.Fatalf("abort of the revert %+v", ab)
	}
	if after := a.state(ws, false); after != before {
		t.Fatalf("abort did not restore the workspace:\n%s\nwas\n%s", after, before)
	}
	rv = Do[*backends.RevertResult](t, a.ex, a.p, &backends.RevertRequest{Scope: scope(ws), Commits: []string{mine}})
	wantStopped(t, "revert again", rv.Stopped, "revert", readmeConflict)
	a.write(ws, "README.md", "# demo\n\nReverted.\n")
	Do[*backends.MarkResolvedResult](t, a.ex, a.p, &backends.MarkResolvedRequest{Scope: scope(ws), Paths: []string{"README.md"}})
	c = Do[*backends.ContinueResult](t, a.ex, a.p, &backends.ContinueRequest{Scope: scope(ws)})
	if c.Operation != "revert" || !c.Done || !slices.Equal(a.parents(ws, c.Head), []string{picked}) {
		t.Fatalf("continue of the revert %+v", c)
	}
	if st := a.status(ws); !st.Clean || st.InProgress != "" || a.read(ws, "README.md") != "# demo\n\nReverted.\n" {
		t.Fatalf("status after the revert %+v", st)
	}

	// two picks that both conflict: continue stops again on the second
	// (done false), then finishes
	a.checkout(ws, "two", true)
	a.write(ws, "README.md", "# demo\n\nFirst pick.\n")
	first := a.commit(ws, "First conflicting pick")
	a.write(ws, "README.md", "# demo\n\nSecond pick.\n")
	second := a.commit(ws, "Second conflicting pick")
	a.checkout(ws, "main", false)
	a.commitFile(ws, "README.md", "# demo\n\nMain moved on.\n", "Main moves on")
	head := a.status(ws).Head
	cp = Do[*backends.CherryPickResult](t, a.ex, a.p, &backends.CherryPickRequest{Scope: scope(ws), Commits: []string{first, second}})
	wantStopped(t, "two picks", cp.Stopped, "cherry_pick", readmeConflict)
	a.write(ws, "README.md", "# demo\n\nFirst resolved.\n")
	Do[*backends.MarkResolvedResult](t, a.ex, a.p, &backends.MarkResolvedRequest{Scope: scope(ws), Paths: []string{"README.md"}})
	c = Do[*backends.ContinueResult](t, a.ex, a.p, &backends.ContinueRequest{Scope: scope(ws)})
	wantStopped(t, "continue onto the second pick", c.Stopped, "cherry_pick", readmeConflict)
	if c.Done || c.Operation != "cherry_pick" || c.Head == head || !slices.Equal(a.parents(ws, c.Head), []string{head}) {
		t.Fatalf("continue that stopped again %+v", c)
	}
	if st := a.status(ws); st.InProgress != "cherry_pick" || fmt.Sprint(st.Conflicts) != fmt.Sprint(readmeConflict) || st.Head != c.Head {
		t.Fatalf("status stopped on the second pick %+v", st)
	}
	a.write(ws, "README.md", "# demo\n\nSecond resolved.\n")
	Do[*backends.MarkResolvedResult](t, a.ex, a.p, &backends.MarkResolvedRequest{Scope: scope(ws), Paths: []string{"README.md"}})
	done := Do[*backends.ContinueResult](t, a.ex, a.p, &backends.ContinueRequest{Scope: scope(ws)})
	if !done.Done || done.InProgress != "" || !slices.Equal(a.parents(ws, done.Head), []string{c.Head}) {
		t.Fatalf("continue of the second pick %+v", done)
	}
	lg := Do[*backends.LogResult](t, a.ex, a.p, &backends.LogRequest{Scope: scope(ws), Limit: 2})
	if lg.Commits[0].Subject != "Second conflicting pick" || lg.Commits[1].Subject != "First conflicting pick" || a.read(ws, "README.md") != "# demo\n\nSecond resolved.\n" {
		t.Fatalf("history after two picks %+v", lg.Commits)
	}
}

// testGitOpsPullConflict: a pull in merge mode that conflicts leaves the
// merge for the agent (no longer undone): the result says merge is in
// progress with the conflicts; resolved and continued, it pushes.
func testGitOpsPullConflict(t *testing.T, f Factory) {
	a := newAgentOps(t, f)
	ws := "pc"
	a.clone(ws)
	up, err := a.env.Remote.CommitFile(Ctx(t), "demo", "main", "README.md", "# demo\n\nUpstream version.\n", "Upstream readme")
	if err != nil {
		t.Fatal(err)
	}
	mine := a.commitFile(ws, "README.md", "# demo\n\nMy version.\n", "My readme")
	p := Do[*backends.PullResult](t, a.ex, a.p, &backends.PullRequest{Scope: scope(ws), Mode: "merge"})
	wantStopped(t, "pull", p.Stopped, "merge", readmeConflict)
	if p.Before != mine || p.Merged || p.Branch != "main" || (p.After != "" && p.After != mine) || p.Updated {
		t.Fatalf("pull that stopped %+v", p)
	}
	if st := a.status(ws); st.InProgress != "merge" || fmt.Sprint(st.Conflicts) != fmt.Sprint(readmeConflict) || st.Head != mine {
		t.Fatalf("status after the pull %+v", st)
	}
	a.write(ws, "README.md", "# demo\n\nMine and upstream.\n")
	Do[*backends.MarkResolvedResult](t, a.ex, a.p, &backends.MarkResolvedRequest{Scope: scope(ws), Paths: []string{"README.md"}})
	c := Do[*backends.ContinueResult](t, a.ex, a.p, &backends.ContinueRequest{Scope: scope(ws)})
	if c.Operation != "merge" || !c.Done || !slices.Equal(a.parents(ws, c.Head), []string{mine, up}) {
		t.Fatalf("continue of the pull's merge %+v", c)
	}
	if pr := Do[*backends.PushResult](t, a.ex, a.p, &backends.PushRequest{Scope: scope(ws)}); pr.Head != c.Head || a.env.RemoteRef(t, "refs/heads/main") != c.Head {
		t.Fatalf("push after the pull %+v", pr)
	}
	// ff-only (the default) still refuses a diverged pull and changes nothing
	if _, err := a.env.Remote.CommitFile(Ctx(t), "demo", "main", "more.txt", "m\n", "More upstream"); err != nil {
		t.Fatal(err)
	}
	a.commitFile(ws, "mine.txt", "m\n", "More mine")
	Do[*backends.FetchResult](t, a.ex, a.p, &backends.FetchRequest{Scope: scope(ws)}) // the pull's own fetch then changes nothing
	before := a.state(ws, false)
	a.fails(&backends.PullRequest{Scope: scope(ws)}, backends.Conflict)
	if after := a.state(ws, false); after != before {
		t.Fatalf("a refused ff-only pull changed the workspace:\n%s\nwas\n%s", after, before)
	}
}

// testGitOpsFork: fork_workspace makes a new workspace on a new branch from
// an existing one, sharing its objects (it adds far less than a copy), and
// only reads the source; the fork outlives its source.
func testGitOpsFork(t *testing.T, f Factory) {
	a := newAgentOps(t, f)
	src := "fork-src"
	seed := a.clone(src)
	const size = 1 << 20
	blob := make([]byte, size)
	_, _ = rand.Read(blob)
	Do[*backends.WriteFileResult](t, a.ex, a.p, &backends.WriteFileRequest{Scope: scope(src), Path: "big.bin", Content: base64.StdEncoding.EncodeToString(blob), Encoding: "base64"})
	big := a.commit(src, "A big incompressible file")
	a.write(src, "dirty.txt", "uncommitted\n")
	srcBefore := a.state(src, true)

	used := diskUsage(t, a.env)
	fk := Do[*backends.ForkWorkspaceResult](t, a.ex, a.p, &backends.ForkWorkspaceRequest{Scope: scope("fork-one"), Source: src, Branch: "agent/fork"})
	if fk.Workspace != "fork-one" || fk.Branch != "agent/fork" || fk.Head != big {
		t.Fatalf("fork %+v", fk)
	}
	if grown := diskUsage(t, a.env) - used; len(a.env.SandboxRoots) > 0 && grown > size+size/2 {
		t.Fatalf("the fork added %d bytes for a %d-byte file checked out: its objects are copied, not shared", grown, size)
	}
	if st := a.status("fork-one"); st.Branch != "agent/fork" || st.Head != big || !st.Clean || st.InProgress != "" {
		t.Fatalf("the fork's status %+v (the source's uncommitted file must not follow)", st)
	}
	if after := a.state(src, true); after != srcBefore {
		t.Fatalf("forking changed the source:\n%s\nwas\n%s", after, srcBefore)
	}
	lw := Do[*backends.ListWorkspacesResult](t, a.ex, a.p, &backends.ListWorkspacesRequest{})
	var names []string
	for _, w := range lw.Workspaces {
		names = append(names, w.Name)
		if w.Name == "fork-one" && w.URL != a.env.RepoURL {
			t.Fatalf("the fork's URL %q, want the source's %q", w.URL, a.env.RepoURL)
		}
	}
	if !slices.Contains(names, "fork-one") {
		t.Fatalf("list_workspaces %v lacks the fork", names)
	}

	// from a start point
	fk2 := Do[*backends.ForkWorkspaceResult](t, a.ex, a.p, &backends.ForkWorkspaceRequest{Scope: scope("fork-two"), Source: src, Branch: "agent/two", StartPoint: "HEAD~1"})
	if fk2.Head != seed {
		t.Fatalf("fork from HEAD~1 %+v, want %s", fk2, seed)
	}

	// the fork works on its own: commit and push; the source does not see it
	c := a.commitFile("fork-one", "forked.txt", "f\n", "Work in the fork")
	if p := Do[*backends.PushResult](t, a.ex, a.p, &backends.PushRequest{Scope: scope("fork-one")}); !p.Created || a.env.RemoteRef(t, "refs/heads/agent/fork") != c {
		t.Fatalf("push from the fork %+v", p)
	}
	if after := a.state(src, true); after != srcBefore {
		t.Fatalf("working in the fork changed the source:\n%s\nwas\n%s", after, srcBefore)
	}

	// refusals
	a.fails(&backends.ForkWorkspaceRequest{Scope: scope("fork-one"), Source: src, Branch: "agent/again"}, backends.Conflict)
	a.fails(&backends.ForkWorkspaceRequest{Scope: scope("fork-three"), Source: "no-such-ws", Branch: "agent/x"}, backends.NotFound)
	a.fails(&backends.ForkWorkspaceRequest{Scope: scope("fork-three"), Source: src, Branch: "agent/x", StartPoint: "no-such-rev"}, backends.NotFound)
	Clone(t, a.ex, a.env, a.env.Stranger, "strangers")
	WantCategory(t, Fail(t, a.ex, a.env.Stranger, &backends.ForkWorkspaceRequest{Scope: scope("fork-three"), Source: src, Branch: "agent/x"}), backends.NotFound)
	WantCategory(t, Fail(t, a.ex, a.p, &backends.StatusRequest{Scope: scope("fork-three")}), backends.NotFound)

	// the fork outlives its source
	Do[*backends.ReleaseWorkspaceResult](t, a.ex, a.p, &backends.ReleaseWorkspaceRequest{Scope: scope(src), Force: true})
	if lg := Do[*backends.LogResult](t, a.ex, a.p, &backends.LogRequest{Scope: scope("fork-one"), Limit: 5}); len(lg.Commits) != 3 || lg.Commits[1].SHA != big {
		t.Fatalf("the fork's log after its source was released: %+v", lg)
	}
	var content []byte
	for offset, i := 0, 0; ; i++ {
		sh := Do[*backends.ShowResult](t, a.ex, a.p, &backends.ShowRequest{Scope: scope("fork-one"), Rev: big, Path: "big.bin", Page: backends.Page{Offset: offset}})
		raw, err := base64.StdEncoding.DecodeString(sh.Content)
		if sh.Encoding != "base64" || err != nil {
			t.Fatalf("big.bin at %d in the fork after its source was released: encoding %q, %v", offset, sh.Encoding, err)
		}
		content = append(content, raw...)
		if !sh.Truncated {
			break
		}
		if sh.NextOffset <= offset || i > 100 {
			t.Fatalf("show paging does not advance: offset %d, next %d", offset, sh.NextOffset)
		}
		offset = sh.NextOffset
	}
	if !slices.Equal(content, blob) {
		t.Fatalf("the fork lost big.bin's content after its source was released (%d bytes, want %d)", len(content), len(blob))
	}
	c2 := a.commitFile("fork-one", "after.txt", "a\n", "After the source went")
	Do[*backends.PushResult](t, a.ex, a.p, &backends.PushRequest{Scope: scope("fork-one")})
	if got := a.env.RemoteRef(t, "refs/heads/agent/fork"); got != c2 {
		t.Fatalf("remote agent/fork %s, want %s", got, c2)
	}
	Do[*backends.ReleaseWorkspaceResult](t, a.ex, a.p, &backends.ReleaseWorkspaceRequest{Scope: scope("fork-two"), Force: true})
}

// diskUsage sums the sizes of the regular files under env's sandbox roots,
// counting a file with several links once.
func diskUsage(t *testing.T, env *Env) int64 {
	t.Helper()
	seen := map[[2]uint64]bool{}
	var total int64
	for _, root := range env.SandboxRoots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if path != root && errors.Is(err, fs.ErrNotExist) {
					return nil // removed while walking
				}
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			if err != nil {
				return err
			}
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				key := [2]uint64{uint64(st.Dev), st.Ino}
				if seen[key] {
					return nil
				}
				seen[key] = true
			}
			total += info.Size()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return total
}
