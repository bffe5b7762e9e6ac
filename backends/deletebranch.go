package backends

// DeleteBranchRequest deletes a local branch of the workspace, and with
// Remote (the default for agents: [NewRequest] and the MCP tool start
// from true) the same branch on the remote. Backends delete the local
// branch only and ignore Remote: the remote's branch is the gateway's
// business (gateway/branches), which deletes only a branch gitgate pushed
// for the agent and records the deletion so that it can be restored.
type DeleteBranchRequest struct {
	Scope
	Branch string `json:"branch" jsonschema:"the local branch to delete (never the checked-out one)"`
	Remote bool   `json:"remote,omitempty" jsonschema:"also delete the branch on the remote (default true): allowed only for a branch gitgate pushed for you, never a protected one or one with commits you did not push; the deletion is recorded and an operator can restore it. false deletes only the local branch"`
}

// DeleteBranchResult reports a deleted branch.
type DeleteBranchResult struct {
	Served
	Branch string `json:"branch"`
	// Local is true when the local branch was deleted; false when the
	// workspace had none (only a remote deletion was asked for then).
	Local bool   `json:"local" jsonschema:"true when the local branch was deleted (false: the workspace had no such branch)"`
	Head  string `json:"head,omitempty" jsonschema:"the commit the local branch pointed to"`
	// Remote and RestoreID are set by the gateway (gateway/branches), never
	// by a backend.
	Remote    bool   `json:"remote,omitempty" jsonschema:"true when the branch was deleted from the remote"`
	RestoreID string `json:"restore_id,omitempty" jsonschema:"the record of the remote deletion: an operator restores the branch with gitgate branches restore <restore_id>"`
}

// Op implements Request.
func (*DeleteBranchRequest) Op() Op { return OpDeleteBranch }
