package backendtest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// gitopsBadCase is a refused request of an issue 16 operation. want lists
// the categories the contract allows (most cases allow exactly one).
type gitopsBadCase struct {
	name string
	req  backends.Request
	want []backends.Category
	as   *backends.Principal // default: env.Agent
}

// gitopsBadCases are refused requests of every new operation against
// workspace "bad" (cloned, clean, nothing in progress, a local tag
// "exists", no stash entry): option-looking values, bad refs, paths out of
// the tree, out-of-range numbers, states that do not allow the call.
// pwned is a file an injected option would create.
func gitopsBadCases(env *Env, pwned string) []gitopsBadCase {
	ws := scope("bad")
	inv := []backends.Category{backends.InvalidArgument}
	forb := []backends.Category{backends.Forbidden}
	nf := []backends.Category{backends.NotFound}
	conf := []backends.Category{backends.Conflict}
	var cases []gitopsBadCase
	add := func(name string, req backends.Request, want []backends.Category) {
		cases = append(cases, gitopsBadCase{name: name, req: req, want: want})
	}
	// option-looking values and bad refs, for every field naming a ref
	badRefs := []string{"--upload-pack=touch " + pwned, "-f", "--output=" + pwned, "HEAD..x", "HEAD...x", "a b", "refs/../x", "@{-1}..", "a\x00b", "main:README.md"}
	for _, name := range []string{"x.lock", "HEAD", "a..b", "-"} {
		add("tag name "+name, &backends.TagRequest{Scope: ws, Name: name}, inv)
		add("push tag "+name, &backends.PushRequest{Scope: ws, Tags: []string{name}}, inv)
		add("fork branch "+name, &backends.ForkWorkspaceRequest{Scope: scope("bad-fork"), Source: "bad", Branch: name}, inv)
	}
	for _, ref := range badRefs {
		add("show rev "+ref, &backends.ShowRequest{Scope: ws, Rev: ref}, inv)
		add("show file rev "+ref, &backends.ShowRequest{Scope: ws, Rev: ref, Path: "README.md"}, inv)
		add("blame rev "+ref, &backends.BlameRequest{Scope: ws, Path: "README.md", Rev: ref}, inv)
		add("merge "+ref, &backends.MergeRequest{Scope: ws, Branch: ref}, inv)
		add("rebase "+ref, &backends.RebaseRequest{Scope: ws, Onto: ref}, inv)
		add("cherry_pick "+ref, &backends.CherryPickRequest{Scope: ws, Commits: []string{ref}}, inv)
		add("revert "+ref, &backends.RevertRequest{Scope: ws, Commits: []string{ref}}, inv)
		add("reset "+ref, &backends.ResetRequest{Scope: ws, Ref: ref}, inv)
		add("restore source "+ref, &backends.RestoreRequest{Scope: ws, Paths: []string{"README.md"}, Source: ref}, inv)
		add("tag name "+ref, &backends.TagRequest{Scope: ws, Name: ref}, inv)
		add("tag target "+ref, &backends.TagRequest{Scope: ws, Name: "t1", Target: ref}, inv)
		add("push tag "+ref, &backends.PushRequest{Scope: ws, Tags: []string{ref}}, inv)
		add("fork branch "+ref, &backends.ForkWorkspaceRequest{Scope: scope("bad-fork"), Source: "bad", Branch: ref}, inv)
		add("fork start "+ref, &backends.ForkWorkspaceRequest{Scope: scope("bad-fork"), Source: "bad", Branch: "forked", StartPoint: ref}, inv)
	}
	// paths out of the tree, into .git
	for _, p := range []string{"../x", "../../etc/passwd", "/etc/passwd", "src/../../x"} {
		add("show path "+p, &backends.ShowRequest{Scope: ws, Path: p}, inv)
		add("blame path "+p, &backends.BlameRequest{Scope: ws, Path: p}, inv)
		add("restore path "+p, &backends.RestoreRequest{Scope: ws, Paths: []string{p}}, inv)
		add("restore staged path "+p, &backends.RestoreRequest{Scope: ws, Paths: []string{p}, Staged: true}, inv)
		add("mark_resolved path "+p, &backends.MarkResolvedRequest{Scope: ws, Paths: []string{p}}, inv)
	}
	add("restore git dir", &backends.RestoreRequest{Scope: ws, Paths: []string{".git/config"}}, forb)
	add("restore git dir case", &backends.RestoreRequest{Scope: ws, Paths: []string{"sub/.GIT/config"}}, forb)
	add("mark_resolved git dir", &backends.MarkResolvedRequest{Scope: ws, Paths: []string{".git/config"}}, forb)
	add("restore through symlink", &backends.RestoreRequest{Scope: ws, Paths: []string{"escape-dir/x"}}, []backends.Category{backends.Forbidden, backends.InvalidArgument, backends.NotFound})
	// missing refs and paths
	add("show missing rev", &backends.ShowRequest{Scope: ws, Rev: "nope"}, nf)
	add("show missing path", &backends.ShowRequest{Scope: ws, Path: "nope.txt"}, nf)
	add("blame missing path", &backends.BlameRequest{Scope: ws, Path: "nope.txt"}, nf)
	add("blame option path", &backends.BlameRequest{Scope: ws, Path: "-f"}, []backends.Category{backends.NotFound, backends.InvalidArgument})
	add("merge missing", &backends.MergeRequest{Scope: ws, Branch: "nope"}, nf)
	add("rebase missing", &backends.RebaseRequest{Scope: ws, Onto: "nope"}, nf)
	add("cherry_pick missing", &backends.CherryPickRequest{Scope: ws, Commits: []string{"nope"}}, nf)
	add("revert missing", &backends.RevertRequest{Scope: ws, Commits: []string{strings.Repeat("ab", 20)}}, nf)
	add("reset missing", &backends.ResetRequest{Scope: ws, Ref: "nope"}, nf)
	add("reset missing reflog entry", &backends.ResetRequest{Scope: ws, Ref: "HEAD@{99}"}, nf)
	add("restore missing source", &backends.RestoreRequest{Scope: ws, Paths: []string{"README.md"}, Source: "nope"}, nf)
	add("restore missing path", &backends.RestoreRequest{Scope: ws, Paths: []string{"nope.txt"}}, nf)
	add("tag missing target", &backends.TagRequest{Scope: ws, Name: "t1", Target: "nope"}, nf)
	add("push missing tag", &backends.PushRequest{Scope: ws, Tags: []string{"nope"}}, nf)
	add("fork missing source", &backends.ForkWorkspaceRequest{Scope: scope("bad-fork"), Source: "nope", Branch: "forked"}, nf)
	add("fork missing start", &backends.ForkWorkspaceRequest{Scope: scope("bad-fork"), Source: "bad", Branch: "forked", StartPoint: "nope"}, nf)
	add("stash pop none", &backends.StashRequest{Scope: ws, Action: "pop"}, nf)
	add("stash drop none", &backends.StashRequest{Scope: ws, Action: "drop", Index: 3}, nf)
	add("stash apply none", &backends.StashRequest{Scope: ws, Action: "apply"}, nf)
	// other malformed arguments
	add("show negative offset", &backends.ShowRequest{Scope: ws, Page: backends.Page{Offset: -1}}, inv)
	add("show negative limit", &backends.ShowRequest{Scope: ws, Page: backends.Page{Limit: -1}}, inv)
	add("blame empty path", &backends.BlameRequest{Scope: ws}, inv)
	add("blame negative start", &backends.BlameRequest{Scope: ws, Path: "README.md", StartLine: -1}, inv)
	add("blame negative limit", &backends.BlameRequest{Scope: ws, Path: "README.md", Limit: -1}, inv)
	add("reflog negative limit", &backends.ReflogRequest{Scope: ws, Limit: -1}, inv)
	add("reflog negative skip", &backends.ReflogRequest{Scope: ws, Skip: -1}, inv)
	add("merge ff_only and no_ff", &backends.MergeRequest{Scope: ws, Branch: "main", FFOnly: true, NoFF: true}, inv)
	add("merge NUL message", &backends.MergeRequest{Scope: ws, Branch: "main", Message: "a\x00b"}, inv)
	add("merge ANSI message", &backends.MergeRequest{Scope: ws, Branch: "main", Message: "red \x1b[31m"}, inv)
	add("cherry_pick none", &backends.CherryPickRequest{Scope: ws}, inv)
	add("cherry_pick too many", &backends.CherryPickRequest{Scope: ws, Commits: slices.Repeat([]string{"HEAD"}, 51)}, []backends.Category{backends.InvalidArgument, backends.ResourceExhausted})
	add("revert none", &backends.RevertRequest{Scope: ws}, inv)
	add("revert too many", &backends.RevertRequest{Scope: ws, Commits: slices.Repeat([]string{"HEAD"}, 51)}, []backends.Category{backends.InvalidArgument, backends.ResourceExhausted})
	add("reset mode hard", &backends.ResetRequest{Scope: ws, Mode: "hard"}, inv)
	add("reset mode option", &backends.ResetRequest{Scope: ws, Mode: "--hard"}, inv)
	add("reset mode keep", &backends.ResetRequest{Scope: ws, Mode: "keep"}, inv)
	add("reset hard and soft", &backends.ResetRequest{Scope: ws, Mode: "soft", Hard: true}, inv)
	add("restore no paths", &backends.RestoreRequest{Scope: ws}, inv)
	add("restore empty path", &backends.RestoreRequest{Scope: ws, Paths: []string{""}}, inv)
	add("stash no action", &backends.StashRequest{Scope: ws}, inv)
	add("stash clear", &backends.StashRequest{Scope: ws, Action: "clear"}, inv)
	add("stash option action", &backends.StashRequest{Scope: ws, Action: "--all"}, inv)
	add("stash negative index", &backends.StashRequest{Scope: ws, Action: "drop", Index: -1}, inv)
	add("stash NUL message", &backends.StashRequest{Scope: ws, Action: "push", Message: "a\x00b"}, inv)
	add("stash push nothing", &backends.StashRequest{Scope: ws, Action: "push"}, conf)
	add("tag empty name", &backends.TagRequest{Scope: ws}, inv)
	add("tag refs prefix", &backends.TagRequest{Scope: ws, Name: "refs/tags/x"}, inv)
	add("tag NUL message", &backends.TagRequest{Scope: ws, Name: "t1", Message: "a\x00b"}, inv)
	add("tag existing", &backends.TagRequest{Scope: ws, Name: "exists"}, conf)
	add("push tag plus", &backends.PushRequest{Scope: ws, Tags: []string{"+exists"}}, inv)
	add("push tag refspec", &backends.PushRequest{Scope: ws, Tags: []string{"exists:other"}}, inv)
	add("push tag delete", &backends.PushRequest{Scope: ws, Tags: []string{":exists"}}, inv)
	add("push tag glob", &backends.PushRequest{Scope: ws, Tags: []string{"refs/tags/*"}}, inv)
	add("mark_resolved no paths", &backends.MarkResolvedRequest{Scope: ws}, inv)
	add("mark_resolved nothing conflicted", &backends.MarkResolvedRequest{Scope: ws, Paths: []string{"README.md"}}, []backends.Category{backends.Conflict, backends.InvalidArgument})
	add("continue nothing in progress", &backends.ContinueRequest{Scope: ws}, conf)
	add("continue NUL message", &backends.ContinueRequest{Scope: ws, Message: "a\x00b"}, []backends.Category{backends.InvalidArgument, backends.Conflict})
	add("abort nothing in progress", &backends.AbortRequest{Scope: ws}, conf)
	add("fork empty branch", &backends.ForkWorkspaceRequest{Scope: scope("bad-fork"), Source: "bad"}, inv)
	add("fork empty source", &backends.ForkWorkspaceRequest{Scope: scope("bad-fork"), Branch: "forked"}, inv)
	add("fork source dotdot", &backends.ForkWorkspaceRequest{Scope: scope("bad-fork"), Source: "../bad", Branch: "forked"}, inv)
	add("fork source option", &backends.ForkWorkspaceRequest{Scope: scope("bad-fork"), Source: "-bad", Branch: "forked"}, inv)
	add("fork into dotdot", &backends.ForkWorkspaceRequest{Scope: scope("../bad-fork"), Source: "bad", Branch: "forked"}, inv)
	add("fork into itself", &backends.ForkWorkspaceRequest{Scope: ws, Source: "bad", Branch: "forked"}, []backends.Category{backends.Conflict, backends.InvalidArgument})
	// another project's workspace does not exist for the caller
	for _, req := range []backends.Request{
		&backends.FetchRequest{Scope: ws}, &backends.ShowRequest{Scope: ws}, &backends.TagsRequest{Scope: ws},
		&backends.StashesRequest{Scope: ws}, &backends.ReflogRequest{Scope: ws}, &backends.TagRequest{Scope: ws, Name: "t2"},
		&backends.ResetRequest{Scope: ws, Hard: true}, &backends.AbortRequest{Scope: ws},
		&backends.ForkWorkspaceRequest{Scope: scope("bad-fork"), Source: "bad", Branch: "forked"},
	} {
		cases = append(cases, gitopsBadCase{name: "other project's " + string(req.Op()), req: req, want: nf, as: &env.Stranger})
	}
	return cases
}

