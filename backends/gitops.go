package backends

// The operations git tools give agents beyond clone, commit and push
// (issue 16): looking at history (show, blame, tags, reflog, stashes),
// integrating work (fetch, merge, rebase, cherry_pick, revert), undoing it
// (reset, restore, stash), tagging, the conflicts a merge-like operation
// leaves (mark_resolved, continue, abort) and cheap parallel workspaces
// (fork_workspace). Their requests and results live here; the table
// (ops.go) declares them.

// ConflictPath is one path a merge-like operation left unmerged.
type ConflictPath struct {
	Path string `json:"path"`
	// Kind is git's unmerged state: both_modified, both_added,
	// both_deleted, added_by_us, added_by_them, deleted_by_us,
	// deleted_by_them.
	Kind string `json:"kind" jsonschema:"both_modified, both_added, both_deleted, added_by_us, added_by_them, deleted_by_us or deleted_by_them"`
	// Stages are the index stages present: 1 base, 2 ours, 3 theirs.
	Stages []int `json:"stages" jsonschema:"index stages: 1 base, 2 ours (HEAD), 3 theirs"`
}

// Stopped is part of the result of an operation that can stop on
// conflicts (merge, rebase, cherry_pick, revert, pull in merge mode,
// continue, stash pop): when it stopped, the workspace is left in the
// middle of it for the agent to resolve, and these fields say so.
type Stopped struct {
	// InProgress is the operation waiting for the agent: merge, rebase,
	// cherry_pick or revert; empty when nothing is in progress (a stash
	// pop's conflicts need no continue).
	InProgress string         `json:"in_progress,omitempty" jsonschema:"merge, rebase, cherry_pick or revert stopped by conflicts: resolve them, then continue or abort"`
	Conflicts  []ConflictPath `json:"conflicts,omitempty" jsonschema:"unmerged paths: write_file each, then mark_resolved"`
	Next       string         `json:"next,omitempty" jsonschema:"the next step"`
}

// FetchRequest updates the workspace's remote-tracking branches.
type FetchRequest struct {
	Scope
	Prune bool `json:"prune,omitempty" jsonschema:"also remove remote-tracking branches the remote no longer has"`
}

// RefUpdate is one ref a fetch moved.
type RefUpdate struct {
	Ref    string `json:"ref" jsonschema:"the remote-tracking branch (origin/...)"`
	Before string `json:"before,omitempty" jsonschema:"commit before (empty: new)"`
	After  string `json:"after,omitempty" jsonschema:"commit after (empty: pruned)"`
}

// FetchResult reports a fetch.
type FetchResult struct {
	Served
	Updated []RefUpdate `json:"updated" jsonschema:"the remote-tracking branches that moved, appeared or were pruned"`
}

// ShowRequest shows a commit with its diff, or a file at a revision.
type ShowRequest struct {
	Scope
	Rev  string `json:"rev,omitempty" jsonschema:"branch, tag or commit (default HEAD)"`
	Path string `json:"path,omitempty" jsonschema:"show this file as it is at rev instead of the commit's diff"`
	Page
}

// ShowResult is a commit and a page of its diff, or a page of a file at a
// revision.
type ShowResult struct {
	Served
	Commit
	Path     string `json:"path,omitempty"`
	Encoding string `json:"encoding,omitempty" jsonschema:"with path: utf-8, or base64 when the content is not valid UTF-8"`
	Content  string `json:"content,omitempty" jsonschema:"with path: the file's content at rev"`
	Diff     string `json:"diff,omitempty" jsonschema:"without path: the commit's changes as a unified diff (against its first parent)"`
	Truncation
}

// BlameRequest asks who last changed each line of a file.
type BlameRequest struct {
	Scope
	Path      string `json:"path" jsonschema:"file path relative to the work tree"`
	Rev       string `json:"rev,omitempty" jsonschema:"branch, tag or commit (default HEAD)"`
	StartLine int    `json:"start_line,omitempty" jsonschema:"first line (1-based, default 1); pass the previous result's next_line"`
	Limit     int    `json:"limit,omitempty" jsonschema:"maximum lines (default and cap 500)"`
}

