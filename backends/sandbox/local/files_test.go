package local_test

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
)

func TestReadFile(t *testing.T) {
	p, info, wt := newWorkTree(t)
	writeFile(t, filepath.Join(wt, "dir", "f"), "0123456789")
	for _, tc := range []struct {
		offset, limit int64
		want          string
	}{
		{0, 100, "0123456789"},
		{2, 3, "234"},
		{8, 100, "89"},
		{10, 5, ""},
		{20, 5, ""},
		{0, 0, ""},
	} {
		fd, err := p.ReadFile(t.Context(), info.ID, wt, "dir/f", tc.offset, tc.limit)
		if err != nil {
			t.Errorf("ReadFile(offset %d, limit %d): %v", tc.offset, tc.limit, err)
			continue
		}
		if string(fd.Data) != tc.want || fd.Size != 10 {
			t.Errorf("ReadFile(offset %d, limit %d) = %q size %d, want %q size 10", tc.offset, tc.limit, fd.Data, fd.Size, tc.want)
		}
	}
	_, err := p.ReadFile(t.Context(), info.ID, wt, "missing", 0, 10)
	wantCategory(t, "ReadFile missing", err, backends.NotFound)
	_, err = p.ReadFile(t.Context(), info.ID, wt, "dir", 0, 10)
	wantCategory(t, "ReadFile of a directory", err, backends.InvalidArgument)
}

func TestWriteFile(t *testing.T) {
	p, info, wt := newWorkTree(t)
	created, err := p.WriteFile(t.Context(), info.ID, wt, "a/b/c.txt", []byte("one"))
	if err != nil || !created {
		t.Fatalf("first WriteFile: created %v, err %v; want true, nil", created, err)
	}
	if got := readFile(t, filepath.Join(wt, "a", "b", "c.txt")); got != "one" {
		t.Errorf("content = %q", got)
	}
	created, err = p.WriteFile(t.Context(), info.ID, wt, "a/b/c.txt", []byte("two"))
	if err != nil || created {
		t.Fatalf("second WriteFile: created %v, err %v; want false, nil", created, err)
	}
	if got := readFile(t, filepath.Join(wt, "a", "b", "c.txt")); got != "two" {
		t.Errorf("content after replace = %q", got)
	}
	if names := dirNames(t, filepath.Join(wt, "a", "b")); !slices.Equal(names, []string{"c.txt"}) {
		t.Errorf("dir after writes = %v, want only c.txt (temporary files left behind?)", names)
	}
	if _, err := p.WriteFile(t.Context(), info.ID, wt, "top", nil); err != nil {
		t.Errorf("WriteFile at the top of the root: %v", err)
	}

	_, err = p.WriteFile(t.Context(), info.ID, wt, "a/b", []byte("x"))
	wantCategory(t, "WriteFile onto a directory", err, backends.InvalidArgument)
	if st, err := os.Stat(filepath.Join(wt, "a", "b")); err != nil || !st.IsDir() {
		t.Errorf("directory damaged by a refused write: %v", err)
	}
	_, err = p.WriteFile(t.Context(), info.ID, wt, "a/b/c.txt/d", []byte("x"))
	if err == nil {
		t.Error("WriteFile below a regular file succeeded")
	}
	if names := dirNames(t, filepath.Join(wt, "a", "b")); !slices.Equal(names, []string{"c.txt"}) {
		t.Errorf("dir after refused writes = %v, want only c.txt", names)
	}
}

