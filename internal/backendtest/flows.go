package backendtest

import (
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// testFlow: clone, write, commit, push a new branch; the remote has the
// commit with the agent's identity, and exactly one push arrived.
func testFlow(t *testing.T, f Factory) {
	env := NewEnv(t)
	ex := f(t, env)
	cl := Clone(t, ex, env, env.Agent, "flow")
	if cl.Branch != "main" || cl.Head != env.RemoteRef(t, "refs/heads/main") || cl.Backend == "" {
		t.Fatalf("clone result %+v", cl)
	}
	Do[*backends.CheckoutResult](t, ex, env.Agent, &backends.CheckoutRequest{Scope: scope("flow"), Branch: "agent/feature", Create: true})
	Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("flow"), Path: "docs/notes.md", Content: "hello from ada\n"})
	msg := "# Add notes\n\nThe heading line must survive verbatim.\n"
	c := Do[*backends.CommitResult](t, ex, env.Agent, &backends.CommitRequest{Scope: scope("flow"), Message: msg})
	if len(c.SHA) != 40 || c.Branch != "agent/feature" {
		t.Fatalf("commit result %+v", c)
	}
	p := Do[*backends.PushResult](t, ex, env.Agent, &backends.PushRequest{Scope: scope("flow")})
	if !p.Created || p.Head != c.SHA || p.RemoteRef != "refs/heads/agent/feature" {
		t.Fatalf("push result %+v", p)
	}
	if got := env.RemoteRef(t, "refs/heads/agent/feature"); got != c.SHA {
		t.Fatalf("remote has %q, want %q", got, c.SHA)
	}
	if got := env.RemoteGit(t, "log", "-1", "--format=%an <%ae>|%cn <%ce>", c.SHA); got != "Ada Agent <ada@agents.example>|Ada Agent <ada@agents.example>" {
		t.Fatalf("remote commit identity %q", got)
	}
	if got := env.RemoteGit(t, "log", "-1", "--format=%B", c.SHA); got != strings.TrimSpace(msg) {
		t.Fatalf("remote commit message %q", got)
	}
	if n := env.Remote.Pushes("demo"); n != 1 {
		t.Fatalf("remote saw %d pushes, want 1", n)
	}
	again := Do[*backends.PushResult](t, ex, env.Agent, &backends.PushRequest{Scope: scope("flow"), Branch: "agent/feature"})
	if !again.UpToDate {
		t.Fatalf("second push %+v, want up to date", again)
	}
	st := Do[*backends.StatusResult](t, ex, env.Agent, &backends.StatusRequest{Scope: scope("flow")})
	if !st.Clean || st.Upstream != "origin/agent/feature" || st.Ahead != 0 || st.Head != c.SHA {
		t.Fatalf("status after push %+v", st)
	}
}

func testReads(t *testing.T, f Factory) {
	env := NewEnv(t)
	ex := f(t, env)
	Clone(t, ex, env, env.Agent, "reads")
	Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("reads"), Path: "README.md", Content: "# demo\n\nChanged.\n"})
	Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("reads"), Path: "new file.txt", Content: "x\n"})
	st := Do[*backends.StatusResult](t, ex, env.Agent, &backends.StatusRequest{Scope: scope("reads")})
	want := []backends.StatusEntry{{Path: "README.md", Staged: ".", Unstaged: "M"}, {Path: "new file.txt", Staged: ".", Unstaged: "?"}}
	if st.Clean || st.Branch != "main" || len(st.Entries) != 2 || st.Entries[0] != want[0] || st.Entries[1] != want[1] {
		t.Fatalf("status %+v", st)
	}
	d := Do[*backends.DiffResult](t, ex, env.Agent, &backends.DiffRequest{Scope: scope("reads")})
	if !strings.Contains(d.Diff, "-A sample repository.") || !strings.Contains(d.Diff, "+Changed.") || d.Truncated {
		t.Fatalf("diff %+v", d)
	}
	testDiffPaging(t, ex, env, d.Diff)
	lg := Do[*backends.LogResult](t, ex, env.Agent, &backends.LogRequest{Scope: scope("reads")})
	if len(lg.Commits) != 1 || lg.Commits[0].SHA != env.RemoteRef(t, "refs/heads/main") || len(lg.Commits[0].Parents) != 0 {
		t.Fatalf("log %+v", lg)
	}
	br := Do[*backends.BranchesResult](t, ex, env.Agent, &backends.BranchesRequest{Scope: scope("reads"), Remote: true})
	if br.Current != "main" || len(br.Branches) != 2 || !br.Branches[0].Current || !br.Branches[1].Remote || br.Branches[1].Name != "origin/main" {
		t.Fatalf("branches %+v", br)
	}
}

