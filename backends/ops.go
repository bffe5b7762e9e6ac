package backends

import "fmt"

// Op names one operation of the interface. The name is also the MCP tool name
// and the value of the "op" label in metrics.
type Op string

// The operations of the interface.
const (
	OpClone            Op = "clone"
	OpPull             Op = "pull"
	OpPush             Op = "push"
	OpStatus           Op = "status"
	OpDiff             Op = "diff"
	OpLog              Op = "log"
	OpBranches         Op = "branches"
	OpCheckout         Op = "checkout"
	OpCommit           Op = "commit"
	OpReadFile         Op = "read_file"
	OpWriteFile        Op = "write_file"
	OpListFiles        Op = "list_files"
	OpDeleteFile       Op = "delete_file"
	OpDeleteBranch     Op = "delete_branch"
	OpListWorkspaces   Op = "list_workspaces"
	OpReleaseWorkspace Op = "release_workspace"
	OpFetch            Op = "fetch"
	OpShow             Op = "show"
	OpBlame            Op = "blame"
	OpTags             Op = "tags"
	OpReflog           Op = "reflog"
	OpStashes          Op = "stashes"
	OpMerge            Op = "merge"
	OpRebase           Op = "rebase"
	OpCherryPick       Op = "cherry_pick"
	OpRevert           Op = "revert"
	OpReset            Op = "reset"
	OpRestore          Op = "restore"
	OpStash            Op = "stash"
	OpTag              Op = "tag"
	OpMarkResolved     Op = "mark_resolved"
	OpContinue         Op = "continue"
	OpAbort            Op = "abort"
	OpForkWorkspace    Op = "fork_workspace"
)

// Kind says whether an operation only reads or may change state. Reads may be
// mirrored to a shadow backend and retried on another backend; writes may not.
type Kind int

// The two kinds.
const (
	Read Kind = iota + 1
	Write
)

