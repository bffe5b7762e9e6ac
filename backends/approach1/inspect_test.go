package approach1_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// inspectWorld is an engine on local sandboxes whose bindings the test
// reads, to look at (and change, behind the engine's back) a workspace's
// repository on this machine.
type inspectWorld struct {
	env   *backendtest.Env
	ex    *approach1.Executor
	binds sandbox.BindingStore
	p     backends.Principal
}

func newInspectWorld(t *testing.T) *inspectWorld {
	t.Helper()
	env := backendtest.NewEnv(t)
	binds := sandbox.NewMemoryBindings()
	ex := backendtest.NewEngine(t, env, &lock.Memory{}, binds)
	return &inspectWorld{env: env, ex: ex, binds: binds, p: env.Agent}
}

func (w *inspectWorld) binding(t *testing.T, ws string) sandbox.Binding {
	t.Helper()
	b, ok, err := w.binds.Get(t.Context(), sandbox.WorkspaceKey{Project: w.p.Project, Name: ws})
	if err != nil || !ok {
		t.Fatalf("binding of %s: %v %v", ws, ok, err)
	}
	return b
}

func (w *inspectWorld) git(t *testing.T, ws string, args ...string) string {
	t.Helper()
	full := append([]string{"-c", "user.name=Host", "-c", "user.email=host@example.com"}, args...)
	return strings.TrimSpace(hostGit(t, w.binding(t, ws), full...))
}

func inspScope(ws string) backends.Scope { return backends.Scope{Workspace: ws} }

// commitFile writes and commits one file as p.
func (w *inspectWorld) commitFile(t *testing.T, p backends.Principal, ws, path, content, enc, msg string) string {
	t.Helper()
	backendtest.Do[*backends.WriteFileResult](t, w.ex, p, &backends.WriteFileRequest{Scope: inspScope(ws), Path: path, Content: content, Encoding: enc})
	return backendtest.Do[*backends.CommitResult](t, w.ex, p, &backends.CommitRequest{Scope: inspScope(ws), Message: msg, Paths: []string{path}}).SHA
}

// state fingerprints a workspace: its refs, its status and its reflog.
func (w *inspectWorld) state(t *testing.T, ws string) string {
	t.Helper()
	return w.git(t, ws, "for-each-ref", "--format=%(refname) %(objectname)") + "|" +
		w.git(t, ws, "status", "--porcelain=v1", "--untracked-files=all") + "|" + w.git(t, ws, "reflog", "--format=%H %gs")
}

// wantRefused runs bad requests and checks each is refused with its
// category and changes nothing (nor writes the file an option would
// name).
func (w *inspectWorld) wantRefused(t *testing.T, ws string, cases map[backends.Request]backends.Category, outFile string) {
	t.Helper()
	before := w.state(t, ws)
	for req, want := range cases {
		err := backendtest.Fail(t, w.ex, w.p, req)
		if got := backends.CategoryOf(err); got != want {
			t.Errorf("%s %+v: category %q, want %q (%v)", req.Op(), req, got, want, err)
		}
	}
	if after := w.state(t, ws); after != before {
		t.Fatalf("refused requests changed the workspace:\nbefore %s\nafter  %s", before, after)
	}
	if _, err := os.Stat(outFile); !os.IsNotExist(err) {
		t.Fatalf("a refused request wrote %s (%v)", outFile, err)
	}
}

