package drill

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
)

// flagFile writes flags with status at 50 % in a hand-made layout (not
// Save's), and returns the path and the bytes.
func flagFile(t *testing.T) (string, []byte) {
	t.Helper()
	f := flags.NewFile(backends.OpNames())
	_ = f.SetRoute("status", 50)
	path := filepath.Join(t.TempDir(), "flags.json")
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	data = append([]byte("\n"), data...) // bytes Save would not write
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func testEdit() flags.Edit {
	return flags.Edit{By: "gitgate drill", Reason: "test", Ops: backends.OpNames()}
}

// TestRestoreSourcePutsBackTheBytes: after the drill's flip, the file
// returns to the snapshot's exact bytes.
func TestRestoreSourcePutsBackTheBytes(t *testing.T) {
	path, data := flagFile(t)
	cfg := Config{FlagPath: path, Ops: backends.OpNames()}
	if err := testEdit().Apply(path, func(f *flags.File) error { f.SetKill(true); return nil }); err != nil {
		t.Fatal(err)
	}
	identical, problem := restoreSource(cfg, &Snapshot{FlagSource: path, Flags: data}, testEdit())
	got, _ := os.ReadFile(path)
	if !identical || problem != "" || string(got) != string(data) {
		t.Fatalf("identical %v, problem %q, file:\n%s", identical, problem, got)
	}
}

// TestRestoreSourceKeepsSomeoneElsesChange: an operator who changed a
// route during the drill keeps the change; only the kill switch goes back,
// and the restore says the file is not the snapshot.
func TestRestoreSourceKeepsSomeoneElsesChange(t *testing.T) {
	path, data := flagFile(t)
	cfg := Config{FlagPath: path, Ops: backends.OpNames()}
	if err := testEdit().Apply(path, func(f *flags.File) error { f.SetKill(true); return f.SetRoute("push", 10) }); err != nil {
		t.Fatal(err)
	}
	identical, problem := restoreSource(cfg, &Snapshot{FlagSource: path, Flags: data}, testEdit())
	f, err := flags.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if identical || !strings.Contains(problem, "changed during the drill") || f.Kill() || f.Route("push") != 10 {
		t.Fatalf("identical %v, problem %q, kill %v, push %d%%", identical, problem, f.Kill(), f.Route("push"))
	}
}

// TestOneDrillAtATimeOnAMachine: the history directory's lock refuses a
// second drill while the first holds it, and is free again after.
func TestOneDrillAtATimeOnAMachine(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockHistory(dir); err == nil || !strings.Contains(err.Error(), "another drill is running") {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	unlock2, err := lockHistory(dir)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock2()
}

// TestSnapshotSurvives: the snapshot is read back as written, and its
// absence is no error.
func TestSnapshotSurvives(t *testing.T) {
	dir := t.TempDir()
	if s, err := loadSnapshot(dir); s != nil || err != nil {
		t.Fatalf("empty dir: %v %v", s, err)
	}
	ov := &flags.Override{Kill: false, By: "ana", Reason: "kept"}
	want := &Snapshot{ID: "20261206T030000Z", Flags: []byte("{}\n"), Gateways: []GatewaySnapshot{{Name: "gw", Admin: "http://x", Over: ov,
		State: State{Routes: map[string]float64{"status": 0.5}}}}}
	if err := saveSnapshot(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := loadSnapshot(dir)
	if err != nil || got.ID != want.ID || string(got.Flags) != "{}\n" || got.Gateways[0].Over.Reason != "kept" || got.Gateways[0].State.Routes["status"] != 0.5 {
		t.Fatalf("got %+v, %v", got, err)
	}
	if err := removeSnapshot(dir); err != nil {
		t.Fatal(err)
	}
}

// TestUnexplainedFailures: failures during the drill are judged against
// the gateway's failure rate before it.
func TestUnexplainedFailures(t *testing.T) {
	for _, c := range []struct {
		name                      string
		beforeCalls, beforeFailed int64
		calls, failed             int64
		unexplained               bool
	}{
		{"none failed", 1000, 0, 200, 0, false},
		{"one failed where none did before", 1000, 0, 200, 1, false},
		{"five failed where none did before", 1000, 0, 200, 5, true},
		{"as often as before", 10000, 100, 200, 2, false},
		{"ten times as often", 10000, 100, 200, 20, true},
	} {
		p := unexplainedFailures(State{Calls: c.beforeCalls, Failed: c.beforeFailed}, c.calls, c.failed)
		if (p < failureAlpha) != c.unexplained {
			t.Errorf("%s: p = %g", c.name, p)
		}
	}
}

// TestSameRouting names what differs and nothing else.
func TestSameRouting(t *testing.T) {
	a := State{Routes: map[string]float64{"status": 0.5}, Configured: map[string]float64{"status": 0.5}, Calls: 10}
	b := a
	b.Calls = 99 // counters are not routing
	if d := sameRouting(a, b); len(d) != 0 {
		t.Fatalf("counters differ only: %v", d)
	}
	b.Routes = map[string]float64{"status": 0}
	b.Kill.Effective = true
	b.Forced = []string{"status"}
	if d := sameRouting(a, b); len(d) != 3 {
		t.Fatalf("differences %v", d)
	}
}

// TestFailedCallsFalseAlarmRate: a gateway whose agents fail at the same
// rate during the drill as before it is failed by the drill in about
// at most failureAlpha of drills (simulated: 1 % and 5 % failure rates,
// 2,000 calls before and 300 during, 20,000 drills each), and a real rise
// is caught.
func TestFailedCallsFalseAlarmRate(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 1))
	binomial := func(n int64, p float64) int64 {
		var k int64
		for range n {
			if rng.Float64() < p {
				k++
			}
		}
		return k
	}
	for _, p := range []float64{0.01, 0.05} {
		const drills = 20000
		alarms := 0
		for range drills {
			before := State{Calls: 2000, Failed: binomial(2000, p)}
			if unexplainedFailures(before, 300, binomial(300, p)) < failureAlpha {
				alarms++
			}
		}
		rate := float64(alarms) / drills
		t.Logf("failure rate %g: %d false alarms in %d drills (%.3f %%)", p, alarms, drills, rate*100)
		if rate > 1.5*failureAlpha { // the test is exact; 1.5 leaves room for the simulation's own noise
			t.Errorf("failure rate %g: false alarms in %.3f %% of drills, want about %.1f %%", p, rate*100, failureAlpha*100)
		}
	}
	// And it does see a real rise: five times the failures.
	hits := 0
	for range 1000 {
		before := State{Calls: 2000, Failed: binomial(2000, 0.01)}
		if unexplainedFailures(before, 300, binomial(300, 0.05)) < failureAlpha {
			hits++
		}
	}
	t.Logf("five times the failure rate (1 %% to 5 %%) caught in %d of 1000 drills", hits)
	if hits < 500 {
		t.Errorf("five times the failure rate caught in %d of 1000 drills", hits)
	}
}
