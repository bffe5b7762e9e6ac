// Package relay is a git smart-HTTP relay that keeps a project's git token
// out of the sandboxes: git in a sandbox talks to the relay with a
// capability, and the relay forwards to the workspace's real remote,
// adding the token on the way out.
//
// A capability is minted by the gateway (or the Approach 2 service) for
// one remote operation: it is bound to the project, the workspace, the
// recorded remote URL, a direction (fetch or push), optionally the refs a
// push may update, and a short expiry; it is revoked when the operation
// ends, and stored only as a hash (Store: in memory, or Redis for a fleet,
// so that any replica can relay any operation). A capability seen after
// its operation is worthless.
//
// Policy is enforced on the wire, where nothing in the sandbox can bypass
// it: a fetch capability cannot push (403); a push's ref updates are read
// from the receive-pack request before anything is forwarded and refused
// (403, the remote unchanged) when they delete a ref, name a ref the
// capability does not allow, or break the branch policy the relay is given;
// transfers are capped while they stream, and every ref update and byte
// count is reported.
//
// A branch update must be a fast-forward: the relay reads the commits of
// the pushed pack (pack.go) and, when they do not show it, the remote's
// commit graph (ancestry.go); an existing tag is never moved.
//
// The engine (backends/approach1) mints a capability for each remote
// command and points git at the relay (gitcmd.Remote.Relay); cmd/gitgate
// starts the relay's listener (the relay section).
package relay
