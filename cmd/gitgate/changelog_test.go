package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/flags"
)

// changeRecords returns the change column of every record in the change
// log beside the flag file at path.
func changeRecords(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path + ".changes.jsonl")
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c struct{ Change string }
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("change log line %q: %v", sc.Text(), err)
		}
		out = append(out, c.Change)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestChangeRecordedWithTheFlags: a flag change and its change record are
// one transaction: whoever reads the new flag file finds its record in the
// change log (the automatic rollback's reader does exactly that).
func TestChangeRecordedWithTheFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	if err := flags.NewFile(opNames()).Save(path); err != nil {
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
			f, err := flags.Load(path)
			if err != nil {
				continue // an editor is replacing it
			}
			rate, _ := f.Flags[flags.ShadowFlag("status")].Variants["rate"].(float64)
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
		c := &changeOptions{file: path, by: "test", reason: "transaction"}
		if err := c.edit(io.Discard, fmt.Sprintf("status: shadow edit %d", i), func(f *flags.File) error {
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
	if err := flags.NewFile(opNames()).Save(path); err != nil {
		t.Fatal(err)
	}
	ops := opNames()
	var wg sync.WaitGroup
	for _, op := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &changeOptions{file: path, by: "test", reason: "concurrent"}
			if err := c.edit(io.Discard, op+": 10% to approach2", func(f *flags.File) error { return f.SetRoute(op, 10) }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	f, err := flags.Load(path)
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
	if err := flags.NewFile(opNames()).Save(path); err != nil {
		t.Fatal(err)
	}
	c := &changeOptions{file: path, by: "test", reason: "first"}
	if err := c.edit(io.Discard, "status: 10% to approach2", func(f *flags.File) error { return f.SetRoute("status", 10) }); err != nil {
		t.Fatal(err)
	}
	err := c.edit(io.Discard, "status: 50% to approach2", func(f *flags.File) error {
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

// TestKillSwitchWithTheChangeLogStuck: an edit that holds the change log's
// lock and never finishes (a stopped process) does not stop the kill
// switch: it is engaged, and the command says its record is missing.
func TestKillSwitchWithTheChangeLogStuck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	if err := flags.NewFile(opNames()).Save(path); err != nil {
		t.Fatal(err)
	}
	stuck, err := openChangeLog(path + ".changes.jsonl") // held until the test ends
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	wait := changeLogLockWait
	changeLogLockWait = 200 * time.Millisecond
	defer func() { changeLogLockWait = wait }()
	out, err := run(t, "kill", "on", "--file", path, "--by", "oncall", "--reason", "stuck editor")
	if err == nil || !strings.Contains(err.Error(), "change log could not be written") || !strings.Contains(err.Error(), "locked by another edit") {
		t.Fatalf("kill on with the change log locked: %v\n%s", err, out)
	}
	if f, err := flags.Load(path); err != nil || !f.Kill() {
		t.Fatalf("the kill switch is not engaged: %v", err)
	}
}
