package e2b_test

import (
	"slices"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/e2b"
	"github.com/gitgate/gitgate/internal/e2bfake"
)

// TestPooledSandboxIsFoundByItsOwner: a warm sandbox made without an owner
// (E2B metadata is fixed at creation) and handed to a project is found by
// that project from another process — after a restart, or when the
// bindings store lost its records — and by no other project.
func TestPooledSandboxIsFoundByItsOwner(t *testing.T) {
	s := fake(t, e2bfake.Config{})
	newProvider := func() *e2b.Provider {
		p, err := e2b.NewProvider(e2b.ProviderConfig{API: api(t, s, apiKey), EnvdURL: s.URL(), Template: "gitgate"})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ctx := t.Context()
	first := newProvider()
	warm, err := first.Create(ctx, sandbox.CreateOptions{TTL: time.Hour}) // as a pool makes them
	if err != nil {
		t.Fatal(err)
	}
	idle, err := first.Create(ctx, sandbox.CreateOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	alpha := sandbox.Owner{Project: "alpha"}
	other := newProvider() // a process that saw both while they were idle
	if found, err := other.Find(ctx, alpha); err != nil || len(found) != 0 {
		t.Fatalf("before it is handed out, alpha finds %v (%v)", found, err)
	}
	if err := first.RecordOwner(ctx, warm.ID, alpha); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]*e2b.Provider{"a new process": newProvider(), "a process that saw it idle": other} {
		found, err := p.Find(ctx, alpha)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(found, func(i sandbox.Info) bool { return i.ID == warm.ID && i.Owner == alpha }) {
			t.Errorf("%s: alpha finds %v, want the warm sandbox %s", name, found, warm.ID)
		}
		if slices.ContainsFunc(found, func(i sandbox.Info) bool { return i.ID == idle.ID }) {
			t.Errorf("%s: alpha finds the idle sandbox %s", name, idle.ID)
		}
		if beta, _ := p.Find(ctx, sandbox.Owner{Project: "beta"}); len(beta) != 0 {
			t.Errorf("%s: beta finds %v", name, beta)
		}
	}
	if info, err := newProvider().Lookup(ctx, warm.ID); err != nil || info.Owner != alpha {
		t.Errorf("Lookup from a new process = %+v, %v; want owner alpha", info, err)
	}
}
