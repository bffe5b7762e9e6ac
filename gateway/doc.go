// Package gateway is the front of gitgate: the router that sends each call to
// a backend (today always Approach 1; per-operation canary routing comes
// later), the metrics every call records, and the agent directory that maps
// credentials to principals. The MCP endpoint (gateway/mcpserver) and the
// admin listener (gateway/admin) sit on top of it.
package gateway
