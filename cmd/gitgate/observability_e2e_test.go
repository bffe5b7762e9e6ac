package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/e2bfake"
	"github.com/gitgate/gitgate/internal/testkit"
	"go.yaml.in/yaml/v3"
)

// The operator's files these tests check, from this package's directory.
const (
	repoRoot      = "../.."
	dashboardFile = repoRoot + "/deploy/grafana/gitgate.json"
	rulesDir      = repoRoot + "/deploy/prometheus"
)

// ruleFiles are the Prometheus rule files an operator loads.
var ruleFiles = []string{"gitgate.rules.yml", "gitgate.alerts.yml", "gitgate-drill.rules.yml"}

// dashboardPanel is what these tests read of a panel of gitgate.json.
type dashboardPanel struct {
	Title   string                  `json:"title"`
	Type    string                  `json:"type"`
	Targets []struct{ Expr string } `json:"targets"`
	Panels  []dashboardPanel        `json:"panels"` // a collapsed row's
}

func loadDashboard(t *testing.T) []dashboardPanel {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct{ Panels []dashboardPanel }
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var flat []dashboardPanel
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			if p.Type != "row" {
				flat = append(flat, p)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return flat
}

type promRule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) []promRule {
	t.Helper()
	var all []promRule
	for _, f := range ruleFiles {
		b, err := os.ReadFile(filepath.Join(rulesDir, f))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Groups []struct {
				Rules []promRule `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range doc.Groups {
			all = append(all, g.Rules...)
		}
	}
	return all
}

// metricName matches a gitgate metric name in PromQL or Markdown (recording
// rules' names, level:metric:operations, have colons and do not match).
var metricName = regexp.MustCompile(`\bgitgate_[a-z0-9_]+\b`)

// family is a sample name's metric family (a histogram's _bucket, _count
// and _sum are its family's).
func family(name string) string {
	for _, s := range []string{"_bucket", "_count", "_sum"} {
		if base, ok := strings.CutSuffix(name, s); ok {
			return base
		}
	}
	return name
}

// readmeMetricFamilies are the metric families of README.md's metrics
// table(s): the backquoted gitgate_ names of the first column of every
// table whose header's first cell is "metric".
func readmeMetricFamilies(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(repoRoot + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	inTable := false
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		first := strings.TrimSpace(cells[0])
		if strings.EqualFold(first, "metric") {
			inTable = true
			continue
		}
		if !inTable {
			continue
		}
		for _, quoted := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(first, -1) {
			if metricName.MatchString(quoted[1]) && metricName.FindString(quoted[1]) == quoted[1] {
				seen[quoted[1]] = true
			}
		}
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range seen {
			if !yield(n) {
				return
			}
		}
	})
	if len(names) < 10 {
		t.Fatalf("README.md's metrics table names %d metrics (%v): has its format changed?", len(names), names)
	}
	return names
}

// TestDashboardCoversREADMEMetrics: the dashboard, loaded from its JSON,
// has a panel for each metric family of README.md's metrics table, and no
// two panels share a title.
func TestDashboardCoversREADMEMetrics(t *testing.T) {
	panels := loadDashboard(t)
	used := map[string][]string{} // family -> panels
	titles := map[string]int{}
	for _, p := range panels {
		titles[p.Title]++
		for _, tg := range p.Targets {
			for _, n := range metricName.FindAllString(tg.Expr, -1) {
				used[family(n)] = append(used[family(n)], p.Title)
			}
		}
	}
	for title, n := range titles {
		if n > 1 {
			t.Errorf("%d panels are titled %q", n, title)
		}
	}
	families := readmeMetricFamilies(t)
	for _, f := range families {
		if len(used[f]) == 0 {
			t.Errorf("README.md's metrics table lists %s; no dashboard panel shows it", f)
		}
	}
	t.Logf("%d metric families in README.md, %d panels", len(families), len(panels))
}

// TestAlertsAreDocumentedAndTested: every alert of the rule files has a
// severity, a summary, a description and a runbook_url whose section exists
// in deploy/README.md, and the promtool tests (deploy/prometheus/*.test.yml)
// hold for it a case where it fires and one where it does not.
func TestAlertsAreDocumentedAndTested(t *testing.T) {
	readme, err := os.ReadFile(repoRoot + "/deploy/README.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for line := range strings.SplitSeq(string(readme), "\n") {
		if heading, ok := strings.CutPrefix(line, "#"); ok {
			slug := strings.ToLower(strings.TrimSpace(strings.TrimLeft(heading, "#")))
			slug = regexp.MustCompile(`[^a-z0-9 _-]`).ReplaceAllString(slug, "")
			anchors[strings.ReplaceAll(slug, " ", "-")] = true
		}
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	tests, err := filepath.Glob(filepath.Join(rulesDir, "*.test.yml"))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no promtool tests in %s: %v", rulesDir, err)
	}
	for _, f := range tests {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string           `yaml:"alertname"`
					ExpAlerts []map[string]any `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range doc.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				} else {
					quiet[a.Alertname] = true
				}
			}
		}
	}
	alerts := 0
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			continue
		}
		alerts++
		if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
			t.Errorf("%s: severity %q", r.Alert, r.Labels["severity"])
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s has no %s", r.Alert, a)
			}
		}
		const base = "https://github.com/gitgate/gitgate/blob/main/deploy/README.md#"
		if anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], base); !ok || !anchors[anchor] {
			t.Errorf("%s: runbook_url %q is not a section of deploy/README.md", r.Alert, r.Annotations["runbook_url"])
		}
		if !fires[r.Alert] || !quiet[r.Alert] {
			t.Errorf("%s: the promtool tests have a case where it fires: %v, one where it does not: %v", r.Alert, fires[r.Alert], quiet[r.Alert])
		}
	}
	if alerts < 20 {
		t.Errorf("%d alerts in %v", alerts, ruleFiles)
	}
}