func testDiffPaging(t *testing.T, ex backends.Executor, env *Env, full string) {
	var got strings.Builder
	offset := 0
	for i := 0; ; i++ {
		page := Do[*backends.DiffResult](t, ex, env.Agent, &backends.DiffRequest{Scope: scope("reads"), Page: backends.Page{Offset: offset, Limit: 40}})
		got.WriteString(page.Diff)
		if !page.Truncated {
			break
		}
		if page.NextOffset <= offset || i > 100 {
			t.Fatalf("paging does not advance: %+v", page)
		}
		offset = page.NextOffset
	}
	if got.String() != full {
		t.Fatalf("paged diff differs:\n%q\nwant\n%q", got.String(), full)
	}
}

func testFiles(t *testing.T, f Factory) {
	env := NewEnv(t)
	ex := f(t, env)
	Clone(t, ex, env, env.Agent, "files")
	w := Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("files"), Path: "a/b/c.txt", Content: "héllo wörld\n"})
	if !w.Created || w.Size != int64(len("héllo wörld\n")) {
		t.Fatalf("write %+v", w)
	}
	r := Do[*backends.ReadFileResult](t, ex, env.Agent, &backends.ReadFileRequest{Scope: scope("files"), Path: "a/b/c.txt", Page: backends.Page{Limit: 2}})
	if r.Content != "h" || !r.Truncated || r.NextOffset != 1 || r.Size != w.Size {
		t.Fatalf("paged read cut inside a rune must stop before it: %+v", r)
	}
	bin := Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("files"), Path: "bin.dat", Content: "AAEC/w==", Encoding: "base64"})
	if bin.Size != 4 {
		t.Fatalf("binary write %+v", bin)
	}
	rb := Do[*backends.ReadFileResult](t, ex, env.Agent, &backends.ReadFileRequest{Scope: scope("files"), Path: "bin.dat"})
	if rb.Encoding != "base64" || rb.Content != "AAEC/w==" {
		t.Fatalf("binary read %+v", rb)
	}
	ls := Do[*backends.ListFilesResult](t, ex, env.Agent, &backends.ListFilesRequest{Scope: scope("files"), Recursive: true})
	var paths []string
	for _, e := range ls.Entries {
		paths = append(paths, e.Type+":"+e.Path)
	}
	if got := strings.Join(paths, ","); got != "file:README.md,dir:a,dir:a/b,file:a/b/c.txt,file:bin.dat,dir:src,file:src/main.go" {
		t.Fatalf("list %s", got)
	}
	page := Do[*backends.ListFilesResult](t, ex, env.Agent, &backends.ListFilesRequest{Scope: scope("files"), Page: backends.Page{Offset: 1, Limit: 2}})
	if len(page.Entries) != 2 || page.Entries[0].Path != "a" || !page.Truncated || page.NextOffset != 3 {
		t.Fatalf("list page %+v", page)
	}
	del := Do[*backends.DeleteFileResult](t, ex, env.Agent, &backends.DeleteFileRequest{Scope: scope("files"), Path: "README.md"})
	again := Do[*backends.DeleteFileResult](t, ex, env.Agent, &backends.DeleteFileRequest{Scope: scope("files"), Path: "README.md"})
	if !del.Deleted || again.Deleted {
		t.Fatalf("delete %+v then %+v", del, again)
	}
	WantCategory(t, Fail(t, ex, env.Agent, &backends.ReadFileRequest{Scope: scope("files"), Path: "README.md"}), backends.NotFound)
}