// testGitOpsBadInput runs every bad case of the new operations against a
// cloned workspace whose repository holds symbolic links out of the work
// tree, and checks that each gets its category, that no injected option
// ran, and that neither the remote nor the workspace (files, index,
// branches, tags, stashes, reflog, what is in progress) changed, and that
// no refused fork left a workspace behind.
func testGitOpsBadInput(t *testing.T, f Factory, o options) {
	env := NewEnv(t)
	env.RemoteSymlinks(t, map[string]string{"escape": "/etc/passwd", "escape-dir": "/tmp"})
	ex := f(t, env)
	Clone(t, ex, env, env.Agent, "bad")
	Do[*backends.TagResult](t, ex, env.Agent, &backends.TagRequest{Scope: scope("bad"), Name: "exists"})
	pwned := filepath.Join(t.TempDir(), "pwned")
	fingerprint := func() string {
		return env.RemoteGit(t, "for-each-ref", "--format=%(refname) %(objectname)") + strings.Repeat("|", 1+env.Remote.Pushes("demo")) +
			"\n" + WorkspaceState(t, ex, env.Agent, "bad", true)
	}
	before := fingerprint()
	cases := gitopsBadCases(env, pwned)
	if o.sampled {
		cases = sampleEvery(cases, 4)
	}
	for _, c := range cases {
		as := env.Agent
		if c.as != nil {
			as = *c.as
		}
		req := c.req
		req.GetScope().Principal = as
		res, err := ex.Execute(Ctx(t), req)
		if err == nil {
			t.Errorf("%s: want %v, got a result %+v", c.name, c.want, res)
			continue
		}
		if got := backends.CategoryOf(err); !slices.Contains(c.want, got) {
			t.Errorf("%s: category %q, want %v (%v)", c.name, got, c.want, err)
		}
		if strings.Contains(err.Error(), Token) {
			t.Errorf("%s: error shows the token: %v", c.name, err)
		}
		if _, err := os.Stat(pwned); err == nil {
			t.Fatalf("%s: an option-looking value ran: %s exists", c.name, pwned)
		}
	}
	if after := fingerprint(); after != before {
		t.Fatalf("bad input changed something:\nbefore %s\nafter  %s", before, after)
	}
	WantCategory(t, Fail(t, ex, env.Agent, &backends.StatusRequest{Scope: scope("bad-fork")}), backends.NotFound)
	lw := Do[*backends.ListWorkspacesResult](t, ex, env.Agent, &backends.ListWorkspacesRequest{})
	if len(lw.Workspaces) != 1 || lw.Workspaces[0].Name != "bad" {
		t.Fatalf("refused forks left workspaces: %+v", lw.Workspaces)
	}
}

