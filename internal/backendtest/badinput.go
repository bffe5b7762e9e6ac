package backendtest

import (
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

type badCase struct {
	name string
	req  backends.Request
	want backends.Category
	as   *backends.Principal // default: env.Agent
}

func badCases(env *Env) []badCase {
	host := strings.TrimPrefix(env.Remote.URL(), "http://")
	ws := scope("bad")
	clone := func(u string) *backends.CloneRequest { return &backends.CloneRequest{Scope: scope("bad-new"), URL: u} }
	nobody := backends.Principal{}
	badAuthor := env.Agent
	badAuthor.AuthorName = "Mallory <evil@x>"
	return []badCase{
		{"clone ssh", clone("ssh://" + host + "/demo.git"), backends.Forbidden, nil},
		{"clone file", clone("file:///etc"), backends.Forbidden, nil},
		{"clone ext", clone("ext::sh -c touch% /tmp/pwn"), backends.InvalidArgument, nil},
		{"clone option", clone("--upload-pack=touch /tmp/pwn"), backends.InvalidArgument, nil},
		{"clone other host", clone("http://evil.example/demo.git"), backends.Forbidden, nil},
		{"clone https not allowed", clone("https://" + host + "/demo.git"), backends.Forbidden, nil},
		{"clone userinfo", clone("http://x-access-token:" + Token + "@" + host + "/demo.git"), backends.InvalidArgument, nil},
		{"clone query", clone(env.RepoURL + "?service=x"), backends.InvalidArgument, nil},
		{"clone dotdot", clone("http://" + host + "/../demo.git"), backends.InvalidArgument, nil},
		{"clone local path", clone("/etc/passwd"), backends.InvalidArgument, nil},
		{"clone scp-like", clone("git@" + host + ":demo.git"), backends.InvalidArgument, nil},
		{"clone missing repo", clone("http://" + host + "/nope.git"), backends.NotFound, nil},
		{"clone option branch", &backends.CloneRequest{Scope: scope("bad-new"), URL: env.RepoURL, Branch: "--upload-pack=x"}, backends.InvalidArgument, nil},
		{"clone negative depth", &backends.CloneRequest{Scope: scope("bad-new"), URL: env.RepoURL, Depth: -1}, backends.InvalidArgument, nil},
		{"clone existing", &backends.CloneRequest{Scope: ws, URL: env.RepoURL}, backends.Conflict, nil},
		{"workspace dotdot", &backends.StatusRequest{Scope: scope("../bad")}, backends.InvalidArgument, nil},
		{"workspace option", &backends.StatusRequest{Scope: scope("-bad")}, backends.InvalidArgument, nil},
		{"workspace empty", &backends.StatusRequest{Scope: scope("")}, backends.InvalidArgument, nil},
		{"other project's workspace", &backends.StatusRequest{Scope: ws}, backends.NotFound, &env.Stranger},
		{"other project's write", &backends.WriteFileRequest{Scope: ws, Path: "x", Content: "x"}, backends.NotFound, &env.Stranger},
		{"no principal", &backends.StatusRequest{Scope: ws}, backends.Unauthenticated, &nobody},
		{"bad identity", &backends.CommitRequest{Scope: ws, Message: "x"}, backends.InvalidArgument, &badAuthor},
		{"checkout option", &backends.CheckoutRequest{Scope: ws, Branch: "-D"}, backends.InvalidArgument, nil},
		{"checkout dotdot", &backends.CheckoutRequest{Scope: ws, Branch: "a..b"}, backends.InvalidArgument, nil},
		{"checkout lock", &backends.CheckoutRequest{Scope: ws, Branch: "x.lock"}, backends.InvalidArgument, nil},
		{"checkout HEAD", &backends.CheckoutRequest{Scope: ws, Branch: "HEAD"}, backends.InvalidArgument, nil},
		{"checkout sha-like", &backends.CheckoutRequest{Scope: ws, Branch: strings.Repeat("a", 40)}, backends.InvalidArgument, nil},
		{"checkout space", &backends.CheckoutRequest{Scope: ws, Branch: "feat ure"}, backends.InvalidArgument, nil},
		{"checkout unicode", &backends.CheckoutRequest{Scope: ws, Branch: "mаin"}, backends.InvalidArgument, nil},
		{"checkout missing", &backends.CheckoutRequest{Scope: ws, Branch: "nope"}, backends.NotFound, nil},
		{"checkout create existing", &backends.CheckoutRequest{Scope: ws, Branch: "main", Create: true}, backends.Conflict, nil},
		{"checkout option start", &backends.CheckoutRequest{Scope: ws, Branch: "x", Create: true, StartPoint: "--orphan"}, backends.InvalidArgument, nil},
		{"commit empty message", &backends.CommitRequest{Scope: ws, Message: " \n"}, backends.InvalidArgument, nil},
		{"commit NUL", &backends.CommitRequest{Scope: ws, Message: "a\x00b"}, backends.InvalidArgument, nil},
		{"commit bidi", &backends.CommitRequest{Scope: ws, Message: "safe \u202e txt.exe"}, backends.InvalidArgument, nil},
		{"commit ANSI", &backends.CommitRequest{Scope: ws, Message: "red \x1b[31m"}, backends.InvalidArgument, nil},
		{"commit huge message", &backends.CommitRequest{Scope: ws, Message: strings.Repeat("m", 65<<10)}, backends.ResourceExhausted, nil},
		{"commit path escape", &backends.CommitRequest{Scope: ws, Message: "x", Paths: []string{"../x"}}, backends.InvalidArgument, nil},
		{"commit absolute path", &backends.CommitRequest{Scope: ws, Message: "x", Paths: []string{"/etc/passwd"}}, backends.InvalidArgument, nil},
		{"commit git dir", &backends.CommitRequest{Scope: ws, Message: "x", Paths: []string{".git/config"}}, backends.Forbidden, nil},
		{"commit option path", &backends.CommitRequest{Scope: ws, Message: "x", Paths: []string{"-A"}}, backends.NotFound, nil},
		{"commit nothing", &backends.CommitRequest{Scope: ws, Message: "x"}, backends.Conflict, nil},
		{"push option", &backends.PushRequest{Scope: ws, Branch: "--force"}, backends.InvalidArgument, nil},
		{"push plus", &backends.PushRequest{Scope: ws, Branch: "+main"}, backends.InvalidArgument, nil},
		{"push delete", &backends.PushRequest{Scope: ws, Branch: ":main"}, backends.InvalidArgument, nil},
		{"push refspec", &backends.PushRequest{Scope: ws, Branch: "main:other"}, backends.InvalidArgument, nil},
		{"push missing", &backends.PushRequest{Scope: ws, Branch: "nope"}, backends.NotFound, nil},
		{"pull bad mode", &backends.PullRequest{Scope: ws, Mode: "rebase --exec=x"}, backends.InvalidArgument, nil},
		{"diff output option", &backends.DiffRequest{Scope: ws, Ref: "--output=/tmp/pwn"}, backends.InvalidArgument, nil},
		{"diff no-index", &backends.DiffRequest{Scope: ws, Ref: "--no-index"}, backends.InvalidArgument, nil},
		{"diff path escape", &backends.DiffRequest{Scope: ws, Paths: []string{"../../etc/passwd"}}, backends.InvalidArgument, nil},
		{"diff missing ref", &backends.DiffRequest{Scope: ws, Ref: "nope"}, backends.NotFound, nil},
		{"diff negative offset", &backends.DiffRequest{Scope: ws, Page: backends.Page{Offset: -1}}, backends.InvalidArgument, nil},
		{"log negative limit", &backends.LogRequest{Scope: ws, Limit: -1}, backends.InvalidArgument, nil},
		{"log option ref", &backends.LogRequest{Scope: ws, Ref: "--all"}, backends.InvalidArgument, nil},
		{"read escape", &backends.ReadFileRequest{Scope: ws, Path: "../../etc/passwd"}, backends.InvalidArgument, nil},
		{"read absolute", &backends.ReadFileRequest{Scope: ws, Path: "/etc/passwd"}, backends.InvalidArgument, nil},
		{"read git dir", &backends.ReadFileRequest{Scope: ws, Path: ".git/config"}, backends.Forbidden, nil},
		{"read git dir case", &backends.ReadFileRequest{Scope: ws, Path: "sub/.GIT/config"}, backends.Forbidden, nil},
		{"read symlink out", &backends.ReadFileRequest{Scope: ws, Path: "escape"}, backends.Forbidden, nil},
		{"write through symlink", &backends.WriteFileRequest{Scope: ws, Path: "escape-dir/pwn.txt", Content: "x"}, backends.Forbidden, nil},
		{"write git dir", &backends.WriteFileRequest{Scope: ws, Path: ".git/hooks/pre-commit", Content: "#!/bin/sh\n"}, backends.Forbidden, nil},
		{"write too large", &backends.WriteFileRequest{Scope: ws, Path: "big", Content: strings.Repeat("x", 11<<20)}, backends.ResourceExhausted, nil},
		{"write bad base64", &backends.WriteFileRequest{Scope: ws, Path: "b", Content: "!!", Encoding: "base64"}, backends.InvalidArgument, nil},
		{"write bad encoding", &backends.WriteFileRequest{Scope: ws, Path: "b", Content: "x", Encoding: "rot13"}, backends.InvalidArgument, nil},
		{"write onto dir", &backends.WriteFileRequest{Scope: ws, Path: "src", Content: "x"}, backends.InvalidArgument, nil},
		{"write root", &backends.WriteFileRequest{Scope: ws, Path: ".", Content: "x"}, backends.InvalidArgument, nil},
		{"list escape", &backends.ListFilesRequest{Scope: ws, Path: "../.."}, backends.InvalidArgument, nil},
		{"list symlink out", &backends.ListFilesRequest{Scope: ws, Path: "escape-dir"}, backends.Forbidden, nil},
		{"delete dir", &backends.DeleteFileRequest{Scope: ws, Path: "src"}, backends.Conflict, nil},
		{"delete git dir", &backends.DeleteFileRequest{Scope: ws, Path: ".git"}, backends.Forbidden, nil},
		{"release other project", &backends.ReleaseWorkspaceRequest{Scope: ws, Force: true}, backends.NotFound, &env.Stranger},
		{"release missing", &backends.ReleaseWorkspaceRequest{Scope: scope("bad-new")}, backends.NotFound, nil},
		{"workspace too long", &backends.StatusRequest{Scope: scope(strings.Repeat("w", 65))}, backends.InvalidArgument, nil},
		{"workspace slash", &backends.StatusRequest{Scope: scope("a/b")}, backends.InvalidArgument, nil},
		{"write to missing workspace", &backends.WriteFileRequest{Scope: scope("bad-new"), Path: "x", Content: "x"}, backends.NotFound, nil},
		{"write empty path", &backends.WriteFileRequest{Scope: ws, Path: "", Content: "x"}, backends.InvalidArgument, nil},
		{"write bad UTF-8", &backends.WriteFileRequest{Scope: ws, Path: "b", Content: "\xff\xfe"}, backends.InvalidArgument, nil},
		{"read negative offset", &backends.ReadFileRequest{Scope: ws, Path: "README.md", Page: backends.Page{Offset: -1}}, backends.InvalidArgument, nil},
		{"read negative limit", &backends.ReadFileRequest{Scope: ws, Path: "README.md", Page: backends.Page{Limit: -1}}, backends.InvalidArgument, nil},
		{"read missing", &backends.ReadFileRequest{Scope: ws, Path: "nope.txt"}, backends.NotFound, nil},
		{"list negative offset", &backends.ListFilesRequest{Scope: ws, Page: backends.Page{Offset: -1}}, backends.InvalidArgument, nil},
		{"log negative skip", &backends.LogRequest{Scope: ws, Skip: -1}, backends.InvalidArgument, nil},
		{"log path escape", &backends.LogRequest{Scope: ws, Paths: []string{"../x"}}, backends.InvalidArgument, nil},
		{"delete escape", &backends.DeleteFileRequest{Scope: ws, Path: "../x"}, backends.InvalidArgument, nil},
		{"checkout start point without create", &backends.CheckoutRequest{Scope: ws, Branch: "x", StartPoint: "main"}, backends.InvalidArgument, nil},
		{"checkout missing start point", &backends.CheckoutRequest{Scope: ws, Branch: "x", Create: true, StartPoint: "nope"}, backends.NotFound, nil},
		{"key too long", &backends.WriteFileRequest{Scope: keyed("bad", strings.Repeat("k", 256)), Path: "k.txt", Content: "x"}, backends.InvalidArgument, nil},
		{"key control character", &backends.CommitRequest{Scope: keyed("bad", "a\x01b"), Message: "x"}, backends.InvalidArgument, nil},
		{"key bad UTF-8", &backends.CheckoutRequest{Scope: keyed("bad", "\xff"), Branch: "k", Create: true}, backends.InvalidArgument, nil},
	}
}

// testBadInput runs every bad case against a cloned workspace whose
// repository holds symbolic links out of the work tree, and checks that each
// gets its category and that neither the remote nor the workspace changed.
func testBadInput(t *testing.T, f Factory) {
	env := NewEnv(t)
	env.RemoteSymlinks(t, map[string]string{"escape": "/etc/passwd", "escape-dir": "/tmp"})
	ex := f(t, env)
	Clone(t, ex, env, env.Agent, "bad")
	before := snapshot(t, ex, env)
	for _, c := range badCases(env) {
		as := env.Agent
		if c.as != nil {
			as = *c.as
		}
		err := Fail(t, ex, as, c.req)
		if got := backends.CategoryOf(err); got != c.want {
			t.Errorf("%s: category %q, want %q (%v)", c.name, got, c.want, err)
		}
		if strings.Contains(err.Error(), Token) {
			t.Errorf("%s: error shows the token: %v", c.name, err)
		}
	}
	if after := snapshot(t, ex, env); after != before {
		t.Fatalf("bad input changed something:\nbefore %s\nafter  %s", before, after)
	}
	WantCategory(t, Fail(t, ex, env.Agent, &backends.StatusRequest{Scope: scope("bad-new")}), backends.NotFound)
}

// snapshot describes the remote's refs and push count and the workspace's
// status and files.
func snapshot(t *testing.T, ex backends.Executor, env *Env) string {
	var b strings.Builder
	b.WriteString(env.RemoteGit(t, "for-each-ref", "--format=%(refname) %(objectname)"))
	b.WriteString(strings.Repeat("|", 1+env.Remote.Pushes("demo")))
	st := Do[*backends.StatusResult](t, ex, env.Agent, &backends.StatusRequest{Scope: scope("bad")})
	b.WriteString(st.Branch + " " + st.Head)
	for _, e := range st.Entries {
		b.WriteString(" " + e.Staged + e.Unstaged + e.Path)
	}
	ls := Do[*backends.ListFilesResult](t, ex, env.Agent, &backends.ListFilesRequest{Scope: scope("bad"), Recursive: true})
	for _, e := range ls.Entries {
		b.WriteString(" " + e.Type + ":" + e.Path)
	}
	return b.String()
}

// CompareBadInput runs every bad case against a and b, two backends built
// for env, and fails where their answers differ in category or message:
// an agent must not be able to tell which backend refused it.
func CompareBadInput(t *testing.T, env *Env, a, b backends.Executor) {
	t.Helper()
	env.RemoteSymlinks(t, map[string]string{"escape": "/etc/passwd", "escape-dir": "/tmp"})
	Clone(t, a, env, env.Agent, "bad")
	Clone(t, b, env, env.Agent, "bad")
	for _, c := range badCases(env) {
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
}
