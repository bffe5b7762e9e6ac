package main

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// TestCanaryCommands: set, advance (from 0 % without evidence; refused
// on thin evidence with the judge's numbers; allowed on a realistic healthy
// stage; forced with the reason recorded), rollback, show.
func TestCanaryCommands(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	if err := flags.NewFile(backends.OpNames()).Save(path); err != nil {
		t.Fatal(err)
	}
	wantCLI(t, runGitgate(t, "", "canary", "advance", "log", "--file", path, "--by", "ana", "--reason", "start"), printed(idleStage+"log: advanced to 10% on approach2 (by ana: start)\n"))
	wantCLI(t, runGitgate(t, "", "canary", "set", "status", "10", "--file", path, "--by", "ana", "--reason", "start"),
		printed("status: 10% to approach2 (by ana: start)\n"))
	wantCLI(t, runGitgate(t, "", "canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "too early"), noEvidence)
	since, err := flags.ReadStageStart(flags.ChangeLogPath(path), "status")
	if err != nil {
		t.Fatal(err)
	}
	ledger := canary.NewFileStore(path + ".ledger.jsonl")
	if err := ledger.Append(t.Context(), stageLedger(since, 10, 300, 0)); err != nil {
		t.Fatal(err)
	}
	wantCLI(t, runGitgate(t, "", "canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "still early"), thinStage)
	// The same stage's calls again, but routed while the kill switch held
	// every call on approach1 (stage 0) and failing: not the stage's.
	killed := stageLedger(since, 10, 20000, 1)
	for i := range killed {
		killed[i].Stage, killed[i].Routed, killed[i].Category = 0, backends.Approach1, backends.Unavailable
	}
	if err := ledger.Append(t.Context(), append(stageLedger(since, 10, 20000, 1), killed...)); err != nil {
		t.Fatal(err)
	}
	wantCLI(t, runGitgate(t, "", "canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "clean"),
		printed(healthyStage+"status: advanced to 50% on approach2 (by ana: clean)\n"))
	if f, _ := flags.Load(path); f.Route("status") != 50 {
		t.Fatalf("status at %d%% after advance", f.Route("status"))
	}
	wantCLI(t, runGitgate(t, "", "canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "hurry", "--force"),
		printed(strings.ReplaceAll(emptyStage, "10%", "50%")+"status: advanced to 100% on approach2 (FORCED past the judge's hold: "+
			"only 0 approach2 calls in this stage (at least 100 before advancing); about 100 more approach2 calls would decide, if the rates seen so far hold) (by ana: hurry)\n"))
	wantCLI(t, runGitgate(t, "", "canary", "rollback", "all", "--file", path, "--by", "ana", "--reason", "incident"),
		printed("all: rolled back to approach1, shadow 0% (by ana: incident)\n"))
	wantCLI(t, runGitgate(t, "", "flags", "show", "--file", path), printed("kill switch: off\n\n"+noShares))
	wantCLI(t, runGitgate(t, "", "canary", "set", "status", "150", "--file", path, "--reason", "x"),
		failed(`PERCENT "150" is not a canary stage; the stages are 0, 10, 50, 100`))
	wantCLI(t, runGitgate(t, "", "canary", "set", "status", "10", "--file", path), failed(`required flag(s) "reason" not set`))
}

// TestCanaryAdvanceRefusesARegression: a stage where Approach 2 fails
// 20 % of calls against Approach 1's 1 % is judged "rollback", with both
// rates, and not advanced; --config's canary.judge is the judge's, and a
// configuration still setting canary.rollback is refused.
func TestCanaryAdvanceRefusesARegression(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	if err := flags.NewFile(backends.OpNames()).Save(path); err != nil {
		t.Fatal(err)
	}
	wantCLI(t, runGitgate(t, "", "canary", "set", "status", "10", "--file", path, "--by", "ana", "--reason", "start"),
		printed("status: 10% to approach2 (by ana: start)\n"))
	since, err := flags.ReadStageStart(flags.ChangeLogPath(path), "status")
	if err != nil {
		t.Fatal(err)
	}
	if err := canary.NewFileStore(path+".ledger.jsonl").Append(t.Context(), stageLedger(since, 10, 3000, 20)); err != nil {
		t.Fatal(err)
	}
	wantCLI(t, runGitgate(t, "", "canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "go"), cliResult{Stdout: regressedStage,
		Stderr: "gitgate: the judge says rollback for the 10% stage of status; not advancing (--force to override)\n", Code: 1})
	config := testkit.WriteTemp(t, "old.yaml", "canary:\n  rollback:\n    max_p95: 2s\n")
	got := runGitgate(t, "", "--config", config, "canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "go")
	if got.Code != 1 || !strings.Contains(got.Stderr, "configuration key canary.rollback was replaced") {
		t.Errorf("with canary.rollback in --config:\n%s%s", got.Stdout, got.Stderr)
	}
	// A judge told that error rates within 50 points are no regression
	// (and to raise false alarms once in a million stages) lets it through.
	config = testkit.WriteTemp(t, "gitgate.yaml", "canary:\n  judge:\n    false_alarm_rate: 0.000001\n    error_floor: {abs: 0.5}\n")
	got = runGitgate(t, "", "--config", config, "canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "go")
	if got.Code != 0 || !strings.Contains(got.Stdout, ": ADVANCE\n") || !strings.Contains(got.Stdout, "false-alarm rate 0.0001%") {
		t.Errorf("with canary.judge from --config:\n%s%s", got.Stdout, got.Stderr)
	}
}

// stageLedger is n calls of status in a stage at stage per cent that
// began at since: routed as the stage routes them, their durations drawn
// from one log-normal distribution (median 40 ms, P95 about 125 ms) for
// both backends, approach1 failing 1 % of calls and approach2 a2FailPct %
// (deterministic).
func stageLedger(since time.Time, stage, n, a2FailPct int) []canary.Entry {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(a2FailPct)))
	at := since.Truncate(time.Microsecond).Add(time.Microsecond) // in the stage in either store (PostgreSQL keeps microseconds)
	entries := make([]canary.Entry, 0, n)
	for range n {
		e := canary.Entry{At: at, Kind: canary.KindCall, Op: backends.OpStatus, Stage: stage, Routed: backends.Approach1, Backend: backends.Approach1,
			Duration: time.Duration(40 * math.Exp(0.7*rng.NormFloat64()) * float64(time.Millisecond))}
		failPct := 1
		if rng.IntN(100) < stage {
			e.Routed, e.Backend, failPct = backends.Approach2, backends.Approach2, a2FailPct
		}
		if rng.IntN(100) < failPct {
			e.Category = backends.Unavailable
		}
		entries = append(entries, e)
	}
	return entries
}

// idleStage is what canary advance prints of an operation at 0 % that
// Approach 2 has not been shown (no change log yet).
const idleStage = `log: the 0% stage since the start of the change log: IDLE
  - no canary under way: the operation is at 0 % on approach2
  approach1        0 calls
  approach2        0 calls
  shadow           0 compared  (0 stale, 0 unfinished, 0 skipped)
  (ranges: anytime-valid bounds; false-alarm rate 1%, miss rate 5%)
`

// emptyStage is what canary advance prints of a stage without calls.
const emptyStage = `status: the 10% stage since $TIME: HOLD
  - only 0 approach2 calls in this stage (at least 100 before advancing)
  - about 100 more approach2 calls would decide, if the rates seen so far hold
  approach1        0 calls
  approach2        0 calls
  shadow           0 compared  (0 stale, 0 unfinished, 0 skipped)
  (ranges: anytime-valid bounds; false-alarm rate 1%, miss rate 5%)
`

// noEvidence is canary advance refusing a stage without calls.
var noEvidence = cliResult{
	Stdout: emptyStage,
	Stderr: "gitgate: the judge says hold for the 10% stage of status; not advancing (--force to override)\n",
	Code:   1,
}

// thinStage is canary advance refusing a healthy stage with too few calls
// to show it no worse, saying about how many more would.
var thinStage = cliResult{
	Stdout: `status: the 10% stage since $TIME: HOLD
  - only 27 approach2 calls in this stage (at least 100 before advancing)
  - error rate not yet shown no worse: approach2 0.00% (0 of 27) against approach1 1.47% (4 of 273)
  - P95 latency not yet shown no worse: approach2 87.4 ms against approach1 127.8 ms (27 and 273 calls)
  - about 357 more approach2 calls would decide, if the rates seen so far hold
  approach1      273 calls  errors 1.47% (4; 0.04–7.68%)  P50 40.9 ms  P95 127.8 ms  P99 172.5 ms  cost/op $0.00000
  approach2       27 calls  errors 0.00% (0; 0.00–31.56%)  P50 36.2 ms  P95 87.4 ms  P99 130.3 ms  cost/op $0.00000
  shadow           0 compared  (0 stale, 0 unfinished, 0 skipped)
  (ranges: anytime-valid bounds; false-alarm rate 1%, miss rate 5%)
`,
	Stderr: "gitgate: the judge says hold for the 10% stage of status; not advancing (--force to override)\n",
	Code:   1,
}

// healthyStage is what canary advance prints of the stage the tests fill
// (stageLedger: 20,300 calls, Approach 2 drawn like Approach 1): enough
// for the judge to show Approach 2 no worse.
const healthyStage = `status: the 10% stage since $TIME: ADVANCE
  - approach2 is shown no worse than approach1 beyond the floors on errors and latency (P50, P95)
  approach1    18334 calls  errors 0.91% (166; 0.59–1.31%)  P50 40.0 ms  P95 127.8 ms  P99 198.4 ms  cost/op $0.00000
  approach2     1966 calls  errors 1.02% (20; 0.27–2.56%)  P50 40.0 ms  P95 130.3 ms  P99 194.4 ms  cost/op $0.00000
  shadow           0 compared  (0 stale, 0 unfinished, 0 skipped)
  (ranges: anytime-valid bounds; false-alarm rate 1%, miss rate 5%)
`

// regressedStage is what canary advance prints of a stage where approach2
// fails 20 % of calls.
const regressedStage = `status: the 10% stage since $TIME: ROLLBACK
  - approach2 error rate 16.55% (49 of 296; at least 8.53%) exceeds approach1's 1.26% (34 of 2704; at most 2.62%) by more than the floor of 2.00 points
  approach1     2704 calls  errors 1.26% (34; 0.47–2.62%)  P50 40.0 ms  P95 127.8 ms  P99 214.9 ms  cost/op $0.00000
  approach2      296 calls  errors 16.55% (49; 8.53–27.48%)  P50 37.7 ms  P95 108.9 ms  P99 169.0 ms  cost/op $0.00000
  shadow           0 compared  (0 stale, 0 unfinished, 0 skipped)
  (ranges: anytime-valid bounds; false-alarm rate 1%, miss rate 5%)
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
	since, err := flags.ReadStageStart(flags.ChangeLogPath(path), "status")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Append(t.Context(), append(stageLedger(since, 10, 300, 0), stageLedger(since, 10, 20000, 1)...)); err != nil {
		t.Fatal(err)
	}
	wantCLI(t, runGitgate(t, "", args...), printed(healthyStage+"status: advanced to 50% on approach2 (by ana: stage clean)\n"))
	if f, _ := flags.Load(path); f.Route("status") != 50 {
		t.Fatalf("status at %d%% after advance", f.Route("status"))
	}
	wantCLI(t, runGitgate(t, "", "canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "x", "--ledger-dsn-env", "GITGATE_NO_SUCH_VAR"),
		failed("read the ledger: --ledger-dsn-env: environment variable GITGATE_NO_SUCH_VAR is not set"))
}