func TestShowCommitAndFileAtRevision(t *testing.T) {
	w := newInspectWorld(t)
	clone := backendtest.Clone(t, w.ex, w.env, w.p, "show")
	var body strings.Builder
	for i := range 300 {
		body.WriteString(strings.Repeat("line ", 10) + string(rune('a'+i%26)) + "\n")
	}
	first := w.commitFile(t, w.p, "show", "notes.txt", "hello\n", "", "Add notes\n\nWith a body.")
	second := w.commitFile(t, w.p, "show", "notes.txt", body.String(), "", "Grow notes")

	// HEAD by default: the commit's fields as log gives them, and its diff.
	res := backendtest.Do[*backends.ShowResult](t, w.ex, w.p, &backends.ShowRequest{Scope: inspScope("show")})
	logged := backendtest.Do[*backends.LogResult](t, w.ex, w.p, &backends.LogRequest{Scope: inspScope("show"), Limit: 1})
	if res.SHA != second || !slices.Equal(res.Parents, []string{first}) || res.Subject != "Grow notes" ||
		res.AuthorEmail != w.p.AuthorEmail || res.AuthorDate != logged.Commits[0].AuthorDate {
		t.Fatalf("show HEAD: commit %+v, want %s (parent %s) as log has it: %+v", res.Commit, second, first, logged.Commits[0])
	}
	if !strings.HasPrefix(res.Diff, "diff --git a/notes.txt b/notes.txt\n") || !strings.Contains(res.Diff, "-hello\n") ||
		!strings.Contains(res.Diff, "+line line") || res.Truncated || res.Path != "" || res.Content != "" {
		t.Fatalf("show HEAD: diff %.200q truncated %v path %q", res.Diff, res.Truncated, res.Path)
	}

	// Paging: pages end on lines and add up to the whole diff.
	var pages strings.Builder
	offset, n := 0, 0
	for {
		page := backendtest.Do[*backends.ShowResult](t, w.ex, w.p, &backends.ShowRequest{Scope: inspScope("show"), Rev: second, Page: backends.Page{Offset: offset, Limit: 1000}})
		if len(page.Diff) > 1000 || page.SHA != second {
			t.Fatalf("page at %d: %d bytes, commit %s", offset, len(page.Diff), page.SHA)
		}
		pages.WriteString(page.Diff)
		if n++; !page.Truncated {
			break
		}
		if !strings.HasSuffix(page.Diff, "\n") || page.NextOffset != offset+len(page.Diff) {
			t.Fatalf("page at %d does not end on a line or next_offset %d is wrong", offset, page.NextOffset)
		}
		offset = page.NextOffset
	}
	if n < 10 || pages.String() != res.Diff {
		t.Fatalf("%d pages, joined %d bytes, want the whole diff (%d bytes) over many pages", n, pages.Len(), len(res.Diff))
	}

	// A root commit: against the empty tree.
	root := backendtest.Do[*backends.ShowResult](t, w.ex, w.p, &backends.ShowRequest{Scope: inspScope("show"), Rev: clone.Head})
	if len(root.Parents) != 0 || !strings.Contains(root.Diff, "new file mode") || !strings.Contains(root.Diff, "+# demo") {
		t.Fatalf("root commit: parents %v, diff %.300q", root.Parents, root.Diff)
	}

	// A file at a revision, with the commit's fields; a branch name and
	// ~N work as revisions.
	old := backendtest.Do[*backends.ShowResult](t, w.ex, w.p, &backends.ShowRequest{Scope: inspScope("show"), Rev: "main~1", Path: "notes.txt"})
	if old.Content != "hello\n" || old.Encoding != "utf-8" || old.Path != "notes.txt" || old.SHA != first || old.Diff != "" || old.Truncated {
		t.Fatalf("notes.txt at main~1: %+v", old)
	}
	var content strings.Builder
	for offset = 0; ; {
		page := backendtest.Do[*backends.ShowResult](t, w.ex, w.p, &backends.ShowRequest{Scope: inspScope("show"), Path: "notes.txt", Page: backends.Page{Offset: offset, Limit: 4096}})
		content.WriteString(page.Content)
		if !page.Truncated {
			break
		}
		offset = page.NextOffset
	}
	if content.String() != body.String() {
		t.Fatalf("paged file: %d bytes, want %d", content.Len(), body.Len())
	}
	bin := []byte{0, 1, 2, 0xff, 0xfe, 'x'}
	w.commitFile(t, w.p, "show", "bin.dat", base64.StdEncoding.EncodeToString(bin), "base64", "Binary")
	got := backendtest.Do[*backends.ShowResult](t, w.ex, w.p, &backends.ShowRequest{Scope: inspScope("show"), Path: "bin.dat"})
	if dec, err := base64.StdEncoding.DecodeString(got.Content); got.Encoding != "base64" || err != nil || string(dec) != string(bin) {
		t.Fatalf("binary file: encoding %q content %q (%v)", got.Encoding, got.Content, err)
	}

	// Unknown revisions and paths: not found; a directory: invalid.
	for _, req := range []*backends.ShowRequest{
		{Scope: inspScope("show"), Rev: "no-such-branch"},
		{Scope: inspScope("show"), Rev: "0123456789abcdef0123456789abcdef01234567"},
		{Scope: inspScope("show"), Path: "no/such/file"},
		{Scope: inspScope("show"), Rev: first, Path: "bin.dat"}, // not there yet
	} {
		err := backendtest.Fail(t, w.ex, w.p, req)
		if backends.CategoryOf(err) != backends.NotFound || !strings.Contains(backends.MessageOf(err), "does not") {
			t.Errorf("show %+v: %v, want not_found saying what does not exist", req, err)
		}
	}
	out := filepath.Join(t.TempDir(), "x")
	w.wantRefused(t, "show", map[backends.Request]backends.Category{
		&backends.ShowRequest{Scope: inspScope("show"), Path: "src"}:                          backends.InvalidArgument,
		&backends.ShowRequest{Scope: inspScope("show"), Rev: "--output=" + out}:               backends.InvalidArgument,
		&backends.ShowRequest{Scope: inspScope("show"), Rev: "HEAD:notes.txt"}:                backends.InvalidArgument,
		&backends.ShowRequest{Scope: inspScope("show"), Rev: "main..HEAD"}:                    backends.InvalidArgument,
		&backends.ShowRequest{Scope: inspScope("show"), Path: "../" + filepath.Base(out)}:     backends.InvalidArgument,
		&backends.ShowRequest{Scope: inspScope("show"), Path: "/etc/passwd"}:                  backends.InvalidArgument,
		&backends.ShowRequest{Scope: inspScope("show"), Path: ".git/config"}:                  backends.Forbidden,
		&backends.ShowRequest{Scope: inspScope("show"), Path: "--output=" + out}:              backends.NotFound, // a path, after "--"
		&backends.ShowRequest{Scope: inspScope("show"), Page: backends.Page{Offset: -1}}:      backends.InvalidArgument,
		&backends.ShowRequest{Scope: backends.Scope{Workspace: "../show"}, Path: "notes.txt"}: backends.InvalidArgument,
	}, out)
}

