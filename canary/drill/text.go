package drill

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// txtMissing stands for a figure a run does not have (a gateway that never
// applied the kill switch, a check that did not run).
const txtMissing = "—"

// Markdown is the run for the on-call engineer, on one screen: the verdict
// and its reasons first, then the figures per gateway, the breaker check,
// the restore check with its differences, the Approach 2 services' counts,
// the notes and the limits the run was judged by. A figure the run does
// not have prints as "—".
func Markdown(r Result) string {
	b := &strings.Builder{}
	fmt.Fprintf(b, "# gitgate drill %s: %s\n\n", r.ID, strings.ToUpper(string(r.Verdict)))
	for _, why := range r.Reasons {
		fmt.Fprintf(b, "- %s\n", txtInline(why))
	}
	if len(r.Reasons) > 0 {
		fmt.Fprintln(b)
	}
	fmt.Fprintf(b, "Started %s, took %s, by %s (%s).", txtTime(r.Start), txtDuration(r), txtOr(r.By), txtOr(r.Reason))
	if r.FlagSource != "" {
		fmt.Fprintf(b, " Flag source: %s", txtInline(r.FlagSource))
		if r.Revision != "" {
			fmt.Fprintf(b, " at revision %s", txtInline(r.Revision))
		}
		fmt.Fprint(b, ".")
	}
	fmt.Fprintln(b)

	fmt.Fprintf(b, "\n## Gateways\n\n")
	if r.Discovery != "" {
		fmt.Fprintf(b, "Discovered by DNS: %s.\n\n", txtInline(r.Discovery))
	}
	if len(r.Gateways) == 0 {
		fmt.Fprintf(b, "No gateway.\n")
	} else {
		fmt.Fprintf(b, "| gateway | following flag source | flip via flag source | flip via override | restore | first probe on approach1 | calls | failed | residual | probes on approach2 |\n")
		fmt.Fprintf(b, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, g := range r.Gateways {
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %d | %d | %d | %s |\n", txtInline(g.Name), txtYesNo(g.Following),
				txtMS(g.FlipSourceMS), txtMS(g.FlipOverrideMS), txtMS(g.RestoreMS), txtMS(g.ProbeMS),
				g.Calls, g.FailedCalls, g.ResidualCalls, txtProbes(g))
		}
		sep := "\n"
		for _, g := range r.Gateways {
			if g.Error != "" {
				fmt.Fprintf(b, "%s- %s: %s\n", sep, txtInline(g.Name), txtInline(g.Error))
				sep = ""
			}
		}
	}

	fmt.Fprintf(b, "\n## Breaker\n\n")
	if br := r.Breaker; br == nil {
		fmt.Fprintf(b, "Did not run.\n")
	} else {
		verdict := "**Failed**"
		if br.Passed {
			verdict = "Passed"
		}
		probes := "no probes (no drill agent, or no workspace routed to approach2)"
		if br.ProbeWorkspace != "" || br.Probes > 0 {
			probes = fmt.Sprintf("probes on workspace %s: %d, %d fell back to approach1, %d failed", txtOr(txtInline(br.ProbeWorkspace)), br.Probes, br.FellBack, br.Failures)
		}
		fmt.Fprintf(b, "%s: %s forced open on every gateway; %s; %d agents' calls failed meanwhile; released: %s.\n",
			verdict, txtInline(br.Op), probes, br.AgentFailures, txtYesNo(br.Released))
	}

	fmt.Fprintf(b, "\n## Restore\n\n")
	rs := r.Restore
	fmt.Fprintf(b, "Flag source byte-identical: %s. Gateways back to their state before: %s.\n", txtYesNo(rs.FlagSourceIdentical), txtYesNo(rs.GatewaysRestored))
	sep := "\n"
	for _, d := range rs.Differences {
		fmt.Fprintf(b, "%s- %s\n", sep, txtInline(d))
		sep = ""
	}

	if len(r.Services) > 0 {
		fmt.Fprintf(b, "\n## Approach 2 services\n\n| metrics | received while the kill switch was engaged | error |\n|---|---:|---|\n")
		for _, s := range r.Services {
			fmt.Fprintf(b, "| %s | %d | %s |\n", txtInline(s.Metrics), s.Received, txtOr(txtInline(s.Error)))
		}
	}

	if len(r.Notes) > 0 {
		fmt.Fprintf(b, "\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(b, "- %s\n", txtInline(n))
		}
	}

	l := r.Limits
	fmt.Fprintf(b, "\nLimits: time to effect %s, hold %s, stop above %s agents' errors (from %d calls).\n",
		txtLimitMS(l.MaxTimeToEffectMS), txtLimitMS(l.HoldMS), txtPercent(l.MaxErrorRate), l.MinCalls)
	return b.String()
}

