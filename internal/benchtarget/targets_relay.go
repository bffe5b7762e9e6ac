package benchtarget

// relayTargets: git's own clone and push through the relay
// (backends/relay) against git talking to the remote directly, on a
// 5,000-file repository.
var relayTargets = []Target{
	{"BenchmarkRelayThroughput", "clone-ratio", AtLeast, 0.9, "clone of a 5,000-file repository through the relay: throughput / direct"},
	{"BenchmarkRelayThroughput", "push-ratio", AtLeast, 0.9, "push of a 30-file commit to that repository through the relay: throughput / direct"},
	{"BenchmarkRelayThroughput", "clone-direct-ms", Info, 0, "clone, direct, median ms"},
	{"BenchmarkRelayThroughput", "clone-relay-ms", Info, 0, "clone, through the relay, median ms"},
	{"BenchmarkRelayThroughput", "push-direct-ms", Info, 0, "push, direct, median ms"},
	{"BenchmarkRelayThroughput", "push-relay-ms", Info, 0, "push, through the relay, median ms"},
}
