package flags

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// allOps lists gitgate's operations, as the flags name them.
func allOps() []string { return backends.OpNames() }

// edit applies e with summary to the flag file at path.
func edit(e Edit, path, summary string, change func(*File) error) error {
	e.Summary = summary
	return e.Apply(path, change)
}

// changeRecords returns the summary of every record in the change log
// beside the flag file at path, read as the gateways read it
// (ReadChanges, which passes over a line an editor is still appending).
func changeRecords(t *testing.T, path string) []string {
	t.Helper()
	changes, err := ReadChanges(ChangeLogPath(path))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = c.Summary
	}
	return out
}

// TestChangeRecordedWithTheFlags: a flag change and its change record are
// one transaction: whoever reads the new flag file finds its record in the
// change log (the automatic rollback's reader does exactly that).
func TestChangeRecordedWithTheFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	if err := NewFile(allOps()).Save(path); err != nil {
		t.Fatal(err)
	}
	const edits = 200
	var done atomic.Bool
	var checked atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a reader, as a test or an operator's script would read
		defer wg.Done()
		for !done.Load() {
			f, err := Load(path)
			if err != nil {
				continue // an editor is replacing it
			}
			rate, _ := f.Flags[ShadowFlag("status")].Variants["rate"].(float64)
			n := int(rate*1000 + 0.5)
			if n == 0 {
				continue
			}
			want := fmt.Sprintf("status: shadow edit %d", n)
			found := false
			for _, c := range changeRecords(t, path) {
				found = found || c == want
			}
			if !found {
				t.Errorf("the flag file shows edit %d but the change log has no record of it", n)
				return
			}
			checked.Add(1)
		}
	}()
	for i := 1; i <= edits; i++ {
		c := Edit{By: "test", Reason: "transaction", Ops: allOps()}
		if err := edit(c, path, fmt.Sprintf("status: shadow edit %d", i), func(f *File) error {
			return f.SetShadow("status", float64(i)/1000)
		}); err != nil {
			t.Fatal(err)
		}
	}
	done.Store(true)
	wg.Wait()
	if got := len(changeRecords(t, path)); got != edits {
		t.Fatalf("%d change records for %d edits", got, edits)
	}
	t.Logf("the reader checked %d flag files", checked.Load())
}

// TestConcurrentEditsLoseNothing: edits from several processes at once (an
// operator's, the gateway's automatic rollback) are serialised: every one
// is in the flag file and in the change log.
func TestConcurrentEditsLoseNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	if err := NewFile(allOps()).Save(path); err != nil {
		t.Fatal(err)
	}
	ops := allOps()
	var wg sync.WaitGroup
	for _, op := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := Edit{By: "test", Reason: "concurrent", Ops: allOps()}
			if err := edit(c, path, op+": 10% to approach2", func(f *File) error { return f.SetRoute(op, 10) }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var lost []string
	for _, op := range ops {
		if f.Route(op) != 10 {
			lost = append(lost, op)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("edits lost: %s", strings.Join(lost, ", "))
	}
	if got := changeRecords(t, path); len(got) != len(ops) {
		t.Fatalf("%d change records for %d edits: %v", len(got), len(ops), got)
	}
}

// TestFailedSaveLeavesNoRecord: when the flag file cannot be replaced, the
// edit fails and its record is taken back from the change log.
func TestFailedSaveLeavesNoRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	if err := NewFile(allOps()).Save(path); err != nil {
		t.Fatal(err)
	}
	c := Edit{By: "test", Reason: "first", Ops: allOps()}
	if err := edit(c, path, "status: 10% to approach2", func(f *File) error { return f.SetRoute("status", 10) }); err != nil {
		t.Fatal(err)
	}
	err := edit(c, path, "status: 50% to approach2", func(f *File) error {
		// Once read, the flag file becomes a directory that a file cannot
		// be renamed over (permissions would not stop root).
		if err := os.Remove(path); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(path, "in-the-way"), 0o700); err != nil {
			return err
		}
		return f.SetRoute("status", 50)
	})
	if err == nil || !strings.Contains(err.Error(), "write flags") {
		t.Fatalf("an edit whose flag file cannot be written: %v", err)
	}
	if got := changeRecords(t, path); len(got) != 1 || got[0] != "status: 10% to approach2" {
		t.Fatalf("change log after a failed edit: %v", got)
	}
}

// TestAutomaticRollbackIsRecorded: the automatic rollback sends the
// operation back to Approach 1 with no shadow traffic, records who did it
// and why, and restarts the operation's stage clock.
func TestAutomaticRollbackIsRecorded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	f := NewFile(allOps())
	if err := f.SetRoute("status", 50); err != nil {
		t.Fatal(err)
	}
	if err := f.SetShadow("status", 0.1); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	if err := AutomaticRollback(path, allOps(), 0)("status", "error rate 30% over 20 calls"); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Route("status") != 0 || got.Shadow("status") != 0 {
		t.Fatalf("after the rollback: route %d%%, shadow %v; want 0 and 0", got.Route("status"), got.Shadow("status"))
	}
	changes, err := ReadChanges(ChangeLogPath(path))
	if err != nil || len(changes) == 0 {
		t.Fatalf("change log: %d records, %v", len(changes), err)
	}
	last := changes[len(changes)-1]
	if last.By != "gitgate (automatic rollback)" || last.Reason != "error rate 30% over 20 calls" || last.Summary != "status: "+RolledBackSummary {
		t.Fatalf("last change record = %+v", last)
	}
	start, err := ReadStageStart(ChangeLogPath(path), "status")
	if err != nil || !start.Equal(StageStart(changes, "status")) || start.IsZero() {
		t.Fatalf("ReadStageStart = %v, %v; want the rollback's time", start, err)
	}
}

// TestRestorePutsBackTheBytes: after an edit, Restore writes the snapshot
// back byte for byte (hand-written spacing included), keeps the file's
// permissions, and records the change it undoes; invalid data is refused
// and changes nothing.
func TestRestorePutsBackTheBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	f := NewFile(backends.OpNames())
	_ = f.SetRoute("status", 50)
	data, _ := json.Marshal(f) // compact: not what Save writes
	snapshot := append(data, '\n')
	if err := os.WriteFile(path, snapshot, 0o640); err != nil {
		t.Fatal(err)
	}
	e := Edit{By: "drill", Reason: "weekly drill", Summary: "kill switch", Ops: backends.OpNames()}
	if err := e.Apply(path, func(f *File) error { f.SetKill(true); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := (Edit{By: "drill", Reason: "x", Ops: backends.OpNames()}).Restore(path, []byte("{not json")); err == nil {
		t.Fatal("invalid data restored")
	}
	if f, err := Load(path); err != nil || !f.Kill() {
		t.Fatalf("a refused restore changed the file: %v", err)
	}
	e.Summary = "restore"
	if err := e.Restore(path, snapshot); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if string(got) != string(snapshot) {
		t.Fatalf("restored %q, want %q", got, snapshot)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	changes, err := ReadChanges(ChangeLogPath(path))
	if err != nil {
		t.Fatal(err)
	}
	last := changes[len(changes)-1]
	if last.Kind != ChangeKill || last.To != "off" || last.Summary != "restore" || last.By != "drill" {
		t.Errorf("last record %+v, want the kill switch back off by drill", last)
	}
}
