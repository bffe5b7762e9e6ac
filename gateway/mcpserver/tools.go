package mcpserver

import (
	"encoding/json"
	"reflect"
	"slices"

	"github.com/gitgate/gitgate/backends"
	"github.com/mark3labs/mcp-go/mcp"
)

type toolDef struct {
	op     backends.Op
	tool   mcp.Tool
	result reflect.Type // the result type the output schema was made from
}

// schemas are the tools' input and output schemas, one for each operation
// of the table (backends.Ops): the one piece of a tool that the table
// cannot hold, because mcp-go makes a schema from a static type.
// TestEveryOperationHasATool walks the table against them.
var schemas = declare(
	define[backends.CloneRequest, backends.CloneResult],
	define[backends.PullRequest, backends.PullResult],
	define[backends.PushRequest, backends.PushResult],
	define[backends.StatusRequest, backends.StatusResult],
	define[backends.DiffRequest, backends.DiffResult],
	define[backends.LogRequest, backends.LogResult],
	define[backends.BranchesRequest, backends.BranchesResult],
	define[backends.CheckoutRequest, backends.CheckoutResult],
	define[backends.CommitRequest, backends.CommitResult],
	define[backends.ReadFileRequest, backends.ReadFileResult],
	define[backends.WriteFileRequest, backends.WriteFileResult],
	define[backends.ListFilesRequest, backends.ListFilesResult],
	define[backends.DeleteFileRequest, backends.DeleteFileResult],
	define[backends.DeleteBranchRequest, backends.DeleteBranchResult],
	define[backends.ListWorkspacesRequest, backends.ListWorkspacesResult],
	define[backends.ReleaseWorkspaceRequest, backends.ReleaseWorkspaceResult],
	define[backends.FetchRequest, backends.FetchResult],
	define[backends.ShowRequest, backends.ShowResult],
	define[backends.BlameRequest, backends.BlameResult],
	define[backends.TagsRequest, backends.TagsResult],
	define[backends.ReflogRequest, backends.ReflogResult],
	define[backends.StashesRequest, backends.StashesResult],
	define[backends.MergeRequest, backends.MergeResult],
	define[backends.RebaseRequest, backends.RebaseResult],
	define[backends.CherryPickRequest, backends.CherryPickResult],
	define[backends.RevertRequest, backends.RevertResult],
	define[backends.ResetRequest, backends.ResetResult],
	define[backends.RestoreRequest, backends.RestoreResult],
	define[backends.StashRequest, backends.StashResult],
	define[backends.TagRequest, backends.TagResult],
	define[backends.MarkResolvedRequest, backends.MarkResolvedResult],
	define[backends.ContinueRequest, backends.ContinueResult],
	define[backends.AbortRequest, backends.AbortResult],
	define[backends.ForkWorkspaceRequest, backends.ForkWorkspaceResult],
)

// tools returns one tool per operation that has a schema, in the table's
// order. Names, descriptions and annotations come from the backends
// operation table; schemas from the request and result types, except that
// read tools do not offer idempotency_key.
func tools() []toolDef {
	var out []toolDef
	for _, info := range backends.Ops() {
		if def, ok := schemas[info.Op]; ok {
			out = append(out, def())
		}
	}
	return out
}

// declare indexes tool definitions by the operation of their request type.
func declare(defs ...func() toolDef) map[backends.Op]func() toolDef {
	m := make(map[backends.Op]func() toolDef, len(defs))
	for _, def := range defs {
		m[def().op] = def
	}
	return m
}

// define makes the tool of the operation whose request type is *Req.
func define[Req, Res any, PReq interface {
	*Req
	backends.Request
}]() toolDef {
	op := PReq(new(Req)).Op()
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
	} else {
		t.RawInputSchema = withDescription(t.RawInputSchema, idempotencyKey, "any unique string: a retry with the same key is applied at most once")
	}
	if !info.CreatesWorkspace {
		t.RawInputSchema = withDescription(t.RawInputSchema, workspace, "the workspace's name")
	}
	for _, name := range servedFields {
		if prop, ok := t.OutputSchema.Properties[name].(map[string]any); ok {
			delete(prop, "description")
		}
	}
	return toolDef{op: op, tool: t, result: reflect.TypeFor[*Res]()}
}

// servedFields are the JSON names of backends.Served's fields, which every
// result has: their descriptions are said once, in the server's
// instructions, instead of in each of the tools' output schemas (they were
// a third of the tools/list answer).
var servedFields = []string{"backend", "fell_back", "duration_ms", "notices"}

// idempotencyKey is the JSON name of backends.Scope.IdempotencyKey, which
// only write tools offer, with a shorter description than the type's
// (22 tools repeat it).
const idempotencyKey = "idempotency_key"

// workspace is the JSON name of backends.Scope.Workspace. Its naming rules
// (backends.Scope's description) are said only by the tools that make a
// workspace (clone, fork_workspace): the others name one that exists.
const workspace = "workspace"

// withoutProperty returns the JSON schema of an object without the
// property name (neither among its properties nor its required ones).
func withoutProperty(schema json.RawMessage, name string) json.RawMessage {
	return editSchema(schema, func(m map[string]any) {
		if props, ok := m["properties"].(map[string]any); ok {
			delete(props, name)
		}
		if req, ok := m["required"].([]any); ok {
			m["required"] = slices.DeleteFunc(req, func(v any) bool { return v == name })
		}
	})
}

// withDescription returns the JSON schema of an object whose property
// name, if it has one, has the description desc.
func withDescription(schema json.RawMessage, name, desc string) json.RawMessage {
	return editSchema(schema, func(m map[string]any) {
		props, _ := m["properties"].(map[string]any)
		if prop, ok := props[name].(map[string]any); ok {
			prop["description"] = desc
		}
	})
}

// editSchema returns the JSON schema of an object as edit leaves it.
func editSchema(schema json.RawMessage, edit func(map[string]any)) json.RawMessage {
	var m map[string]any
	if err := json.Unmarshal(schema, &m); err != nil {
		panic("mcpserver: an input schema is not a JSON object: " + err.Error())
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		panic("mcpserver: an input schema cannot be encoded: " + err.Error())
	}
	return out
}
