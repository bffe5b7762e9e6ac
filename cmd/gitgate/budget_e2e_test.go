package main

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/e2bfake"
	"github.com/gitgate/gitgate/internal/testkit"
)

// TestBudgetOnE2B: two gateways on the local E2B share a tiny overall
// budget in Redis ($1, with sandboxes priced at $0.25 a second): the
// running sandbox of one is charged while it runs; at 75 % the gauge and
// one WARN line; at 100 % a creation through the other gateway is refused
// with resource_exhausted and a message saying what was spent, the limit
// and the reset date, while the existing workspace is still served; a
// restarted gateway reads the spend back and still refuses. About 10 s.
func TestBudgetOnE2B(t *testing.T) {
	t.Parallel()
	s, err := e2bfake.Start(e2bfake.Config{APIKey: e2bKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	w := newWorld(t)
	w.e2bURL = s.URL()
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	w.cfg = w.config(t)
	setTinyBudget(t, w.cfg)
	w.startHTTP(t)
	ada := w.httpClient(t, agentToken)
	w.ok(t, ada, "clone", map[string]any{"workspace": "one", "url": w.repoURL})

	// The second gateway of the fleet, on the same Redis.
	bLogs := &testkit.SyncBuffer{}
	bMCP, bAdmin := startFleetGateway(t, w.cfg, bLogs)

	testkit.Eventually(t, "the overall budget at 75 % on the gateway running the sandbox", func() bool {
		return budgetMetric(t, w.adminURL, `gitgate_budget_used_ratio{project="_total"}`) >= 0.75
	})
	if n := strings.Count(w.logs.String(), `"msg":"sandbox budget at `); n != 1 || !strings.Contains(w.logs.String(), `"scope":"_total"`) {
		t.Fatalf("%d WARN lines at 75 %%, want 1 for _total", n)
	}
	testkit.Eventually(t, "the second gateway seeing the first one's spend for alpha", func() bool {
		return budgetMetric(t, bAdmin, `gitgate_budget_spent_usd{project="alpha"}`) > 0
	})
	testkit.Eventually(t, "the overall budget spent", func() bool {
		return budgetMetric(t, bAdmin, `gitgate_budget_used_ratio{project="_total"}`) >= 1
	})

	// A new sandbox (another project's) is refused through either gateway.
	first := w.mcpURL
	w.mcpURL = bMCP
	eveOnB := w.httpClient(t, strangerToken)
	w.mcpURL = first
	res := w.call(t, eveOnB, "clone", map[string]any{"workspace": "two", "url": w.repoURL})
	msg := text(res)
	if !res.IsError || !strings.HasPrefix(msg, "resource_exhausted: ") {
		t.Fatalf("a clone needing a new sandbox past the budget: %s", msg)
	}
	for _, want := range []string{"overall monthly sandbox budget is spent", "of $1.00", "until it resets on", "keep working", "budget.monthly_usd"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the refusal %q does not say %q", msg, want)
		}
	}
	if got := budgetMetric(t, bAdmin, `gitgate_budget_refusals_total{project="_total"}`); got != 1 {
		t.Errorf("refusals on the second gateway: %v", got)
	}
	if n := len(s.Sandboxes()); n != 1 {
		t.Fatalf("%d sandboxes on E2B, want alpha's only", n)
	}
	// The existing workspace keeps working.
	w.ok(t, ada, "write_file", map[string]any{"workspace": "one", "path": "still.txt", "content": "served\n"})
	w.ok(t, ada, "status", map[string]any{"workspace": "one"})

	// A restart: the spend is read back, not reset, and still refuses.
	before := budgetMetric(t, w.adminURL, `gitgate_budget_spent_usd{project="_total"}`)
	w.stopHTTP()
	w.startHTTP(t)
	testkit.Eventually(t, "the restarted gateway reading the month's spend back", func() bool {
		return budgetMetric(t, w.adminURL, `gitgate_budget_spent_usd{project="_total"}`) >= before
	})
	eve := w.httpClient(t, strangerToken)
	w.fail(t, eve, "clone", map[string]any{"workspace": "two", "url": w.repoURL}, "resource_exhausted")
	ada = w.httpClient(t, agentToken)
	w.ok(t, ada, "status", map[string]any{"workspace": "one"})
}

// setTinyBudget prices sandboxes at $0.25 a second (2 vCPUs at $0.125)
// under a $1 overall budget charged every 100 ms.
func setTinyBudget(t *testing.T, cfg *configs.Config) {
	t.Helper()
	cfg.Sandbox.E2B.VCPUSecondUSD, cfg.Sandbox.E2B.GiBSecondUSD = 0.125, 1e-12
	cfg.Budget.MonthlyUSD, cfg.Budget.Interval, cfg.Budget.Store = 1, 100*time.Millisecond, "redis"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// startFleetGateway runs another gateway on cfg until the test ends and
// returns its MCP and admin URLs.
func startFleetGateway(t *testing.T, cfg *configs.Config, logs *testkit.SyncBuffer) (mcpURL, adminURL string) {
	t.Helper()
	a, err := newGatewayRoot(cfg, logs, agentToken, strangerToken)
	if err != nil {
		t.Fatal(err)
	}
	mcpLn, adminLn := listenLoopback(t), listenLoopback(t)
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	a.startReaper(ctx)
	done := make(chan error, 1)
	go func() { done <- a.serveHTTP(ctx, mcpLn, adminLn, 5*time.Second) }()
	t.Cleanup(sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		a.close(context.WithoutCancel(t.Context()))
	}))
	return "http://" + mcpLn.Addr().String() + cfg.MCP.Path, "http://" + adminLn.Addr().String()
}

// budgetMetric returns a series' value from an admin listener, -1 when
// absent.
func budgetMetric(t *testing.T, adminURL, series string) float64 {
	t.Helper()
	_, body := get(t, adminURL+"/metrics")
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	return -1
}