func TestSymlinksDoNotEscape(t *testing.T) {
	p, info, wt := newWorkTree(t)
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret"), "outside")
	symlink(t, "/etc/passwd", filepath.Join(wt, "escape"))
	symlink(t, outside, filepath.Join(wt, "escape-dir"))
	symlink(t, "../../home", filepath.Join(wt, "up")) // inside the sandbox, outside the work tree

	_, err := p.ReadFile(t.Context(), info.ID, wt, "escape", 0, 100)
	wantCategory(t, "ReadFile through a symlink to /etc/passwd", err, backends.Forbidden)
	_, err = p.ReadFile(t.Context(), info.ID, wt, "escape-dir/secret", 0, 100)
	wantCategory(t, "ReadFile through a symlinked dir", err, backends.Forbidden)
	_, err = p.WriteFile(t.Context(), info.ID, wt, "escape-dir/x", []byte("x"))
	wantCategory(t, "WriteFile through a symlinked dir", err, backends.Forbidden)
	_, err = p.WriteFile(t.Context(), info.ID, wt, "escape-dir/sub/x", []byte("x"))
	wantCategory(t, "WriteFile through a symlinked dir, new subdir", err, backends.Forbidden)
	_, err = p.WriteFile(t.Context(), info.ID, wt, "up/x", []byte("x"))
	wantCategory(t, "WriteFile through a relative symlink leaving the work tree", err, backends.Forbidden)
	_, err = p.ListDir(t.Context(), info.ID, wt, "escape-dir", false, 10)
	wantCategory(t, "ListDir of a symlinked dir", err, backends.Forbidden)
	_, err = p.Remove(t.Context(), info.ID, wt, "escape-dir/secret")
	wantCategory(t, "Remove through a symlinked dir", err, backends.Forbidden)
	if names := dirNames(t, outside); !slices.Equal(names, []string{"secret"}) {
		t.Errorf("outside dir changed: %v", names)
	}
	if names := dirNames(t, filepath.Join(info.Root, "home")); len(names) != 0 {
		t.Errorf("write escaped the work tree into home: %v", names)
	}

	// Writing onto a symlink replaces the link; its target is untouched.
	target := filepath.Join(outside, "secret")
	symlink(t, target, filepath.Join(wt, "link"))
	created, err := p.WriteFile(t.Context(), info.ID, wt, "link", []byte("new"))
	if err != nil || created {
		t.Fatalf("WriteFile onto a symlink: created %v, err %v; want false, nil", created, err)
	}
	if got := readFile(t, target); got != "outside" {
		t.Errorf("symlink target changed to %q", got)
	}
	if st, err := os.Lstat(filepath.Join(wt, "link")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("link not replaced by a regular file: %v %v", st.Mode(), err)
	}
	if got := readFile(t, filepath.Join(wt, "link")); got != "new" {
		t.Errorf("replaced file = %q", got)
	}
}

func TestDotDotAndAbsolutePathsRefused(t *testing.T) {
	p, info, wt := newWorkTree(t)
	writeFile(t, filepath.Join(info.Root, "ws", "sibling"), "not yours")
	if err := os.Mkdir(filepath.Join(wt, "a"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"../x", "a/../../x", "../../home/x", "/tmp/gitgate-abs-x"} {
		if _, err := p.WriteFile(t.Context(), info.ID, wt, rel, []byte("x")); err == nil {
			t.Errorf("WriteFile(%q) succeeded", rel)
		}
	}
	for _, rel := range []string{"../sibling", "a/../../sibling", "/etc/passwd"} {
		if fd, err := p.ReadFile(t.Context(), info.ID, wt, rel, 0, 100); err == nil {
			t.Errorf("ReadFile(%q) = %q, want an error", rel, fd.Data)
		}
		if existed, err := p.Remove(t.Context(), info.ID, wt, rel); err == nil {
			t.Errorf("Remove(%q) = %v, nil; want an error", rel, existed)
		}
	}
	if _, err := p.ListDir(t.Context(), info.ID, wt, "..", false, 10); err == nil {
		t.Error(`ListDir("..") succeeded`)
	}
	for _, name := range []string{filepath.Join(info.Root, "ws", "x"), filepath.Join(info.Root, "x"), filepath.Join(info.Root, "home", "x"), "/tmp/gitgate-abs-x"} {
		if _, err := os.Lstat(name); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists: a write escaped the work tree", name)
		}
	}
	if got := readFile(t, filepath.Join(info.Root, "ws", "sibling")); got != "not yours" {
		t.Errorf("sibling changed: %q", got)
	}
	// A root outside the sandbox is refused outright.
	if _, err := p.ReadFile(t.Context(), info.ID, "/etc", "passwd", 0, 100); err == nil {
		t.Error("ReadFile with root /etc succeeded")
	}
}

