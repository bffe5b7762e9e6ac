package mcpserver

import (
	"encoding/json"
	"slices"

	"github.com/gitgate/gitgate/backends"
	"github.com/mark3labs/mcp-go/mcp"
)

type toolDef struct {
	op   backends.Op
	tool mcp.Tool
}

// tools returns one tool per operation. Names, descriptions and annotations
// come from the backends operation table; schemas from the request and
// result types, except that read tools do not offer idempotency_key.
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
	if info.Kind == backends.Read {
		t.RawInputSchema = withoutProperty(t.RawInputSchema, idempotencyKey)
	}
	return toolDef{op: op, tool: t}
}

// idempotencyKey is the JSON name of backends.Scope.IdempotencyKey, which
// only write tools offer.
const idempotencyKey = "idempotency_key"

// withoutProperty returns the JSON schema of an object without the
// property name (neither among its properties nor its required ones).
func withoutProperty(schema json.RawMessage, name string) json.RawMessage {
	var m map[string]any
	if err := json.Unmarshal(schema, &m); err != nil {
		panic("mcpserver: an input schema is not a JSON object: " + err.Error())
	}
	if props, ok := m["properties"].(map[string]any); ok {
		delete(props, name)
	}
	if req, ok := m["required"].([]any); ok {
		m["required"] = slices.DeleteFunc(req, func(v any) bool { return v == name })
	}
	out, err := json.Marshal(m)
	if err != nil {
		panic("mcpserver: an input schema cannot be encoded: " + err.Error())
	}
	return out
}
