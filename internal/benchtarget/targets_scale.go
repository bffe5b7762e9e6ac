package benchtarget

import "strconv"

// scaleTargets: throughput and P95 at 1, 10, 50, 100 and 200 agents for
// both backends, through the gateway (cmd/gitgate BenchmarkScaleCurve):
// a curve, reported without targets.
var scaleTargets = scaleRows(1, 10, 50, 100, 200)

// scaleRows are BenchmarkScaleCurve's figures at each number of agents.
func scaleRows(points ...int) []Target {
	backends := []struct{ prefix, name string }{{"a1", "Approach 1 (embedded)"}, {"a2", "Approach 2 (service)"}}
	var out []Target
	for _, n := range points {
		at := strconv.Itoa(n)
		for _, b := range backends {
			p := b.prefix + "-" + at + "-"
			out = append(out,
				Target{"BenchmarkScaleCurve", p + "ops/s", Info, 0, b.name + " calls/s, " + at + " agents"},
				Target{"BenchmarkScaleCurve", p + "p95-ms", Info, 0, b.name + " P95 ms, " + at + " agents"},
				Target{"BenchmarkScaleCurve", p + "refused", Info, 0, b.name + " calls refused by admission control (retried), " + at + " agents"},
			)
		}
		out = append(out, Target{"BenchmarkScaleCurve", "a2/a1-" + at, Info, 0, "Approach 2 / Approach 1 throughput, " + at + " agents"})
	}
	return out
}