func TestBlameLinesAuthorsAndPaging(t *testing.T) {
	w := newInspectWorld(t)
	backendtest.Clone(t, w.ex, w.env, w.p, "blame")
	first := w.commitFile(t, w.p, "blame", "poem.txt", "one\ntwo\nthree\n", "", "Write a poem")
	bob := w.env.Agent2
	second := w.commitFile(t, bob, "blame", "poem.txt", "one\nTWO\nthree\n", "", "Shout the second line")

	res := backendtest.Do[*backends.BlameResult](t, w.ex, w.p, &backends.BlameRequest{Scope: inspScope("blame"), Path: "poem.txt"})
	if res.Path != "poem.txt" || len(res.Lines) != 3 || res.Truncated || res.NextLine != 0 {
		t.Fatalf("blame: %+v", res)
	}
	want := []backends.BlameLine{
		{Line: 1, SHA: first, Author: w.p.AuthorName, Summary: "Write a poem", Content: "one"},
		{Line: 2, SHA: second, Author: bob.AuthorName, Summary: "Shout the second line", Content: "TWO"},
		{Line: 3, SHA: first, Author: w.p.AuthorName, Summary: "Write a poem", Content: "three"},
	}
	for i, l := range res.Lines {
		if _, err := time.Parse(time.RFC3339, l.Date); err != nil {
			t.Errorf("line %d: date %q is not RFC 3339", l.Line, l.Date)
		}
		l.Date = ""
		if l != want[i] {
			t.Errorf("line %d: %+v, want %+v", i+1, l, want[i])
		}
	}

	// Pages of two lines; an older revision.
	page := backendtest.Do[*backends.BlameResult](t, w.ex, w.p, &backends.BlameRequest{Scope: inspScope("blame"), Path: "poem.txt", Limit: 2})
	if len(page.Lines) != 2 || !page.Truncated || page.NextLine != 3 {
		t.Fatalf("first page: %+v", page)
	}
	page = backendtest.Do[*backends.BlameResult](t, w.ex, w.p, &backends.BlameRequest{Scope: inspScope("blame"), Path: "poem.txt", Limit: 2, StartLine: page.NextLine})
	if len(page.Lines) != 1 || page.Lines[0].Line != 3 || page.Lines[0].Content != "three" || page.Truncated {
		t.Fatalf("last page: %+v", page)
	}
	old := backendtest.Do[*backends.BlameResult](t, w.ex, w.p, &backends.BlameRequest{Scope: inspScope("blame"), Path: "poem.txt", Rev: "HEAD~1", StartLine: 2, Limit: 1})
	if len(old.Lines) != 1 || old.Lines[0].Content != "two" || old.Lines[0].SHA != first || !old.Truncated || old.NextLine != 3 {
		t.Fatalf("blame at HEAD~1: %+v", old)
	}

	// The default and the cap: 500 lines.
	var long strings.Builder
	for range 600 {
		long.WriteString("x\n")
	}
	w.commitFile(t, w.p, "blame", "long.txt", long.String(), "", "Long file")
	for _, limit := range []int{0, 10_000} {
		res := backendtest.Do[*backends.BlameResult](t, w.ex, w.p, &backends.BlameRequest{Scope: inspScope("blame"), Path: "long.txt", Limit: limit})
		if len(res.Lines) != 500 || !res.Truncated || res.NextLine != 501 {
			t.Fatalf("limit %d: %d lines, truncated %v, next %d", limit, len(res.Lines), res.Truncated, res.NextLine)
		}
	}
	w.commitFile(t, w.p, "blame", "empty.txt", "", "", "Empty file")
	if res := backendtest.Do[*backends.BlameResult](t, w.ex, w.p, &backends.BlameRequest{Scope: inspScope("blame"), Path: "empty.txt"}); len(res.Lines) != 0 || res.Truncated {
		t.Fatalf("empty file: %+v", res)
	}
	w.commitFile(t, w.p, "blame", "bin.dat", base64.StdEncoding.EncodeToString([]byte("a\x00b\n")), "base64", "Binary")

	for req, want := range map[*backends.BlameRequest]string{
		{Scope: inspScope("blame"), Path: "bin.dat"}:                 "binary",
		{Scope: inspScope("blame"), Path: "poem.txt", StartLine: 9}:  "past the end",
		{Scope: inspScope("blame"), Path: "src"}:                     "directory",
		{Scope: inspScope("blame"), Path: "gone.txt"}:                "does not exist",
		{Scope: inspScope("blame"), Path: "poem.txt", Rev: "nope"}:   "does not name a commit",
		{Scope: inspScope("blame"), Path: "poem.txt", Rev: "HEAD~9"}: "does not name a commit",
	} {
		err := backendtest.Fail(t, w.ex, w.p, req)
		if !strings.Contains(backends.MessageOf(err), want) {
			t.Errorf("blame %+v: %v, want a message with %q", req, err, want)
		}
		if c := backends.CategoryOf(err); c != backends.InvalidArgument && c != backends.NotFound {
			t.Errorf("blame %+v: category %q", req, c)
		}
	}
	out := filepath.Join(t.TempDir(), "x")
	w.wantRefused(t, "blame", map[backends.Request]backends.Category{
		&backends.BlameRequest{Scope: inspScope("blame")}:                                           backends.InvalidArgument,
		&backends.BlameRequest{Scope: inspScope("blame"), Path: "poem.txt", Rev: "--output=" + out}: backends.InvalidArgument,
		&backends.BlameRequest{Scope: inspScope("blame"), Path: "../poem.txt"}:                      backends.InvalidArgument,
		&backends.BlameRequest{Scope: inspScope("blame"), Path: "--output=" + out}:                  backends.NotFound,
		&backends.BlameRequest{Scope: inspScope("blame"), Path: "poem.txt", StartLine: -1}:          backends.InvalidArgument,
		&backends.BlameRequest{Scope: inspScope("blame"), Path: "poem.txt", Limit: -5}:              backends.InvalidArgument,
	}, out)
}

