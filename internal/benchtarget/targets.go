package benchtarget

// Targets are issue 17's performance targets and the figures reported
// beside them, in the order `make bench` prints them. Each benchmark
// reports its figure with b.ReportMetric under Metric.
var Targets = []Target{
	// The gateway (cmd/gitgate): an agent's status through MCP against
	// the identical git command run directly.
	{"BenchmarkStatusThroughput16", "gateway/direct", AtLeast, 0.90, "gateway status throughput at 16 agents / raw git"},
	{"BenchmarkStatusLatency", "added-median-µs", Below, 1000, "gateway status added median latency, µs"},

	// Approach 2's writes (backends/approach2): the full service (journal
	// in PostgreSQL, locks and bindings in Redis, gRPC) against the same
	// engine in process.
	{"BenchmarkThroughput32", "commit-approach2/approach1", AtLeast, 0.95, "Approach 2 / Approach 1 write_file+commit throughput, 32 agents"},
	{"BenchmarkThroughput32", "write_file-approach2/approach1", AtLeast, 0.95, "Approach 2 / Approach 1 write_file throughput, 32 agents"},
	{"BenchmarkThroughput32", "status-approach2/approach1", Info, 0, "Approach 2 / Approach 1 status throughput, 32 agents"},
}
