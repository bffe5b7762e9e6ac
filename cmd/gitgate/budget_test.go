package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/budget"
	"github.com/gitgate/gitgate/internal/testkit"
)

// TestBudgetCommand: `gitgate budget` prints each scope's spend, limit,
// share and forecast from the budget's store (here the state directory's
// file), as a table and with --json.
func TestBudgetCommand(t *testing.T) {
	state := t.TempDir()
	path := testkit.WriteTemp(t, "gitgate.yaml", "state_dir: "+state+"\n"+
		"projects:\n  web: {allowed_hosts: [h]}\n  api: {allowed_hosts: [h]}\n"+
		"budget: {projects: {web: {monthly_usd: 40}}, forecast_min_days: 0.0001}\n")
	store, err := budget.OpenFileStore(filepath.Join(state, "budget.json"))
	if err != nil {
		t.Fatal(err)
	}
	month := budget.MonthOf(time.Now())
	if err := store.Add(t.Context(), month, month.Start(), map[string]float64{budget.TotalScope: 80, "web": 10}); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "budget", "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"they reset on " + month.End().Format("2006-01-02"), "Action at 100 %: refuse. Store: file.",
		"_total  $80.00  $100.00  80 %", "web     $10.00  $40.00   25 %", "api     $0.00   none"} {
		if !strings.Contains(out, want) {
			t.Errorf("gitgate budget lacks %q:\n%s", want, out)
		}
	}
	out, err = runCLI(t, "budget", "--config", path, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r budgetReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if r.Month != month || len(r.Scopes) != 3 || r.Scopes[0].Scope != budget.TotalScope || r.Scopes[0].SpentUSD != 80 ||
		r.Scopes[0].ForecastUSD == nil || *r.Scopes[0].ForecastUSD < 80 || r.Scopes[2].Scope != "web" || r.Scopes[2].Ratio != 0.25 {
		t.Fatalf("--json: %s", out)
	}
}
