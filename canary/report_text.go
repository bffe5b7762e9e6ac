package canary

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteJSON writes the report's JSON form (README, "gitgate report").
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMarkdown writes the report for a terminal, a pull request or a
// chat message.
func (r *Report) WriteMarkdown(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "# gitgate canary report\n\n")
	fmt.Fprintf(b, "%s to %s (%s). Ledger: %s.\n\n", r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339), span(r.Until.Sub(r.Since)), r.Source)

	d := r.Decision
	fmt.Fprintf(b, "## Decision: %s\n\n", strings.ToUpper(string(d.Verdict)))
	for _, why := range d.Reasons {
		fmt.Fprintf(b, "- %s\n", mdEscape(why))
	}
	fmt.Fprintf(b, "\nSignals from approach1's own calls, per whole week (%d weeks):\n\n", len(d.Weeks))
	fmt.Fprintf(b, "| signal | threshold | latest | weeks over | calls for migration |\n|---|---|---|---|---|\n")
	for _, s := range d.Signals {
		over := fmt.Sprint(s.WeeksExceeded)
		if s.Name == SignalCostGrowth || s.Name == SignalErrorTrend {
			over = "trend: " + s.Note
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", s.Name, signalValue(s.Name, s.Threshold), signalValue(s.Name, s.Value), mdEscape(over), yesNo(s.Exceeded))
	}

	fmt.Fprintf(b, "\n## Operations\n\n")
	fmt.Fprintf(b, "| op | stage | verdict | calls a1 / a2 | errors a1 / a2 | P95 a1 / a2 | mismatches | cost/op a1 / a2 |\n|---|---|---|---|---|---|---|---|\n")
	for _, o := range r.Operations {
		a1, a2 := o.Approach1, o.Approach2
		fmt.Fprintf(b, "| %s | %d%% | **%s** | %d / %d | %s / %s | %s / %s | %d of %d | %s / %s |\n", o.Op, o.Stage, o.Verdict,
			a1.Calls, a2.Calls, pct(a1.ErrorRate), pct(a2.ErrorRate), msec(a1.P95), msec(a2.P95),
			o.Shadow.Mismatch, o.Shadow.Compared, usd(a1.CostPerOp), usd(a2.CostPerOp))
	}
	if note := r.drillNote(); note != "" {
		fmt.Fprintf(b, "\n%s\n", mdEscape(note))
	}
	for _, o := range r.Operations {
		if o.Verdict == VerdictIdle && o.Approach1.Calls == 0 {
			continue
		}
		fmt.Fprintf(b, "\n### %s: %s\n\n", o.Op, o.Verdict)
		if !o.Since.IsZero() {
			fmt.Fprintf(b, "Stage %d%% since %s (%s).", o.Stage, o.Since.Format(time.RFC3339), span(time.Duration(o.TimeInStage*float64(time.Second))))
		}
		if o.Baseline != "" {
			fmt.Fprintf(b, " Baseline: %s.", o.Baseline)
		}
		fmt.Fprintln(b)
		fmt.Fprintln(b)
		for _, why := range o.Reasons {
			fmt.Fprintf(b, "- %s\n", mdEscape(why))
		}
		fmt.Fprintf(b, "\n| backend | calls | failures | fell back | error rate (interval) | P50 | P95 | P99 | cost/op |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, row := range []struct {
			name string
			s    BackendSummary
		}{{"approach1", o.Approach1}, {"approach2", o.Approach2}} {
			s := row.s
			fmt.Fprintf(b, "| %s | %d | %d | %d | %s (%s–%s) | %s | %s | %s | %s |\n", row.name, s.Calls, s.Failures, s.FellBack,
				pct(s.ErrorRate), pct(s.ErrorCI[0]), pct(s.ErrorCI[1]), msec(s.P50), msec(s.P95), msec(s.P99), usd(s.CostPerOp))
		}
		sh := o.Shadow
		fmt.Fprintf(b, "\nShadow: %d compared, %d mismatched (%s, interval %s–%s); %d stale, %d unfinished, %d skipped.\n",
			sh.Compared, sh.Mismatch, pct(sh.MismatchRate), pct(sh.MismatchCI[0]), pct(sh.MismatchCI[1]), sh.Stale, sh.Unfinished, sh.Skipped)
		for _, ex := range sh.Examples {
			fmt.Fprintf(b, "\n```\n%s\n```\n", strings.ReplaceAll(ex, "```", "'''"))
		}
		fmt.Fprintf(b, "\n| test | approach1 | approach2 | bounds a1 | bounds a2 | floor | result |\n|---|---|---|---|---|---|---|\n")
		for _, t := range o.Tests {
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n", t.Metric, testValue(t.Metric, t.Approach1), testValue(t.Metric, t.Approach2),
				bounds(t.Metric, t.A1Bounds), bounds(t.Metric, t.A2Bounds), floorValue(t.Metric, t.Floor), t.Result)
		}
	}

	fmt.Fprintf(b, "\n## Timeline\n\n")
	if len(r.Timeline) == 0 {
		fmt.Fprintf(b, "No stage changes, rollbacks, kill switches or drills in the period.\n")
	}
	for _, e := range r.Timeline {
		op := string(e.Op)
		if op == "" {
			op = "every operation"
		}
		fmt.Fprintf(b, "- %s %s (%s): %s\n", e.At.Format(time.RFC3339), op, e.Kind, mdEscape(e.What))
	}

	j := r.Settings.Judge
	fmt.Fprintf(b, "\n## How this was judged\n\n")
	fmt.Fprintf(b, "Every call is judged, not hourly averages. Bounds are anytime-valid confidence sequences, so this report, "+
		"`gitgate canary advance` and the automatic rollback may look as often as they like: the chance that a stage no worse than "+
		"approach1 is ever judged `rollback` is at most %s per operation and stage, and the chance that a worse one is judged "+
		"`advance` at most %s. A difference counts only beyond its floor: error rate %s points or %.0f%% of approach1's; "+
		"latency %s or %.0f%% of approach1's quantile. Shadow mismatches may reach %s; cost per operation %.1f× approach1's. "+
		"At least %d approach2 calls before advancing.\n",
		pct(j.FalseAlarmRate), pct(j.MissRate), trim(100*j.ErrorFloor.Abs), 100*j.ErrorFloor.Rel, msec(j.LatencyFloor.Abs), 100*j.LatencyFloor.Rel,
		pct(j.MaxMismatchRate), j.MaxCostRatio, j.MinCalls)
	_, err := io.WriteString(w, b.String())
	return err
}

