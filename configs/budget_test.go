package configs

import (
	"strings"
	"testing"
	"time"
)

// TestBudgetConfig: the defaults (the validation plan's $100, refuse at
// 100 %, warn at 75 %, a file store without Redis or PostgreSQL), and
// each bad value refused naming its key.
func TestBudgetConfig(t *testing.T) {
	c, err := Load(writeConfig(t, "projects:\n  web: {allowed_hosts: [h]}\nbudget: {projects: {web: {monthly_usd: 40}}}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	b := c.Budget
	if b.MonthlyUSD != 100 || b.WarnAt != 0.75 || b.Action != "refuse" || b.Interval != 30*time.Second ||
		b.Projects["web"].MonthlyUSD != 40 || c.BudgetStore() != "file" || c.BudgetForecastAfter() != 72*time.Hour {
		t.Fatalf("budget defaults: %+v, store %s", b, c.BudgetStore())
	}
	c.Redis.Addr = "127.0.0.1:6379"
	if c.BudgetStore() != "redis" {
		t.Fatalf("auto with redis.addr: %s", c.BudgetStore())
	}
	c.Postgres.DSN = "postgres://x"
	if c.BudgetStore() != "postgres" {
		t.Fatalf("auto with a DSN: %s", c.BudgetStore())
	}
	project := "projects:\n  web: {allowed_hosts: [h]}\n"
	for _, tc := range []struct{ yaml, want string }{
		{"budget: {monthly_usd: -1}", "budget.monthly_usd is negative"},
		{"budget: {warn_at: 1.5}", "budget.warn_at must be a ratio"},
		{"budget: {warn_at: 0}", "budget.warn_at"},
		{"budget: {action: shout}", `budget.action "shout" is not one of [refuse alert]`},
		{"budget: {store: etcd}", "budget.store"},
		{"budget: {store: redis}", "budget.store: redis needs redis.addr"},
		{"budget: {store: postgres}", "budget.store: postgres needs a DSN"},
		{"budget: {forecast_min_days: -2}", "budget.forecast_min_days"},
		{"budget: {projects: {ghost: {monthly_usd: 5}}}", `budget.projects.ghost: "ghost" is not one of projects`},
		{project + "budget: {projects: {web: {monthly_usd: 0}}}", "budget.projects.web.monthly_usd must be positive"},
		{"projects:\n  _total: {allowed_hosts: [h]}\n", "projects._total: project names"}, // never the overall budget's label
		{"budget: {montly_usd: 5}", "budget.montly_usd"},
	} {
		_, err := Load(writeConfig(t, tc.yaml), noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error saying %q", tc.yaml, err, tc.want)
		}
	}
}