func TestListDir(t *testing.T) {
	p, info, wt := newWorkTree(t)
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "o"), "x")
	writeFile(t, filepath.Join(wt, "b"), "bb")
	writeFile(t, filepath.Join(wt, "a"), "a")
	writeFile(t, filepath.Join(wt, "c", "e"), "eee")
	writeFile(t, filepath.Join(wt, "c", "d", "f"), "f")
	symlink(t, outside, filepath.Join(wt, "link"))

	list := func(rel string, recursive bool, max int) string {
		t.Helper()
		entries, err := p.ListDir(t.Context(), info.ID, wt, rel, recursive, max)
		if err != nil {
			t.Fatalf("ListDir(%q, %v, %d): %v", rel, recursive, max, err)
		}
		var s []string
		for _, e := range entries {
			s = append(s, e.Path+":"+e.Type+":"+strconv.FormatInt(e.Size, 10))
		}
		return strings.Join(s, " ")
	}
	if got, want := list(".", false, 100), "a:file:1 b:file:2 c:dir:0 link:symlink:0"; got != want {
		t.Errorf("ListDir(.) = %q, want %q", got, want)
	}
	if got, want := list(".", true, 100), "a:file:1 b:file:2 c:dir:0 c/d:dir:0 c/d/f:file:1 c/e:file:3 link:symlink:0"; got != want {
		t.Errorf("recursive ListDir(.) = %q, want %q (symlinks listed, not followed)", got, want)
	}
	if got, want := list("c", false, 100), "c/d:dir:0 c/e:file:3"; got != want {
		t.Errorf("ListDir(c) = %q, want %q", got, want)
	}
	if got, want := list(".", true, 3), "a:file:1 b:file:2 c:dir:0"; got != want {
		t.Errorf("ListDir(., max 3) = %q, want %q", got, want)
	}
}

func TestListDirErrors(t *testing.T) {
	p, info, wt := newWorkTree(t)
	writeFile(t, filepath.Join(wt, "f"), "x")
	_, err := p.ListDir(t.Context(), info.ID, wt, "f", false, 10)
	wantCategory(t, "ListDir of a file", err, backends.InvalidArgument)
	_, err = p.ListDir(t.Context(), info.ID, wt, "missing", false, 10)
	wantCategory(t, "ListDir of a missing dir", err, backends.NotFound)
}

// ListNames lists the names ListDir (not recursive) lists, in the same
// order and under the same bound, and fails as it does.
func TestListNames(t *testing.T) {
	p, info, wt := newWorkTree(t)
	outside := t.TempDir()
	for _, name := range []string{"b", "a", "c/e", "c/d/f", "d"} {
		writeFile(t, filepath.Join(wt, name), "x")
	}
	symlink(t, outside, filepath.Join(wt, "link"))
	for _, c := range []struct {
		rel  string
		max  int
		want string
	}{{".", 100, "a b c d link"}, {".", 2, "a b"}, {"c", 100, "d e"}} {
		names, err := p.ListNames(t.Context(), info.ID, wt, c.rel, c.max)
		if err != nil {
			t.Fatalf("ListNames(%q, %d): %v", c.rel, c.max, err)
		}
		entries, err := p.ListDir(t.Context(), info.ID, wt, c.rel, false, c.max)
		if err != nil {
			t.Fatalf("ListDir(%q, %d): %v", c.rel, c.max, err)
		}
		var listed []string
		for _, e := range entries {
			listed = append(listed, path.Base(e.Path))
		}
		if got := strings.Join(names, " "); got != c.want || got != strings.Join(listed, " ") {
			t.Errorf("ListNames(%q, %d) = %q, want %q (ListDir lists %q)", c.rel, c.max, got, c.want, listed)
		}
	}
	_, err := p.ListNames(t.Context(), info.ID, wt, "b", 10)
	wantCategory(t, "ListNames of a file", err, backends.InvalidArgument)
	_, err = p.ListNames(t.Context(), info.ID, wt, "missing", 10)
	wantCategory(t, "ListNames of a missing dir", err, backends.NotFound)
	_, err = p.ListNames(t.Context(), info.ID, wt, "../..", 10)
	wantCategory(t, "ListNames outside the root", err, backends.Forbidden)
	_, err = p.ListNames(t.Context(), info.ID, wt, "link", 10)
	wantCategory(t, "ListNames through a symbolic link out of the root", err, backends.Forbidden)
}

