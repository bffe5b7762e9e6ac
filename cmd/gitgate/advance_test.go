package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// TestCanaryCommands: set, advance (refused without evidence, allowed with
// a healthy ledger, forced with the reason recorded), rollback, show.
func TestCanaryCommands(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	if err := flags.NewFile(backends.OpNames()).Save(path); err != nil {
		t.Fatal(err)
	}
	wantCLI(t, runGitgate(t, "", "canary", "set", "status", "10", "--file", path, "--by", "ana", "--reason", "start"),
		printed("status: 10% to approach2 (by ana: start)\n"))
	wantCLI(t, runGitgate(t, "", "canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "too early"), noEvidence)
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
	wantCLI(t, runGitgate(t, "", "canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "clean"),
		printed(healthyStage+"status: advanced to 50% on approach2 (by ana: clean)\n"))
	if f, _ := flags.Load(path); f.Route("status") != 50 {
		t.Fatalf("status at %d%% after advance", f.Route("status"))
	}
	wantCLI(t, runGitgate(t, "", "canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "hurry", "--force"),
		printed(emptyStage+"status: advanced to 100% on approach2 (FORCED past a failing analysis: only 0 approach2 calls in this stage (need 100)) (by ana: hurry)\n"))
	wantCLI(t, runGitgate(t, "", "canary", "rollback", "all", "--file", path, "--by", "ana", "--reason", "incident"),
		printed("all: rolled back to approach1, shadow 0% (by ana: incident)\n"))
	wantCLI(t, runGitgate(t, "", "flags", "show", "--file", path), printed("kill switch: off\n\n"+noShares))
	wantCLI(t, runGitgate(t, "", "canary", "set", "status", "150", "--file", path, "--reason", "x"),
		failed(`PERCENT "150" is not a canary stage; the stages are 0, 10, 50, 100`))
	wantCLI(t, runGitgate(t, "", "canary", "set", "status", "10", "--file", path), failed(`required flag(s) "reason" not set`))
}

// emptyStage is what canary advance prints of a stage without calls.
const emptyStage = `status since $TIME
  approach1       0 calls    0.0% errors  P95 0s
  approach2       0 calls    0.0% errors  P95 0s
  shadow          0 compared    0.0% mismatches  (0 unfinished, 0 stale)
  fails: only 0 approach2 calls in this stage (need 100)
`

// noEvidence is canary advance refusing a stage without calls.
var noEvidence = cliResult{
	Stdout: emptyStage,
	Stderr: "gitgate: the 10% stage of status did not pass; not advancing (--force to override)\n",
	Code:   1,
}

// healthyStage is what canary advance prints of the stage the tests fill:
// 200 calls on approach1 and 100 on approach2, all of 5 ms, none failed.
const healthyStage = `status since $TIME
  approach1     200 calls    0.0% errors  P95 5ms
  approach2     100 calls    0.0% errors  P95 5ms
  shadow          0 compared    0.0% mismatches  (0 unfinished, 0 stale)
  analysis: pass
`

// TestCanaryAdvanceReadsThePostgresLedger: with the ledger in PostgreSQL
// (canary.ledger_dsn_env), advance judges the stage from there: refused
// while it is empty, allowed once it holds a healthy stage, and a missing
// variable is a clear error.
func TestCanaryAdvanceReadsThePostgresLedger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	if err := flags.NewFile(backends.OpNames()).Save(path); err != nil {
		t.Fatal(err)
	}
	wantCLI(t, runGitgate(t, "", "canary", "set", "status", "10", "--file", path, "--by", "ana", "--reason", "start"),
		printed("status: 10% to approach2 (by ana: start)\n"))
	t.Setenv("E2E_LEDGER_DSN", backendtest.PostgresDSN(t))
	args := []string{"canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "stage clean", "--ledger-dsn-env", "E2E_LEDGER_DSN"}
	wantCLI(t, runGitgate(t, "", args...), noEvidence)
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
	wantCLI(t, runGitgate(t, "", args...), printed(healthyStage+"status: advanced to 50% on approach2 (by ana: stage clean)\n"))
	if f, _ := flags.Load(path); f.Route("status") != 50 {
		t.Fatalf("status at %d%% after advance", f.Route("status"))
	}
	wantCLI(t, runGitgate(t, "", "canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "x", "--ledger-dsn-env", "GITGATE_NO_SUCH_VAR"),
		failed("read the ledger: --ledger-dsn-env: environment variable GITGATE_NO_SUCH_VAR is not set"))
}
