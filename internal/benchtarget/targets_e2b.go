package benchtarget

// e2bTargets: both backends on the E2B stand-in with network latency and
// sandbox creation time (backends/sandbox/e2b, e2bfake.DefaultLatency and
// DefaultCreateDelay).
var e2bTargets = append([]Target{
	{"BenchmarkE2BFirstOperation", "cold/warm", AtLeast, 5, "first operation (clone of a 5,000-file project) on a new project: Approach 1 cold / Approach 2 warm seeded pool latency"},
	{"BenchmarkE2BFirstOperation", "a1-cold-first-ms", Info, 0, "Approach 1 first clone of the project, sandbox created cold, median ms"},
	{"BenchmarkE2BFirstOperation", "a2-warm-first-ms", Info, 0, "Approach 2 first clone of the project, warm seeded sandbox, median ms"},
	{"BenchmarkE2BFirstOperation", "a1-cold-first-rtts", Info, 0, "Approach 1 first clone of the project, sequential round trips to E2B"},
	{"BenchmarkE2BFirstOperation", "demo-cold/warm", Info, 0, "the same on the 3-file demo repository (round trips and creation only): cold / warm"},
	{"BenchmarkE2BFirstOperation", "demo-a1-cold-first-ms", Info, 0, "Approach 1 first clone of the demo repository, cold, median ms"},
	{"BenchmarkE2BFirstOperation", "demo-a2-warm-first-ms", Info, 0, "Approach 2 first clone of the demo repository, warm seeded, median ms"},
	{"BenchmarkE2BFirstOperation", "demo-a1-cold-first-rtts", Info, 0, "Approach 1 first clone of the demo repository, sequential round trips to E2B"},
	{"BenchmarkE2BRoundTrips", "worst-rtt-over-git", AtMost, 0, "worst over operations: round trips on the critical path - git processes (min 1)"},
}, e2bOpRows("status", "write_file", "commit", "push", "clone", "diff", "log")...)

// e2bOpRows are the per-operation figures of BenchmarkE2BRoundTrips.
func e2bOpRows(ops ...string) []Target {
	var out []Target
	for _, op := range ops {
		out = append(out,
			Target{"BenchmarkE2BRoundTrips", op + "-rtts", Info, 0, op + ": sequential round trips to E2B (Approach 1)"},
			Target{"BenchmarkE2BRoundTrips", op + "-envd-requests", Info, 0, op + ": requests to envd"},
			Target{"BenchmarkE2BRoundTrips", op + "-api-requests", Info, 0, op + ": requests to the E2B API"},
			Target{"BenchmarkE2BRoundTrips", op + "-git-processes", Info, 0, op + ": git processes"},
			Target{"BenchmarkE2BRoundTrips", op + "-other-processes", Info, 0, op + ": other processes in the sandbox"},
			Target{"BenchmarkE2BRoundTrips", "a1-" + op + "-ms", Info, 0, op + ": Approach 1 median ms"},
			Target{"BenchmarkE2BRoundTrips", "a2-" + op + "-ms", Info, 0, op + ": Approach 2 median ms"},
		)
	}
	return out
}