// BlameLine is one line of a blame.
type BlameLine struct {
	Line    int    `json:"line"`
	SHA     string `json:"sha"`
	Author  string `json:"author"`
	Date    string `json:"date" jsonschema:"author date, RFC 3339"`
	Summary string `json:"summary" jsonschema:"the commit's subject"`
	Content string `json:"content"`
}

// BlameResult is a page of a blame.
type BlameResult struct {
	Served
	Path      string      `json:"path"`
	Lines     []BlameLine `json:"lines"`
	Truncated bool        `json:"truncated" jsonschema:"true when more lines follow"`
	NextLine  int         `json:"next_line,omitempty" jsonschema:"start_line for the next page"`
}

// TagsRequest lists tags.
type TagsRequest struct {
	Scope
}

// Tag is one tag.
type Tag struct {
	Name      string `json:"name"`
	Target    string `json:"target" jsonschema:"the commit it points to"`
	Annotated bool   `json:"annotated,omitempty"`
	Message   string `json:"message,omitempty" jsonschema:"an annotated tag's message"`
}

// TagsResult lists tags.
type TagsResult struct {
	Served
	Tags []Tag `json:"tags"`
}

// ReflogRequest asks for the history of HEAD in this workspace.
type ReflogRequest struct {
	Scope
	Limit int `json:"limit,omitempty" jsonschema:"maximum entries (default 20, at most 200)"`
	Skip  int `json:"skip,omitempty" jsonschema:"entries to skip (pass the previous result's next_skip)"`
}

// ReflogEntry is one move of HEAD.
type ReflogEntry struct {
	Selector string `json:"selector" jsonschema:"HEAD@{n}: show, diff, log, blame, reset, restore and tag take it (reset to it to undo); sha works everywhere"`
	SHA      string `json:"sha"`
	Action   string `json:"action" jsonschema:"what moved HEAD (commit, checkout, merge, reset, ...)"`
	Date     string `json:"date" jsonschema:"RFC 3339"`
}

// ReflogResult is a page of HEAD's history.
type ReflogResult struct {
	Served
	Entries   []ReflogEntry `json:"entries"`
	Truncated bool          `json:"truncated"`
	NextSkip  int           `json:"next_skip,omitempty"`
}

// StashesRequest lists stash entries.
type StashesRequest struct {
	Scope
}

// StashEntry is one stash entry.
type StashEntry struct {
	Index   int    `json:"index" jsonschema:"n of stash@{n}"`
	SHA     string `json:"sha"`
	Message string `json:"message"`
}

// StashesResult lists stash entries.
type StashesResult struct {
	Served
	Stashes []StashEntry `json:"stashes"`
}

// MergeRequest merges a branch (default: the current branch's upstream)
// into the current branch.
type MergeRequest struct {
	Scope
	Branch  string `json:"branch,omitempty" jsonschema:"branch, tag or commit to merge (default: the current branch's upstream, origin/<branch>)"`
	FFOnly  bool   `json:"ff_only,omitempty" jsonschema:"refuse unless a fast-forward is possible"`
	NoFF    bool   `json:"no_ff,omitempty" jsonschema:"always create a merge commit"`
	Message string `json:"message,omitempty" jsonschema:"the merge commit's message (default: git's)"`
}

// MergeResult reports a merge.
type MergeResult struct {
	Served
	Branch      string `json:"branch" jsonschema:"the current branch"`
	Before      string `json:"before,omitempty"`
	After       string `json:"after,omitempty" jsonschema:"HEAD after the merge (unchanged when it stopped on conflicts)"`
	UpToDate    bool   `json:"up_to_date,omitempty" jsonschema:"nothing to merge"`
	FastForward bool   `json:"fast_forward,omitempty"`
	Merged      bool   `json:"merged,omitempty" jsonschema:"a merge commit was created"`
	Stopped
}