func TestTagsReflogAndStashes(t *testing.T) {
	w := newInspectWorld(t)
	env := w.env
	main := env.RemoteRef(t, "refs/heads/main")
	env.RemoteGit(t, "tag", "v1.0", main)
	env.RemoteGit(t, "-c", "user.name=Rel", "-c", "user.email=rel@example.com", "tag", "-a", "-m", "Release two\n\nNotes.", "v2.0", main)
	backendtest.Clone(t, w.ex, env, w.p, "look")

	tags := backendtest.Do[*backends.TagsResult](t, w.ex, w.p, &backends.TagsRequest{Scope: inspScope("look")})
	want := []backends.Tag{
		{Name: "v1.0", Target: main},
		{Name: "v2.0", Target: main, Annotated: true, Message: "Release two\n\nNotes."},
	}
	if !slices.Equal(tags.Tags, want) {
		t.Fatalf("tags %+v, want %+v", tags.Tags, want)
	}
	if sh := backendtest.Do[*backends.ShowResult](t, w.ex, w.p, &backends.ShowRequest{Scope: inspScope("look"), Rev: "v2.0", Path: "README.md"}); sh.SHA != main || sh.Content != backendtest.SeedFiles["README.md"] {
		t.Fatalf("show at an annotated tag: %+v", sh)
	}
	w.git(t, "look", "tag", "-a", "-m", "Nested", "nested", "v2.0")
	w.git(t, "look", "tag", "a-local", "HEAD")
	tags = backendtest.Do[*backends.TagsResult](t, w.ex, w.p, &backends.TagsRequest{Scope: inspScope("look")})
	if len(tags.Tags) != 4 || tags.Tags[0].Name != "a-local" || tags.Tags[0].Annotated || tags.Tags[0].Message != "" ||
		tags.Tags[1] != (backends.Tag{Name: "nested", Target: main, Annotated: true, Message: "Nested"}) {
		t.Fatalf("tags with a local one: %+v", tags.Tags)
	}

	// reflog: newest first, HEAD@{n} selectors, RFC 3339 dates, paging.
	c1 := w.commitFile(t, w.p, "look", "a.txt", "a\n", "", "First change")
	c2 := w.commitFile(t, w.p, "look", "b.txt", "b\n", "", "Second change")
	backendtest.Do[*backends.CheckoutResult](t, w.ex, w.p, &backends.CheckoutRequest{Scope: inspScope("look"), Branch: "topic", Create: true})
	all := backendtest.Do[*backends.ReflogResult](t, w.ex, w.p, &backends.ReflogRequest{Scope: inspScope("look")})
	if len(all.Entries) != 4 || all.Truncated {
		t.Fatalf("reflog: %+v", all)
	}
	actions := []string{"checkout: moving from main to topic", "commit: Second change", "commit: First change", "clone: from "}
	shas := []string{c2, c2, c1, main}
	for i, en := range all.Entries {
		if en.Selector != "HEAD@{"+string(rune('0'+i))+"}" || en.SHA != shas[i] || !strings.HasPrefix(en.Action, actions[i]) {
			t.Errorf("entry %d: %+v, want %s at %s", i, en, actions[i], shas[i])
		}
		if _, err := time.Parse(time.RFC3339, en.Date); err != nil {
			t.Errorf("entry %d: date %q is not RFC 3339", i, en.Date)
		}
	}
	page := backendtest.Do[*backends.ReflogResult](t, w.ex, w.p, &backends.ReflogRequest{Scope: inspScope("look"), Limit: 2, Skip: 1})
	if len(page.Entries) != 2 || !page.Truncated || page.NextSkip != 3 || page.Entries[0] != all.Entries[1] || page.Entries[1] != all.Entries[2] {
		t.Fatalf("reflog page: %+v", page)
	}
	page = backendtest.Do[*backends.ReflogResult](t, w.ex, w.p, &backends.ReflogRequest{Scope: inspScope("look"), Limit: 2, Skip: page.NextSkip})
	if len(page.Entries) != 1 || page.Truncated || page.Entries[0] != all.Entries[3] {
		t.Fatalf("last reflog page: %+v", page)
	}
	// A selector is a revision show accepts... once the rev syntax allows
	// it; the sha is what the entry names.
	if sh := backendtest.Do[*backends.ShowResult](t, w.ex, w.p, &backends.ShowRequest{Scope: inspScope("look"), Rev: all.Entries[2].SHA}); sh.Subject != "First change" {
		t.Fatalf("show of a reflog entry's sha: %+v", sh.Commit)
	}

	// stashes: none, then two (newest first).
	if st := backendtest.Do[*backends.StashesResult](t, w.ex, w.p, &backends.StashesRequest{Scope: inspScope("look")}); st.Stashes == nil || len(st.Stashes) != 0 {
		t.Fatalf("no stash: %+v", st.Stashes)
	}
	backendtest.Do[*backends.WriteFileResult](t, w.ex, w.p, &backends.WriteFileRequest{Scope: inspScope("look"), Path: "a.txt", Content: "changed\n"})
	w.git(t, "look", "stash", "push", "-m", "first aside")
	backendtest.Do[*backends.WriteFileResult](t, w.ex, w.p, &backends.WriteFileRequest{Scope: inspScope("look"), Path: "b.txt", Content: "changed\n"})
	w.git(t, "look", "stash", "push")
	st := backendtest.Do[*backends.StashesResult](t, w.ex, w.p, &backends.StashesRequest{Scope: inspScope("look")})
	top := w.git(t, "look", "rev-parse", "refs/stash")
	if len(st.Stashes) != 2 || st.Stashes[0].Index != 0 || st.Stashes[0].SHA != top || !strings.HasPrefix(st.Stashes[0].Message, "WIP on topic: ") ||
		st.Stashes[1].Index != 1 || st.Stashes[1].Message != "On topic: first aside" {
		t.Fatalf("stashes: %+v", st.Stashes)
	}

	out := filepath.Join(t.TempDir(), "x")
	w.wantRefused(t, "look", map[backends.Request]backends.Category{
		&backends.ReflogRequest{Scope: inspScope("look"), Limit: -1}:         backends.InvalidArgument,
		&backends.ReflogRequest{Scope: inspScope("look"), Skip: -1}:          backends.InvalidArgument,
		&backends.TagsRequest{Scope: inspScope("no-such-workspace")}:         backends.NotFound,
		&backends.StashesRequest{Scope: backends.Scope{Workspace: "--help"}}: backends.InvalidArgument,
	}, out)

	// A workspace of an empty repository: no tags, no reflog, no stash.
	if err := env.Remote.CreateRepo(t.Context(), "empty", nil); err != nil {
		t.Fatal(err)
	}
	backendtest.Do[*backends.CloneResult](t, w.ex, w.p, &backends.CloneRequest{Scope: inspScope("empty"), URL: env.Remote.RepoURL("empty")})
	if r := backendtest.Do[*backends.ReflogResult](t, w.ex, w.p, &backends.ReflogRequest{Scope: inspScope("empty")}); r.Entries == nil || len(r.Entries) != 0 {
		t.Fatalf("reflog of an empty repository: %+v", r)
	}
	if r := backendtest.Do[*backends.TagsResult](t, w.ex, w.p, &backends.TagsRequest{Scope: inspScope("empty")}); r.Tags == nil || len(r.Tags) != 0 {
		t.Fatalf("tags of an empty repository: %+v", r)
	}
	err := backendtest.Fail(t, w.ex, w.p, &backends.ShowRequest{Scope: inspScope("empty")})
	if backends.CategoryOf(err) != backends.NotFound || !strings.Contains(backends.MessageOf(err), "no commits yet") {
		t.Fatalf("show in an empty repository: %v", err)
	}
}

