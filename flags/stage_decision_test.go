package flags

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/gitgate/gitgate/internal/testkit"
)

// stages returns the Stage of op's decisions over n workspaces, each once.
func stages(t *testing.T, e *Evaluator, op string, n int) map[int]int {
	out := map[int]int{}
	for i := range n {
		out[e.Decide(t.Context(), op, fmt.Sprintf("p/ws-%05d", i)).Stage]++
	}
	return out
}

// TestDecisionCarriesTheStage: every decision names the route percentage
// that decided it — whichever backend the workspace falls on — and 0 when
// the kill switch or a rollback decides, or before any stage.
func TestDecisionCarriesTheStage(t *testing.T) {
	f := NewFile(ops)
	_ = f.SetRoute("status", 10)
	e, path, _ := open(t, f)
	if got := stages(t, e, "status", 200); len(got) != 1 || got[10] != 200 {
		t.Fatalf("at 10%%, decisions' stages %v, want all 10", got)
	}
	if got := stages(t, e, "push", 50); len(got) != 1 || got[0] != 50 {
		t.Fatalf("push at 0%%: stages %v", got)
	}
	_ = f.SetRoute("status", 50)
	_ = f.SetRoute("push", 100)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the 100% push stage applies", func() bool {
		d := e.Decide(t.Context(), "push", "p/w")
		return d.Backend == Approach2 && d.Stage == 100
	})
	testkit.Eventually(t, "the 50% status stage applies", func() bool { return e.Decide(t.Context(), "status", "p/w").Stage == 50 })
	f.SetKill(true)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the kill switch applies", func() bool { return e.Decide(t.Context(), "push", "p/w").Killed })
	if d := e.Decide(t.Context(), "push", "p/w"); d.Stage != 0 {
		t.Fatalf("killed call's stage %d, want 0", d.Stage)
	}
}

// TestSyncDecisionCarriesTheStage: with a sync source the stage comes from
// the flags it sent.
func TestSyncDecisionCarriesTheStage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	f := NewFile(ops)
	_ = f.SetRoute("status", 10)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	addr, _ := syncSource(t, path, "127.0.0.1:0")
	e := openSync(t, addr)
	testkit.Eventually(t, "the source's flags apply", func() bool { return e.Decide(t.Context(), "status", "p/w").FailSafe == "" })
	if got := stages(t, e, "status", 100); len(got) != 1 || got[10] != 100 {
		t.Fatalf("at 10%% from the sync source, stages %v, want all 10", got)
	}
	if err := e.RollBackLocally("status", "test"); err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(t.Context(), "status", "p/w"); !d.RolledBack || d.Stage != 0 {
		t.Fatalf("rolled back: %+v, want stage 0", d)
	}
}
