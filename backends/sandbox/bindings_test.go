package sandbox_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/sandbox"
)

func TestKeyAndOwnerNames(t *testing.T) {
	k := sandbox.WorkspaceKey{Project: "p", Name: "w"}
	ka := sandbox.WorkspaceKey{Project: "p", Agent: "a", Name: "w"}
	if k.String() != "p/w" || ka.String() != "p/a/w" {
		t.Errorf("String() = %q, %q", k.String(), ka.String())
	}
	if k.Owner() != (sandbox.Owner{Project: "p"}) || ka.Owner() != (sandbox.Owner{Project: "p", Agent: "a"}) {
		t.Errorf("Owner() = %v, %v", k.Owner(), ka.Owner())
	}
	if k.Owner().String() != "p" || ka.Owner().String() != "p/a" {
		t.Errorf("Owner().String() = %q, %q", k.Owner().String(), ka.Owner().String())
	}
	b := sandbox.Binding{Key: ka, Root: "/sbx/1"}
	if b.WorkTree() != "/sbx/1/ws/w" || b.GitDir() != "/sbx/1/git/w.git" {
		t.Errorf("WorkTree() = %q, GitDir() = %q", b.WorkTree(), b.GitDir())
	}
}

func TestMemoryBindings(t *testing.T) {
	ctx := t.Context()
	s := sandbox.NewMemoryBindings()
	key := func(project, agent, name string) sandbox.WorkspaceKey {
		return sandbox.WorkspaceKey{Project: project, Agent: agent, Name: name}
	}
	if _, ok, err := s.Get(ctx, key("p", "", "w")); ok || err != nil {
		t.Fatalf("Get on an empty store: ok %v, err %v", ok, err)
	}
	if list, err := s.List(ctx, "p"); len(list) != 0 || err != nil {
		t.Fatalf("List on an empty store: %v, %v", list, err)
	}

	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, b := range []sandbox.Binding{
		{Key: key("p", "", "zeta"), SandboxID: "s1"},
		{Key: key("p", "", "alpha"), SandboxID: "s1"},
		{Key: key("p", "b", "x"), SandboxID: "s2"},
		{Key: key("p", "a", "x"), SandboxID: "s3"},
		{Key: key("q", "", "alpha"), SandboxID: "s1"},
		{Key: key("pp", "", "alpha"), SandboxID: "s4"},
	} {
		b.Created, b.LastUsed, b.URL = now, now, "https://example.com/"+b.Key.String()
		if err := s.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	b, ok, err := s.Get(ctx, key("p", "a", "x"))
	if !ok || err != nil || b.SandboxID != "s3" || b.URL != "https://example.com/p/a/x" || !b.Created.Equal(now) {
		t.Errorf("Get = %+v, %v, %v", b, ok, err)
	}
	if _, ok, _ := s.Get(ctx, key("p", "", "x")); ok {
		t.Error("a per-agent binding was found without its agent")
	}

	// Sorted by key string; other projects (even with a common prefix) left out.
	if got, want := keys(t, s, "p"), "p/a/x p/alpha p/b/x p/zeta"; got != want {
		t.Errorf("List(p) = %q, want %q", got, want)
	}

	// Put replaces.
	if err := s.Put(ctx, sandbox.Binding{Key: key("p", "", "zeta"), SandboxID: "s9"}); err != nil {
		t.Fatal(err)
	}
	if b, _, _ := s.Get(ctx, key("p", "", "zeta")); b.SandboxID != "s9" {
		t.Errorf("after a second Put, SandboxID = %q, want s9", b.SandboxID)
	}

	if err := s.Delete(ctx, key("p", "b", "x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, key("p", "b", "missing")); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	if got, want := keys(t, s, "p"), "p/a/x p/alpha p/zeta"; got != want {
		t.Errorf("List(p) after Delete = %q, want %q", got, want)
	}

	// DeleteSandbox removes s1's bindings in every project, nothing else.
	if err := s.DeleteSandbox(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(t, s, "p"), "p/a/x p/zeta"; got != want {
		t.Errorf("List(p) after DeleteSandbox = %q, want %q", got, want)
	}
	if got := keys(t, s, "q"); got != "" {
		t.Errorf("List(q) after DeleteSandbox = %q, want none", got)
	}
	if got := keys(t, s, "pp"); got != "pp/alpha" {
		t.Errorf("List(pp) = %q, want pp/alpha", got)
	}
	if err := s.DeleteSandbox(ctx, "no-such-sandbox"); err != nil {
		t.Errorf("DeleteSandbox of an unknown id: %v", err)
	}
}

func TestMemoryBindingsConcurrent(t *testing.T) {
	ctx := t.Context()
	s := sandbox.NewMemoryBindings()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				k := sandbox.WorkspaceKey{Project: "p", Name: fmt.Sprintf("w%d-%d", g, i)}
				_ = s.Put(ctx, sandbox.Binding{Key: k, SandboxID: fmt.Sprint(g)})
				_, _, _ = s.Get(ctx, k)
				_, _ = s.List(ctx, "p")
				if i%2 == 0 {
					_ = s.Delete(ctx, k)
				}
			}
			_ = s.DeleteSandbox(ctx, "0")
		})
	}
	wg.Wait()
	list, _ := s.List(ctx, "p")
	for _, b := range list {
		if b.SandboxID == "0" {
			t.Fatalf("binding of deleted sandbox 0 survived: %+v", b)
		}
	}
	if len(list) != 7*50 {
		t.Errorf("%d bindings left, want %d", len(list), 7*50)
	}
}

// keys returns project's binding keys as listed, space-separated.
func keys(t *testing.T, s *sandbox.MemoryBindings, project string) string {
	t.Helper()
	list, err := s.List(t.Context(), project)
	if err != nil {
		t.Fatal(err)
	}
	out := ""
	for i, b := range list {
		if i > 0 {
			out += " "
		}
		out += b.Key.String()
	}
	return out
}
