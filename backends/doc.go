// Package backends declares the one git-operation interface that every gitgate
// backend implements: the operations and their read/write table, typed requests
// and results, and categorised errors.
//
// The gateway talks to backends only through [Executor]; Approach 1 (the
// embedded executor in backends/approach1) and Approach 2 (the gRPC service)
// implement it. This package imports neither of them, and nothing under
// backends/ imports the gateway.
package backends
