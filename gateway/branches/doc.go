// Package branches keeps agents' branches in order: the branch policy
// (protected branches agents may not push to, an optional required prefix),
// the record of the branches gitgate pushed for agents, and the cleanup that
// deletes them from the remote once merged or stale, each deletion recorded
// so that it can be restored.
//
// The policy is enforced by Guard, an executor in front of the router, so
// that it holds whichever backend serves a push. Remote work (the remote's
// default branch, its heads, deletions and restores) runs git on the host
// with the project's token (Git), through gitcmd's hardened invocations.
package branches
