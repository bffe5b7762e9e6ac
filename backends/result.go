package backends

import "time"

// Served says who served a call. Every result carries it so that agents,
// logs and the canary ledger can tell the backends apart.
type Served struct {
	Backend    string `json:"backend" jsonschema:"which backend served the call (approach1 or approach2)"`
	FellBack   bool   `json:"fell_back,omitempty" jsonschema:"true when the call fell back to another backend"`
	DurationMS int64  `json:"duration_ms" jsonschema:"time spent serving the call, in milliseconds"`
	// WriteSeq is, for a write, the workspace's write count once it was
	// made (sandbox.Binding.Writes): a shadow prediction that finds a
	// higher count knows another write came after and compares nothing.
	// Not shown to agents.
	WriteSeq uint64 `json:"-"`
	// ReadFrom is, for a read, the workspace's write count when the read
	// began; WriteSeq is then the count once it ended. A shadow read whose
	// WriteSeq differs from the primary's ReadFrom knows the workspace
	// moved between the two looks (stale, not a mismatch). Not shown to
	// agents.
	ReadFrom uint64 `json:"-"`
	// CostUSD is what the call's sandbox commands cost at the provider's
	// per-second price (0 when the provider bills nothing). Not shown to
	// agents; the canary ledger keeps it.
	CostUSD float64 `json:"-"`
	// Wait is how long the call queued before it ran: for its workspace's
	// lock, and on Approach 2 for a pooled sandbox. Not shown to agents;
	// the canary ledger keeps it (the decision framework's queueing).
	Wait time.Duration `json:"-"`
	// Notices are what the agent must know beside the result, such as a
	// workspace restored into a new sandbox after its own was removed.
	Notices []string `json:"notices,omitempty" jsonschema:"things you must know about this call besides its result (for example: your workspace's sandbox was removed and your unsaved work was restored into a new one)"`
}

// Result is implemented by every *XxxResult type of this package.
type Result interface {
	GetServed() *Served
}

// GetServed returns the embedded Served; embedding Served makes a result type
// implement [Result].
func (s *Served) GetServed() *Served { return s }

// CloneResult reports a finished clone.
type CloneResult struct {
	Served
	Workspace string `json:"workspace"`
	Branch    string `json:"branch" jsonschema:"the checked-out branch (empty for an empty repository without one)"`
	Head      string `json:"head,omitempty" jsonschema:"commit id of HEAD (empty for an empty repository)"`
}

// PullResult reports a finished pull.
type PullResult struct {
	Served
	Branch   string `json:"branch"`
	Before   string `json:"before,omitempty" jsonschema:"HEAD before the pull"`
	After    string `json:"after,omitempty" jsonschema:"HEAD after the pull"`
	Updated  bool   `json:"updated" jsonschema:"true when HEAD moved"`
	Merged   bool   `json:"merged,omitempty" jsonschema:"true when a merge commit was created"`
	Upstream string `json:"upstream,omitempty"`
	Stopped
}

// PushResult reports a finished push.
type PushResult struct {
	Served
	Branch    string   `json:"branch"`
	RemoteRef string   `json:"remote_ref"`
	Head      string   `json:"head" jsonschema:"commit id now at the remote ref"`
	Created   bool     `json:"created,omitempty" jsonschema:"true when the remote branch was created"`
	UpToDate  bool     `json:"up_to_date,omitempty" jsonschema:"true when the remote already had this commit"`
	Tags      []string `json:"tags,omitempty" jsonschema:"the tags pushed (or already on the remote at the same commit)"`
}

// StatusEntry is one changed path.
type StatusEntry struct {
	Path     string `json:"path"`
	OrigPath string `json:"orig_path,omitempty" jsonschema:"source path of a rename or copy"`
	Staged   string `json:"staged" jsonschema:"index status letter: . unmodified, M modified, A added, D deleted, R renamed, C copied, T type changed, U unmerged"`
	Unstaged string `json:"unstaged" jsonschema:"work-tree status letter, same letters; ? untracked"`
}