// RebaseRequest replays the current branch's own commits onto another
// (non-interactive).
type RebaseRequest struct {
	Scope
	Onto string `json:"onto,omitempty" jsonschema:"branch, tag or commit to rebase onto (default: the current branch's upstream)"`
}

// RebaseResult reports a rebase.
type RebaseResult struct {
	Served
	Branch   string `json:"branch"`
	Before   string `json:"before,omitempty"`
	After    string `json:"after,omitempty"`
	Replayed int    `json:"replayed" jsonschema:"commits replayed so far"`
	UpToDate bool   `json:"up_to_date,omitempty"`
	Stopped
}

// CherryPickRequest applies existing commits on top of the current branch.
type CherryPickRequest struct {
	Scope
	Commits []string `json:"commits" jsonschema:"commits to apply, in order (at most 50)"`
}

// CherryPickResult reports a cherry-pick.
type CherryPickResult struct {
	Served
	Branch  string   `json:"branch"`
	Before  string   `json:"before,omitempty"`
	After   string   `json:"after,omitempty"`
	Created []string `json:"created" jsonschema:"the new commits, in order"`
	Stopped
}

// RevertRequest creates commits that undo existing ones.
type RevertRequest struct {
	Scope
	Commits []string `json:"commits" jsonschema:"commits to undo, in order (at most 50)"`
}

// RevertResult reports a revert.
type RevertResult struct {
	Served
	Branch  string   `json:"branch"`
	Before  string   `json:"before,omitempty"`
	After   string   `json:"after,omitempty"`
	Created []string `json:"created" jsonschema:"the new commits, in order"`
	Stopped
}

// ResetRequest moves the current branch to a commit.
type ResetRequest struct {
	Scope
	Ref  string `json:"ref,omitempty" jsonschema:"commit to move the branch to (default HEAD; HEAD~1 and HEAD@{n} from reflog work)"`
	Mode string `json:"mode,omitempty" jsonschema:"mixed (default): keep your changes in the work tree, unstaged; soft: keep them staged"`
	Hard bool   `json:"hard,omitempty" jsonschema:"DESTRUCTIVE: also discard every uncommitted change of the work tree and index (git reset --hard); they cannot be recovered"`
}

// ResetResult reports a reset.
type ResetResult struct {
	Served
	Branch string `json:"branch"`
	Before string `json:"before,omitempty"`
	After  string `json:"after"`
	Mode   string `json:"mode" jsonschema:"soft, mixed or hard"`
}

// RestoreRequest discards changes to paths.
type RestoreRequest struct {
	Scope
	Paths  []string `json:"paths" jsonschema:"work-tree paths to restore (at least one; '.' for all)"`
	Staged bool     `json:"staged,omitempty" jsonschema:"unstage instead: restore the index from HEAD and keep the work tree"`
	Source string   `json:"source,omitempty" jsonschema:"restore from this branch, tag or commit (default: the index; HEAD with staged)"`
}

// RestoreResult reports restored paths.
type RestoreResult struct {
	Served
	Paths []string `json:"paths"`
}

// StashRequest sets changes aside or brings them back.
type StashRequest struct {
	Scope
	Action           string `json:"action" jsonschema:"push: set the uncommitted changes aside; pop: apply an entry and drop it; apply: apply and keep it; drop: delete an entry"`
	Message          string `json:"message,omitempty" jsonschema:"push: the entry's message"`
	IncludeUntracked bool   `json:"include_untracked,omitempty" jsonschema:"push: also set untracked files aside"`
	Index            int    `json:"index,omitempty" jsonschema:"pop, apply, drop: n of stash@{n} (default 0, the newest)"`
}

// StashResult reports a stash action.
type StashResult struct {
	Served
	Action string `json:"action"`
	SHA    string `json:"sha,omitempty" jsonschema:"the stash entry's commit (push: created; pop, apply, drop: the entry used)"`
	Stopped
}