func TestFetchUpdatesOnlyRemoteTrackingRefsAndIsPredicted(t *testing.T) {
	w := newInspectWorld(t)
	env := w.env
	clone := backendtest.Clone(t, w.ex, env, w.p, "fetch")
	w.git(t, "fetch", "tag", "mine", "HEAD")
	fetch := &backends.FetchRequest{Scope: inspScope("fetch")}
	predictMatches := func(req *backends.FetchRequest, res *backends.FetchResult) *backends.Prediction {
		t.Helper()
		before := w.state(t, "fetch")
		pred, err := w.ex.Predict(backendtest.Ctx(t), req, res)
		if err != nil {
			t.Fatalf("predict fetch: %v", err)
		}
		if after := w.state(t, "fetch"); after != before {
			t.Fatalf("the prediction changed the workspace:\nbefore %s\nafter  %s", before, after)
		}
		if pred.Stale != "" || len(pred.Expected) == 0 || !maps.Equal(pred.Expected, pred.Found) {
			t.Fatalf("fetch prediction does not match:\nexpected %v\nfound    %v\nstale %q", pred.Expected, pred.Found, pred.Stale)
		}
		return pred
	}

	// Nothing new: nothing updated.
	res := backendtest.Do[*backends.FetchResult](t, w.ex, w.p, fetch)
	if res.Updated == nil || len(res.Updated) != 0 || res.WriteSeq == 0 {
		t.Fatalf("fetch of nothing new: %+v", res)
	}
	predictMatches(fetch, res)

	// The remote moves main, gains a branch and tags, one of which has
	// the name of the workspace's own tag.
	up, err := env.Remote.CommitFile(t.Context(), "demo", "main", "up.txt", "up\n", "Upstream change")
	if err != nil {
		t.Fatal(err)
	}
	env.RemoteGit(t, "branch", "side", up)
	env.RemoteGit(t, "tag", "v3", up)
	env.RemoteGit(t, "tag", "mine", up)
	w.commitFile(t, w.p, "fetch", "local.txt", "local\n", "", "Local change")
	localHead := w.git(t, "fetch", "rev-parse", "HEAD")
	backendtest.Do[*backends.WriteFileResult](t, w.ex, w.p, &backends.WriteFileRequest{Scope: inspScope("fetch"), Path: "dirty.txt", Content: "uncommitted\n"})
	res = backendtest.Do[*backends.FetchResult](t, w.ex, w.p, fetch)
	wantUpdates := []backends.RefUpdate{{Ref: "origin/main", Before: clone.Head, After: up}, {Ref: "origin/side", After: up}}
	if !slices.Equal(res.Updated, wantUpdates) {
		t.Fatalf("updated %+v, want %+v", res.Updated, wantUpdates)
	}
	if len(res.Notices) != 1 || !strings.Contains(res.Notices[0], `"mine"`) {
		t.Fatalf("notices %q, want one about the kept tag \"mine\"", res.Notices)
	}
	st := backendtest.Do[*backends.StatusResult](t, w.ex, w.p, &backends.StatusRequest{Scope: inspScope("fetch")})
	if st.Branch != "main" || st.Head != localHead || st.Ahead != 1 || st.Behind != 1 || len(st.Entries) != 1 || st.Entries[0].Path != "dirty.txt" {
		t.Fatalf("the fetch touched the branch or work tree: %+v", st)
	}
	tags := backendtest.Do[*backends.TagsResult](t, w.ex, w.p, &backends.TagsRequest{Scope: inspScope("fetch")})
	if want := []backends.Tag{{Name: "mine", Target: clone.Head}, {Name: "v3", Target: up}}; !slices.Equal(tags.Tags, want) {
		t.Fatalf("tags %+v, want %+v (the local tag kept)", tags.Tags, want)
	}
	predictMatches(fetch, res)

	// Again: idempotent.
	again := backendtest.Do[*backends.FetchResult](t, w.ex, w.p, fetch)
	if len(again.Updated) != 0 {
		t.Fatalf("second fetch updated %+v", again.Updated)
	}

	// The remote deletes side: kept without prune, removed with it.
	env.RemoteGit(t, "branch", "-D", "side")
	if res := backendtest.Do[*backends.FetchResult](t, w.ex, w.p, fetch); len(res.Updated) != 0 {
		t.Fatalf("fetch without prune updated %+v", res.Updated)
	}
	prune := &backends.FetchRequest{Scope: inspScope("fetch"), Prune: true}
	res = backendtest.Do[*backends.FetchResult](t, w.ex, w.p, prune)
	if want := []backends.RefUpdate{{Ref: "origin/side", Before: up}}; !slices.Equal(res.Updated, want) {
		t.Fatalf("prune updated %+v, want %+v", res.Updated, want)
	}
	if got := w.git(t, "fetch", "tag", "--list", "mine"); got != "mine" {
		t.Fatalf("prune removed the local tag: %q", got)
	}
	pred := predictMatches(prune, res)
	if pred.Expected["origin/main"] != up || pred.Expected["updated origin/side"] != "(pruned)" {
		t.Fatalf("the prediction does not name the refs: %v", pred.Expected)
	}

	// A remote-tracking branch moved behind the engine's back: a
	// mismatch naming it.
	res = backendtest.Do[*backends.FetchResult](t, w.ex, w.p, fetch)
	w.git(t, "fetch", "update-ref", "refs/remotes/origin/main", clone.Head)
	pred, err = w.ex.Predict(backendtest.Ctx(t), fetch, res)
	if err != nil {
		t.Fatal(err)
	}
	if pred.Stale != "" || pred.Expected["origin/main"] != up || pred.Found["origin/main"] != clone.Head {
		t.Fatalf("a moved remote-tracking branch was not caught: expected %v found %v stale %q", pred.Expected, pred.Found, pred.Stale)
	}
	// A result that claims an update the workspace does not show.
	w.git(t, "fetch", "update-ref", "refs/remotes/origin/main", up)
	lie := &backends.FetchResult{Served: res.Served, Updated: []backends.RefUpdate{{Ref: "origin/main", Before: up, After: clone.Head}}}
	if pred, err = w.ex.Predict(backendtest.Ctx(t), fetch, lie); err != nil || pred.Stale != "" || maps.Equal(pred.Expected, pred.Found) {
		t.Fatalf("a false update was not caught: %+v %v", pred, err)
	}

	// A tag the fetch saw, gone behind the engine's back: a mismatch.
	res = backendtest.Do[*backends.FetchResult](t, w.ex, w.p, fetch)
	w.git(t, "fetch", "tag", "-d", "v3")
	if pred, err = w.ex.Predict(backendtest.Ctx(t), fetch, res); err != nil || pred.Stale != "" || pred.Found["tag v3"] != "(missing)" || pred.Expected["tag v3"] != "present" {
		t.Fatalf("a missing tag was not caught: %+v %v", pred, err)
	}

	// The remote moves on after the fetch: stale, not a mismatch.
	res = backendtest.Do[*backends.FetchResult](t, w.ex, w.p, fetch)
	if _, err := env.Remote.CommitFile(t.Context(), "demo", "main", "later.txt", "later\n", "After the fetch"); err != nil {
		t.Fatal(err)
	}
	if pred, err = w.ex.Predict(backendtest.Ctx(t), fetch, res); err != nil || pred.Stale == "" {
		t.Fatalf("the remote moved after the fetch: %+v %v, want stale", pred, err)
	}
	// A branch and a tag the remote gained after the fetch, at a commit
	// the workspace has: stale too (FETCH_HEAD says the fetch did not see
	// them).
	res = backendtest.Do[*backends.FetchResult](t, w.ex, w.p, fetch)
	env.RemoteGit(t, "branch", "late", up)
	if pred, err = w.ex.Predict(backendtest.Ctx(t), fetch, res); err != nil || pred.Stale == "" || !strings.Contains(pred.Stale, "branch late") {
		t.Fatalf("a branch created after the fetch: %+v %v, want stale naming it", pred, err)
	}
	res = backendtest.Do[*backends.FetchResult](t, w.ex, w.p, fetch)
	env.RemoteGit(t, "tag", "late-tag", up)
	if pred, err = w.ex.Predict(backendtest.Ctx(t), fetch, res); err != nil || pred.Stale == "" || !strings.Contains(pred.Stale, "tag late-tag") {
		t.Fatalf("a tag created after the fetch: %+v %v, want stale naming it", pred, err)
	}
	// A branch the remote deleted after a pruning fetch saw it: stale.
	res = backendtest.Do[*backends.FetchResult](t, w.ex, w.p, prune)
	env.RemoteGit(t, "branch", "-D", "late")
	if pred, err = w.ex.Predict(backendtest.Ctx(t), prune, res); err != nil || pred.Stale == "" || !strings.Contains(pred.Stale, "branch late (deleted)") {
		t.Fatalf("a branch deleted after the fetch: %+v %v, want stale naming it", pred, err)
	}
	// ... and one the fetch did not prune though the remote had deleted
	// it (put back behind the engine's back): a mismatch.
	res = backendtest.Do[*backends.FetchResult](t, w.ex, w.p, prune)
	w.git(t, "fetch", "update-ref", "refs/remotes/origin/late", up)
	if pred, err = w.ex.Predict(backendtest.Ctx(t), prune, res); err != nil || pred.Stale != "" || pred.Expected["origin/late"] != "(pruned)" || pred.Found["origin/late"] != up {
		t.Fatalf("an unpruned branch was not caught: %+v %v", pred, err)
	}
	w.git(t, "fetch", "update-ref", "-d", "refs/remotes/origin/late")
	// Another write after it: stale.
	res = backendtest.Do[*backends.FetchResult](t, w.ex, w.p, fetch)
	backendtest.Do[*backends.FetchResult](t, w.ex, w.p, fetch)
	if pred, err = w.ex.Predict(backendtest.Ctx(t), fetch, res); err != nil || pred.Stale == "" {
		t.Fatalf("a write came after the fetch: %+v %v, want stale", pred, err)
	}

	backendtest.WantCategory(t, backendtest.Fail(t, w.ex, w.p, &backends.FetchRequest{Scope: inspScope("nowhere")}), backends.NotFound)
}