// String returns "read" or "write".
func (k Kind) String() string {
	switch k {
	case Read:
		return "read"
	case Write:
		return "write"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Settle says what the exactly-once layer does with a write that started
// and ended without an answer it can trust (its holder died, its lock was
// lost, it timed out).
type Settle int

// The ways a started write is settled.
const (
	// SettleUnknown records the outcome as unknown: running the write again
	// could apply it twice (a commit, a clone). Every write that is neither
	// idempotent nor settled by the remote, so a new write is safe until
	// its table entry says otherwise.
	SettleUnknown Settle = iota
	// SettleRerun runs it again: it is idempotent by nature (OpInfo.Idempotent:
	// checkout, writing the same content).
	SettleRerun
	// SettleByRemote reads the remote, where the write lands atomically or
	// not at all (push); it is never stopped part-way by a lost lock.
	SettleByRemote
)

// OpInfo describes one operation. The table of OpInfo values (see [Ops]) is
// the single place that declares operations: their request and result
// types, how they are classified (MCP annotations, shadowing, fallback) and
// how a started write is settled all come from it.
type OpInfo struct {
	Op   Op
	Kind Kind
	// Destructive is true when the operation can discard data the agent
	// cannot get back (overwrite or delete a file, drop a workspace).
	Destructive bool
	// Idempotent is true when repeating the call with the same arguments has
	// no further effect.
	Idempotent bool
	// Remote is true when the operation talks to the git remote.
	Remote bool
	// Progress is true when the operation reports progress while it runs.
	Progress bool
	// Title is a short human-readable name.
	Title string
	// Summary is the one-line description shown to agents.
	Summary string
	// SettledByRemote is true for a write that lands on the remote
	// atomically or not at all (push): a started one whose outcome is not
	// known is settled by what the remote shows (see Op.Settle).
	SettledByRemote bool
	// CreatesWorkspace is true for a write that makes the scope's
	// workspace (clone, fork_workspace): one interrupted before it
	// finished leaves no workspace (the engine removes a half-made one),
	// so it is settled as failed, not as unknown.
	CreatesWorkspace bool

	newRequest func() Request
	newResult  func() Result
}

var opTable = []OpInfo{
	{Op: OpClone, CreatesWorkspace: true, newRequest: func() Request { return &CloneRequest{} }, newResult: func() Result { return &CloneResult{} },
		Kind: Write, Remote: true, Progress: true, Title: "Clone repository",
		Summary: "Clone a repository into a new workspace of your project."},
	{Op: OpPull, newRequest: func() Request { return &PullRequest{} }, newResult: func() Result { return &PullResult{} },
		Kind: Write, Remote: true, Progress: true, Title: "Pull",
		Summary: "Fetch the current branch's upstream and integrate it (fast-forward only unless mode is merge)."},
	{Op: OpPush, SettledByRemote: true, newRequest: func() Request { return &PushRequest{} }, newResult: func() Result { return &PushResult{} },
		Kind: Write, Remote: true, Progress: true, Title: "Push branch",
		Summary: "Push a local branch to the workspace's remote (never forced) and set it as upstream."},
	{Op: OpStatus, newRequest: func() Request { return &StatusRequest{} }, newResult: func() Result { return &StatusResult{} },
		Kind: Read, Idempotent: true, Title: "Status",
		Summary: "Show the current branch, its upstream, ahead/behind counts and changed files."},
	{Op: OpDiff, newRequest: func() Request { return &DiffRequest{} }, newResult: func() Result { return &DiffResult{} },
		Kind: Read, Idempotent: true, Title: "Diff",
		Summary: "Show changes of the work tree (or the index, or against a ref) as a unified diff, paged."},
	{Op: OpLog, newRequest: func() Request { return &LogRequest{} }, newResult: func() Result { return &LogResult{} },
		Kind: Read, Idempotent: true, Title: "Log",
		Summary: "List commits reachable from a ref (default HEAD), newest first, paged."},
	{Op: OpBranches, newRequest: func() Request { return &BranchesRequest{} }, newResult: func() Result { return &BranchesResult{} },
		Kind: Read, Idempotent: true, Title: "Branches",
		Summary: "List local branches (and remote-tracking branches when asked) with their tips."},
	{Op: OpCheckout, newRequest: func() Request { return &CheckoutRequest{} }, newResult: func() Result { return &CheckoutResult{} },
		Kind: Write, Idempotent: true, Title: "Checkout branch",
		Summary: "Switch to a branch, or create it (from the current HEAD or a start point) and switch to it."},
	{Op: OpCommit, newRequest: func() Request { return &CommitRequest{} }, newResult: func() Result { return &CommitResult{} },
		Kind: Write, Title: "Commit",
		Summary: "Stage the given paths (or all changes) and commit them with your identity."},
	{Op: OpReadFile, newRequest: func() Request { return &ReadFileRequest{} }, newResult: func() Result { return &ReadFileResult{} },
		Kind: Read, Idempotent: true, Title: "Read file",
		Summary: "Read a file of the workspace's work tree, paged by byte offset."},
	{Op: OpWriteFile, newRequest: func() Request { return &WriteFileRequest{} }, newResult: func() Result { return &WriteFileResult{} },
		Kind: Write, Destructive: true, Idempotent: true, Title: "Write file",
		Summary: "Create or overwrite a file of the workspace's work tree (parent directories are created)."},
	{Op: OpListFiles, newRequest: func() Request { return &ListFilesRequest{} }, newResult: func() Result { return &ListFilesResult{} },
		Kind: Read, Idempotent: true, Title: "List files",
		Summary: "List files and directories of the workspace's work tree, paged."},
	{Op: OpDeleteFile, newRequest: func() Request { return &DeleteFileRequest{} }, newResult: func() Result { return &DeleteFileResult{} },
		Kind: Write, Destructive: true, Idempotent: true, Title: "Delete file",
		Summary: "Delete a file (or an empty directory) of the workspace's work tree."},
	{Op: OpDeleteBranch, newRequest: func() Request { return &DeleteBranchRequest{Remote: true} }, newResult: func() Result { return &DeleteBranchResult{} },
		Kind: Write, Destructive: true, Remote: true, Title: "Delete branch",
		Summary: "Delete one of your branches: the local one (never the checked-out branch) and, unless remote is false, the same branch on the remote if gitgate pushed it for you (recorded, restorable by an operator)."},
	{Op: OpListWorkspaces, newRequest: func() Request { return &ListWorkspacesRequest{} }, newResult: func() Result { return &ListWorkspacesResult{} },
		Kind: Read, Idempotent: true, Title: "List workspaces",
		Summary: "List your project's workspaces."},
	{Op: OpReleaseWorkspace, newRequest: func() Request { return &ReleaseWorkspaceRequest{} }, newResult: func() Result { return &ReleaseWorkspaceResult{} },
		Kind: Write, Destructive: true, Title: "Release workspace",
		Summary: "Delete a workspace; refused while it has unpushed commits or uncommitted changes unless force is set."},
	// fetch changes the workspace (its remote-tracking refs and objects):
	// a write, so that it takes the workspace's lock and is never mirrored
	// (a mirrored read would fetch twice); it is idempotent, so a started
	// one is settled by running it again.
	{Op: OpFetch, newRequest: func() Request { return &FetchRequest{} }, newResult: func() Result { return &FetchResult{} },
		Kind: Write, Idempotent: true, Remote: true, Progress: true, Title: "Fetch",
		Summary: "Update the remote-tracking branches (origin/...) from the remote; never touches your branches or work tree."},
	{Op: OpShow, newRequest: func() Request { return &ShowRequest{} }, newResult: func() Result { return &ShowResult{} },
		Kind: Read, Idempotent: true, Title: "Show",
		Summary: "Show a commit with its diff, or a file as it is at a revision, paged."},
	{Op: OpBlame, newRequest: func() Request { return &BlameRequest{} }, newResult: func() Result { return &BlameResult{} },
		Kind: Read, Idempotent: true, Title: "Blame",
		Summary: "Show which commit last changed each line of a file, paged by line."},
	{Op: OpTags, newRequest: func() Request { return &TagsRequest{} }, newResult: func() Result { return &TagsResult{} },
		Kind: Read, Idempotent: true, Title: "Tags",
		Summary: "List the workspace's tags."},
	{Op: OpReflog, newRequest: func() Request { return &ReflogRequest{} }, newResult: func() Result { return &ReflogResult{} },
		Kind: Read, Idempotent: true, Title: "Reflog",
		Summary: "List where HEAD has been in this workspace, newest first: reset to an entry to undo."},
	{Op: OpStashes, newRequest: func() Request { return &StashesRequest{} }, newResult: func() Result { return &StashesResult{} },
		Kind: Read, Idempotent: true, Title: "Stashes",
		Summary: "List the stash entries."},
	{Op: OpMerge, newRequest: func() Request { return &MergeRequest{} }, newResult: func() Result { return &MergeResult{} },
		Kind: Write, Title: "Merge",
		Summary: "Merge a branch (default: the upstream) into the current branch; on conflicts the merge waits for you to resolve, then continue or abort."},
	{Op: OpRebase, newRequest: func() Request { return &RebaseRequest{} }, newResult: func() Result { return &RebaseResult{} },
		Kind: Write, Title: "Rebase",
		Summary: "Replay the current branch's commits onto another branch (default: the upstream); on conflicts it waits for you to resolve, then continue or abort."},
	{Op: OpCherryPick, newRequest: func() Request { return &CherryPickRequest{} }, newResult: func() Result { return &CherryPickResult{} },
		Kind: Write, Title: "Cherry-pick",
		Summary: "Apply existing commits on top of the current branch; on conflicts it waits for you to resolve, then continue or abort."},
	{Op: OpRevert, newRequest: func() Request { return &RevertRequest{} }, newResult: func() Result { return &RevertResult{} },
		Kind: Write, Title: "Revert",
		Summary: "Create commits that undo existing ones; on conflicts it waits for you to resolve, then continue or abort."},
	{Op: OpReset, newRequest: func() Request { return &ResetRequest{} }, newResult: func() Result { return &ResetResult{} },
		Kind: Write, Destructive: true, Title: "Reset branch",
		Summary: "Move the current branch to a commit, keeping your changes (mixed, soft); hard discards them and must be asked for."},
	{Op: OpRestore, newRequest: func() Request { return &RestoreRequest{} }, newResult: func() Result { return &RestoreResult{} },
		Kind: Write, Destructive: true, Idempotent: true, Title: "Restore paths",
		Summary: "Discard uncommitted changes to paths (or unstage them with staged)."},
	{Op: OpStash, newRequest: func() Request { return &StashRequest{} }, newResult: func() Result { return &StashResult{} },
		Kind: Write, Destructive: true, Title: "Stash",
		Summary: "Set uncommitted changes aside (push) and bring them back (pop, apply), or drop an entry."},
	{Op: OpTag, newRequest: func() Request { return &TagRequest{} }, newResult: func() Result { return &TagResult{} },
		Kind: Write, Title: "Tag",
		Summary: "Create a lightweight or annotated tag; it reaches the remote only when push names it."},
	{Op: OpMarkResolved, newRequest: func() Request { return &MarkResolvedRequest{} }, newResult: func() Result { return &MarkResolvedResult{} },
		Kind: Write, Idempotent: true, Title: "Mark resolved",
		Summary: "Mark conflicted paths resolved once their files hold the resolution."},
	{Op: OpContinue, newRequest: func() Request { return &ContinueRequest{} }, newResult: func() Result { return &ContinueResult{} },
		Kind: Write, Title: "Continue",
		Summary: "Continue the merge, rebase, cherry-pick or revert in progress once every conflict is resolved."},
	{Op: OpAbort, newRequest: func() Request { return &AbortRequest{} }, newResult: func() Result { return &AbortResult{} },
		Kind: Write, Destructive: true, Title: "Abort",
		Summary: "Abandon the merge, rebase, cherry-pick or revert in progress: the workspace returns to where it was before it."},
	{Op: OpForkWorkspace, CreatesWorkspace: true, newRequest: func() Request { return &ForkWorkspaceRequest{} }, newResult: func() Result { return &ForkWorkspaceResult{} },
		Kind: Write, Title: "Fork workspace",
		Summary: "Make a new workspace (named by workspace) on a new branch from another of yours (source), sharing its objects instead of fetching them again."},
}

var opIndex = func() map[Op]OpInfo {
	m := make(map[Op]OpInfo, len(opTable))
	for _, info := range opTable {
		m[info.Op] = info
	}
	return m
}()

// Ops returns the table of all operations, in a stable order.
func Ops() []OpInfo {
	return append([]OpInfo(nil), opTable...)
}

// OpList lists the operations in the table's order.
func OpList() []Op {
	ops := make([]Op, len(opTable))
	for i, info := range opTable {
		ops[i] = info.Op
	}
	return ops
}

// OpNames lists the operations' names in the table's order: the names the
// flags, the MCP tools and the command line use.
func OpNames() []string {
	names := make([]string, len(opTable))
	for i, info := range opTable {
		names[i] = string(info.Op)
	}
	return names
}

// Info returns the table entry for op; ok is false for an unknown op.
func Info(op Op) (info OpInfo, ok bool) {
	info, ok = opIndex[op]
	return info, ok
}

// NewRequest returns a new zero request for op, or nil for an unknown op
// (or one declared without its types yet).
func NewRequest(op Op) Request {
	if info, ok := opIndex[op]; ok && info.newRequest != nil {
		return info.newRequest()
	}
	return nil
}

// NewResult returns a new zero result for op, or nil for an unknown op
// (or one declared without its types yet).
func NewResult(op Op) Result {
	if info, ok := opIndex[op]; ok && info.newResult != nil {
		return info.newResult()
	}
	return nil
}

// Kind returns the operation's kind, or 0 for an unknown op.
func (op Op) Kind() Kind { return opIndex[op].Kind }

// Settle returns how a started op whose outcome is not known is settled:
// by the remote when the table says so, by running it again when it is an
// idempotent write, as unknown otherwise.
func (op Op) Settle() Settle {
	info := opIndex[op]
	switch {
	case info.SettledByRemote:
		return SettleByRemote
	case info.Kind == Write && info.Idempotent:
		return SettleRerun
	}
	return SettleUnknown
}

// CreatesWorkspace reports whether op makes the scope's workspace (see
// OpInfo.CreatesWorkspace).
func (op Op) CreatesWorkspace() bool { return opIndex[op].CreatesWorkspace }

// IsRead reports whether op is a read.
func (op Op) IsRead() bool { return op.Kind() == Read }

// Name is a backend's name, as the flags, results, logs, metrics and the
// canary ledger give it.
type Name string

// The backends' names.
const (
	Approach1 Name = "approach1" // the embedded executor
	Approach2 Name = "approach2" // the remote gRPC service
)

func (n Name) String() string { return string(n) }

// Known reports whether n names one of the backends.
func (n Name) Known() bool { return n == Approach1 || n == Approach2 }
