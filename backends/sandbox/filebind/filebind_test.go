package filebind_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/filebind"
)

func key(project, agent, name string) sandbox.WorkspaceKey {
	return sandbox.WorkspaceKey{Project: project, Agent: agent, Name: name}
}

func open(t *testing.T, dir string, now func() time.Time) *filebind.Store {
	t.Helper()
	s, err := filebind.Open(dir, filebind.Options{TTL: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBindingsSurviveTheStore: what one store (one process) put, a store
// opened later on the same directory reads back exactly.
func TestBindingsSurviveTheStore(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, dir, nil)
	if _, ok, err := s.Get(ctx, key("p", "", "w")); ok || err != nil {
		t.Fatalf("Get on an empty store: ok %v, err %v", ok, err)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 123, time.UTC)
	want := map[sandbox.WorkspaceKey]sandbox.Binding{}
	for _, b := range []sandbox.Binding{
		{Key: key("p", "", "zeta"), SandboxID: "s1", Branch: "main", Dirty: true, Unpushed: "main fix", Writes: 7},
		{Key: key("p", "", "alpha"), SandboxID: "s1"},
		{Key: key("p", "b", "x"), SandboxID: "s2"},
		{Key: key("q", "", "alpha"), SandboxID: "s1"},
		{Key: key("pp", "", "alpha"), SandboxID: "s4"},
	} {
		b.Root, b.Created, b.LastUsed, b.URL = "/sbx/"+b.SandboxID, now, now.Add(time.Minute), "https://example.com/"+b.Key.String()
		if err := s.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
		want[b.Key] = b
	}
	again := open(t, dir, nil)
	for k, w := range want {
		got, ok, err := again.Get(ctx, k)
		if !ok || err != nil || fmt.Sprint(got) != fmt.Sprint(w) || !got.Created.Equal(w.Created) {
			t.Errorf("Get(%v) = %+v, %v, %v; want %+v", k, got, ok, err, w)
		}
	}
	list, err := again.List(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range list {
		names = append(names, b.Key.String())
	}
	if fmt.Sprint(names) != "[p/alpha p/b/x p/zeta]" {
		t.Errorf("List(p) = %v", names)
	}
	if err := again.DeleteSandbox(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	for k := range want {
		_, ok, _ := again.Get(ctx, k)
		if wantOK := want[k].SandboxID != "s1"; ok != wantOK {
			t.Errorf("after DeleteSandbox(s1), Get(%v) ok = %v, want %v", k, ok, wantOK)
		}
	}
	if err := again.Delete(ctx, key("p", "b", "x")); err != nil {
		t.Fatal(err)
	}
	if err := again.Delete(ctx, key("p", "b", "x")); err != nil {
		t.Errorf("deleting twice: %v", err)
	}
	if held, err := again.Holds(ctx, "s4"); !held || err != nil {
		t.Errorf("Holds(s4) = %v, %v", held, err)
	}
	if held, err := again.Holds(ctx, "s2"); held || err != nil {
		t.Errorf("Holds(s2) = %v, %v after its binding was deleted", held, err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "*", ".tmp-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// TestUsedWithin: a binding stored or read within the TTL (by any
// process) keeps its sandbox in use.
func TestUsedWithin(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	clock := time.Now()
	s := open(t, dir, func() time.Time { return clock })
	if err := s.Put(ctx, sandbox.Binding{Key: key("p", "", "w"), SandboxID: "s1"}); err != nil {
		t.Fatal(err)
	}
	if used, err := s.UsedWithin(ctx, "s1"); !used || err != nil {
		t.Errorf("UsedWithin right after Put = %v, %v", used, err)
	}
	if used, _ := s.UsedWithin(ctx, "s2"); used {
		t.Error("UsedWithin of a sandbox without bindings = true")
	}
	clock = clock.Add(2 * time.Hour)
	if used, _ := s.UsedWithin(ctx, "s1"); used {
		t.Error("UsedWithin two TTLs later = true")
	}
	if _, ok, err := s.Get(ctx, key("p", "", "w")); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if used, _ := s.UsedWithin(ctx, "s1"); !used {
		t.Error("a Get does not count as a use")
	}
}

// TestConcurrentWritersNeverTear: readers never see a torn or missing
// binding while writers replace it.
func TestConcurrentWritersNeverTear(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	w1, w2, r := open(t, dir, nil), open(t, dir, nil), open(t, dir, nil)
	k := key("p", "", "w")
	if err := w1.Put(ctx, sandbox.Binding{Key: k, SandboxID: "s0"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, w := range []*filebind.Store{w1, w2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 200 {
				if err := w.Put(ctx, sandbox.Binding{Key: k, SandboxID: fmt.Sprintf("s%d-%d", i, n), Writes: uint64(n)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 400 {
		b, ok, err := r.Get(ctx, k)
		if !ok || err != nil || b.SandboxID == "" || b.Key != k {
			t.Fatalf("read %+v, %v, %v while writers replace it", b, ok, err)
		}
	}
	wg.Wait()
}

func TestCorruptFileIsAnError(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, dir, nil)
	k := key("p", "", "w")
	if err := s.Put(ctx, sandbox.Binding{Key: k, SandboxID: "s1"}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	if err := os.WriteFile(files[0], []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, k); err == nil {
		t.Error("a corrupt binding read without error")
	}
}
