package flags

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/testkit"
)

// TestStageStartFromRecords: the stage clock is the last route record of
// the operation or of every operation; shadow, kill and override records
// and other operations' routes do not move it.
func TestStageStartFromRecords(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	changes := []Change{
		{At: at(0), Kind: ChangeRoute, Op: "status", From: "0%", To: "10%"},
		{At: at(1), Kind: ChangeShadow, Op: "status", From: "0%", To: "50%"},
		{At: at(2), Kind: ChangeRoute, Op: "push", From: "0%", To: "10%"},
		{At: at(3), Kind: ChangeKill, Op: AllOps, From: "off", To: "on"},
		{At: at(4), Kind: ChangeOverride, Op: AllOps, From: "none", To: "kill on"},
	}
	if got := StageStart(changes, "status"); !got.Equal(at(0)) {
		t.Fatalf("stage of status starts at %v, want %v", got, at(0))
	}
	changes = append(changes, Change{At: at(5), Kind: ChangeRoute, Op: AllOps, From: "10%", To: "0%"})
	if got := StageStart(changes, "status"); !got.Equal(at(5)) {
		t.Fatalf("after a rollback of all the stage of status starts at %v, want %v", got, at(5))
	}
	if got := StageStart(nil, "status"); !got.IsZero() {
		t.Fatalf("no changes: %v", got)
	}
}

// TestChangeLogRoundTrip: records appended to the log are read back, and
// the text lines of older versions are read best effort: route changes
// recognised, the rest kept as legacy records, garbage skipped.
func TestChangeLogRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json.changes.jsonl")
	old := `{"at":"2026-11-30T09:00:00Z","by":"ana","reason":"start","change":"status: 10% to approach2"}
{"at":"2026-11-30T10:00:00Z","by":"ana","reason":"s","change":"status: shadow 50%"}
{"at":"2026-11-30T11:00:00Z","by":"bob","reason":"bad","change":"all: rolled back to approach1"}
{"at":"2026-11-30T12:00:00Z","by":"ana","reason":"ok","change":"push: advanced to 50% on approach2"}
not json
`
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := Change{At: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), By: "cy", Reason: "r", Kind: ChangeShadow, Op: "status", From: "50%", To: "0%", Summary: "status: rolled back"}
	if err := AppendChanges(path, time.Second, rec); err != nil {
		t.Fatal(err)
	}
	got, err := ReadChanges(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		kind   ChangeKind
		op, to string
	}{{ChangeRoute, "status", "10%"}, {ChangeLegacy, "", ""}, {ChangeRoute, "all", "0%"}, {ChangeRoute, "push", "50%"}, {ChangeShadow, "status", "0%"}}
	if len(got) != len(want) {
		t.Fatalf("read %d records: %+v", len(got), got)
	}
	for i, w := range want {
		if got[i].Kind != w.kind || got[i].Op != w.op || got[i].To != w.to {
			t.Errorf("record %d: %+v, want %+v", i, got[i], w)
		}
	}
	if !got[4].At.Equal(rec.At) || got[4].By != "cy" {
		t.Errorf("round trip: %+v", got[4])
	}
	if s := StageStart(got, "status"); !s.Equal(time.Date(2026, 11, 30, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("stage of status from the old lines starts at %v", s)
	}
}

// TestDiff: a change's records are one per value changed.
func TestDiff(t *testing.T) {
	a := NewFile([]string{"status", "push"})
	b := NewFile([]string{"status", "push"})
	_ = b.SetRoute("status", 10)
	_ = b.SetShadow("push", 0.25)
	b.SetKill(true)
	got := Diff(a, b, []string{"status", "push"})
	want := []Change{{Kind: ChangeKill, Op: AllOps, From: "off", To: "on"}, {Kind: ChangeRoute, Op: "status", From: "0%", To: "10%"}, {Kind: ChangeShadow, Op: "push", From: "0%", To: "25%"}}
	if len(got) != len(want) {
		t.Fatalf("diff %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("diff[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestOverrideInChangeLogAndStatus: setting and clearing the override are
// recorded in the flag file's change log, and Status shows the kill
// switch with its source and the effective shares.
func TestOverrideInChangeLogAndStatus(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	ops := []string{"status", "push"}
	f := NewFile(ops)
	_ = f.SetRoute("status", 50)
	_ = f.SetShadow("status", 0.5)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	e, err := Open(t.Context(), Config{Path: path, Ops: ops, OverridePath: filepath.Join(dir, "ov.json"), Domain: t.Name(),
		CheckInterval: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	testkit.Eventually(t, "the flags are usable", func() bool { return e.Status().FailSafe == "" })
	st := e.Status()
	if st.Kill.Effective || st.Kill.Source != KillOff || st.Ops[0].Route != (Share{0.5, 0.5}) || st.Ops[0].Shadow != (Share{0.5, 0.5}) {
		t.Fatalf("status before the override: %+v", st)
	}
	if err := e.SetOverride(Override{Kill: true, By: "oncall", Reason: "incident"}); err != nil {
		t.Fatal(err)
	}
	st = e.Status()
	if !st.Kill.Effective || st.Kill.Source != KillOverride || st.Kill.Flags || st.Ops[0].Route != (Share{0.5, 0}) || st.Ops[0].Shadow != (Share{0.5, 0}) {
		t.Fatalf("status with the override: %+v", st)
	}
	if err := e.ClearOverride("oncall", "over"); err != nil {
		t.Fatal(err)
	}
	changes, err := ReadChanges(ChangeLogPath(path))
	if err != nil || len(changes) != 2 {
		t.Fatalf("change log: %+v %v", changes, err)
	}
	if c := changes[0]; c.Kind != ChangeOverride || c.From != "none" || c.To != "kill on" || c.By != "oncall" || c.Reason != "incident" {
		t.Fatalf("set record: %+v", c)
	}
	if c := changes[1]; c.Kind != ChangeOverride || c.From != "kill on" || c.To != "none" || c.Reason != "over" {
		t.Fatalf("clear record: %+v", c)
	}
}