// sampleEvery keeps every nth case (and the last), for sampled runs.
func sampleEvery[T any](cases []T, n int) []T {
	var out []T
	for i, c := range cases {
		if i%n == 0 || i == len(cases)-1 {
			out = append(out, c)
		}
	}
	return out
}

// CompareGitOpsBadInput runs every bad case of the new operations against
// a and b, two backends built for env, and fails where their answers
// differ in category or message: an agent must not be able to tell which
// backend refused it. Call it after CompareBadInput on the same env and
// backends (it uses the workspace "bad" that CompareBadInput cloned in
// each).
func CompareGitOpsBadInput(t *testing.T, env *Env, a, b backends.Executor) {
	t.Helper()
	for _, ex := range []backends.Executor{a, b} {
		Do[*backends.TagResult](t, ex, env.Agent, &backends.TagRequest{Scope: scope("bad"), Name: "exists"})
	}
	pwned := filepath.Join(t.TempDir(), "pwned")
	for _, c := range gitopsBadCases(env, pwned) {
		as := env.Agent
		if c.as != nil {
			as = *c.as
		}
		ea, eb := Fail(t, a, as, c.req), Fail(t, b, as, c.req)
		ca, cb := backends.CategoryOf(ea), backends.CategoryOf(eb)
		if ca != cb || backends.MessageOf(ea) != backends.MessageOf(eb) {
			t.Errorf("%s: the backends answer differently:\n  %s: %s\n  %s: %s", c.name, ca, backends.MessageOf(ea), cb, backends.MessageOf(eb))
		}
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatalf("an option-looking value ran: %s exists", pwned)
	}
}
