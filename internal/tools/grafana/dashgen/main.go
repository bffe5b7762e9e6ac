// Command dashgen writes gitgate's Grafana dashboard (deploy/grafana/gitgate.json)
// with the Grafana Foundation SDK. `make dashboard` runs it; `make
// check-generated` fails when the committed JSON differs from its output.
//
// Its rows follow an operator's questions: is it up, is it fast, where does
// the traffic go, what does it cost, how are the sandboxes, how are the
// dependencies, and do the agents' branches get cleaned up. Every query
// selects job=~"$job" and instance=~"$instance" and takes rates over
// $__rate_interval (the dashboard linter's rules, `make dashboard-lint`).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

func main() {
	out := flag.String("out", "deploy/grafana/gitgate.json", "where to write the dashboard")
	flag.Parse()
	if err := write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "dashgen:", err)
		os.Exit(1)
	}
}

func write(path string) error {
	d, err := build().Build()
	if err != nil {
		return fmt.Errorf("build the dashboard: %w", err)
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the dashboard: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write the dashboard: %w", err)
	}
	return nil
}

// Units (Grafana's unit ids).
const (
	unitSeconds     = "s"
	unitRatio       = "percentunit"
	unitPercent     = "percent"
	unitPerSec      = "ops"
	unitReqs        = "reqps"
	unitUSD         = "currencyUSD"
	unitBytes       = "bytes"
	unitBytesPerSec = "Bps"
	unitCount       = "short"
)

// backendFailure selects the categories that count as a backend's failure
// (backends.Category.IsBackendFailure), as the recording rules do.
const backendFailure = `category=~"rate_limited|resource_exhausted|unavailable|timeout|internal"`

func ptr[T any](v T) *T { return &v }

var datasource = common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr("${datasource}")}

// sel is the selector of a metric with the dashboard's job and instance and
// the given further matchers.
func sel(metric string, matchers ...string) string {
	return metric + "{" + strings.Join(append([]string{`job=~"$job"`, `instance=~"$instance"`}, matchers...), ", ") + "}"
}

// rate is sum by (by) (rate(metric{...}[$__rate_interval])).
func rate(by, metric string, matchers ...string) string {
	return fmt.Sprintf("sum by (%s) (rate(%s[$__rate_interval]))", by, sel(metric, matchers...))
}

// quantile is the q-quantile of a histogram by the given labels.
func quantile(q, by, histogram string) string {
	return fmt.Sprintf("histogram_quantile(%s, sum by (%s, le) (rate(%s[$__rate_interval])))", q, by, sel(histogram+"_bucket"))
}

type target struct{ expr, legend string }

func t(expr, legend string) target { return target{expr, legend} }

// panel is a time series panel of the given width (of 24).
func panel(title, description, unit string, width uint32, targets ...target) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource).
		Unit(unit).
		Span(width).
		Height(8).
		FillOpacity(10).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true)).
		Tooltip(common.NewVizTooltipOptionsBuilder().
			Mode(common.TooltipDisplayModeMulti).
			Sort(common.SortOrderDescending))
	for i, tg := range targets {
		p.WithTarget(prometheus.NewDataqueryBuilder().
			RefId(string(rune('A' + i))).
			Datasource(datasource).
			Expr(tg.expr).
			LegendFormat(tg.legend))
	}
	return p
}

// thresholds draws lines at warn (orange) and crit (red), for a value that
// is worse the higher it is.
func thresholds(p *timeseries.PanelBuilder, warn, crit float64) *timeseries.PanelBuilder {
	return steps(p, []dashboard.Threshold{
		{Color: "green", Value: nil},
		{Color: "orange", Value: ptr(warn)},
		{Color: "red", Value: ptr(crit)},
	})
}

// floor is thresholds for a value that is worse the lower it is: red
// below crit, orange below warn.
func floor(p *timeseries.PanelBuilder, warn, crit float64) *timeseries.PanelBuilder {
	return steps(p, []dashboard.Threshold{
		{Color: "red", Value: nil},
		{Color: "orange", Value: ptr(crit)},
		{Color: "green", Value: ptr(warn)},
	})
}

func steps(p *timeseries.PanelBuilder, s []dashboard.Threshold) *timeseries.PanelBuilder {
	return p.Thresholds(dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(s)).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLine))
}