// notServed are the metric families that a panel or rule may use although
// the gateway and the service started below do not serve them, each with
// the reason. Each must still be named in gitgate's Go source (checked).
var notServed = map[string]string{
	"gitgate_drill_last_run_timestamp_seconds":     "written by `gitgate drill` to its textfile or Pushgateway (canary/drill tests)",
	"gitgate_drill_last_success_timestamp_seconds": "written by `gitgate drill` to its textfile or Pushgateway (canary/drill tests)",
	"gitgate_drill_last_passed":                    "written by `gitgate drill` to its textfile or Pushgateway (canary/drill tests)",
	"gitgate_drill_runs_total":                     "written by `gitgate drill` to its textfile or Pushgateway (canary/drill tests)",
	"gitgate_drill_time_to_effect_seconds":         "written by `gitgate drill` to its textfile or Pushgateway (canary/drill tests)",
	"gitgate_drill_residual_calls":                 "written by `gitgate drill` to its textfile or Pushgateway (canary/drill tests)",
	"gitgate_drill_failed_calls":                   "written by `gitgate drill` to its textfile or Pushgateway (canary/drill tests)",
	// Labelled metrics with no series before their first event.
	"gitgate_flags_failsafe_total":     "no series before the first failsafe evaluation",
	"gitgate_shadow_comparisons_total": "no series before the first shadowed call",
	"gitgate_auto_rollbacks_total":     "no series before the first automatic rollback",
	"gitgate_pool_acquire_seconds":     "no series before the pool's first acquisition",
	"gitgate_budget_forecast_usd":      "absent until the budget store holds a first charge and budget.forecast_min_days of data (backends/budget tests)",
	"gitgate_agent_cost_usd_total":     "only with metrics.agent_labels on",
	"gitgate_relay_refused_total":      "no series before the git relay first refuses a request (backends/relay tests)",
}

// sourceNames are the gitgate_ names written as string literals in the
// module's non-test Go files.
func sourceNames(t *testing.T) map[string]bool {
	t.Helper()
	lit := regexp.MustCompile(`"(gitgate_[a-z0-9_]+)"`)
	names := map[string]bool{}
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "tools" || strings.HasPrefix(d.Name(), ".")) && path != repoRoot {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// exposedNames are the sample names and families of a /metrics page.
func exposedNames(body string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.SplitSeq(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		n := line
		if i := strings.IndexAny(n, "{ "); i >= 0 {
			n = n[:i]
		}
		names[n], names[family(n)] = true, true
	}
	return names
}

// observedWorld is a gateway with status routed to an Approach 2 service
// in another process, both on E2B sandboxes (the local stand-in, so that
// the E2B, cost and budget metrics are served) and with their admin
// listeners known, after an agent's clone, calls on both backends and a
// failed call.
type observedWorld struct {
	*world
	serviceAdmin string // host:port of the service's admin listener
	status       func() // one status call (Approach 2)
	other        func() // one read (Approach 1)
}

func newObservedWorld(t *testing.T) *observedWorld {
	t.Helper()
	f := flags.NewFile(backends.OpNames())
	_ = f.SetRoute(string(backends.OpStatus), 100)
	e2b, err := e2bfake.Start(e2bfake.Config{APIKey: e2bKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e2b.Close)
	w := newWorld(t)
	w.e2bURL = e2b.URL()
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	// Git relays for both processes (reached by the E2B sandboxes at
	// their public URLs), so that the relay's bytes are served.
	relayGW, relaySvc := freeAddr(t), freeAddr(t)
	w.extraYAML = fmt.Sprintf("relay: {listen: %q, public_url: %q, service_listen: %q, service_public_url: %q}\n",
		relayGW, "http://"+relayGW, relaySvc, "http://"+relaySvc)
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
	// Budgets, overall and for alpha, so that their gauges are served.
	w.cfg.Budget.MonthlyUSD = 100
	w.cfg.Budget.Projects = map[string]configs.ProjectBudget{"alpha": {MonthlyUSD: 50}}
	w.startHTTP(t)
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "obs", "url": w.repoURL})
	o := &observedWorld{world: w, serviceAdmin: admin,
		status: func() { w.ok(t, c, "status", map[string]any{"workspace": "obs"}) },
		other:  func() { w.ok(t, c, "list_files", map[string]any{"workspace": "obs"}) },
	}
	o.status()
	o.other()
	w.fail(t, c, "read_file", map[string]any{"workspace": "obs", "path": "absent"}, "not_found")
	return o
}