// TestStatusShowsAStoppedMerge: status reports a merge waiting on
// conflicts (in_progress and the unmerged paths).
func TestStatusShowsAStoppedMerge(t *testing.T) {
	w := newInspectWorld(t)
	backendtest.Clone(t, w.ex, w.env, w.p, "stop")
	if st := backendtest.Do[*backends.StatusResult](t, w.ex, w.p, &backends.StatusRequest{Scope: inspScope("stop")}); st.InProgress != "" || len(st.Conflicts) != 0 {
		t.Fatalf("clean workspace: %+v", st)
	}
	w.commitFile(t, w.p, "stop", "README.md", "ours\n", "", "Ours")
	if _, err := w.env.Remote.CommitFile(t.Context(), "demo", "main", "README.md", "theirs\n", "Theirs"); err != nil {
		t.Fatal(err)
	}
	backendtest.Do[*backends.FetchResult](t, w.ex, w.p, &backends.FetchRequest{Scope: inspScope("stop")})
	b := w.binding(t, "stop")
	cmd := []string{"-c", "user.name=Host", "-c", "user.email=host@example.com", "--git-dir=" + b.GitDir(), "--work-tree=" + b.WorkTree(), "merge", "origin/main"}
	if out, err := inspectRunGit(b.WorkTree(), cmd...); err == nil {
		t.Fatalf("the merge did not stop on conflicts: %s", out)
	}
	st := backendtest.Do[*backends.StatusResult](t, w.ex, w.p, &backends.StatusRequest{Scope: inspScope("stop")})
	if st.InProgress != "merge" || len(st.Conflicts) != 1 || st.Conflicts[0].Path != "README.md" {
		t.Fatalf("status during a stopped merge: in_progress %q conflicts %+v", st.InProgress, st.Conflicts)
	}
}