// TagRequest creates a tag (pushed only by push with tags).
type TagRequest struct {
	Scope
	Name    string `json:"name" jsonschema:"the new tag"`
	Target  string `json:"target,omitempty" jsonschema:"branch, tag or commit to tag (default HEAD)"`
	Message string `json:"message,omitempty" jsonschema:"make an annotated tag with this message (default: lightweight)"`
}

// TagResult reports a new tag.
type TagResult struct {
	Served
	Name      string `json:"name"`
	Target    string `json:"target" jsonschema:"the commit tagged"`
	Annotated bool   `json:"annotated,omitempty"`
}

// MarkResolvedRequest marks conflicted paths resolved.
type MarkResolvedRequest struct {
	Scope
	Paths []string `json:"paths" jsonschema:"the conflicted paths whose files now hold the resolution (a deleted file resolves by deletion)"`
}

// MarkResolvedResult reports what is left to resolve.
type MarkResolvedResult struct {
	Served
	Resolved  []string       `json:"resolved"`
	Remaining []ConflictPath `json:"remaining" jsonschema:"conflicts still unresolved"`
}

// ContinueRequest continues the merge, rebase, cherry-pick or revert
// that stopped on conflicts, once they are resolved.
type ContinueRequest struct {
	Scope
	Message string `json:"message,omitempty" jsonschema:"merge: the merge commit's message (default: git's)"`
}

// ContinueResult reports a continued operation.
type ContinueResult struct {
	Served
	Operation string `json:"operation" jsonschema:"merge, rebase, cherry_pick or revert"`
	Branch    string `json:"branch"`
	Head      string `json:"head,omitempty"`
	Done      bool   `json:"done" jsonschema:"true when the operation finished; false when it stopped on conflicts again"`
	Stopped
}

// AbortRequest abandons the merge, rebase, cherry-pick or revert in
// progress, returning the workspace to where it was before it.
type AbortRequest struct {
	Scope
}

// AbortResult reports an abandoned operation.
type AbortResult struct {
	Served
	Operation string `json:"operation" jsonschema:"merge, rebase, cherry_pick or revert"`
	Branch    string `json:"branch"`
	Head      string `json:"head,omitempty"`
}

// ForkWorkspaceRequest makes a new workspace (the scope's workspace, as
// for a clone) on a new branch from an existing one of the caller's
// (Source), sharing its objects instead of cloning again. The source is
// only read.
type ForkWorkspaceRequest struct {
	Scope
	Source     string `json:"source" jsonschema:"the existing workspace to fork"`
	Branch     string `json:"branch" jsonschema:"the new branch to create and check out in the new workspace"`
	StartPoint string `json:"start_point,omitempty" jsonschema:"branch, tag or commit of the source to start from (default its HEAD)"`
}

// ForkWorkspaceResult reports a new workspace.
type ForkWorkspaceResult struct {
	Served
	Workspace string `json:"workspace"`
	Branch    string `json:"branch"`
	Head      string `json:"head"`
}

// Op implementations.

func (*FetchRequest) Op() Op         { return OpFetch }
func (*ShowRequest) Op() Op          { return OpShow }
func (*BlameRequest) Op() Op         { return OpBlame }
func (*TagsRequest) Op() Op          { return OpTags }
func (*ReflogRequest) Op() Op        { return OpReflog }
func (*StashesRequest) Op() Op       { return OpStashes }
func (*MergeRequest) Op() Op         { return OpMerge }
func (*RebaseRequest) Op() Op        { return OpRebase }
func (*CherryPickRequest) Op() Op    { return OpCherryPick }
func (*RevertRequest) Op() Op        { return OpRevert }
func (*ResetRequest) Op() Op         { return OpReset }
func (*RestoreRequest) Op() Op       { return OpRestore }
func (*StashRequest) Op() Op         { return OpStash }
func (*TagRequest) Op() Op           { return OpTag }
func (*MarkResolvedRequest) Op() Op  { return OpMarkResolved }
func (*ContinueRequest) Op() Op      { return OpContinue }
func (*AbortRequest) Op() Op         { return OpAbort }
func (*ForkWorkspaceRequest) Op() Op { return OpForkWorkspace }
