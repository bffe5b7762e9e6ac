package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/redact"
	"github.com/gitgate/gitgate/gateway"
	"github.com/mark3labs/mcp-go/mcp"
)

const secret = "ghp_unitSECRETtoken0123456789abcdefABCD"

func newTestServer(t *testing.T, ex backends.ExecutorFunc, logs *strings.Builder) *Server {
	t.Helper()
	r := redact.New(secret)
	s, err := New(Config{Executor: ex, Redactor: r, Logger: slog.New(r.Handler(slog.NewTextHandler(logs, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// handle sends one JSON-RPC message as an authenticated agent and returns
// the decoded response.
func handle(t *testing.T, s *Server, msg string) map[string]any {
	t.Helper()
	ctx := gateway.WithPrincipal(t.Context(), backends.Principal{Project: "p", Agent: "a", AuthorName: "A", AuthorEmail: "a@x"})
	raw, err := json.Marshal(s.mcp.HandleMessage(ctx, []byte(msg)))
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func listTools(t *testing.T, s *Server) []map[string]any {
	res := handle(t, s, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	var tools []map[string]any
	for _, tool := range res["result"].(map[string]any)["tools"].([]any) {
		tools = append(tools, tool.(map[string]any))
	}
	return tools
}

// TestToolsFollowTheOperationTable: one tool per operation, annotated from
// the read/write table, with the workspace required and no way to name a
// project or principal.
func TestToolsFollowTheOperationTable(t *testing.T) {
	s := newTestServer(t, nil, &strings.Builder{})
	tools := listTools(t, s)
	if len(tools) != len(backends.Ops()) {
		t.Fatalf("%d tools for %d operations", len(tools), len(backends.Ops()))
	}
	byName := map[string]map[string]any{}
	for _, tool := range tools {
		byName[tool["name"].(string)] = tool
	}
	for _, info := range backends.Ops() {
		tool := byName[string(info.Op)]
		if tool == nil {
			t.Fatalf("no tool for %s", info.Op)
		}
		ann := tool["annotations"].(map[string]any)
		want := map[string]bool{"readOnlyHint": info.Kind == backends.Read, "destructiveHint": info.Destructive,
			"idempotentHint": info.Idempotent, "openWorldHint": info.Remote}
		for k, v := range want {
			if ann[k] != v {
				t.Errorf("%s: %s = %v, want %v", info.Op, k, ann[k], v)
			}
		}
		schema := fmt.Sprint(tool["inputSchema"])
		props, _ := tool["inputSchema"].(map[string]any)["properties"].(map[string]any)
		for name := range props {
			if n := strings.ToLower(name); strings.Contains(n, "principal") || strings.Contains(n, "project") || strings.Contains(n, "agent") {
				t.Errorf("%s: input schema lets the caller name who acts: property %q", info.Op, name)
			}
		}
		if info.Op != backends.OpListWorkspaces && !strings.Contains(fmt.Sprint(tool["inputSchema"].(map[string]any)["required"]), "workspace") {
			t.Errorf("%s: workspace is not required: %s", info.Op, schema)
		}
		if tool["outputSchema"] == nil {
			t.Errorf("%s: no output schema", info.Op)
		}
	}
}

// TestToolSchemaSnapshots keeps the tools' JSON (names, descriptions,
// schemas) in testdata so that every change to what agents see shows up in
// review. UPDATE_TOOLSNAPS=1 rewrites the files.
func TestToolSchemaSnapshots(t *testing.T) {
	s := newTestServer(t, nil, &strings.Builder{})
	for _, tool := range listTools(t, s) {
		got, _ := json.MarshalIndent(tool, "", "  ")
		path := filepath.Join("testdata", "toolsnaps", tool["name"].(string)+".json")
		if os.Getenv("UPDATE_TOOLSNAPS") == "1" {
			if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with UPDATE_TOOLSNAPS=1 to create it)", err)
		}
		if string(want) != string(got)+"\n" {
			t.Errorf("tool %s changed; review and run with UPDATE_TOOLSNAPS=1:\n%s", tool["name"], got)
		}
	}
}

func callResult(t *testing.T, s *Server, tool, args string) (text string, isError bool, category any) {
	res := handle(t, s, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"`+tool+`","arguments":`+args+`}}`)
	r, ok := res["result"].(map[string]any)
	if !ok {
		t.Fatalf("no result: %v", res)
	}
	content := r["content"].([]any)[0].(map[string]any)
	var cat any
	if meta, ok := r["_meta"].(map[string]any); ok {
		cat = meta["gitgate/category"]
	}
	isErr, _ := r["isError"].(bool)
	return content["text"].(string), isErr, cat
}

func TestPanicBecomesInternalError(t *testing.T) {
	var logs strings.Builder
	s := newTestServer(t, func(context.Context, backends.Request) (backends.Result, error) {
		panic("boom with " + secret)
	}, &logs)
	text, isErr, cat := callResult(t, s, "status", `{"workspace":"w"}`)
	if !isErr || text != "internal: internal error" || cat != "internal" {
		t.Fatalf("panic gave %q (error %v, category %v)", text, isErr, cat)
	}
	if !strings.Contains(logs.String(), "boom with ***") || strings.Contains(logs.String(), secret) {
		t.Fatalf("panic log: %s", logs.String())
	}
}

func TestErrorsAreCategorisedAndRedacted(t *testing.T) {
	s := newTestServer(t, func(context.Context, backends.Request) (backends.Result, error) {
		return nil, backends.Errorf(backends.Unauthenticated, "remote refused https://x:%s@github.com/o/r", secret)
	}, &strings.Builder{})
	text, isErr, cat := callResult(t, s, "push", `{"workspace":"w"}`)
	if !isErr || cat != "unauthenticated" || !strings.HasPrefix(text, "unauthenticated: ") || strings.Contains(text, secret) {
		t.Fatalf("error result %q (error %v, category %v)", text, isErr, cat)
	}
}

func TestUnknownAndMistypedArgumentsAreRefused(t *testing.T) {
	called := false
	s := newTestServer(t, func(context.Context, backends.Request) (backends.Result, error) {
		called = true
		return nil, errors.New("must not be called")
	}, &strings.Builder{})
	for _, args := range []string{`{"workspace":"w","force":true}`, `{"workspace":7}`, `{"workspace":"w","Principal":{"Project":"other"}}`} {
		text, isErr, cat := callResult(t, s, "status", args)
		if !isErr || cat != "invalid_argument" {
			t.Errorf("%s: %q (error %v, category %v)", args, text, isErr, cat)
		}
	}
	if called {
		t.Fatal("the executor ran for refused arguments")
	}
}

func TestResultsAreRedacted(t *testing.T) {
	s := newTestServer(t, func(context.Context, backends.Request) (backends.Result, error) {
		return &backends.ReadFileResult{Path: "leak.txt", Encoding: "utf-8", Content: "token=" + secret + "\n"}, nil
	}, &strings.Builder{})
	res := handle(t, s, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read_file","arguments":{"workspace":"w","path":"leak.txt"}}}`)
	raw, _ := json.Marshal(res)
	if strings.Contains(string(raw), secret) || !strings.Contains(string(raw), "token=***") {
		t.Fatalf("result not redacted: %s", raw)
	}
	var structured struct {
		Result mcp.CallToolResult `json:"result"`
	}
	if err := json.Unmarshal(raw, &structured); err != nil || structured.Result.IsError {
		t.Fatalf("result: %v %s", err, raw)
	}
}

// toolsListBudget bounds the size of the whole tools/list answer, which
// every agent's model reads before its first call: the README gives the
// figure (measured as this test does, the compact JSON-RPC response).
const toolsListBudget = 64 << 10

// TestToolsListSize measures the tools/list answer (log it with -v) and
// keeps it within toolsListBudget.
func TestToolsListSize(t *testing.T) {
	s := newTestServer(t, nil, &strings.Builder{})
	ctx := gateway.WithPrincipal(t.Context(), backends.Principal{Project: "p", Agent: "a"})
	raw, err := json.Marshal(s.mcp.HandleMessage(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)))
	if err != nil {
		t.Fatal(err)
	}
	tools := listTools(t, s)
	var desc, in, out int
	for _, tool := range tools {
		desc += len(tool["description"].(string))
		b, _ := json.Marshal(tool["inputSchema"])
		in += len(b)
		b, _ = json.Marshal(tool["outputSchema"])
		out += len(b)
	}
	t.Logf("tools/list: %d tools, %d bytes (%.1f KB): descriptions %d, input schemas %d, output schemas %d",
		len(tools), len(raw), float64(len(raw))/1000, desc, in, out)
	if len(raw) > toolsListBudget {
		t.Errorf("tools/list is %d bytes, over its budget of %d: make descriptions leaner before raising it", len(raw), toolsListBudget)
	}
}
