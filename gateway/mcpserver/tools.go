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
	}
	return toolDef{op: op, tool: t, result: reflect.TypeFor[*Res]()}
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