func TestRemove(t *testing.T) {
	p, info, wt := newWorkTree(t)
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "target"), "keep")
	writeFile(t, filepath.Join(wt, "f"), "x")
	writeFile(t, filepath.Join(wt, "full", "g"), "x")
	if err := os.Mkdir(filepath.Join(wt, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	symlink(t, filepath.Join(outside, "target"), filepath.Join(wt, "link"))

	for _, rel := range []string{"f", "empty", "link"} {
		existed, err := p.Remove(t.Context(), info.ID, wt, rel)
		if err != nil || !existed {
			t.Errorf("Remove(%q): existed %v, err %v; want true, nil", rel, existed, err)
		}
		if _, err := os.Lstat(filepath.Join(wt, rel)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%q still there after Remove", rel)
		}
	}
	if got := readFile(t, filepath.Join(outside, "target")); got != "keep" {
		t.Errorf("Remove of a symlink touched its target: %q", got)
	}
	existed, err := p.Remove(t.Context(), info.ID, wt, "missing")
	if err != nil || existed {
		t.Errorf("Remove(missing): existed %v, err %v; want false, nil", existed, err)
	}
	_, err = p.Remove(t.Context(), info.ID, wt, "full")
	wantCategory(t, "Remove of a non-empty dir", err, backends.Conflict)
	if got := readFile(t, filepath.Join(wt, "full", "g")); got != "x" {
		t.Errorf("refused Remove changed the dir: %q", got)
	}
}

func TestRemoveAll(t *testing.T) {
	p, info, wt := newWorkTree(t)
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "keep"), "x")
	writeFile(t, filepath.Join(wt, "deep", "er", "f"), "x")

	for _, target := range []string{outside, filepath.Join(info.Root, "..", filepath.Base(outside)), info.Root, info.Root + "/", filepath.Join(info.Root, "ws", ".."), "relative/path"} {
		if err := p.RemoveAll(t.Context(), info.ID, target); err == nil {
			t.Errorf("RemoveAll(%q) succeeded", target)
		}
	}
	if got := readFile(t, filepath.Join(outside, "keep")); got != "x" {
		t.Errorf("outside file changed: %q", got)
	}
	if got := readFile(t, filepath.Join(wt, "deep", "er", "f")); got != "x" {
		t.Errorf("a refused RemoveAll removed files in the sandbox: %q", got)
	}
	if err := p.RemoveAll(t.Context(), info.ID, wt); err != nil {
		t.Fatalf("RemoveAll(work tree): %v", err)
	}
	if _, err := os.Stat(wt); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("work tree still there after RemoveAll (err %v)", err)
	}
	if err := p.RemoveAll(t.Context(), info.ID, wt); err != nil {
		t.Errorf("RemoveAll of a missing tree: %v", err)
	}
	if _, err := os.Stat(filepath.Join(info.Root, "ws")); err != nil {
		t.Errorf("RemoveAll of the work tree removed its parent: %v", err)
	}
}

// TestRemoveAllThroughSymlink documents a gap: RemoveAll checks its target
// lexically, so a symbolic link inside the sandbox leads it outside.
func TestRemoveAllThroughSymlink(t *testing.T) {
	p, info, _ := newWorkTree(t)
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "sub", "f"), "keep")
	symlink(t, outside, filepath.Join(info.Root, "ws", "link"))
	_ = p.RemoveAll(t.Context(), info.ID, filepath.Join(info.Root, "ws", "link", "sub"))
	if got := readFile(t, filepath.Join(outside, "sub", "f")); got != "keep" {
		t.Errorf("outside file changed: %q", got)
	}
}

// --- helpers ---

// newWorkTree returns a sandbox and a work tree in it, the root that file
// operations are confined to.
func newWorkTree(t *testing.T) (p *local.Provider, info sandbox.Info, wt string) {
	t.Helper()
	p, info = newSandbox(t)
	wt = sandbox.WorkTreePath(info.Root, "w")
	if err := os.Mkdir(wt, 0o700); err != nil {
		t.Fatal(err)
	}
	return p, info, wt
}

func symlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

// TestWriteFileKeepsPermissions: rewriting an executable script keeps it
// executable (git would otherwise see a mode change).
func TestWriteFileKeepsPermissions(t *testing.T) {
	p, info := newSandbox(t)
	ws := filepath.Join(info.Root, "ws")
	script := filepath.Join(ws, "run.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WriteFile(t.Context(), info.ID, ws, "run.sh", []byte("#!/bin/sh\necho hi\n")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(script)
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("mode after rewrite: %v %v", st.Mode(), err)
	}
	if _, err := p.WriteFile(t.Context(), info.ID, ws, "new.txt", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(ws, "new.txt")); st.Mode().Perm() != 0o644 {
		t.Fatalf("new file mode %v", st.Mode())
	}
}
