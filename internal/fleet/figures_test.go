package fleet

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/testkit"
)

// figures are what a run measured, printed with t.Log and, when
// GITGATE_FLEET_OUT names a directory, written there as fleet.json.
type figures struct {
	Agents             int                           `json:"agents"`
	PhaseSeconds       float64                       `json:"phase_seconds"`
	Phases             []phaseFigures                `json:"phases"`
	CallsPerSecond     float64                       `json:"calls_per_second"` // successful calls over the whole load
	Tools              map[string]toolFigures        `json:"tools"`
	Memory             map[string]memFigures         `json:"memory_kb"`
	Propagation        map[string]map[string]float64 `json:"propagation_ms"`       // change -> gateway -> ms
	Drains             map[string]float64            `json:"drain_ms"`             // SIGTERM to exit, per process restarted
	HalfMadeWorkspaces int                           `json:"half_made_workspaces"` // workspaces a clone left part-way that agents released and cloned again
	AbandonedRounds    int                           `json:"abandoned_rounds"`     // rounds an agent gave up after a refusal retrying could not help
	AckedPushes        int                           `json:"acked_pushes"`
	JournalSettleMS    float64                       `json:"journal_settle_ms"` // after the service was killed: until every entry it could have left was settled
	Reconciled         int                           `json:"journal_reconciled"`
	FailoverMS         float64                       `json:"failover_ms"` // SENTINEL FAILOVER until the sentinels agree
	RecoveryMS         float64                       `json:"recovery_ms"` // failover's end until every agent had a successful call again (0: not within testkit.Patience)
	ServedAfter        int                           `json:"agents_served_after_failover"`
	LeasesLost         map[string]int                `json:"lock_leases_lost"` // workspace lock leases each process lost while held (its logs, every incarnation)
	LedgerCalls        map[string]int64              `json:"ledger_pulls"`     // pulls the report counted more after each gateway's probe
	Started            time.Time                     `json:"started"`
}

type phaseFigures struct {
	Name           string         `json:"name"`
	Seconds        float64        `json:"seconds"`
	Calls          int            `json:"calls"`
	Failed         int            `json:"failed"`
	CallsPerSecond float64        `json:"calls_per_second"`
	Failures       map[string]int `json:"failures_by_category,omitempty"`
}

type toolFigures struct {
	Calls  int     `json:"calls"`
	Failed int     `json:"failed"`
	P50MS  float64 `json:"p50_ms"`
	P95MS  float64 `json:"p95_ms"`
}

type memFigures struct {
	PeakKB      int64 `json:"peak_kb"`       // VmHWM, the largest over the process's incarnations
	UnderLoadKB int64 `json:"under_load_kb"` // VmRSS at the end of the warm-up, every agent running
	FinalRSSKB  int64 `json:"final_rss_kb"`  // VmRSS when the load stopped
}

// phaseOf summarises the calls that started in [since, until).
func phaseOf(l *load, name string, since, until time.Time) phaseFigures {
	calls := l.within(since, until, nil)
	p := phaseFigures{Name: name, Seconds: until.Sub(since).Seconds(), Calls: len(calls), Failures: map[string]int{}}
	ok := 0
	for _, c := range calls {
		if c.failed() {
			p.Failed++
			p.Failures[c.category]++
		} else {
			ok++
		}
	}
	if p.Seconds > 0 {
		p.CallsPerSecond = float64(ok) / p.Seconds
	}
	return p
}

// toolsOf is each tool's latency (successful calls) and failures.
func toolsOf(calls []call) map[string]toolFigures {
	durations := map[string][]time.Duration{}
	out := map[string]toolFigures{}
	for _, c := range calls {
		f := out[c.tool]
		f.Calls++
		if c.failed() {
			f.Failed++
		} else {
			durations[c.tool] = append(durations[c.tool], c.end.Sub(c.start))
		}
		out[c.tool] = f
	}
	for tool, d := range durations {
		f := out[tool]
		f.P50MS = ms(testkit.Percentile(d, 50))
		f.P95MS = ms(testkit.Percentile(d, 95))
		out[tool] = f
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// log prints the figures and writes them under GITGATE_FLEET_OUT.
func (f *figures) log(t *testing.T) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "fleet figures: %d agents, %.0f s per phase, %.1f successful calls/s over the load, %d acknowledged pushes, %d rounds given up, %d half-made workspaces cloned again\n",
		f.Agents, f.PhaseSeconds, f.CallsPerSecond, f.AckedPushes, f.AbandonedRounds, f.HalfMadeWorkspaces)
	for _, p := range f.Phases {
		fmt.Fprintf(&b, "  phase %-16s %6.1f s %6d calls %4d failed %7.1f calls/s %v\n", p.Name, p.Seconds, p.Calls, p.Failed, p.CallsPerSecond, p.Failures)
	}
	for _, tool := range slices.Sorted(maps.Keys(f.Tools)) {
		x := f.Tools[tool]
		fmt.Fprintf(&b, "  tool %-18s %6d calls %4d failed  P50 %8.1f ms  P95 %8.1f ms\n", tool, x.Calls, x.Failed, x.P50MS, x.P95MS)
	}
	for _, name := range slices.Sorted(maps.Keys(f.Memory)) {
		m := f.Memory[name]
		fmt.Fprintf(&b, "  memory %-12s peak (VmHWM) %7.1f MiB, under load (VmRSS) %7.1f MiB, at the end %7.1f MiB\n", name,
			float64(m.PeakKB)/1024, float64(m.UnderLoadKB)/1024, float64(m.FinalRSSKB)/1024)
	}
	for _, change := range slices.Sorted(maps.Keys(f.Propagation)) {
		fmt.Fprintf(&b, "  propagation %-22s", change)
		for _, gw := range slices.Sorted(maps.Keys(f.Propagation[change])) {
			fmt.Fprintf(&b, " %s %6.1f ms", gw, f.Propagation[change][gw])
		}
		b.WriteString("\n")
	}
	for _, name := range slices.Sorted(maps.Keys(f.Drains)) {
		fmt.Fprintf(&b, "  drain %-10s SIGTERM to exit %7.1f ms\n", name, f.Drains[name])
	}
	fmt.Fprintf(&b, "  journal settled %.1f s after the kill (%d entries reconciled); Sentinel failover %.1f s, every agent served again %.1f s after it (%d of %d agents served since)\n",
		f.JournalSettleMS/1000, f.Reconciled, f.FailoverMS/1000, f.RecoveryMS/1000, f.ServedAfter, f.Agents)
	fmt.Fprintf(&b, "  workspace lock leases lost while held: %v\n", f.LeasesLost)
	fmt.Fprintf(&b, "  gitgate report counted the pulls made through each gateway alone: %v\n", f.LedgerCalls)
	t.Log(b.String())
	dir := os.Getenv("GITGATE_FLEET_OUT")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("GITGATE_FLEET_OUT: %v", err)
		return
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Error(err)
		return
	}
	path := filepath.Join(dir, "fleet.json")
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil { //nolint:gosec // figures, not secrets
		t.Errorf("GITGATE_FLEET_OUT: %v", err)
		return
	}
	t.Logf("figures written to %s", path)
}

// metricSum scrapes url (a /metrics) and sums the samples of name.
func metricSum(url, name string) (float64, error) {
	resp, err := http.Get(url) //nolint:gosec,noctx // a loopback test URL
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	sum := 0.0
	for line := range strings.SplitSeq(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum, nil
}
