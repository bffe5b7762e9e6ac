// Package benchtarget holds the performance targets and judges Go benchmark
// output against them: each target names a benchmark and one of the
// metrics it reports (b.ReportMetric), how the value compares with the
// target, and what it means. `make bench` pipes `go test -bench` output
// through benchcheck, which prints one line per target.
package benchtarget

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Cmp says how a measured value is judged against its target.
type Cmp string

// The comparisons.
const (
	AtLeast Cmp = ">=" // met when value >= target
	Below   Cmp = "<"  // met when value < target
	AtMost  Cmp = "<=" // met when value <= target
	Info    Cmp = ""   // reported, no target (a scale curve's points)
)

// Target is one measured figure and what it must be.
type Target struct {
	Benchmark string  // the benchmark's name without -GOMAXPROCS, e.g. BenchmarkThroughput32
	Metric    string  // the unit it reports the figure under
	Cmp       Cmp     // how the figure is judged
	Value     float64 // the target (unused for Info)
	What      string  // what the figure is, for the line printed
}

// Result is one benchmark result line: its name and metrics by unit.
type Result struct {
	Benchmark string
	Metrics   map[string]float64
}

var (
	benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)
	// A log line written while a benchmark ran can split its result line:
	// the name ends one line, the figures start a later one.
	benchName    = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s`)
	benchFigures = regexp.MustCompile(`^\s*\d+\s+(\S+ ns/op.*)$`)
)

// Parse reads `go test -bench` output and returns its result lines in
// order, copying everything it reads to raw (if not nil).
func Parse(r io.Reader, raw io.Writer) ([]Result, error) {
	var out []Result
	pending := "" // a benchmark whose figures are still to come
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if raw != nil {
			if _, err := fmt.Fprintln(raw, line); err != nil {
				return nil, err
			}
		}
		var name, figures string
		if m := benchLine.FindStringSubmatch(line); m != nil {
			name, figures = m[1], m[2]
		} else if m := benchFigures.FindStringSubmatch(line); m != nil && pending != "" {
			name, figures = pending, m[1]
		} else {
			if m := benchName.FindStringSubmatch(line); m != nil {
				pending = m[1]
			}
			continue
		}
		pending = ""
		res := Result{Benchmark: name, Metrics: map[string]float64{}}
		f := strings.Fields(figures)
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			res.Metrics[f[i+1]] = v
		}
		out = append(out, res)
	}
	return out, sc.Err()
}

// Verdict is a target judged against a result.
type Verdict struct {
	Target
	Found bool    // the benchmark ran and reported the metric
	Got   float64 // the figure
	Met   bool    // the figure meets the target (false for Info)
}

// Line is the verdict in one line: the state, the figure against its
// target, and what it is.
func (v Verdict) Line() string {
	state := "MISSED"
	switch {
	case !v.Found:
		return fmt.Sprintf("%-7s %-30s %s (%s %s: not reported)", "ABSENT", "", v.What, v.Benchmark, v.Metric)
	case v.Cmp == Info:
		state = "info"
	case v.Met:
		state = "met"
	}
	fig := fmt.Sprintf("%.3g", v.Got)
	if v.Cmp != Info {
		fig = fmt.Sprintf("%.3g (target %s %.3g)", v.Got, v.Cmp, v.Value)
	}
	return fmt.Sprintf("%-7s %-30s %s", state, fig, v.What)
}

// Judge returns a verdict for every target whose benchmark appears in
// results (the last result of a benchmark counts), in the targets' order;
// targets of benchmarks that did not run are left out unless all is true,
// when they are returned as not found.
func Judge(targets []Target, results []Result, all bool) []Verdict {
	last := map[string]Result{}
	for _, r := range results {
		last[r.Benchmark] = r
	}
	var out []Verdict
	for _, t := range targets {
		r, ran := last[t.Benchmark]
		if !ran && !all {
			continue
		}
		v := Verdict{Target: t}
		v.Got, v.Found = r.Metrics[t.Metric]
		switch {
		case !v.Found:
		case t.Cmp == AtLeast:
			v.Met = v.Got >= t.Value
		case t.Cmp == Below:
			v.Met = v.Got < t.Value
		case t.Cmp == AtMost:
			v.Met = v.Got <= t.Value
		}
		out = append(out, v)
	}
	return out
}