// testPull: a commit made on the remote meanwhile arrives with pull; a
// diverged pull in ff-only mode is refused and changes nothing; merge mode
// merges.
func testPull(t *testing.T, f Factory) {
	env := NewEnv(t)
	ex := f(t, env)
	Clone(t, ex, env, env.Agent, "pull")
	sha, err := env.Remote.CommitFile(Ctx(t), "demo", "main", "remote.txt", "from upstream\n", "Upstream change")
	if err != nil {
		t.Fatal(err)
	}
	p := Do[*backends.PullResult](t, ex, env.Agent, &backends.PullRequest{Scope: scope("pull")})
	if !p.Updated || p.After != sha || p.Merged {
		t.Fatalf("pull %+v, want fast-forward to %s", p, sha)
	}
	r := Do[*backends.ReadFileResult](t, ex, env.Agent, &backends.ReadFileRequest{Scope: scope("pull"), Path: "remote.txt"})
	if r.Content != "from upstream\n" {
		t.Fatalf("pulled file %q", r.Content)
	}
	Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("pull"), Path: "local.txt", Content: "mine\n"})
	local := Do[*backends.CommitResult](t, ex, env.Agent, &backends.CommitRequest{Scope: scope("pull"), Message: "Local change"})
	if _, err := env.Remote.CommitFile(Ctx(t), "demo", "main", "remote2.txt", "more\n", "Second upstream change"); err != nil {
		t.Fatal(err)
	}
	WantCategory(t, Fail(t, ex, env.Agent, &backends.PullRequest{Scope: scope("pull")}), backends.Conflict)
	st := Do[*backends.StatusResult](t, ex, env.Agent, &backends.StatusRequest{Scope: scope("pull")})
	if st.Head != local.SHA || !st.Clean {
		t.Fatalf("refused pull changed the workspace: %+v", st)
	}
	m := Do[*backends.PullResult](t, ex, env.Agent, &backends.PullRequest{Scope: scope("pull"), Mode: "merge"})
	if !m.Updated || !m.Merged {
		t.Fatalf("merge pull %+v", m)
	}
}

func testWorkspaces(t *testing.T, f Factory) {
	env := NewEnv(t)
	ex := f(t, env)
	Clone(t, ex, env, env.Agent, "ws-one")
	Clone(t, ex, env, env.Agent2, "ws-two")
	Clone(t, ex, env, env.Stranger, "ws-three")
	lw := Do[*backends.ListWorkspacesResult](t, ex, env.Agent, &backends.ListWorkspacesRequest{})
	if len(lw.Workspaces) != 2 || lw.Workspaces[0].Name != "ws-one" || lw.Workspaces[1].Name != "ws-two" || lw.Workspaces[0].URL != env.RepoURL {
		t.Fatalf("list_workspaces %+v", lw)
	}
	Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("ws-one"), Path: "x.txt", Content: "x"})
	WantCategory(t, Fail(t, ex, env.Agent, &backends.ReleaseWorkspaceRequest{Scope: scope("ws-one")}), backends.Conflict)
	Do[*backends.CommitResult](t, ex, env.Agent, &backends.CommitRequest{Scope: scope("ws-one"), Message: "x"})
	WantCategory(t, Fail(t, ex, env.Agent, &backends.ReleaseWorkspaceRequest{Scope: scope("ws-one")}), backends.Conflict)
	Do[*backends.ReleaseWorkspaceResult](t, ex, env.Agent, &backends.ReleaseWorkspaceRequest{Scope: scope("ws-one"), Force: true})
	Do[*backends.ReleaseWorkspaceResult](t, ex, env.Agent, &backends.ReleaseWorkspaceRequest{Scope: scope("ws-two")})
	WantCategory(t, Fail(t, ex, env.Agent, &backends.StatusRequest{Scope: scope("ws-one")}), backends.NotFound)
	Clone(t, ex, env, env.Agent, "ws-one") // the name is free again
}
