// Package gateway is the front of gitgate: the router that sends each call to
// the backend the canary flags choose for its operation and workspace,
// through a circuit breaker per operation when that is Approach 2, falling
// back to Approach 1 where that cannot apply a write twice; the shadowing
// of a share of calls on the other backend (reads mirrored, writes
// predicted); the metrics every call records; and the agent directory that
// maps credentials to principals. The MCP endpoint (gateway/mcpserver) and
// the admin listener (gateway/admin) sit on top of it.
package gateway
