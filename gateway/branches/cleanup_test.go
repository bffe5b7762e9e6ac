package branches

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// scenario puts on the remote one branch of each kind the cleanup must
// tell apart, recorded as pushed by gitgate, and returns their tips.
func (f *fixture) scenario() map[string]string {
	day := 24 * time.Hour
	tips := map[string]string{}
	tips["agent/a1/merged"] = f.ref("main")
	f.setRef("agent/a1/merged", tips["agent/a1/merged"])
	f.commit("main", "main moves on")
	f.pushed("agent/a1/merged", tips["agent/a1/merged"], f.now.Add(-time.Hour))
	tips["agent/a1/stale"] = f.commit("agent/a1/stale", "old work")
	f.pushed("agent/a1/stale", tips["agent/a1/stale"], f.now.Add(-31*day))
	tips["agent/a1/active"] = f.commit("agent/a1/active", "recent work")
	f.pushed("agent/a1/active", tips["agent/a1/active"], f.now.Add(-29*day))
	f.pushed("agent/a1/foreign", f.commit("agent/a1/foreign", "agent work"), f.now.Add(-60*day))
	tips["agent/a1/foreign"] = f.commit("agent/a1/foreign", "a human pushed on top")
	f.pushed("agent/a1/gone", "0123456789abcdef0123456789abcdef01234567", f.now) // deleted by someone else
	tips["main"] = f.ref("main")
	f.pushed("main", tips["main"], f.now.Add(-90*day)) // recorded before a policy existed
	return tips
}

func decisions(rep Report) map[string]Decision {
	m := map[string]Decision{}
	for _, d := range rep.Decisions {
		m[d.Branch] = d
	}
	return m
}

func TestCleanupDeletesMergedAndStaleKeepsTheRest(t *testing.T) {
	f := newFixture(t)
	tips := f.scenario()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	rep, err := f.cleaner(false, m).Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := decisions(rep)
	want := map[string]string{"agent/a1/merged": "merged", "agent/a1/stale": "stale", "agent/a1/active": "active",
		"agent/a1/foreign": "foreign", "main": "protected", "agent/a1/gone": "gone"}
	for branch, what := range want {
		d := got[branch]
		if string(d.Delete)+string(d.Keep) != what || d.Error != "" {
			t.Errorf("%s: got delete=%q keep=%q error=%q, want %s", branch, d.Delete, d.Keep, d.Error, what)
		}
	}
	for _, gone := range []string{"agent/a1/merged", "agent/a1/stale"} {
		if sha := f.ref(gone); sha != "" {
			t.Errorf("%s still on the remote at %s", gone, sha)
		}
	}
	for _, kept := range []string{"agent/a1/active", "agent/a1/foreign", "main"} {
		if sha := f.ref(kept); sha != tips[kept] {
			t.Errorf("%s is at %q, want %s (kept)", kept, sha, tips[kept])
		}
	}
	if n := testutil.ToFloat64(m.deleted.WithLabelValues("merged")) + testutil.ToFloat64(m.deleted.WithLabelValues("stale")); n != 2 {
		t.Errorf("gitgate_branches_deleted_total = %v, want 2", n)
	}
	if n := testutil.ToFloat64(m.runs.WithLabelValues("ok")); n != 1 {
		t.Errorf("ok runs = %v, want 1", n)
	}

	if recs, _ := f.store.Pushed(t.Context(), ""); len(recs) != 3 {
		t.Errorf("records left: %+v; want those of active, foreign and main", recs)
	}

	// Every deletion is recorded and restorable from its record.
	dels, err := f.store.Deletions(t.Context())
	if err != nil || len(dels) != 2 {
		t.Fatalf("deletions = %+v, %v; want 2", dels, err)
	}
	for _, d := range dels {
		if d.By != "cleanup" || d.Commit != tips[d.Branch] || d.At != f.now || d.Agent != "a1" {
			t.Errorf("record %+v: want by cleanup, commit %s, at %s", d, tips[d.Branch], f.now)
		}
		if _, err := Restore(t.Context(), f.store, f.git, d.ID, f.now); err != nil {
			t.Fatalf("restore %s: %v", d.ID, err)
		}
		if sha := f.ref(d.Branch); sha != tips[d.Branch] {
			t.Errorf("restored %s is at %q, want %s", d.Branch, sha, d.Commit)
		}
		if _, err := Restore(t.Context(), f.store, f.git, d.ID, f.now); err == nil {
			t.Errorf("a second restore of %s succeeded", d.ID)
		}
	}
}

func TestCleanupDryRunChangesNothing(t *testing.T) {
	f := newFixture(t)
	tips := f.scenario()
	before, _ := f.store.Pushed(t.Context(), "")
	m := NewMetrics(nil)
	rep, err := f.cleaner(true, m).Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := decisions(rep)
	if got["agent/a1/merged"].Delete != DeleteMerged || got["agent/a1/stale"].Delete != DeleteStale {
		t.Errorf("dry run should list merged and stale for deletion: %+v", rep.Decisions)
	}
	for branch, sha := range tips {
		if now := f.ref(branch); now != sha {
			t.Errorf("dry run moved %s from %s to %q", branch, sha, now)
		}
	}
	after, _ := f.store.Pushed(t.Context(), "")
	dels, _ := f.store.Deletions(t.Context())
	if len(after) != len(before) || len(dels) != 0 {
		t.Errorf("dry run changed the store: %d → %d records, %d deletions", len(before), len(after), len(dels))
	}
	if n := testutil.ToFloat64(m.runs.WithLabelValues("dry_run")); n != 1 {
		t.Errorf("dry_run runs = %v, want 1", n)
	}
}
