package flags

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var ops = []string{"status", "push"}

func open(t *testing.T, f *File) (*Evaluator, string, *prometheus.Registry) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	if f != nil {
		if err := f.Save(path); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	e, err := Open(t.Context(), Config{Path: path, Ops: ops, Domain: t.Name(), OverridePath: filepath.Join(dir, "override.json"),
		Registerer: reg, Logger: slog.New(slog.DiscardHandler), CheckInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e, path, reg
}

func routes(t *testing.T, e *Evaluator, op string, n int) map[string]backends.Name {
	out := map[string]backends.Name{}
	for i := range n {
		ws := fmt.Sprintf("project/ws-%05d", i)
		out[ws] = e.Decide(t.Context(), op, ws).Backend
	}
	return out
}

func share(m map[string]backends.Name) float64 {
	n := 0
	for _, b := range m {
		if b == Approach2 {
			n++
		}
	}
	return float64(n) / float64(len(m))
}

// TestStagesAreStickyAndOneWay: at 10 % over 10,000 workspaces 10 % ± 1 %
// go to Approach 2, each workspace keeps its backend, and raising the stage
// to 50 % never moves a workspace back to Approach 1.
func TestStagesAreStickyAndOneWay(t *testing.T) {
	f := NewFile(ops)
	_ = f.SetRoute("status", 10)
	e, path, _ := open(t, f)
	at10 := routes(t, e, "status", 10000)
	if s := share(at10); s < 0.09 || s > 0.11 {
		t.Fatalf("10%% stage sends %.2f%% to approach2", 100*s)
	}
	again := routes(t, e, "status", 10000)
	for ws, b := range at10 {
		if again[ws] != b {
			t.Fatalf("%s moved from %s to %s without a stage change", ws, b, again[ws])
		}
	}
	if s := share(routes(t, e, "push", 10000)); s != 0 {
		t.Fatalf("push is at 0%% but %.2f%% went to approach2", 100*s)
	}
	_ = f.SetRoute("status", 50)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	took := testkit.Eventually(t, "the 50% stage applies", func() bool { return share(routes(t, e, "status", 2000)) > 0.4 })
	t.Logf("stage change applied in %s", took)
	at50 := routes(t, e, "status", 10000)
	if s := share(at50); s < 0.49 || s > 0.51 {
		t.Fatalf("50%% stage sends %.2f%% to approach2", 100*s)
	}
	for ws, b := range at10 {
		if b == Approach2 && at50[ws] != Approach2 {
			t.Fatalf("raising the stage moved %s back to approach1", ws)
		}
	}
}

func TestKillSwitchByFileAndByOverride(t *testing.T) {
	f := NewFile(ops)
	_ = f.SetRoute("status", 100)
	e, path, _ := open(t, f)
	if d := e.Decide(t.Context(), "status", "p/w"); d.Backend != Approach2 {
		t.Fatalf("100%% stage: %+v", d)
	}
	f.SetKill(true)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	took := testkit.Eventually(t, "the kill switch applies", func() bool { d := e.Decide(t.Context(), "status", "p/w"); return d.Killed })
	t.Logf("kill switch applied in %s", took)
	f.SetKill(false)
	_ = f.Save(path)
	testkit.Eventually(t, "the kill switch is released", func() bool { return e.Decide(t.Context(), "status", "p/w").Backend == Approach2 })
	// The override works when the flag system does not: file deleted.
	if err := e.SetOverride(Override{Kill: true, By: "oncall", Reason: "drill"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(t.Context(), "status", "p/w"); !d.Killed || d.Backend != Approach1 {
		t.Fatalf("override with the file deleted: %+v", d)
	}
	// It survives a restart until cleared.
	e2, err := Open(t.Context(), Config{Path: path, Ops: ops, Domain: t.Name() + "-2", OverridePath: e.cfg.OverridePath, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if ov, ok := e2.CurrentOverride(); !ok || !ov.Kill || ov.By != "oncall" {
		t.Fatalf("override after restart: %+v %v", ov, ok)
	}
	_ = e2.ClearOverride("oncall", "drill over")
	if _, ok := e2.CurrentOverride(); ok {
		t.Fatal("override still set after clear")
	}
}

// TestOverrideChangesKeepTheFileAndTheStateTogether: sets and clears made
// at once (a drill's late override request and its restore, an operator's
// clear) leave the override in force the same as the one kept for a
// restart: the last change wins in both.
func TestOverrideChangesKeepTheFileAndTheStateTogether(t *testing.T) {
	e, _, _ := open(t, NewFile(ops))
	for round := range 200 {
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				if i%2 == 0 {
					_ = e.SetOverride(Override{Kill: true, By: "drill", Reason: fmt.Sprint("round ", round)})
				} else {
					_ = e.ClearOverride("drill", "restore")
				}
			})
		}
		wg.Wait()
		inForce, set := e.CurrentOverride()
		kept, keptSet, err := ReadOverride(e.cfg.OverridePath)
		if err != nil {
			t.Fatal(err)
		}
		if set != keptSet || inForce != kept {
			t.Fatalf("round %d: in force %v %+v, kept for a restart %v %+v", round, set, inForce, keptSet, kept)
		}
	}
}

// TestTheKillSwitchIsTheRevisions: the flag file replaced by rename twice
// in quick succession (a drill's flip and restore), round after round,
// read from the file and through a sync source: as soon as a gateway
// shows the new flags' revision, the kill switch its calls get and the
// one /status shows are those flags' (the drill trusts /status to say what
// the gateway applies; flagd's provider applies a change later, through
// its event pipeline).
func TestTheKillSwitchIsTheRevisions(t *testing.T) {
	f := NewFile(ops)
	_ = f.SetRoute("status", 50)
	fileMode, path, _ := open(t, f)
	addr, _ := syncSource(t, path, "127.0.0.1:0")
	syncMode := openSync(t, addr)
	for name, e := range map[string]*Evaluator{"file": fileMode, "sync": syncMode} {
		testkit.Eventually(t, name+": the flags apply", func() bool { return e.Decide(t.Context(), "status", "p/w").FailSafe == "" })
	}
	for round := range 20 {
		want := round%2 == 1 // the file's kill switch after the round
		f.SetKill(!want)
		if err := f.Save(path); err != nil {
			t.Fatal(err)
		}
		f.SetKill(want)
		if err := f.Save(path); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for name, e := range map[string]*Evaluator{"file": fileMode, "sync": syncMode} {
			var st Status
			testkit.Eventually(t, fmt.Sprintf("round %d, %s: the gateway shows the new revision", round, name), func() bool {
				st = e.Status()
				return st.Revision == Revision(data) && st.FailSafe == ""
			})
			d := e.Decide(t.Context(), "status", "p/w")
			if st.Kill.Effective != want || st.Kill.Flags != want || d.Killed != want || strings.HasPrefix(d.FailSafe, "kill") {
				t.Fatalf("round %d, %s: the flags' kill switch is %v; /status shows %+v, the call got %+v", round, name, want, st.Kill, d)
			}
		}
	}
}

// TestBadSourcesMeanApproach1: a missing file, a corrupt file and a file
// with a foreign flag all send every call to Approach 1 and are counted.
func TestBadSourcesMeanApproach1(t *testing.T) {
	e, path, reg := open(t, nil)
	d := e.Decide(t.Context(), "status", "p/w")
	if d.Backend != Approach1 || d.FailSafe == "" {
		t.Fatalf("missing file: %+v", d)
	}
	f := NewFile(ops)
	_ = f.SetRoute("status", 100)
	_ = f.Save(path)
	testkit.Eventually(t, "the file is used once it exists", func() bool { return e.Decide(t.Context(), "status", "p/w").Backend == Approach2 })
	if err := os.WriteFile(path, []byte(`{"flags": {`), 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "a corrupt file means approach1", func() bool { return e.Decide(t.Context(), "status", "p/w").Backend == Approach1 })
	_ = f.Save(path)
	testkit.Eventually(t, "a repaired file is used again", func() bool { return e.Decide(t.Context(), "status", "p/w").Backend == Approach2 })
	f.Flags["gitgate.route.teleport"] = f.Flags[RouteFlag("status")]
	_ = f.Save(path)
	testkit.Eventually(t, "an invalid file means approach1", func() bool { return e.Decide(t.Context(), "status", "p/w").Backend == Approach1 })
	if n := testutil.ToFloat64(e.metrics.WithLabelValues("file", "invalid_source")); n == 0 {
		t.Fatal("fail-safe decisions were not counted")
	}
	_ = reg
}

func TestFileValidation(t *testing.T) {
	f := NewFile(ops)
	if err := f.Validate(ops); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*File) error{
		func(f *File) error { return f.SetRoute("status", 101) },
		func(f *File) error { return f.SetShadow("status", 1.5) },
	} {
		if bad(f) == nil {
			t.Error("an out-of-range value was accepted")
		}
	}
	f.Flags[RouteFlag("status")] = Flag{State: "ENABLED", Variants: map[string]any{"x": "approach3"}, DefaultVariant: "x"}
	if f.Validate(ops) == nil {
		t.Error("a route to an unknown backend was accepted")
	}
	if got := NewFile(ops).Route("status"); got != 0 {
		t.Errorf("new file route %d", got)
	}
	// The kill switch is all or nothing, true or false: the gateway
	// evaluates it itself.
	for _, kill := range []Flag{
		{State: "ENABLED", Variants: map[string]any{"on": true, "off": false}, DefaultVariant: "off",
			Targeting: map[string]any{"if": []any{true, "on", "off"}}},
		{State: "ENABLED", Variants: map[string]any{"on": "yes", "off": "no"}, DefaultVariant: "off"},
	} {
		k := NewFile(ops)
		k.Flags[KillSwitchFlag] = kill
		if k.Validate(ops) == nil {
			t.Errorf("kill switch %+v was accepted", kill)
		}
	}
	g := NewFile(ops)
	_ = g.SetRoute("push", 50)
	if g.Route("push") != 50 || g.Kill() {
		t.Errorf("route %d kill %v", g.Route("push"), g.Kill())
	}
}

// TestCloseWhileTheFileChanges: closing the evaluator while flag-file
// changes are arriving returns (flagd's provider v0.3.1 can deadlock in
// Shutdown then; Close gives up on it after shutdownTimeout).
func TestCloseWhileTheFileChanges(t *testing.T) {
	for i := range 20 {
		dir := t.TempDir()
		path := filepath.Join(dir, "flags.json")
		f := NewFile(ops)
		if err := f.Save(path); err != nil {
			t.Fatal(err)
		}
		e, err := Open(t.Context(), Config{Path: path, Ops: ops, Domain: fmt.Sprintf("%s-%d", t.Name(), i),
			Logger: slog.New(slog.DiscardHandler), CheckInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		for n := range 3 {
			_ = f.SetRoute("status", 10*(n+1))
			_ = f.Save(path)
		}
		closed := make(chan struct{})
		go func() { e.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(shutdownTimeout + 20*time.Second): // a hang, not a slow machine
			t.Fatalf("round %d: Close did not return while the file was changing", i)
		}
	}
}

// TestProvidersBuiltWhileAnotherEvaluates: building a flag provider (a
// gateway starting, or restarting a failed provider) while another
// evaluator of the process decides calls is safe. flagd writes jsonlogic's
// global operator map on every build and reads it on every evaluation; run
// under -race, this test fails without jsonlogicMu.
func TestProvidersBuiltWhileAnotherEvaluates(t *testing.T) {
	f := NewFile(ops)
	_ = f.SetRoute("status", 50)
	e, _, _ := open(t, f)
	testkit.Eventually(t, "the first evaluator serves its flags", func() bool {
		return e.Decide(t.Context(), "status", "p/ws").FailSafe == ""
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			e.Decide(t.Context(), "status", fmt.Sprintf("p/ws-%d", i)) // fractional: reads the operator map
		}
	})
	dir := t.TempDir()
	for i := range 3 {
		path := filepath.Join(dir, fmt.Sprintf("flags-%d.json", i))
		if err := f.Save(path); err != nil {
			t.Fatal(err)
		}
		other, err := Open(t.Context(), Config{Path: path, Ops: ops, Domain: fmt.Sprintf("%s-%d", t.Name(), i), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		other.Close()
	}
	close(stop)
	wg.Wait()
}