// runGit runs the host's git in dir and returns its output and error.
func inspectRunGit(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + os.TempDir() + "/nonexistent-home", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestFetchOfASingleBranchClone: a shallow clone fetches only its own
// branch (its refspec), and the prediction expects just that.
func TestFetchOfASingleBranchClone(t *testing.T) {
	w := newInspectWorld(t)
	backendtest.Do[*backends.CloneResult](t, w.ex, w.p, &backends.CloneRequest{Scope: inspScope("shallow"), URL: w.env.RepoURL, Depth: 1})
	up, err := w.env.Remote.CommitFile(t.Context(), "demo", "main", "up.txt", "up\n", "Upstream change")
	if err != nil {
		t.Fatal(err)
	}
	w.env.RemoteGit(t, "branch", "other", up)
	fetch := &backends.FetchRequest{Scope: inspScope("shallow"), Prune: true}
	res := backendtest.Do[*backends.FetchResult](t, w.ex, w.p, fetch)
	if len(res.Updated) != 1 || res.Updated[0].Ref != "origin/main" || res.Updated[0].After != up {
		t.Fatalf("updated %+v, want origin/main only", res.Updated)
	}
	pred, err := w.ex.Predict(backendtest.Ctx(t), fetch, res)
	if err != nil || pred.Stale != "" || !maps.Equal(pred.Expected, pred.Found) || pred.Expected["origin/main"] != up {
		t.Fatalf("prediction: %+v %v", pred, err)
	}
	if _, ok := pred.Expected["origin/other"]; ok {
		t.Fatalf("the prediction expects a branch the refspec does not fetch: %v", pred.Expected)
	}
}

// TestFetchHeldToTheRepositoryLimit: a fetch whose transfer outgrows the
// repository limit fails as resource_exhausted and leaves the
// remote-tracking branches, the tags and the object store as they were.
func TestFetchHeldToTheRepositoryLimit(t *testing.T) {
	env := backendtest.NewEnv(t)
	env.Project.MaxRepoBytes = 4 << 20
	binds := sandbox.NewMemoryBindings()
	w := &inspectWorld{env: env, ex: backendtest.NewEngine(t, env, &lock.Memory{}, binds), binds: binds, p: env.Agent}
	backendtest.Clone(t, w.ex, env, w.p, "big")
	before := w.state(t, "big")
	blob := make([]byte, 16<<20)
	_, _ = rand.Read(blob)
	big, err := env.Remote.CommitFile(t.Context(), "demo", "main", "big.bin", string(blob), "")
	if err != nil {
		t.Fatal(err)
	}
	env.RemoteGit(t, "tag", "huge", big)
	err = backendtest.Fail(t, w.ex, w.p, &backends.FetchRequest{Scope: inspScope("big")})
	if backends.CategoryOf(err) != backends.ResourceExhausted || !strings.Contains(backends.MessageOf(err), "repository size limit of 4 MiB") ||
		!strings.Contains(backends.MessageOf(err), "unchanged") {
		t.Fatalf("fetch over the repository limit: %v; want resource_exhausted naming the limit", err)
	}
	if after := w.state(t, "big"); after != before {
		t.Fatalf("the stopped fetch changed the workspace:\nbefore %s\nafter  %s", before, after)
	}
	if n := filesUnder(env.SandboxRoots, "/tmp_"); n != 0 {
		t.Fatalf("the stopped fetch left %d temporary files", n)
	}
}

// overAfterFetch is the local provider whose disk-use measures find the
// sandbox far past any limit once a fetch has run (its own measures, and
// those after the fetch in its round trip, sandbox.Around.Disk): what a
// fetch that completed between two measures of the watcher leaves.
type overAfterFetch struct {
	*local.Provider
	fetched atomic.Bool
}

func (p *overAfterFetch) Exec(ctx context.Context, id string, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	res, err := p.Provider.Exec(ctx, id, req)
	if slices.Contains(req.Args, "fetch") && slices.Contains(req.Args, "--tags") {
		p.fetched.Store(true)
		for i := range res.Around.DiskAfter {
			res.Around.DiskAfter[i] += 1 << 40
		}
	}
	return res, err
}

func (p *overAfterFetch) DiskUsage(ctx context.Context, id string, paths []string) ([]int64, error) {
	n, err := p.Provider.DiskUsage(ctx, id, paths)
	if err == nil && p.fetched.Load() {
		for i := range n {
			n[i] += 1 << 40
		}
	}
	return n, err
}

// TestFetchPastTheLimitPutsRefsBack: a fetch that completed, and wrote
// its refs, before any measure saw it past the repository limit fails as
// resource_exhausted, with the remote-tracking branches and tags put back
// as they were.
func TestFetchPastTheLimitPutsRefsBack(t *testing.T) {
	env := backendtest.NewEnv(t)
	dir := t.TempDir()
	inner, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	env.SandboxRoots = append(env.SandboxRoots, dir)
	provider := &overAfterFetch{Provider: inner}
	binds := sandbox.NewMemoryBindings()
	ex := backendtest.NewEngineOn(t, env, provider, &lock.Memory{}, binds)
	w := &inspectWorld{env: env, ex: ex, binds: binds, p: env.Agent}
	backendtest.Clone(t, ex, env, w.p, "w")
	w.git(t, "w", "tag", "kept", "HEAD")
	before := w.state(t, "w")
	tip, err := env.Remote.CommitFile(t.Context(), "demo", "main", "more.txt", "more\n", "More")
	if err != nil {
		t.Fatal(err)
	}
	env.RemoteGit(t, "branch", "more", tip)
	env.RemoteGit(t, "tag", "past", tip)
	env.RemoteGit(t, "tag", "kept", tip)
	err = backendtest.Fail(t, ex, w.p, &backends.FetchRequest{Scope: inspScope("w"), Prune: true})
	if backends.CategoryOf(err) != backends.ResourceExhausted || !strings.Contains(backends.MessageOf(err), "size limit") ||
		!strings.Contains(backends.MessageOf(err), "are unchanged") {
		t.Fatalf("fetch past the limit: %v; want resource_exhausted, refs unchanged", err)
	}
	if !provider.fetched.Load() {
		t.Fatal("the fetch never ran")
	}
	if got := w.git(t, "w", "cat-file", "-t", tip); got != "commit" {
		t.Fatalf("the fetch did not complete (so nothing was put back): %q", got)
	}
	if after := w.state(t, "w"); after != before {
		t.Fatalf("the fetch past the limit left its refs:\nbefore %s\nafter  %s", before, after)
	}
}
