package mcpserver

import (
	"github.com/gitgate/gitgate/backends"
	"github.com/mark3labs/mcp-go/mcp"
)

type toolDef struct {
	op   backends.Op
	tool mcp.Tool
}

// tools returns one tool per operation. Names, descriptions and annotations
// come from the backends operation table; schemas from the request and
// result types.
func tools() []toolDef {
	return []toolDef{
		define[backends.CloneRequest, backends.CloneResult](backends.OpClone),
		define[backends.PullRequest, backends.PullResult](backends.OpPull),
		define[backends.PushRequest, backends.PushResult](backends.OpPush),
		define[backends.StatusRequest, backends.StatusResult](backends.OpStatus),
		define[backends.DiffRequest, backends.DiffResult](backends.OpDiff),
		define[backends.LogRequest, backends.LogResult](backends.OpLog),
		define[backends.BranchesRequest, backends.BranchesResult](backends.OpBranches),
		define[backends.CheckoutRequest, backends.CheckoutResult](backends.OpCheckout),
		define[backends.CommitRequest, backends.CommitResult](backends.OpCommit),
		define[backends.ReadFileRequest, backends.ReadFileResult](backends.OpReadFile),
		define[backends.WriteFileRequest, backends.WriteFileResult](backends.OpWriteFile),
		define[backends.ListFilesRequest, backends.ListFilesResult](backends.OpListFiles),
		define[backends.DeleteFileRequest, backends.DeleteFileResult](backends.OpDeleteFile),
		define[backends.ListWorkspacesRequest, backends.ListWorkspacesResult](backends.OpListWorkspaces),
		define[backends.ReleaseWorkspaceRequest, backends.ReleaseWorkspaceResult](backends.OpReleaseWorkspace),
	}
}

func define[Req, Res any](op backends.Op) toolDef {
	info, ok := backends.Info(op)
	if !ok {
		panic("mcpserver: operation " + string(op) + " is not in the backends table")
	}
	t := mcp.NewTool(string(op),
		mcp.WithDescription(info.Summary),
		mcp.WithToolTitle(info.Title),
		mcp.WithInputSchema[Req](),
		mcp.WithOutputSchema[Res](),
		mcp.WithToolAnnotation(mcp.ToolAnnotation{
			Title:           info.Title,
			ReadOnlyHint:    mcp.ToBoolPtr(info.Kind == backends.Read),
			DestructiveHint: mcp.ToBoolPtr(info.Destructive),
			IdempotentHint:  mcp.ToBoolPtr(info.Idempotent),
			OpenWorldHint:   mcp.ToBoolPtr(info.Remote),
		}),
	)
	return toolDef{op: op, tool: t}
}
