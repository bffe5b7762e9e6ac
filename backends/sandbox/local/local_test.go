package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
)

const marker = ".gitgate-local-sandboxes"

func TestOpenCreatesDirWithMarker(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "sandboxes")
	p, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", p.Dir(), dir)
	}
	if p.Name() != "local" {
		t.Errorf("Name() = %q", p.Name())
	}
	if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
		t.Errorf("marker missing: %v", err)
	}
}

// TestSandboxesOutliveTheProvider: a sandbox made by one provider (one
// process) is found, with its files, by the next one on the directory.
func TestSandboxesOutliveTheProvider(t *testing.T) {
	dir := t.TempDir()
	p1, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	info := create(t, p1, sandbox.Owner{Project: "p"})
	writeFile(t, filepath.Join(info.Root, "ws", "f"), "data")

	p2, err := local.Open(dir)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	got := find(t, p2, sandbox.Owner{Project: "p"})
	if len(got) != 1 || got[0].ID != info.ID || got[0].Root != info.Root {
		t.Fatalf("second provider finds %v, want the first one's %s", got, info.ID)
	}
	if _, err := p2.Lookup(context.Background(), info.ID); err != nil {
		t.Fatalf("Lookup of the earlier sandbox: %v", err)
	}
	if got := readFile(t, filepath.Join(info.Root, "ws", "f")); got != "data" {
		t.Errorf("file in the earlier sandbox = %q", got)
	}
	if other := find(t, p2, sandbox.Owner{Project: "q"}); len(other) != 0 {
		t.Errorf("another owner finds %v", other)
	}
}

// TestClaimOrphan: a sandbox can be claimed for removal only while no
// process holds it and it holds no workspace.
func TestClaimOrphan(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p1, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	empty := create(t, p1, sandbox.Owner{})
	busy := create(t, p1, sandbox.Owner{Project: "p"})
	if err := os.Mkdir(filepath.Join(busy.Root, "git", "w.git"), 0o700); err != nil {
		t.Fatal(err)
	}
	sweeper, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if release, ok := sweeper.ClaimOrphan(ctx, empty.ID); ok {
		release()
		t.Fatal("claimed a sandbox its creator still holds")
	}
	p1.Release(empty.ID) // the creator is gone (a killed process releases its locks too)
	p1.Release(busy.ID)
	if release, ok := sweeper.ClaimOrphan(ctx, busy.ID); ok {
		release()
		t.Fatal("claimed a sandbox that holds a workspace")
	}
	release, ok := sweeper.ClaimOrphan(ctx, empty.ID)
	if !ok {
		t.Fatal("an empty sandbox nobody holds was not claimed")
	}
	adopter, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := sweeper.Destroy(ctx, empty.ID); err != nil {
		t.Fatal(err)
	}
	release()
	if _, err := adopter.Lookup(ctx, empty.ID); err == nil {
		t.Error("a swept sandbox can still be adopted")
	}
	if _, err := adopter.Lookup(ctx, busy.ID); err != nil {
		t.Errorf("the sandbox with a workspace is gone: %v", err)
	}
}

func TestOpenRefusesForeignDir(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "precious.txt"), "keep me")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := local.Open(dir); err == nil {
		t.Fatal("Open of a non-empty dir without the marker succeeded")
	}
	if got := readFile(t, filepath.Join(dir, "precious.txt")); got != "keep me" {
		t.Errorf("foreign file changed: %q", got)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"precious.txt", "sub"}) {
		t.Errorf("foreign dir changed: %v", names)
	}
}

