package approach1_test

import (
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox/local"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// billedLocal is the local provider billed by the second, as E2B is, so
// that recovery work has a cost.
type billedLocal struct{ *local.Provider }

func (billedLocal) CostPerSecond(string) float64 { return 0.5 }

// TestRecoveryCountedWithItsCost: restoring shelved work and cloning again
// a workspace whose sandbox was lost are each counted as a recovery, with
// what their commands cost (gitgate_recovery_total and
// gitgate_recovery_cost_usd_total by kind). Costs about 1 s (three clones
// and a shelf on local sandboxes).
func TestRecoveryCountedWithItsCost(t *testing.T) {
	p, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := newShelfWorld(t, backendtest.NewEnv(t), shelfOptions{provider: billedLocal{p}})
	for _, kind := range []string{"restore", "reclone", "retry", "fallback"} {
		if got := w.metric(t, "gitgate_recovery_total", "kind", kind); got != 0 {
			t.Fatalf("recovery_total{kind=%s} = %v before any recovery", kind, got)
		}
	}
	backendtest.Clone(t, w.ex, w.env, w.env.Agent, "w")
	makeUnsavedWork(t, w, "w")
	if n := w.reap(t); n != 1 {
		t.Fatalf("reaped %d sandboxes, want 1", n)
	}
	backendtest.Do[*backends.StatusResult](t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: "w"}})
	if got := w.metric(t, "gitgate_recovery_total", "kind", "restore"); got != 1 {
		t.Errorf("recovery_total{kind=restore} = %v after a restore, want 1", got)
	}
	if got := w.metric(t, "gitgate_recovery_cost_usd_total", "kind", "restore"); got <= 0 {
		t.Errorf("recovery_cost_usd_total{kind=restore} = %v, want the restore's commands' cost", got)
	}

	backendtest.Clone(t, w.ex, w.env, w.env.Agent, "clean")    // nothing unsaved: cloned again when its sandbox goes
	w.mgr.Forget(t.Context(), w.binding(t, "clean").SandboxID) // as when the provider finds it gone
	backendtest.Do[*backends.StatusResult](t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: "clean"}})
	if got := w.metric(t, "gitgate_recovery_total", "kind", "reclone"); got != 1 {
		t.Errorf("recovery_total{kind=reclone} = %v after a lost sandbox, want 1", got)
	}
	if got := w.metric(t, "gitgate_recovery_cost_usd_total", "kind", "reclone"); got <= 0 {
		t.Errorf("recovery_cost_usd_total{kind=reclone} = %v, want the clone's cost", got)
	}
}
