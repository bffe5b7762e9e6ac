package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
)

// TestKillSwitchWithTheChangeLogStuck: an edit that holds the change log's
// lock and never finishes (a stopped process) does not stop the kill
// switch: it is engaged, and the command says its record is missing.
func TestKillSwitchWithTheChangeLogStuck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	if err := flags.NewFile(backends.OpNames()).Save(path); err != nil {
		t.Fatal(err)
	}
	stuck, err := flags.OpenChangeLog(flags.ChangeLogPath(path), time.Second) // held until the test ends
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	wait := changeLogLockWait
	changeLogLockWait = 200 * time.Millisecond
	defer func() { changeLogLockWait = wait }()
	wantCLI(t, runGitgate(t, "", "kill", "on", "--file", path, "--by", "oncall", "--reason", "stuck editor"), failed("flags changed, but the change log could not be written: $DIR/flags.json.changes.jsonl is locked by another edit (for more than 200ms)"))
	if f, err := flags.Load(path); err != nil || !f.Kill() {
		t.Fatalf("the kill switch is not engaged: %v", err)
	}
}