// HistoryTable writes runs (newest first, as List returns them) as the
// table of `gitgate drill history`: one line each, with the slowest
// gateway's flip through the flag source, the agents' failed and residual
// calls summed over the gateways, and the first reason.
func HistoryTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tVERDICT\tSTART\tDURATION\tSLOWEST FLIP\tFAILED CALLS\tRESIDUAL\tREASON")
	for _, r := range rs {
		var failed, residual int64
		for _, g := range r.Gateways {
			failed += g.FailedCalls
			residual += g.ResidualCalls
		}
		reason := txtMissing
		if len(r.Reasons) > 0 {
			reason = txtOneLine(r.Reasons[0], 100)
		}
		start := txtMissing
		if !r.Start.IsZero() {
			start = r.Start.UTC().Format("2006-01-02 15:04Z")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", r.ID, r.Verdict, start, txtDuration(r), txtSlowestFlip(r), failed, residual, reason)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("drill history: %w", err)
	}
	return nil
}

// txtSlowestFlip is the slowest gateway's time from the flag source's change
// to its stop routing to Approach 2, with the gateway's name; a gateway
// that never stopped (no figure while another has one) is the slowest.
func txtSlowestFlip(r Result) string {
	var (
		slowest *GatewayResult
		never   []string
	)
	for i, g := range r.Gateways {
		switch {
		case g.FlipSourceMS == nil:
			never = append(never, g.Name)
		case slowest == nil || *g.FlipSourceMS > *slowest.FlipSourceMS:
			slowest = &r.Gateways[i]
		}
	}
	switch {
	case slowest == nil:
		return txtMissing
	case len(never) > 0:
		return "never (" + strings.Join(never, ", ") + ")"
	}
	return txtMS(slowest.FlipSourceMS) + " (" + slowest.Name + ")"
}

// txtMS prints a duration in milliseconds, or "—".
func txtMS(v *float64) string {
	if v == nil {
		return txtMissing
	}
	return txtLimitMS(*v)
}

func txtLimitMS(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

func txtPercent(v float64) string { return fmt.Sprintf("%.3g %%", v*100) }

func txtDuration(r Result) string {
	if r.Start.IsZero() || r.End.IsZero() || r.End.Before(r.Start) {
		return txtMissing
	}
	d := r.End.Sub(r.Start)
	if d < 10*time.Second {
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func txtTime(t time.Time) string {
	if t.IsZero() {
		return txtMissing
	}
	return t.UTC().Format(time.RFC3339)
}

func txtProbes(g GatewayResult) string {
	if g.Probes == 0 {
		return txtMissing
	}
	s := fmt.Sprintf("%d of %d", g.ProbesOnApproach2, g.Probes)
	if g.ProbeFailures > 0 {
		s += fmt.Sprintf(" (%d failed)", g.ProbeFailures)
	}
	return s
}

func txtYesNo(v bool) string {
	if v {
		return "yes"
	}
	return "**no**"
}

func txtOr(s string) string {
	if s == "" {
		return txtMissing
	}
	return s
}

// txtInline keeps s on one line and out of the table's structure.
func txtInline(s string) string {
	return strings.NewReplacer("|", "\\|", "\r\n", "; ", "\n", "; ").Replace(s)
}

// txtOneLine is s on one line, cut to at most n runes.
func txtOneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