// StatusResult is the workspace's status.
type StatusResult struct {
	Served
	Branch   string        `json:"branch" jsonschema:"current branch, empty when detached"`
	Head     string        `json:"head,omitempty" jsonschema:"commit id of HEAD, empty before the first commit"`
	Upstream string        `json:"upstream,omitempty"`
	Ahead    int           `json:"ahead" jsonschema:"commits on the branch not on its upstream"`
	Behind   int           `json:"behind" jsonschema:"commits on the upstream not on the branch"`
	Clean    bool          `json:"clean" jsonschema:"true when nothing is changed, staged or untracked"`
	Entries  []StatusEntry `json:"entries"`
	// InProgress and Conflicts show a merge-like operation waiting for
	// the agent (see Stopped).
	InProgress string         `json:"in_progress,omitempty" jsonschema:"merge, rebase, cherry_pick or revert when one stopped on conflicts and waits for continue or abort"`
	Conflicts  []ConflictPath `json:"conflicts,omitempty" jsonschema:"unmerged paths with their index stages"`
}

// Truncation says whether a paged output was cut and where to continue.
type Truncation struct {
	Truncated  bool `json:"truncated" jsonschema:"true when more output is available"`
	NextOffset int  `json:"next_offset,omitempty" jsonschema:"offset to pass to get the next page"`
}

// DiffResult is a page of a unified diff.
type DiffResult struct {
	Served
	Diff string `json:"diff"`
	Truncation
}

// Commit is one commit of a log.
type Commit struct {
	SHA         string   `json:"sha"`
	Parents     []string `json:"parents"`
	AuthorName  string   `json:"author_name"`
	AuthorEmail string   `json:"author_email"`
	AuthorDate  string   `json:"author_date" jsonschema:"RFC 3339"`
	Committer   string   `json:"committer"`
	Subject     string   `json:"subject"`
	Body        string   `json:"body,omitempty"`
}

// LogResult is a page of history.
type LogResult struct {
	Served
	Commits   []Commit `json:"commits"`
	Truncated bool     `json:"truncated" jsonschema:"true when more commits are available"`
	NextSkip  int      `json:"next_skip,omitempty" jsonschema:"skip value for the next page"`
}

// Branch is one branch.
type Branch struct {
	Name     string `json:"name"`
	Head     string `json:"head"`
	Upstream string `json:"upstream,omitempty"`
	Current  bool   `json:"current,omitempty"`
	Remote   bool   `json:"remote,omitempty"`
}

// BranchesResult lists branches.
type BranchesResult struct {
	Served
	Current  string   `json:"current" jsonschema:"current branch, empty when detached"`
	Branches []Branch `json:"branches"`
}

// CheckoutResult reports a switch.
type CheckoutResult struct {
	Served
	Branch  string `json:"branch"`
	Head    string `json:"head,omitempty"`
	Created bool   `json:"created,omitempty"`
}

// CommitResult reports a new commit.
type CommitResult struct {
	Served
	SHA    string `json:"sha"`
	Branch string `json:"branch"`
}

// ReadFileResult is a page of a file.
type ReadFileResult struct {
	Served
	Path     string `json:"path"`
	Size     int64  `json:"size" jsonschema:"size of the whole file in bytes"`
	Encoding string `json:"encoding" jsonschema:"utf-8, or base64 when the content is not valid UTF-8"`
	Content  string `json:"content"`
	Truncation
}

// WriteFileResult reports a written file.
type WriteFileResult struct {
	Served
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	Created bool   `json:"created" jsonschema:"true when the file did not exist before"`
}

// FileEntry is one entry of a directory listing.
type FileEntry struct {
	Path string `json:"path"`
	Type string `json:"type" jsonschema:"file, dir or symlink"`
	Size int64  `json:"size,omitempty"`
}

// ListFilesResult is a page of a directory listing.
type ListFilesResult struct {
	Served
	Entries []FileEntry `json:"entries"`
	Truncation
}

// DeleteFileResult reports a deleted file.
type DeleteFileResult struct {
	Served
	Path    string `json:"path"`
	Deleted bool   `json:"deleted" jsonschema:"false when the file did not exist"`
}

// WorkspaceInfo describes one workspace.
type WorkspaceInfo struct {
	Name     string `json:"name"`
	URL      string `json:"url"`
	Agent    string `json:"agent,omitempty" jsonschema:"owning agent when sandboxes are per agent"`
	Created  string `json:"created" jsonschema:"RFC 3339"`
	LastUsed string `json:"last_used" jsonschema:"RFC 3339"`
}

// ListWorkspacesResult lists workspaces.
type ListWorkspacesResult struct {
	Served
	Workspaces []WorkspaceInfo `json:"workspaces"`
}

// ReleaseWorkspaceResult reports a released workspace.
type ReleaseWorkspaceResult struct {
	Served
	Workspace string `json:"workspace"`
	Released  bool   `json:"released"`
}