// TestObservability runs the dashboard's and the rules' checks that need
// the binaries: a gateway and an Approach 2 service, started once.
func TestObservability(t *testing.T) {
	t.Parallel() // it mostly waits for Prometheus' scrapes and rule evaluations
	o := newObservedWorld(t)
	t.Run("NoDeadPanel", func(t *testing.T) { testNoDeadPanel(t, o) })
	t.Run("RealPrometheus", func(t *testing.T) { testRealPrometheus(t, o) })
}

// testNoDeadPanel: every metric a dashboard panel or a rule uses is served
// on the gateway's or the service's /metrics, or is one of notServed (and
// then named in the source).
func testNoDeadPanel(t *testing.T, o *observedWorld) {
	served := map[string]bool{}
	for _, u := range []string{o.adminURL + "/metrics", "http://" + o.serviceAdmin + "/metrics"} {
		code, body := get(t, u)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", u, code)
		}
		for n := range exposedNames(body) {
			served[n] = true
		}
	}
	users := map[string][]string{} // metric name -> panels and rules using it
	for _, p := range loadDashboard(t) {
		for _, tg := range p.Targets {
			for _, n := range metricName.FindAllString(tg.Expr, -1) {
				users[n] = append(users[n], "panel "+p.Title)
			}
		}
	}
	for _, r := range loadRules(t) {
		for _, n := range metricName.FindAllString(r.Expr, -1) {
			users[n] = append(users[n], "rule "+r.Record+r.Alert)
		}
	}
	inSource := sourceNames(t)
	var dead []string
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for n := range users {
			if !yield(n) {
				return
			}
		}
	}) {
		if served[n] {
			continue
		}
		if why, ok := notServed[family(n)]; ok {
			if !inSource[family(n)] {
				t.Errorf("%s is allowed unserved (%s) but no Go source names it", n, why)
			}
			continue
		}
		dead = append(dead, n)
		t.Errorf("%s is not on the gateway's or the service's /metrics; used by %s", n, strings.Join(slices.Compact(users[n]), ", "))
	}
	var allowedButServed []string
	for n := range notServed {
		if served[n] {
			allowedButServed = append(allowedButServed, n)
		}
	}
	sort.Strings(allowedButServed)
	t.Logf("%d metric names used by the dashboard and the rules; %d not served: %v; allowed unserved but served this time: %v",
		len(users), len(dead), dead, allowedButServed)
}

// testRealPrometheus: Debian's prometheus scrapes the gateway and the
// service every second with the rule files loaded; through its HTTP API
// every rule evaluates without error and the recording rules that the
// traffic feeds produce series.
func testRealPrometheus(t *testing.T, o *observedWorld) {
	const bin = "/usr/bin/prometheus"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing (Debian's prometheus package, installed by make rules-test's promtool): %v", bin, err)
	}
	dir := t.TempDir()
	var files []string
	for _, f := range ruleFiles {
		abs, err := filepath.Abs(filepath.Join(rulesDir, f))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, abs)
	}
	gatewayAdmin := strings.TrimPrefix(o.adminURL, "http://")
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q, %q, %q]
scrape_configs:
  - job_name: gitgate
    static_configs: [{targets: [%q]}]
  - job_name: gitgate-approach2
    static_configs: [{targets: [%q]}]
