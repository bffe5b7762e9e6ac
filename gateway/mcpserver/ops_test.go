package mcpserver

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// TestEveryOperationHasATool walks the operation table (backends.Ops):
// every operation has a tool schema made from its own request and result
// types, a renderer of its result, a tool registered on the server and a
// schema snapshot; nothing has one that the table does not declare. The
// failure lists every piece missing, as "op: piece (where)".
func TestEveryOperationHasATool(t *testing.T) {
	registered := map[string]bool{}
	for _, tool := range listTools(t, newTestServer(t, nil, &strings.Builder{})) {
		registered[tool["name"].(string)] = true
	}
	var missing []string
	miss := func(op backends.Op, piece string) { missing = append(missing, string(op)+": "+piece) }
	declared := map[backends.Op]bool{}
	for _, info := range backends.Ops() {
		op := info.Op
		declared[op] = true
		// result is nil until the table has the op's types (the table's
		// own walk names them); the types are compared once it has.
		result := reflect.TypeOf(backends.NewResult(op))
		if def, ok := schemas[op]; !ok {
			miss(op, "a tool schema (gateway/mcpserver/tools.go schemas)")
		} else if got := def().result; result != nil && got != result {
			miss(op, "a tool schema of its own result type "+result.String()+", not "+got.String()+" (gateway/mcpserver/tools.go schemas)")
		}
		if r, ok := renderers[op]; !ok {
			miss(op, "a renderer (gateway/mcpserver/render.go renderers)")
		} else if result != nil && r.result != result {
			miss(op, "a renderer of its own result type "+result.String()+", not "+r.result.String()+" (gateway/mcpserver/render.go renderers)")
		}
		if !registered[string(op)] {
			miss(op, "an MCP tool registered (gateway/mcpserver New)")
		}
		if _, err := os.Stat(snapshotPath(string(op))); err != nil {
			miss(op, "a tool schema snapshot ("+filepath.ToSlash(filepath.Join("gateway/mcpserver", snapshotPath(string(op))))+"; run TestToolSchemaSnapshots with UPDATE_TOOLSNAPS=1)")
		}
	}
	for op := range schemas {
		if !declared[op] {
			miss(op, "a tool schema but not in the operation table (backends/ops.go)")
		}
	}
	for op := range renderers {
		if !declared[op] {
			miss(op, "a renderer but not in the operation table (backends/ops.go)")
		}
	}
	snaps, _ := filepath.Glob(snapshotPath("*"))
	for _, path := range snaps {
		if op := backends.Op(strings.TrimSuffix(filepath.Base(path), ".json")); !declared[op] {
			miss(op, "a tool schema snapshot but not in the operation table (backends/ops.go)")
		}
	}
	if len(missing) > 0 {
		t.Fatalf("mcpserver is missing:\n  %s", strings.Join(missing, "\n  "))
	}
}

// snapshotPath is where the tool schema snapshot of the named tool is kept.
func snapshotPath(tool string) string {
	return filepath.Join("testdata", "toolsnaps", tool+".json")
}
