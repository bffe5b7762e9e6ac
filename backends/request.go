package backends

// Principal is who acts: an agent of a project. The gateway fills it from the
// agent's credential; agents can never set it through arguments (it has no
// JSON name).
type Principal struct {
	Project     string
	Agent       string
	AuthorName  string // git author/committer name for commits made by this agent
	AuthorEmail string
}

// Scope is embedded in every request: the caller and the workspace it names.
type Scope struct {
	Principal Principal `json:"-"`
	Workspace string    `json:"workspace" jsonschema:"workspace name (letters, digits, '.', '_', '-'; up to 64 characters), unique within your project"`
	// IdempotencyKey makes a retried write apply at most once: a retry with
	// the same key returns the first attempt's result. Reads ignore it; only
	// write tools offer it (gateway/mcpserver removes it from the read
	// tools' input schemas).
	IdempotencyKey string `json:"idempotency_key,omitempty" jsonschema:"any unique string (a UUID); retrying this write with the same key after a timeout never applies it twice"`
}

// Request is implemented by every *XxxRequest type of this package.
type Request interface {
	Op() Op
	// GetScope returns the request's scope, for routing, locking and auth.
	GetScope() *Scope
}

// CloneRequest clones a repository into a new workspace.
type CloneRequest struct {
	Scope
	URL    string `json:"url" jsonschema:"repository URL (https, on a host your project allows); never put credentials in it"`
	Branch string `json:"branch,omitempty" jsonschema:"branch to check out (default: the remote's default branch)"`
	Depth  int    `json:"depth,omitempty" jsonschema:"create a shallow clone with this many commits (0 = full history)"`
}

// PullRequest fetches the current branch's upstream and integrates it.
type PullRequest struct {
	Scope
	Mode string `json:"mode,omitempty" jsonschema:"ff-only (default): refuse unless a fast-forward is possible; merge: create a merge commit when needed (on conflicts the merge waits for you: resolve, then continue or abort)"`
}

// PushRequest pushes a local branch to the workspace's remote.
type PushRequest struct {
	Scope
	Branch string `json:"branch,omitempty" jsonschema:"local branch to push (default: the current branch); pushed to the branch of the same name"`
	// Tags are pushed beside the branch; an existing remote tag is never
	// moved.
	Tags []string `json:"tags,omitempty" jsonschema:"also push these local tags (a tag already on the remote is never moved)"`
}

// StatusRequest asks for the workspace's status.
type StatusRequest struct {
	Scope
}

// DiffRequest asks for a unified diff.
type DiffRequest struct {
	Scope
	Staged bool     `json:"staged,omitempty" jsonschema:"diff the index against HEAD instead of the work tree against the index"`
	Ref    string   `json:"ref,omitempty" jsonschema:"diff the work tree against this branch, tag or commit instead"`
	Paths  []string `json:"paths,omitempty" jsonschema:"limit the diff to these work-tree paths"`
	Page
}

// LogRequest asks for commit history.
type LogRequest struct {
	Scope
	Ref   string   `json:"ref,omitempty" jsonschema:"branch, tag or commit to start from (default HEAD)"`
	Paths []string `json:"paths,omitempty" jsonschema:"only commits touching these paths"`
	Limit int      `json:"limit,omitempty" jsonschema:"maximum number of commits (default 20, at most 200)"`
	Skip  int      `json:"skip,omitempty" jsonschema:"number of commits to skip (for paging: pass the previous result's next_skip)"`
}

// BranchesRequest lists branches.
type BranchesRequest struct {
	Scope
	Remote bool `json:"remote,omitempty" jsonschema:"also list remote-tracking branches (origin/...)"`
}

// CheckoutRequest switches to (or creates) a branch.
type CheckoutRequest struct {
	Scope
	Branch     string `json:"branch" jsonschema:"branch to switch to"`
	Create     bool   `json:"create,omitempty" jsonschema:"create the branch (fails if it exists)"`
	StartPoint string `json:"start_point,omitempty" jsonschema:"with create: the branch, tag or commit to start from (default HEAD)"`
}

// CommitRequest stages paths (or everything) and commits.
type CommitRequest struct {
	Scope
	Message string   `json:"message" jsonschema:"commit message, kept verbatim"`
	Paths   []string `json:"paths,omitempty" jsonschema:"work-tree paths to stage (added, changed or deleted); empty means all changes"`
}

// ReadFileRequest reads a work-tree file.
type ReadFileRequest struct {
	Scope
	Path string `json:"path" jsonschema:"file path relative to the work tree"`
	Page
}

// WriteFileRequest creates or overwrites a work-tree file.
type WriteFileRequest struct {
	Scope
	Path     string `json:"path" jsonschema:"file path relative to the work tree"`
	Content  string `json:"content" jsonschema:"the new content"`
	Encoding string `json:"encoding,omitempty" jsonschema:"utf-8 (default) or base64"`
}

// ListFilesRequest lists a work-tree directory.
type ListFilesRequest struct {
	Scope
	Path      string `json:"path,omitempty" jsonschema:"directory relative to the work tree (default: its root)"`
	Recursive bool   `json:"recursive,omitempty" jsonschema:"list subdirectories too"`
	Page
}

// DeleteFileRequest deletes a work-tree file.
type DeleteFileRequest struct {
	Scope
	Path string `json:"path" jsonschema:"file path relative to the work tree"`
}

// ListWorkspacesRequest lists the project's workspaces. It takes no
// arguments; its scope names no workspace.
type ListWorkspacesRequest struct {
	scope Scope
}

// ReleaseWorkspaceRequest deletes a workspace.
type ReleaseWorkspaceRequest struct {
	Scope
	Force bool `json:"force,omitempty" jsonschema:"release even with unpushed commits or uncommitted changes (they are lost)"`
}

// Page selects a window of a large output. Outputs are capped; a result that
// was cut says so and gives the offset to continue from.
type Page struct {
	Offset int `json:"offset,omitempty" jsonschema:"byte offset (or entry index for list_files) to start at; pass the previous result's next_offset"`
	Limit  int `json:"limit,omitempty" jsonschema:"maximum bytes (or entries) to return; capped by the server"`
}

// Op implementations.

func (*CloneRequest) Op() Op            { return OpClone }
func (*PullRequest) Op() Op             { return OpPull }
func (*PushRequest) Op() Op             { return OpPush }
func (*StatusRequest) Op() Op           { return OpStatus }
func (*DiffRequest) Op() Op             { return OpDiff }
func (*LogRequest) Op() Op              { return OpLog }
func (*BranchesRequest) Op() Op         { return OpBranches }
func (*CheckoutRequest) Op() Op         { return OpCheckout }
func (*CommitRequest) Op() Op           { return OpCommit }
func (*ReadFileRequest) Op() Op         { return OpReadFile }
func (*WriteFileRequest) Op() Op        { return OpWriteFile }
func (*ListFilesRequest) Op() Op        { return OpListFiles }
func (*DeleteFileRequest) Op() Op       { return OpDeleteFile }
func (*ListWorkspacesRequest) Op() Op   { return OpListWorkspaces }
func (*ReleaseWorkspaceRequest) Op() Op { return OpReleaseWorkspace }

// GetScope returns the request's scope; only its Principal is used.
func (r *ListWorkspacesRequest) GetScope() *Scope { return &r.scope }

// GetScope returns the scope itself; embedding Scope makes a request type
// implement this part of [Request].
func (s *Scope) GetScope() *Scope { return s }