func TestCreateFindDestroy(t *testing.T) {
	p := open(t)
	before := time.Now()
	a := create(t, p, sandbox.Owner{Project: "p", Agent: "a"})
	b := create(t, p, sandbox.Owner{Project: "p"})

	if a.ID == b.ID || a.Root == b.Root {
		t.Fatalf("two sandboxes share an id or root: %+v %+v", a, b)
	}
	if a.Owner != (sandbox.Owner{Project: "p", Agent: "a"}) {
		t.Errorf("Owner = %+v", a.Owner)
	}
	if !filepath.IsAbs(a.Root) || filepath.Dir(a.Root) != p.Dir() {
		t.Errorf("Root %q is not an absolute path directly under %q", a.Root, p.Dir())
	}
	if a.Created.Before(before.Add(-time.Second)) {
		t.Errorf("Created = %v, before the test started (%v)", a.Created, before)
	}
	for _, sub := range []string{"", "home", "ws", "git", "tmp"} {
		st, err := os.Stat(filepath.Join(a.Root, sub))
		if err != nil {
			t.Errorf("%s/%s: %v", a.Root, sub, err)
			continue
		}
		if !st.IsDir() || st.Mode().Perm() != 0o700 {
			t.Errorf("%q: mode %v, want a 0700 directory", sub, st.Mode())
		}
	}

	if got := find(t, p, a.Owner); len(got) != 1 || got[0].ID != a.ID {
		t.Errorf("Find(%v) = %+v, want only %s", a.Owner, got, a.ID)
	}
	if got := find(t, p, b.Owner); len(got) != 1 || got[0].ID != b.ID {
		t.Errorf("Find(%v) = %+v, want only %s", b.Owner, got, b.ID)
	}
	if got := find(t, p, sandbox.Owner{Project: "other"}); len(got) != 0 {
		t.Errorf("Find(other) = %+v, want none", got)
	}
	if err := p.SetTTL(t.Context(), a.ID, time.Hour); err != nil {
		t.Errorf("SetTTL on a live sandbox: %v", err)
	}

	if err := p.Destroy(t.Context(), a.ID); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if _, err := os.Stat(a.Root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("root still exists after Destroy (err %v)", err)
	}
	if got := find(t, p, a.Owner); len(got) != 0 {
		t.Errorf("Find after Destroy = %+v", got)
	}
	if _, err := os.Stat(b.Root); err != nil {
		t.Errorf("Destroy of a removed the other sandbox: %v", err)
	}

	ctx := t.Context()
	req := sandbox.ExecRequest{Path: "/bin/true"}
	_, execErr := p.Exec(ctx, a.ID, req)
	_, readErr := p.ReadFile(ctx, a.ID, a.Root, "x", 0, 10)
	_, writeErr := p.WriteFile(ctx, a.ID, a.Root, "x", nil)
	_, listErr := p.ListDir(ctx, a.ID, a.Root, ".", false, 10)
	_, removeErr := p.Remove(ctx, a.ID, a.Root, "x")
	for name, err := range map[string]error{
		"Destroy":   p.Destroy(ctx, a.ID),
		"SetTTL":    p.SetTTL(ctx, a.ID, time.Hour),
		"Exec":      execErr,
		"ReadFile":  readErr,
		"WriteFile": writeErr,
		"ListDir":   listErr,
		"Remove":    removeErr,
		"RemoveAll": p.RemoveAll(ctx, a.ID, filepath.Join(a.Root, "ws")),
	} {
		if c := backends.CategoryOf(err); c != backends.NotFound {
			t.Errorf("%s on a destroyed sandbox: err %v, category %q, want %q", name, err, c, backends.NotFound)
		}
	}
	if _, err := os.Stat(a.Root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an operation on the destroyed sandbox recreated its root (err %v)", err)
	}
}

// --- helpers ---

func open(t *testing.T) *local.Provider {
	t.Helper()
	p, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func create(t *testing.T, p *local.Provider, owner sandbox.Owner) sandbox.Info {
	t.Helper()
	info, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: owner, TTL: time.Hour})
	if err != nil {
		t.Fatalf("Create(%v): %v", owner, err)
	}
	return info
}

func find(t *testing.T, p *local.Provider, owner sandbox.Owner) []sandbox.Info {
	t.Helper()
	got, err := p.Find(t.Context(), owner)
	if err != nil {
		t.Fatalf("Find(%v): %v", owner, err)
	}
	return got
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dirNames returns the sorted names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// wantCategory fails the test unless err has category c.
func wantCategory(t *testing.T, what string, err error, c backends.Category) {
	t.Helper()
	if got := backends.CategoryOf(err); got != c {
		t.Errorf("%s: err %v, category %q, want %q", what, err, got, c)
	}
}

// TestCreateIsNotSweptWhileBeingMade: a sandbox is held before it can be
// listed, so an orphan sweep of another process that runs while it is
// being created never claims and removes it (before, one listing it
// between its metadata and its holder lock removed it, and Create failed
// with "no such file or directory").
func TestCreateIsNotSweptWhileBeingMade(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	maker, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	sweeper, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	swept := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				swept <- n
				return
			default:
			}
			all, _ := sweeper.List(ctx)
			for _, info := range all {
				if release, ok := sweeper.ClaimOrphan(ctx, info.ID); ok {
					_ = sweeper.Destroy(ctx, info.ID)
					release()
					n++
				}
			}
		}
	}()
	for range 300 {
		info, err := maker.Create(ctx, sandbox.CreateOptions{Owner: sandbox.Owner{Project: "p"}})
		if err != nil {
			close(stop)
			<-swept
			t.Fatalf("create while another process sweeps: %v", err)
		}
		if _, err := os.Stat(filepath.Join(info.Root, "git")); err != nil {
			close(stop)
			<-swept
			t.Fatalf("a sandbox just made was removed: %v", err)
		}
	}
	close(stop)
	if n := <-swept; n != 0 {
		t.Errorf("the sweep removed %d sandboxes their maker holds", n)
	}
}
