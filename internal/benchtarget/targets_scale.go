package benchtarget

// scaleTargets: throughput and P95 at 1, 10, 50, 100 and 200 agents for
// both backends.
var scaleTargets = []Target{}
