package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// docNotScraped are the README table's metric families that a gateway and
// a service on local sandboxes cannot show, each with the reason; every
// other family of the table must be on their /metrics.
var docNotScraped = map[string]string{
	"gitgate_e2b_sandbox_seconds_total":            "E2B provider only (backends/sandbox/e2b tests)",
	"gitgate_e2b_cost_usd_total":                   "E2B provider only (backends/sandbox/e2b tests)",
	"gitgate_e2b_requests_total":                   "E2B provider only (backends/sandbox/e2b tests)",
	"gitgate_e2b_request_duration_seconds":         "E2B provider only (backends/sandbox/e2b tests)",
	"gitgate_budget_limit_usd":                     "budgets apply to billed (E2B) sandboxes only",
	"gitgate_budget_spent_usd":                     "budgets apply to billed (E2B) sandboxes only",
	"gitgate_budget_used_ratio":                    "budgets apply to billed (E2B) sandboxes only",
	"gitgate_budget_forecast_usd":                  "budgets apply to billed (E2B) sandboxes only",
	"gitgate_budget_refusals_total":                "budgets apply to billed (E2B) sandboxes only",
	"gitgate_budget_store_errors_total":            "budgets apply to billed (E2B) sandboxes only",
	"gitgate_drill_last_run_timestamp_seconds":     "written by `gitgate drill` to its textfile or Pushgateway (canary/drill tests)",
	"gitgate_drill_last_success_timestamp_seconds": "written by `gitgate drill` to its textfile or Pushgateway (canary/drill tests)",
	"gitgate_drill_last_passed":                    "written by `gitgate drill` to its textfile or Pushgateway (canary/drill tests)",
	"gitgate_drill_runs_total":                     "written by `gitgate drill` to its textfile or Pushgateway (canary/drill tests)",
	"gitgate_drill_time_to_effect_seconds":         "written by `gitgate drill` to its textfile or Pushgateway (canary/drill tests)",
	"gitgate_drill_residual_calls":                 "written by `gitgate drill` to its textfile or Pushgateway (canary/drill tests)",
	"gitgate_drill_failed_calls":                   "written by `gitgate drill` to its textfile or Pushgateway (canary/drill tests)",
	// Vectors without a series until their first event; these calls
	// cause none (each is tested where it is counted).
	"gitgate_auto_rollbacks_total":     "no series before the first automatic rollback (canary tests)",
	"gitgate_flags_failsafe_total":     "no series before the flags first fail safe (flags tests)",
	"gitgate_relay_refused_total":      "no series before the git relay first refuses a request (backends/relay tests)",
	"gitgate_shadow_comparisons_total": "no series before the first shadow comparison (shadow e2e tests)",
	"gitgate_pool_acquire_seconds":     "no series before the service's pool hands out a sandbox (backends/sandbox pool tests)",
	"gitgate_sandbox_cost_usd_total":   "no series before a command runs on a billed (E2B) sandbox (approach1 and e2b tests)",
}

// docTableFamilies are the gitgate_ names in the first column of README's
// table(s) whose header's first cell is "metric".
func docTableFamilies(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	quoted := regexp.MustCompile("`(gitgate_[a-z0-9_]+)`")
	names := map[string]bool{}
	in := false
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			in = false
			continue
		}
		first := strings.TrimSpace(strings.Split(strings.Trim(line, "|"), "|")[0])
		if first == "metric" {
			in = true
			continue
		}
		if in {
			for _, m := range quoted.FindAllStringSubmatch(first, -1) {
				names[m[1]] = true
			}
		}
	}
	return names
}

// scrapeText returns a /metrics page in the text format.
func scrapeText(t *testing.T, u string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
	return body
}

// TestMetricsAreDocumented starts a gateway with status routed to an
// Approach 2 service (one of each, local sandboxes, agent labels on, git
// relays),
// makes a few calls and checks both /metrics pages: every gitgate_ family
// they export is in README's metrics table, every family of the table is
// exported by one of them or allowed missing (docNotScraped, with the
// reason), and `promtool check metrics` finds nothing wrong with either
// page. It costs one world with a service process: a few seconds.
func TestMetricsAreDocumented(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is missing (Debian's prometheus package; `make promtool` installs it): %v", err)
	}
	f := flags.NewFile(backends.OpNames())
	_ = f.SetRoute(string(backends.OpStatus), 100)
	w := newWorld(t)
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	w.sharedSandboxes = t.TempDir()
	w.extraYAML = "relay: {listen: \"127.0.0.1:0\", service_listen: \"127.0.0.1:0\"}\n" // its bytes
	w.cfg = w.config(t)
	addr, admin := freeAddr(t), freeAddr(t)
	w.startBackendOn(t, addr, admin)
	flagPath := filepath.Join(t.TempDir(), "flags.json")
	if err := f.Save(flagPath); err != nil {
		t.Fatal(err)
	}
	w.cfg.Flags.Path = flagPath
	w.cfg.Redis.Addr, w.cfg.Redis.Prefix = "127.0.0.1:6379", w.redisPrefix
	w.cfg.Approach2.Target, w.cfg.Approach2.Token, w.cfg.Approach2.Insecure = addr, serviceToken, true
	w.cfg.Metrics.AgentLabels = true
	w.startHTTP(t)
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "doc", "url": w.repoURL})
	w.ok(t, c, "status", map[string]any{"workspace": "doc"})     // Approach 2
	w.ok(t, c, "list_files", map[string]any{"workspace": "doc"}) // Approach 1
	w.fail(t, c, "read_file", map[string]any{"workspace": "doc", "path": "absent"}, "not_found")

	documented := docTableFamilies(t)
	if len(documented) < 40 {
		t.Fatalf("README's metrics table names %d families: has its format changed?", len(documented))
	}
	typeLine := regexp.MustCompile(`(?m)^# TYPE (gitgate_[a-z0-9_]+) `)
	exported := map[string]bool{}
	for _, u := range []string{w.adminURL + "/metrics", "http://" + admin + "/metrics"} {
		page := scrapeText(t, u)
		for _, m := range typeLine.FindAllSubmatch(page, -1) {
			name := string(m[1])
			exported[name] = true
			if !documented[name] {
				t.Errorf("%s is on %s but not in README's metrics table", name, u)
			}
		}
		cmd := exec.CommandContext(context.WithoutCancel(t.Context()), promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(page)
		if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("promtool check metrics on %s: %v\n%s", u, err, out)
		}
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range documented {
			if !yield(n) {
				return
			}
		}
	}) {
		why, allowed := docNotScraped[name]
		switch {
		case !exported[name] && !allowed:
			t.Errorf("README's metrics table lists %s; neither the gateway nor the service exports it", name)
		case exported[name] && allowed:
			t.Errorf("%s is exported now: drop it from docNotScraped (%s)", name, why)
		}
	}
	for name := range docNotScraped {
		if !documented[name] {
			t.Errorf("docNotScraped names %s, which README's metrics table does not list", name)
		}
	}
}
