package benchtarget

// memoryTargets: resident memory (VmRSS) of the real gitgate binary as its
// own processes, idle and at its peak under 100 agents each working in its
// own workspace (cmd/gitgate BenchmarkMemory).
var memoryTargets = []Target{
	{"BenchmarkMemory", "gateway-idle-MB", Below, 50, "gateway (Approach 1 embedded) RSS idle, MB"},
	{"BenchmarkMemory", "gateway-100-agents-MB", Below, 200, "gateway (Approach 1 embedded) peak RSS, 100 agents, MB"},
	{"BenchmarkMemory", "service-idle-MB", Below, 50, "Approach 2 service RSS idle, MB"},
	{"BenchmarkMemory", "service-100-agents-MB", Below, 200, "Approach 2 service peak RSS, 100 agents, MB"},
	{"BenchmarkMemory", "gateway-a2-idle-MB", Info, 0, "gateway in front of Approach 2, RSS idle, MB"},
	{"BenchmarkMemory", "gateway-a2-100-agents-MB", Info, 0, "gateway in front of Approach 2, peak RSS, 100 agents, MB"},
}