func queryVariable(name, label, query string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Query(dashboard.StringOrMap{String: ptr(query)}).
		Datasource(datasource).
		Multi(true).
		IncludeAll(true).
		AllValue(".+").
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
}

// withID builds a panel with the given id (stable across generations).
type withID struct {
	cog.Builder[dashboard.Panel]
	id uint32
}

func (w withID) Build() (dashboard.Panel, error) {
	p, err := w.Builder.Build()
	p.Id = ptr(w.id)
	return p, err
}

type row struct {
	title  string
	panels []cog.Builder[dashboard.Panel]
}

func build() *dashboard.DashboardBuilder {
	b := dashboard.NewDashboardBuilder("gitgate").
		Uid("gitgate").
		Description("gitgate's gateway and Approach 2 service: availability, latency, routing, cost, sandboxes, dependencies and agent branches. Generated by internal/tools/grafana/dashgen.").
		Tags([]string{"gitgate"}).
		Readonly().
		Refresh("30s").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Data source").
			Type("prometheus")).
		WithVariable(queryVariable("job", "Job", "label_values(gitgate_operations_total, job)")).
		WithVariable(queryVariable("instance", "Instance", `label_values(gitgate_operations_total{job=~"$job"}, instance)`))
	id := uint32(0)
	for _, r := range rows() {
		id++
		b.WithRow(dashboard.NewRowBuilder(r.title).Id(id))
		for _, p := range r.panels {
			id++
			b.WithPanel(withID{p, id})
		}
	}
	return b
}

