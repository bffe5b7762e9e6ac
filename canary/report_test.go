package canary

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// A small ledger through BuildReport and both text forms: the verdicts
// come out per operation and the decision from approach1's weeks.
func TestBuildReportSmoke(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	until := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	since := until.Add(-28 * 24 * time.Hour)
	var es Entries
	for at := since; at.Before(until); at = at.Add(20 * time.Second) {
		for _, op := range []backends.Op{backends.OpPush, backends.OpStatus} {
			e := drawCall(r, 0.01, 300*time.Millisecond, 0.5, 0)
			e.At, e.Op, e.Stage, e.InFlight = at, op, 10, 3
			e.Routed, e.Backend = backends.Approach1, backends.Approach1
			if r.Float64() < 0.1 {
				e.Routed, e.Backend = backends.Approach2, backends.Approach2
				if op == backends.OpPush && r.Float64() < 0.2 {
					e.Category = backends.Unavailable
				}
			}
			es = append(es, e)
		}
	}
	rep, err := BuildReport(context.Background(), es, ReportConfig{Since: since, Until: until, Ops: []backends.Op{backends.OpPush, backends.OpStatus, backends.OpClone}, Source: "memory"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[backends.Op]Verdict{}
	for _, o := range rep.Operations {
		got[o.Op] = o.Verdict
	}
	if got[backends.OpPush] != VerdictRollback || got[backends.OpStatus] != VerdictAdvance || got[backends.OpClone] != VerdictIdle {
		t.Errorf("verdicts %v; want push rollback, status advance, clone idle", got)
	}
	if rep.Decision.Verdict != Stay || len(rep.Decision.Weeks) != 4 {
		t.Errorf("decision %s over %d weeks; want stay over 4", rep.Decision.Verdict, len(rep.Decision.Weeks))
	}
	var md, js bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	t.Log(md.String())
}
