package main

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"syscall"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// reportDSNEnv is the variable TestReportAgreesWithTheGatewaysMetrics
// hands `gitgate report --ledger-dsn-env`.
const reportDSNEnv = "E2E_REPORT_LEDGER_DSN"

// TestReportAgreesWithTheGatewaysMetrics: a canary through the gateway
// and the Approach 2 service (real Redis and PostgreSQL, the ledger in
// PostgreSQL in a schema of its own): clone, status, read_file,
// write_file, checkout and commit at 50 %, every call shadowed, on four
// workspaces; some calls while the service is stopped (they fall back to
// Approach 1, or fail), some client mistakes (a bad refname, a missing
// workspace, a missing file). Then the gateway stops (its ledger's last
// entries written) and `gitgate report --format json` over that ledger
// must agree with what the gateway's /metrics counted: per operation and
// backend the calls, failures, fallbacks and error rate, and the shadow
// comparisons by outcome. The automatic rollback is held off so that the
// stage stays at 50 % and the report judges the stage the metrics count.
func TestReportAgreesWithTheGatewaysMetrics(t *testing.T) {
	ops := []backends.Op{backends.OpClone, backends.OpStatus, backends.OpReadFile, backends.OpWriteFile, backends.OpCheckout, backends.OpCommit}
	f := flags.NewFile(backends.OpNames())
	for _, op := range ops {
		if err := f.SetRoute(string(op), 50); err != nil {
			t.Fatal(err)
		}
		if err := f.SetShadow(string(op), 1); err != nil {
			t.Fatal(err)
		}
	}
	dsn := backendtest.PostgresDSN(t)
	// The service is stopped with nothing in flight: its drain delay
	// (NOT_SERVING while still serving) would only be waited out.
	w, flagPath, proc := newCanaryWorldWith(t, f, func(w *world) { w.serviceDrainDelay = "0s" },
		noAutomaticRollback, func(c *configs.Config) { c.Canary.LedgerDSN = dsn })
	c := w.httpClient(t, agentToken)

	// shadowed counts the calls that must each end in one shadow
	// comparison: every operation here is shadowed at 100 %, and a call
	// is shadowed when it succeeded without falling back.
	shadowed, failedCalls := 0, 0
	served := map[string]int{}
	call := func(tool string, args map[string]any) {
		t.Helper()
		res := w.call(t, c, tool, args)
		if res.IsError {
			failedCalls++
			t.Logf("%s %v failed: %s", tool, args, text(res))
			return
		}
		m, _ := res.StructuredContent.(map[string]any)
		fell, _ := m["fell_back"].(bool)
		served[fmt.Sprint(m["backend"])]++
		if !fell {
			shadowed++
			// Each shadow ends before the agent goes on, so that no more
			// run at once than the gateway has slots for (more would be
			// skipped, which the report and metrics would still agree on,
			// but the test would then exercise less).
			testkit.Eventually(t, fmt.Sprintf("the shadow of call %d (%s)", shadowed, tool), func() bool {
				return w.shadowComparisons(t) >= shadowed
			})
		}
	}
	const workspaces = 4
	ws := func(i int) string { return fmt.Sprintf("rp-%d", i) }
	round := func(i, n int) {
		call("status", map[string]any{"workspace": ws(i)})
		call("read_file", map[string]any{"workspace": ws(i), "path": "README.md"})
		call("write_file", map[string]any{"workspace": ws(i), "path": "report.txt", "content": fmt.Sprintf("round %d\n", n)})
		call("commit", map[string]any{"workspace": ws(i), "message": fmt.Sprintf("%s round %d", ws(i), n)})
	}

	// The service up.
	for i := range workspaces {
		call("clone", map[string]any{"workspace": ws(i), "url": w.repoURL})
		call("checkout", map[string]any{"workspace": ws(i), "branch": ws(i), "create": true})
		for n := range 2 {
			round(i, n)
		}
	}
	if served[backends.Approach1.String()] == 0 || served[backends.Approach2.String()] == 0 {
		t.Fatalf("the workspaces did not split between the backends: %v", served)
	}

	// The service stopped for a while: Approach 2's calls fall back to
	// Approach 1 (reads, and writes it never started) or fail.
	addr := w.cfg.Approach2.Target
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = w.backendWait()
	for i := range workspaces {
		round(i, 2)
	}
	w.startBackendOn(t, addr, freeAddr(t))
	for i := range workspaces {
		round(i, 3)
	}

	// Client mistakes: they count against nobody.
	for _, mistake := range []struct {
		tool string
		args map[string]any
	}{
		{"checkout", map[string]any{"workspace": ws(0), "branch": "bad..ref"}},
		{"checkout", map[string]any{"workspace": ws(1), "branch": "bad..ref"}},
		{"status", map[string]any{"workspace": "nowhere"}},
		{"read_file", map[string]any{"workspace": "nowhere-else", "path": "README.md"}},
		{"read_file", map[string]any{"workspace": ws(2), "path": "no/such/file"}},
		{"read_file", map[string]any{"workspace": ws(3), "path": "no/such/file"}},
	} {
		if res := w.call(t, c, mistake.tool, mistake.args); !res.IsError {
			t.Fatalf("%s %v succeeded", mistake.tool, mistake.args)
		}
	}

	testkit.Eventually(t, fmt.Sprintf("the %d shadow comparisons are counted", shadowed), func() bool {
		return w.shadowComparisons(t) >= shadowed
	})
	metrics := scrape(t, w.adminURL+"/metrics")
	w.stopHTTP() // the ledger's last entries written
	m := parseCallMetrics(metrics)
	if n := shadowComparisonsIn(metrics); n != shadowed {
		t.Errorf("the gateway counted %d shadow comparisons, want one per call served without a fallback (%d)", n, shadowed)
	}
	if sumOf(metricSums(metrics, "gitgate_auto_rollbacks_total", "op")) != 0 {
		t.Fatalf("an automatic rollback happened; the stage is no longer 50 %%")
	}
	fallbacks := 0.0
	for _, op := range ops {
		fallbacks += m.fallbacks[op]
	}
	mistakes := 0.0
	for _, op := range ops {
		for _, byCat := range m.served[op] {
			for cat, n := range byCat {
				if cat.IsClientMistake() {
					mistakes += n
				}
			}
		}
	}
	t.Logf("served per backend %v, %d calls failed, %v fell back, %v client mistakes, %d shadowed", served, failedCalls, fallbacks, mistakes, shadowed)
	if mistakes < 6 {
		t.Errorf("the metrics count %v client mistakes, want the 6 made", mistakes)
	}
	if fallbacks == 0 {
		t.Errorf("no call fell back while the service was stopped: the test shows no backend failure")
	}

	t.Setenv(reportDSNEnv, dsn)
	res := runGitgate(t, "", "report", "--ledger-dsn-env", reportDSNEnv, "--flags", flagPath, "--format", "json")
	if res.Code != 0 && res.Code != exitRollback {
		t.Fatalf("gitgate report: exit code %d: %s", res.Code, res.Stderr)
	}
	var report struct {
		Operations []struct {
			Op        backends.Op    `json:"op"`
			Verdict   string         `json:"verdict"`
			Stage     int            `json:"stage"`
			Approach1 reportedCalls  `json:"approach1"`
			Approach2 reportedCalls  `json:"approach2"`
			Shadow    canary.Shadows `json:"shadow"`
		} `json:"operations"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &report); err != nil {
		t.Fatalf("the report's JSON: %v\n%s", err, res.Stdout)
	}
	seen := map[backends.Op]bool{}
	for _, o := range report.Operations {
		if !slices.Contains(ops, o.Op) {
			continue
		}
		seen[o.Op] = true
		t.Logf("%s: verdict %s at %d%%; approach1 %+v; approach2 %+v; shadow %+v", o.Op, o.Verdict, o.Stage,
			o.Approach1, o.Approach2, o.Shadow)
		if o.Stage != 50 {
			t.Errorf("%s: the report judges the %d%% stage, want 50%%", o.Op, o.Stage)
		}
		want1, want2 := m.byRouted(o.Op)
		for _, side := range []struct {
			name      backends.Name
			got, want reportedCalls
		}{{backends.Approach1, o.Approach1, want1}, {backends.Approach2, o.Approach2, want2}} {
			if side.got.Calls != side.want.Calls || side.got.Failures != side.want.Failures || side.got.FellBack != side.want.FellBack ||
				math.Abs(side.got.ErrorRate-side.want.ErrorRate) > 1e-9 {
				t.Errorf("%s routed to %s: the report says %+v, the metrics %+v", o.Op, side.name, side.got, side.want)
			}
		}
		wantShadow := canary.Shadows{
			Match:      int64(m.comparisons[o.Op][canary.OutcomeMatch]),
			Mismatch:   int64(m.comparisons[o.Op][canary.OutcomeMismatch]),
			Stale:      int64(m.comparisons[o.Op][canary.OutcomeStale]),
			Unfinished: int64(m.comparisons[o.Op][canary.OutcomeShadowError] + m.comparisons[o.Op][canary.OutcomeShadowTimeout]),
			Skipped:    int64(m.comparisons[o.Op][canary.OutcomeSkipped]),
		}
		counts := func(s canary.Shadows) [5]int64 {
			return [5]int64{s.Match, s.Mismatch, s.Stale, s.Unfinished, s.Skipped}
		}
		if counts(o.Shadow) != counts(wantShadow) {
			t.Errorf("%s: the report's comparisons (match, mismatch, stale, unfinished, skipped) %v, the metrics' %v",
				o.Op, counts(o.Shadow), counts(wantShadow))
		}
	}
	for _, op := range ops {
		if !seen[op] {
			t.Errorf("the report has no %s", op)
		}
	}
}

// reportedCalls is one backend's calls in a report's operation (the JSON
// of canary.BackendSummary this test compares).
type reportedCalls struct {
	Calls     int64   `json:"calls"`
	Failures  int64   `json:"failures"`
	FellBack  int64   `json:"fell_back"`
	ErrorRate float64 `json:"error_rate"`
}

// callMetrics is what a gateway's /metrics counted of calls and
// comparisons.
type callMetrics struct {
	// served counts gitgate_operations_total per operation, serving
	// backend and error category ("" for success).
	served map[backends.Op]map[backends.Name]map[backends.Category]float64
	// fallbacks counts gitgate_fallbacks_total per operation (any reason).
	fallbacks   map[backends.Op]float64
	comparisons map[backends.Op]map[canary.Outcome]float64
}

func parseCallMetrics(exposition string) callMetrics {
	m := callMetrics{served: map[backends.Op]map[backends.Name]map[backends.Category]float64{},
		fallbacks: map[backends.Op]float64{}, comparisons: map[backends.Op]map[canary.Outcome]float64{}}
	for _, s := range metricSamples(exposition, "gitgate_operations_total") {
		op, b := backends.Op(s.labels["op"]), backends.Name(s.labels["backend"])
		if m.served[op] == nil {
			m.served[op] = map[backends.Name]map[backends.Category]float64{}
		}
		if m.served[op][b] == nil {
			m.served[op][b] = map[backends.Category]float64{}
		}
		m.served[op][b][backends.Category(s.labels["category"])] += s.value
	}
	for _, s := range metricSamples(exposition, "gitgate_fallbacks_total") {
		m.fallbacks[backends.Op(s.labels["op"])] += s.value
	}
	for _, s := range metricSamples(exposition, "gitgate_shadow_comparisons_total") {
		op := backends.Op(s.labels["op"])
		if m.comparisons[op] == nil {
			m.comparisons[op] = map[canary.Outcome]float64{}
		}
		m.comparisons[op][canary.Outcome(s.labels["outcome"])] += s.value
	}
	return m
}

// byRouted turns the metrics' calls of op, which count by the backend that
// served a call, into the report's, which count by the backend the flags
// routed it to (a fallback counts against Approach 2, canary.Entry.Failed):
// a fallback was routed to Approach 2 and served by Approach 1, so it
// moves from Approach 1's calls to Approach 2's and is one of Approach 2's
// failures. Client mistakes are nobody's failures. (A fallback that then
// failed on Approach 1 too would be counted among Approach 1's errors by
// the metrics and only once, as Approach 2's, by the report; none does
// here: Approach 1 is healthy.)
func (m callMetrics) byRouted(op backends.Op) (a1, a2 reportedCalls) {
	total := func(b backends.Name) (calls, failures float64) {
		for cat, n := range m.served[op][b] {
			calls += n
			if cat.IsBackendFailure() {
				failures += n
			}
		}
		return calls, failures
	}
	calls1, fail1 := total(backends.Approach1)
	calls2, fail2 := total(backends.Approach2)
	fb := m.fallbacks[op]
	a1 = reportedCalls{Calls: int64(calls1 - fb), Failures: int64(fail1)}
	a2 = reportedCalls{Calls: int64(calls2 + fb), Failures: int64(fail2 + fb), FellBack: int64(fb)}
	for _, r := range []*reportedCalls{&a1, &a2} {
		if r.Calls > 0 {
			r.ErrorRate = float64(r.Failures) / float64(r.Calls)
		}
	}
	return a1, a2
}

// shadowComparisonsIn is the total of gitgate_shadow_comparisons_total in
// an exposition.
func shadowComparisonsIn(exposition string) int {
	return int(sumOf(metricSums(exposition, "gitgate_shadow_comparisons_total", "op")))
}
