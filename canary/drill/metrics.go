package drill

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
)

// The drill's metrics (deploy/prometheus/gitgate-drill.rules.yml alerts on
// them). They are computed from the whole history each time, by the
// process that ran the drill, and exported as a textfile for
// node_exporter's textfile collector or pushed to a Pushgateway.
const (
	MetricLastRun       = "gitgate_drill_last_run_timestamp_seconds"
	MetricLastSuccess   = "gitgate_drill_last_success_timestamp_seconds"
	MetricLastPassed    = "gitgate_drill_last_passed"
	MetricRuns          = "gitgate_drill_runs_total"
	MetricTimeToEffect  = "gitgate_drill_time_to_effect_seconds"
	MetricResidualCalls = "gitgate_drill_residual_calls"
	MetricFailedCalls   = "gitgate_drill_failed_calls"
)

// The metrics' label names.
const (
	LabelVerdict = "verdict"
	LabelGateway = "gateway"
	LabelPhase   = "phase"
)

// EffectPhase is what a time to effect measures (MetricTimeToEffect's
// phase label).
type EffectPhase string

// The phases.
const (
	// EffectFlagSource: from the flag source's change to the gateway's
	// stop routing to Approach 2 (GatewayResult.FlipSourceMS).
	EffectFlagSource EffectPhase = "flag_source"
	// EffectOverride: the same for the admin override
	// (GatewayResult.FlipOverrideMS).
	EffectOverride EffectPhase = "override"
	// EffectRestore: from the restore to the gateway's applying the state
	// before again (GatewayResult.RestoreMS).
	EffectRestore EffectPhase = "restore"
)

// MetricsRegistry is a registry holding the drill's metrics computed from
// rs, the whole history (in any order; dry runs are left out: they change
// and prove nothing):
//
//   - MetricLastRun: when the last run ended (its start if it has no end);
//   - MetricLastSuccess: when the last passing run ended; absent when no
//     drill ever passed;
//   - MetricLastPassed: 1 if the last run passed, 0 if not;
//   - MetricRuns{verdict}: the runs in the history per verdict;
//   - per gateway of the last run that changed anything (passed, failed or
//     aborted): MetricTimeToEffect{gateway,phase} (absent for a phase the
//     gateway has no figure for), MetricResidualCalls{gateway} and
//     MetricFailedCalls{gateway}.
//
// With no run at all the registry holds no sample: the alert rule's
// absent() case is the one that speaks then.
func MetricsRegistry(rs []Result) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	sorted := make([]Result, 0, len(rs))
	for _, r := range rs {
		if r.Verdict != DryRun {
			sorted = append(sorted, r)
		}
	}
	SortNewestFirst(sorted)

	runs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRuns,
		Help: "Drill runs in the history, per verdict (pass, fail, aborted, refused, recovered); dry runs are not counted.",
	}, []string{LabelVerdict})
	reg.MustRegister(runs)
	for _, r := range sorted {
		runs.WithLabelValues(string(r.Verdict)).Inc()
	}

	last, ok := LastRun(sorted)
	if !ok {
		return reg
	}
	metricsGauge(reg, MetricLastRun, "When the last drill run ended (Unix time, seconds).", metricsUnixSeconds(last))
	passed := 0.0
	if last.Verdict.Passed() {
		passed = 1
	}
	metricsGauge(reg, MetricLastPassed, "1 if the last drill run passed, 0 if it did not.", passed)
	if lp, ok := historyLastWhere(sorted, func(r Result) bool { return r.Verdict.Passed() }); ok {
		metricsGauge(reg, MetricLastSuccess, "When the last passing drill ended (Unix time, seconds); absent when no drill ever passed.", metricsUnixSeconds(lp))
	}

	changed, ok := historyLastWhere(sorted, func(r Result) bool {
		return r.Verdict == Pass || r.Verdict == Fail || r.Verdict == Aborted
	})
	if !ok {
		return reg
	}
	tte := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricTimeToEffect,
		Help: "Per gateway, in the last drill that flipped the kill switch: seconds until the gateway stopped routing to Approach 2 after the flag source's change (phase flag_source) or the admin override (override), and until it applied the state before again after the restore (restore).",
	}, []string{LabelGateway, LabelPhase})
	residual := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricResidualCalls,
		Help: "Per gateway, in the last drill that flipped the kill switch: calls sent to Approach 2 after the gateway applied the kill switch and before the restore (must be 0).",
	}, []string{LabelGateway})
	failed := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricFailedCalls,
		Help: "Per gateway, in the last drill that flipped the kill switch: agents' calls that failed for a backend's reason between the flip and the end of the restore.",
	}, []string{LabelGateway})
	reg.MustRegister(tte, residual, failed)
	for _, g := range changed.Gateways {
		for _, p := range []struct {
			phase EffectPhase
			ms    *float64
		}{{EffectFlagSource, g.FlipSourceMS}, {EffectOverride, g.FlipOverrideMS}, {EffectRestore, g.RestoreMS}} {
			if p.ms != nil {
				tte.WithLabelValues(g.Name, string(p.phase)).Set(*p.ms / 1000)
			}
		}
		residual.WithLabelValues(g.Name).Set(float64(g.ResidualCalls))
		failed.WithLabelValues(g.Name).Set(float64(g.FailedCalls))
	}
	return reg
}

func metricsGauge(reg *prometheus.Registry, name, help string, v float64) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	g.Set(v)
	reg.MustRegister(g)
}

// metricsUnixSeconds is when r ended (when it started, if it has no end).
func metricsUnixSeconds(r Result) float64 {
	t := r.End
	if t.IsZero() {
		t = r.Start
	}
	return float64(t.UnixNano()) / float64(time.Second)
}

// WriteTextfile writes the metrics of rs (see MetricsRegistry) to path in
// Prometheus' text format, atomically (a temporary file renamed over it,
// 0o644), for node_exporter's textfile collector: path should be
// <collector directory>/gitgate_drill.prom.
func WriteTextfile(path string, rs []Result) error {
	if err := prometheus.WriteToTextfile(path, MetricsRegistry(rs)); err != nil {
		return fmt.Errorf("drill metrics: %w", err)
	}
	return nil
}

// Push sends the metrics of rs (see MetricsRegistry) to the Pushgateway at
// url under job, replacing every metric the group held before (HTTP PUT):
// a gauge that is absent now (no passing drill) must not stay from an
// earlier push. A user and password in url are sent as basic
// authentication and kept out of errors.
func Push(ctx context.Context, pushURL, job string, rs []Result) error {
	u, err := url.Parse(pushURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		// The error would quote the URL, and with it a password.
		return errors.New("drill metrics: push: the Pushgateway's URL must be like http://host:9091")
	}
	user := u.User
	u.User = nil
	p := push.New(u.String(), job)
	if user != nil {
		pass, _ := user.Password()
		p = p.BasicAuth(user.Username(), pass)
	}
	if err := p.Gatherer(MetricsRegistry(rs)).PushContext(ctx); err != nil {
		return fmt.Errorf("drill metrics: push to %s: %w", u, err)
	}
	return nil
}
