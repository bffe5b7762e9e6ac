package benchtarget

import "slices"

// Targets are issue 17's performance targets and the figures reported
// beside them, in the order `make bench` prints them. Each benchmark
// reports its figure with b.ReportMetric under Metric. Each area keeps its
// rows in its own file.
var Targets = slices.Concat(gatewayTargets, approach2Targets, e2bTargets, memoryTargets, scaleTargets, relayTargets)

// gatewayTargets: an agent's status through MCP against the identical git
// command run directly (cmd/gitgate).
var gatewayTargets = []Target{
	{"BenchmarkStatusThroughput16", "gateway/direct", AtLeast, 0.90, "gateway status throughput at 16 agents / raw git"},
	{"BenchmarkStatusLatency", "added-median-µs", Below, 1000, "gateway status added median latency, µs"},
}

// approach2Targets: the full service (journal in PostgreSQL, locks and
// bindings in Redis, gRPC) against the same engine in process
// (backends/approach2).
// Approach 1 is measured as the gateway embeds it beside the service (the
// same journal and Redis, in process) and, for the writes, standalone
// (files only).
var approach2Targets = []Target{
	{"BenchmarkThroughput32", "commit-approach2/approach1", AtLeast, 0.95, "Approach 2 / Approach 1 (beside it) write_file+commit throughput, 32 agents"},
	{"BenchmarkThroughput32", "write_file-approach2/approach1", AtLeast, 0.95, "Approach 2 / Approach 1 (beside it) write_file throughput, 32 agents"},
	{"BenchmarkThroughput32", "commit-approach2/approach1-standalone", AtLeast, 0.95, "Approach 2 / Approach 1 (standalone, files) write_file+commit throughput, 32 agents"},
	{"BenchmarkThroughput32", "write_file-approach2/approach1-standalone", AtLeast, 0.95, "Approach 2 / Approach 1 (standalone, files) write_file throughput, 32 agents"},
	{"BenchmarkThroughput32", "status-approach2/approach1", Info, 0, "Approach 2 / Approach 1 (beside it) status throughput, 32 agents"},
}
