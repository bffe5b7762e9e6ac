package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/backendtest"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.Execute()
	return out.String(), err
}

// TestCanaryCommands: set, advance (refused without evidence, allowed with
// a healthy ledger, forced with the reason recorded), rollback, show.
func TestCanaryCommands(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	if err := flags.NewFile(opNames()).Save(path); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "canary", "set", "status", "10", "--file", path, "--by", "ana", "--reason", "start"); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "too early")
	if err == nil || !strings.Contains(out, "only 0 approach2 calls") {
		t.Fatalf("advance without evidence: %v\n%s", err, out)
	}
	ledger := canary.NewFileStore(path + ".ledger.jsonl")
	var entries []canary.Entry
	now := time.Now().UTC() // inside the 10% stage, before the next change
	for i := range 300 {
		routed := backends.Approach1
		if i%3 == 0 {
			routed = backends.Approach2
		}
		entries = append(entries, canary.Entry{At: now, Kind: canary.KindCall, Op: backends.OpStatus, Routed: routed, Backend: routed, Duration: 5 * time.Millisecond})
	}
	if err := ledger.Append(t.Context(), entries); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if out, err := run(t, "canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "clean"); err != nil || !strings.Contains(out, "analysis: pass") {
		t.Fatalf("advance with a healthy stage: %v\n%s", err, out)
	}
	if f, _ := flags.Load(path); f.Route("status") != 50 {
		t.Fatalf("status at %d%% after advance", f.Route("status"))
	}
	out, err = run(t, "canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "hurry", "--force")
	if err != nil || !strings.Contains(out, "FORCED") {
		t.Fatalf("forced advance: %v\n%s", err, out)
	}
	if _, err := run(t, "canary", "rollback", "all", "--file", path, "--by", "ana", "--reason", "incident"); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "flags", "show", "--file", path)
	if err != nil || !strings.Contains(out, "status") || strings.Contains(out, "100%") {
		t.Fatalf("show after rollback: %v\n%s", err, out)
	}
	if _, err := run(t, "canary", "set", "status", "150", "--file", path, "--reason", "x"); err == nil {
		t.Fatal("an invalid percent was accepted")
	}
	if _, err := run(t, "canary", "set", "status", "10", "--file", path); err == nil {
		t.Fatal("a change without --reason was accepted")
	}
}

// TestCanaryAdvanceReadsThePostgresLedger: with the ledger in PostgreSQL
// (canary.ledger_dsn_env), advance judges the stage from there: refused
// while it is empty, allowed once it holds a healthy stage, and a missing
// variable is a clear error.
func TestCanaryAdvanceReadsThePostgresLedger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	if err := flags.NewFile(opNames()).Save(path); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "canary", "set", "status", "10", "--file", path, "--by", "ana", "--reason", "start"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E2E_LEDGER_DSN", backendtest.PostgresDSN(t))
	args := []string{"canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "stage clean", "--ledger-dsn-env", "E2E_LEDGER_DSN"}
	if out, err := run(t, args...); err == nil || !strings.Contains(out, "only 0 approach2 calls") {
		t.Fatalf("advance on an empty PostgreSQL ledger: %v\n%s", err, out)
	}
	store, err := canary.OpenPGStore(t.Context(), os.Getenv("E2E_LEDGER_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var entries []canary.Entry
	now := time.Now().UTC()
	for i := range 300 {
		routed := backends.Approach1
		if i%3 == 0 {
			routed = backends.Approach2
		}
		entries = append(entries, canary.Entry{At: now, Kind: canary.KindCall, Op: backends.OpStatus, Routed: routed, Backend: routed, Duration: 5 * time.Millisecond})
	}
	if err := store.Append(t.Context(), entries); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, args...); err != nil || !strings.Contains(out, "analysis: pass") {
		t.Fatalf("advance with a healthy stage in PostgreSQL: %v\n%s", err, out)
	}
	if f, _ := flags.Load(path); f.Route("status") != 50 {
		t.Fatalf("status at %d%% after advance", f.Route("status"))
	}
	out, err := run(t, "canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "x", "--ledger-dsn-env", "GITGATE_NO_SUCH_VAR")
	if err == nil || !strings.Contains(err.Error()+out, "GITGATE_NO_SUCH_VAR is not set") {
		t.Fatalf("missing variable: %v\n%s", err, out)
	}
}
