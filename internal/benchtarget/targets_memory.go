package benchtarget

// memoryTargets: resident memory of the gateway and the service processes.
var memoryTargets = []Target{}