func rows() []row {
	return []row{
		{"Is it up?", []cog.Builder[dashboard.Panel]{
			floor(panel("MCP availability", "Share of the MCP endpoint's requests answered without a server error (the availability SLI; client errors count as served). The SLO is 99.5 %.", unitRatio, 8,
				t(`sum by (job) (rate(`+sel("gitgate_api_requests_total", `class!="server_error"`)+`[$__rate_interval])) / `+rate("job", "gitgate_api_requests_total"), "{{job}}")), 0.995, 0.99),
			panel("MCP requests by class", "Requests on the MCP endpoint by transport and class (ok, client_error, server_error).", unitReqs, 8,
				t(rate("transport, class", "gitgate_api_requests_total"), "{{transport}} {{class}}")),
			panel("Errors by category", "Operations that ended with an error, by category: client mistakes (invalid_argument, not_found, conflict...) and backend failures (unavailable, timeout, internal...).", unitPerSec, 8,
				t(rate("category", "gitgate_operations_total", `outcome="error"`), "{{category}}")),
			thresholds(panel("Backend failures by operation", "Share of each operation's calls that ended with a backend failure (rate_limited, resource_exhausted, unavailable, timeout, internal), whichever backend served them.", unitRatio, 12,
				t(rate("op", "gitgate_operations_total", backendFailure)+" / "+rate("op", "gitgate_operations_total"), "{{op}}")), 0.005, 0.05),
			panel("Workspaces lost, shelved and restored", "Workspaces whose sandbox was gone with no shelf to restore (lost: the agent clones again), shelved to storage, restored from it, and bindings recovered after a restart.", unitPerSec, 12,
				t(rate("backend, reason", "gitgate_workspaces_lost_total"), "lost {{backend}} {{reason}}"),
				t(rate("backend, outcome", "gitgate_workspaces_shelved_total"), "shelved {{backend}} {{outcome}}"),
				t(rate("backend, outcome", "gitgate_workspaces_restored_total"), "restored {{backend}} {{outcome}}"),
				t(rate("backend", "gitgate_bindings_recovered_total"), "bindings recovered {{backend}}")),
		}},
		{"Is it fast?", []cog.Builder[dashboard.Panel]{
			thresholds(panel("P50 by operation and backend", "Median duration of each operation, by the backend that served it.", unitSeconds, 8,
				t(quantile("0.5", "op, backend", "gitgate_operation_duration_seconds"), "{{op}} {{backend}}")), 1, 2),
			thresholds(panel("P95 by operation and backend", "95th percentile of each operation's duration by backend; the decision framework's limit is 2 s (GitgateOperationSlow).", unitSeconds, 8,
				t(quantile("0.95", "op, backend", "gitgate_operation_duration_seconds"), "{{op}} {{backend}}")), 1, 2),
			thresholds(panel("P99 by operation and backend", "99th percentile of each operation's duration by backend.", unitSeconds, 8,
				t(quantile("0.99", "op, backend", "gitgate_operation_duration_seconds"), "{{op}} {{backend}}")), 1, 2),
			thresholds(panel("Calls in flight by operation", "Calls under way per operation and instance; more than 10 at once for 5 minutes alerts (GitgateOperationConcurrencyHigh).", unitCount, 12,
				t(`max by (instance, op) (`+sel("gitgate_operations_in_flight")+`)`, "{{instance}} {{op}}")), 8, 10),
			panel("Git processes by operation", "git commands started per second, by backend and operation.", unitPerSec, 12,
				t(rate("backend, op", "gitgate_git_processes_total"), "{{backend}} {{op}}")),
			panel("Admission: slots taken and calls waiting", "Operations holding an admission slot and calls queued for one, per instance and backend (admission.slots bounds the first).", unitCount, 8,
				t(`max by (instance, backend) (`+sel("gitgate_admission_running")+`)`, "running {{instance}} {{backend}}"),
				t(`max by (instance, backend) (`+sel("gitgate_admission_waiting")+`)`, "waiting {{instance}} {{backend}}")),
			panel("Admission: wait for a slot", "P95 of the time calls waited for an admission slot, by backend; near admission.max_wait the process needs more CPU or replicas.", unitSeconds, 8,
				t(quantile("0.95", "backend", "gitgate_admission_wait_seconds"), "{{backend}}")),
			panel("Admission: calls refused at capacity", "Calls refused as unavailable having done nothing, by backend and reason (queue_full, wait, draining).", unitPerSec, 8,
				t(rate("backend, reason", "gitgate_admission_refused_total"), "{{backend}} {{reason}}")),
		}},
		{"Where does the traffic go?", []cog.Builder[dashboard.Panel]{
			panel("Calls by operation and backend", "Calls per second by operation and the backend that served them.", unitPerSec, 8,
				t(rate("op, backend", "gitgate_operations_total"), "{{op}} {{backend}}")),
			panel("Canary stage by operation", "Each operation's configured Approach 2 share, in percent (0, 10, 50, 100).", unitPercent, 8,
				t(`max by (op) (`+sel("gitgate_canary_stage")+`)`, "{{op}}")),
			panel("Approach 2 share, configured and effective", "Share of each operation's workspaces on Approach 2, as the flags configure it and as this gateway applies it (the kill switch, a local rollback or unusable flags make it 0).", unitRatio, 8,
				t(`max by (op, source) (`+sel("gitgate_route_share", `backend="approach2"`)+`)`, "{{op}} {{source}}")),
			panel("Shadow share and comparisons", "Share of calls shadowed (configured and effective), and shadow comparisons per second by outcome (match, mismatch, stale...).", unitRatio, 8,
				t(`max by (op, source) (`+sel("gitgate_shadow_share")+`)`, "share {{op}} {{source}}"),
				t(rate("op, outcome", "gitgate_shadow_comparisons_total"), "comparisons {{op}} {{outcome}}")),
			panel("Fallbacks by reason", "Calls that Approach 2 could not serve and Approach 1 served instead, by operation and reason.", unitPerSec, 8,
				t(rate("op, reason", "gitgate_fallbacks_total"), "{{op}} {{reason}}")),
			panel("Breakers", "Circuit breakers by backend and operation: 0 closed, 1 half open, 2 open; and breakers forced open by an operator or a drill (1).", unitCount, 8,
				t(`max by (backend, op) (`+sel("gitgate_breaker_state")+`)`, "state {{backend}} {{op}}"),
				t(`max by (op) (`+sel("gitgate_breaker_forced_open")+`)`, "forced open {{op}}")),
			panel("Kill switch, flags and drill", "The kill switch (1 on) by source, whether the flags are usable, local rollbacks, and whether a drill is under way on the gateway.", unitCount, 8,
				t(`max by (source) (`+sel("gitgate_kill_switch")+`)`, "kill switch {{source}}"),
				t(`min (`+sel("gitgate_flags_usable")+`)`, "flags usable"),
				t(`max by (op) (`+sel("gitgate_local_rollback")+`)`, "local rollback {{op}}"),
				t(`max (`+sel("gitgate_drill_active")+`)`, "drill active")),
			panel("Failsafes, rollbacks and ledger losses", "Flag evaluations that fell back to Approach 1, automatic rollbacks, and canary ledger entries dropped or not written.", unitPerSec, 8,
				t(rate("kind, reason", "gitgate_flags_failsafe_total"), "failsafe {{kind}} {{reason}}"),
				t(rate("op", "gitgate_auto_rollbacks_total"), "auto rollback {{op}}"),
				t(rate("job", "gitgate_ledger_dropped_total"), "ledger dropped"),
				t(rate("job", "gitgate_ledger_write_errors_total"), "ledger write errors")),
			panel("Kill-switch drill: age", "Time since the last passing drill (GitgateDrillNotPassing after 8 days) and since the last run; from the drill's textfile or Pushgateway job.", unitSeconds, 8,
				t(`time() - max(`+sel("gitgate_drill_last_success_timestamp_seconds")+`)`, "since last pass"),
				t(`time() - max(`+sel("gitgate_drill_last_run_timestamp_seconds")+`)`, "since last run")),
			panel("Kill-switch drill: time to effect", "Per gateway, of the last drill that changed anything: how soon each phase took effect (the drill fails above drill.max_time_to_effect, 5 s by default).", unitSeconds, 8,
				t(`max by (gateway, phase) (`+sel("gitgate_drill_time_to_effect_seconds")+`)`, "{{gateway}} {{phase}}")),
			panel("Kill-switch drill: result", "Whether the last drill passed (1), and per gateway the calls that still reached Approach 2 (residual) or failed during it.", unitCount, 8,
				t(`min(`+sel("gitgate_drill_last_passed")+`)`, "last passed"),
				t(`max by (gateway) (`+sel("gitgate_drill_residual_calls")+`)`, "residual {{gateway}}"),
				t(`max by (gateway) (`+sel("gitgate_drill_failed_calls")+`)`, "failed {{gateway}}")),
			panel("Kill-switch drill: runs", "Drill runs by verdict (pass, fail, aborted, refused, recovered), per second: one a week when the timer runs.", unitPerSec, 8,
				t(rate("verdict", "gitgate_drill_runs_total"), "{{verdict}}")),
		}},
		{"What does it cost?", []cog.Builder[dashboard.Panel]{
			panel("Cost per hour by operation", "Sandbox cost of each operation's commands, in USD per hour, by backend.", unitUSD, 8,
				t("3600 * "+rate("op, backend", "gitgate_sandbox_cost_usd_total"), "{{op}} {{backend}}")),
			panel("Cost per call by operation", "Sandbox cost per call, by operation and backend.", unitUSD, 8,
				t(rate("op, backend", "gitgate_sandbox_cost_usd_total")+" / "+rate("op, backend", "gitgate_operations_total"), "{{op}} {{backend}}")),
			panel("Sandbox time by operation", "Sandbox seconds per second used by each operation's commands.", unitSeconds, 8,
				t(rate("op, backend", "gitgate_sandbox_seconds_total"), "{{op}} {{backend}}")),
			panel("Cost per hour by project", "Sandbox cost attributed to each project (commands and sandbox lifetimes), in USD per hour.", unitUSD, 8,
				t("3600 * "+rate("project", "gitgate_project_cost_usd_total"), "{{project}}")),
			panel("Cost per hour per active agent", "A project's USD per hour divided by its agents with a call in the last 5 minutes (cost per concurrent user); and per agent where metrics.agent_labels is on.", unitUSD, 8,
				t("3600 * "+rate("project", "gitgate_project_cost_usd_total")+` / (sum by (project) (`+sel("gitgate_agents_active")+`) > 0)`, "per active agent {{project}}"),
				t("3600 * "+rate("project, agent", "gitgate_agent_cost_usd_total"), "{{project}} {{agent}}")),
			panel("Active agents by project", "Agents with a call in the last 5 minutes, by project.", unitCount, 8,
				t(`sum by (project) (`+sel("gitgate_agents_active")+`)`, "{{project}}")),
			panel("Month to date against budget", "Month-to-date spend, monthly limit and the linear forecast to month end, by project (_total: the overall budget).", unitUSD, 8,
				t(`max by (project) (`+sel("gitgate_budget_spent_usd")+`)`, "spent {{project}}"),
				t(`max by (project) (`+sel("gitgate_budget_limit_usd")+`)`, "limit {{project}}"),
				t(`max by (project) (`+sel("gitgate_budget_forecast_usd")+`)`, "forecast {{project}}")),
			thresholds(panel("Budget used", "Month-to-date spend over the limit; alerts at 75 % and 100 % (new sandboxes refused).", unitRatio, 8,
				t(`max by (project) (`+sel("gitgate_budget_used_ratio")+`)`, "{{project}}")), 0.75, 1),
			panel("Budget refusals and store errors", "Sandbox creations refused because the budget was spent, and failures of the shared budget store.", unitPerSec, 8,
				t(rate("project", "gitgate_budget_refusals_total"), "refused {{project}}"),
				t(rate("job", "gitgate_budget_store_errors_total"), "store errors")),
			panel("Failure recovery cost", "USD per hour spent on retries, fallbacks, re-clones of lost sandboxes and restores.", unitUSD, 12,
				t("3600 * "+rate("kind", "gitgate_recovery_cost_usd_total"), "{{kind}}")),
			panel("Failure recoveries", "Retries, fallbacks, re-clones and restores per second.", unitPerSec, 12,
				t(rate("kind", "gitgate_recovery_total"), "{{kind}}")),
		}},
		{"Sandboxes", []cog.Builder[dashboard.Panel]{
			panel("Active sandboxes", "Live sandboxes by provider.", unitCount, 8,
				t(`sum by (provider) (`+sel("gitgate_sandboxes_active")+`)`, "{{provider}}")),
			thresholds(panel("Sandbox creation time", "P50 and P95 of sandbox creation by provider (GitgateSandboxCreationSlow above 10 s).", unitSeconds, 8,
				t(quantile("0.5", "provider", "gitgate_sandbox_create_seconds"), "P50 {{provider}}"),
				t(quantile("0.95", "provider", "gitgate_sandbox_create_seconds"), "P95 {{provider}}")), 5, 10),
			panel("Sandbox creations by outcome", "Sandboxes created per second by provider and outcome.", unitPerSec, 8,
				t(rate("provider, outcome", "gitgate_sandbox_create_seconds_count"), "{{provider}} {{outcome}}")),
			panel("Sandbox reuse ratio", "Share of sandbox acquisitions that reused or adopted a live sandbox (managers of the gateway and the service), and the pool's warm share.", unitRatio, 8,
				t(rate("provider", "gitgate_sandbox_acquisitions_total", `source=~"reused|adopted"`)+" / "+rate("provider", "gitgate_sandbox_acquisitions_total"), "reuse {{provider}}"),
				t(rate("provider", "gitgate_pool_acquisitions_total", `source="warm"`)+" / "+rate("provider", "gitgate_pool_acquisitions_total"), "pool warm {{provider}}")),
			panel("Acquisitions by source", "Sandbox acquisitions per second by source: the managers' reused, adopted, created; the pool's warm, cold, error.", unitPerSec, 8,
				t(rate("provider, source", "gitgate_sandbox_acquisitions_total"), "manager {{provider}} {{source}}"),
				t(rate("provider, source", "gitgate_pool_acquisitions_total"), "pool {{provider}} {{source}}")),
			panel("Pool and queue", "Pool sandboxes by state (idle, bound) and callers waiting for one.", unitCount, 8,
				t(`sum by (provider, state) (`+sel("gitgate_pool_sandboxes")+`)`, "{{provider}} {{state}}"),
				t(`sum by (provider) (`+sel("gitgate_pool_queue_depth")+`)`, "queue {{provider}}")),
			panel("Pool acquire time", "P95 of the time to get a sandbox from the pool.", unitSeconds, 8,
				t(quantile("0.95", "job", "gitgate_pool_acquire_seconds"), "P95 {{job}}")),
			panel("Sandbox CPU", "CPU utilisation of live sandboxes (mean and max), sampled.", unitRatio, 8,
				t(`max by (provider, stat) (`+sel("gitgate_sandbox_cpu_utilization")+`)`, "{{provider}} {{stat}}")),
			panel("Sandbox memory", "Memory utilisation of live sandboxes (mean and max) and the memory they use in all.", unitRatio, 8,
				t(`max by (provider, stat) (`+sel("gitgate_sandbox_memory_utilization")+`)`, "{{provider}} {{stat}}")),
			panel("Sandbox memory used", "Memory used by all live sandboxes.", unitBytes, 12,
				t(`sum by (provider) (`+sel("gitgate_sandbox_memory_used_bytes")+`)`, "{{provider}}")),
			panel("Reaped, swept and preservation failures", "Idle sandboxes reaped, orphans swept, and sandboxes whose work could not be preserved before they went.", unitPerSec, 12,
				t(rate("provider", "gitgate_sandboxes_reaped_total"), "reaped {{provider}}"),
				t(rate("provider", "gitgate_sandboxes_swept_total"), "swept {{provider}}"),
				t(rate("provider", "gitgate_sandbox_preserve_failures_total"), "preserve failures {{provider}}")),
		}},
		{"Dependencies", []cog.Builder[dashboard.Panel]{
			panel("E2B calls by outcome", "E2B control-plane and envd calls per second by call and outcome (ok, error, rate_limited).", unitReqs, 8,
				t(rate("api, call, outcome", "gitgate_e2b_requests_total"), "{{api}} {{call}} {{outcome}}")),
			panel("E2B latency", "P95 of E2B calls by API and call.", unitSeconds, 8,
				t(quantile("0.95", "api, call", "gitgate_e2b_request_duration_seconds"), "{{api}} {{call}}")),
			panel("E2B sandbox time and spend", "E2B sandbox seconds per second and USD per hour.", unitUSD, 8,
				t("3600 * "+rate("job", "gitgate_e2b_cost_usd_total"), "USD per hour"),
				t(rate("job", "gitgate_e2b_sandbox_seconds_total"), "sandbox seconds per second")),
			panel("Redis: workspace lock wait", "P95 of the wait for a workspace's lock (Redis when configured, else in process), by backend.", unitSeconds, 8,
				t(quantile("0.95", "backend", "gitgate_lock_wait_seconds"), "{{backend}}")),
			panel("Redis: lock leases lost", "Workspace lock leases lost while a write held them, by event (expire: renewals late, Redis slow or the process starved of CPU; lost: the key gone or another holder's).", unitPerSec, 8,
				t(rate("event", "gitgate_lock_leases_lost_total"), "{{event}}")),
			panel("PostgreSQL: ledger and budget store errors", "Failures to write the canary ledger and to read or write the shared budget (PostgreSQL or Redis).", unitPerSec, 8,
				t(rate("job", "gitgate_ledger_write_errors_total"), "ledger {{job}}"),
				t(rate("job", "gitgate_budget_store_errors_total"), "budget store {{job}}")),
		}},
		{"Branches", []cog.Builder[dashboard.Panel]{
			panel("Pushes refused", "Agent pushes refused by the branch policy, by reason (protected branch, missing prefix).", unitPerSec, 6,
				t(rate("reason", "gitgate_branch_pushes_refused_total"), "{{reason}}")),
			panel("Branches deleted", "Agent branches deleted, by reason (merged, stale, agent's delete_branch).", unitPerSec, 6,
				t(rate("reason", "gitgate_branches_deleted_total"), "{{reason}}")),
			panel("Cleanup runs", "Branch cleanup runs per second by outcome (ok, error, dry_run).", unitPerSec, 6,
				t(rate("outcome", "gitgate_branch_cleanup_runs_total"), "{{outcome}}")),
			panel("Time since the last cleanup", "Seconds since the last branch cleanup run on each instance.", unitSeconds, 6,
				t(`time() - max by (instance) (`+sel("gitgate_branch_cleanup_last_run_timestamp_seconds")+`)`, "{{instance}}")),
		}},
		{"Git relay", []cog.Builder[dashboard.Panel]{
			panel("Relayed bytes by project", "Bytes per second the git relay carried between the sandboxes and the remotes, by project and direction (in: from the sandboxes, out: to them): each project's egress.", unitBytesPerSec, 12,
				t(rate("project, direction", "gitgate_relay_bytes_total"), "{{project}} {{direction}}")),
			panel("Relay refusals", "Relay requests refused on the wire (a push the policy forbids, a forced update, a fetch capability asked to push) or cut off at the size cap, by project and service.", unitPerSec, 12,
				t(rate("project, service", "gitgate_relay_refused_total"), "{{project}} {{service}}")),
		}},
	}
}
