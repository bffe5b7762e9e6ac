package benchtarget

// e2bTargets: both backends on the E2B stand-in with network latency and
// sandbox creation time (backends/sandbox/e2b).
var e2bTargets = []Target{}