`, files[0], files[1], files[2], gatewayAdmin, o.serviceAdmin)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	// Bounded: prometheus is killed when the test ends or after twice the
	// patience, whichever comes first.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 2*testkit.Patience)
	cmd := exec.CommandContext(ctx, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen, "--log.level=warn")
	logs := &testkit.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus logged:\n%s", logs.String())
		}
	})
	api := "http://" + listen + "/api/v1/"
	query := func(q string) ([]json.RawMessage, error) {
		var res struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []json.RawMessage `json:"result"`
			} `json:"data"`
		}
		if err := getJSON(ctx, api+"query?query="+url.QueryEscape(q), &res); err != nil {
			return nil, err
		}
		if res.Status != "success" {
			return nil, fmt.Errorf("query %s: %s", q, res.Error)
		}
		return res.Data.Result, nil
	}

	testkit.EventuallyNil(t, "prometheus scrapes the gateway and the service", func() error {
		res, err := query(`up == 1`)
		if err != nil {
			return err
		}
		if len(res) != 2 {
			return fmt.Errorf("%d targets up: %s", len(res), res)
		}
		return nil
	})

	// Every rule is evaluated, without error.
	var rulesSeen int
	testkit.EventuallyNil(t, "every rule group is evaluated without error", func() error {
		var res struct {
			Data struct {
				Groups []struct {
					Name           string    `json:"name"`
					File           string    `json:"file"`
					LastEvaluation time.Time `json:"lastEvaluation"`
					Rules          []struct {
						Name      string `json:"name"`
						Health    string `json:"health"`
						LastError string `json:"lastError"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := getJSON(ctx, api+"rules", &res); err != nil {
			return err
		}
		if len(res.Data.Groups) == 0 {
			return fmt.Errorf("no rule group loaded")
		}
		rulesSeen = 0
		for _, g := range res.Data.Groups {
			for _, r := range g.Rules {
				rulesSeen++
				if r.Health == "err" {
					t.Fatalf("rule %s (%s, group %s): %s", r.Name, filepath.Base(g.File), g.Name, r.LastError)
				}
				if r.Health != "ok" {
					return fmt.Errorf("rule %s of group %s: health %q", r.Name, g.Name, r.Health)
				}
			}
		}
		return nil
	})
	if want := len(loadRules(t)); rulesSeen != want {
		t.Errorf("prometheus loaded %d rules; the files hold %d", rulesSeen, want)
	}

	// The recording rules that this traffic feeds produce series: calls on
	// both backends keep the rates above zero while we wait.
	mustProduce := []string{
		`gitgate:slo_objective:ratio`,
		`gitgate:operations:rate5m{job="gitgate",backend="approach1"}`,
		`gitgate:operations:rate5m{job="gitgate",backend="approach2"}`,
		`gitgate:operations:rate5m{job="gitgate-approach2",backend="approach2"}`,
		`gitgate:operation_errors:ratio_rate5m{job="gitgate",op="status"} >= 0`,
		`gitgate:operation_backend_errors:ratio_rate5m{job="gitgate-approach2",op="status"} >= 0`,
		`gitgate:operation_duration_seconds:p95_5m{job="gitgate",op="status",backend="approach2"} > 0`,
		`gitgate:operation_duration_seconds:p50_5m{job="gitgate-approach2",op="status"} > 0`,
		`gitgate:operation_duration_seconds:p99_5m{job="gitgate",op="list_files"} > 0`,
		`gitgate:operations:increase1d{job="gitgate",op="status"} > 0`,
		`gitgate:api_errors:ratio_rate5m{job="gitgate"} >= 0`,
		`gitgate:api_availability:ratio_rate5m{job="gitgate"} > 0`,
		`gitgate:project_cost_usd:rate1h`,
		`gitgate:budget_used:ratio{project="alpha"}`,
		`gitgate:sandbox_create_seconds:p95_5m`,
		`gitgate:sandbox_cost_usd:rate1h{job="gitgate"}`,
		`gitgate:e2b_request_errors:ratio_rate5m{job="gitgate"}`,
	}
	pending := slices.Clone(mustProduce)
	deadline := time.Now().Add(testkit.Patience)
	for len(pending) > 0 && time.Now().Before(deadline) {
		o.status()
		o.other()
		pending = slices.DeleteFunc(pending, func(q string) bool {
			res, err := query(q)
			if err != nil {
				t.Fatal(err)
			}
			return len(res) > 0
		})
		if len(pending) > 0 {
			select {
			case <-time.After(500 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
	for _, q := range pending {
		t.Errorf("no series for %s within %s", q, testkit.Patience)
	}
	// Which recording rules have series (the others need E2B, budgets, an
	// agent list or failures this run does not have).
	var with, without []string
	for _, r := range loadRules(t) {
		if r.Record == "" {
			continue
		}
		res, err := query(r.Record)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) > 0 {
			with = append(with, r.Record)
		} else {
			without = append(without, r.Record)
		}
	}
	sort.Strings(without)
	t.Logf("%d rules evaluated; recording rules with series: %d, without: %v", rulesSeen, len(with), without)
}

func getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}