// drillNote says how many drills the ledger holds and how many calls
// they marked, left out of the analysis (per operation); "" when none.
func (r *Report) drillNote() string {
	if len(r.Drills) == 0 && r.DrillCalls == 0 {
		return ""
	}
	note := fmt.Sprintf("Kill-switch drills: %d in the period (see the timeline).", len(r.Drills))
	if r.DrillCalls == 0 {
		return note + " No calls were marked as drill calls."
	}
	var per []string
	for _, o := range r.Operations {
		if o.DrillCalls > 0 {
			per = append(per, fmt.Sprintf("%s %d", o.Op, o.DrillCalls))
		}
	}
	return fmt.Sprintf("%s %d calls made during drills were excluded from every judgement, baseline, chart and signal (%s).",
		note, r.DrillCalls, strings.Join(per, ", "))
}

func span(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	case d >= time.Hour:
		return fmt.Sprintf("%.1f hours", d.Hours())
	default:
		return d.Round(time.Second).String()
	}
}

func trim(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

func yesNo(b bool) string {
	if b {
		return "**yes**"
	}
	return "no"
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", "; ").Replace(s)
}

func signalValue(name string, v float64) string { return formatSignal(name, v) }

func testValue(metric string, v float64) string {
	switch {
	case strings.HasPrefix(metric, "latency"):
		return msec(v)
	case metric == "cost_per_op_usd":
		return usd(v)
	default:
		return pct(v)
	}
}

// floorValue is a test's floor: a ratio for cost, a limit for
// mismatches, a difference otherwise.
func floorValue(metric string, v float64) string {
	switch {
	case metric == "cost_per_op_usd":
		return fmt.Sprintf("%.1f×", v)
	case metric == "error_rate":
		return "+" + pts(v)
	case strings.HasPrefix(metric, "latency"):
		return "+" + msec(v)
	}
	return testValue(metric, v)
}

func bounds(metric string, b [2]float64) string {
	if b == [2]float64{} {
		return "–"
	}
	hi := testValue(metric, b[1])
	if b[1] == 0 && strings.HasPrefix(metric, "latency") {
		hi = "unbounded"
	}
	return testValue(metric, b[0]) + " – " + hi
}
