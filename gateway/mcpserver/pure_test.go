package mcpserver

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// callFull calls tool with args and returns the decoded result.
func callFull(t *testing.T, s *Server, tool, args string) mcp.CallToolResult {
	t.Helper()
	res := handle(t, s, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"`+tool+`","arguments":`+args+`}}`)
	raw, _ := json.Marshal(res["result"])
	var out mcp.CallToolResult
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: %v: %s", tool, err, raw)
	}
	return out
}

// TestReadFileTextIsTheFileAlone: the readable text of read_file is the
// file's bytes, with no footer; the notice and the paging hint are items
// of their own; which backend served the call, how long it took and
// whether it fell back are in _meta and in the structured content.
func TestReadFileTextIsTheFileAlone(t *testing.T) {
	const content = "package main\n\nfunc main() {}\n"
	s := newTestServer(t, func(context.Context, backends.Request) (backends.Result, error) {
		return &backends.ReadFileResult{Served: backends.Served{Backend: "approach2", DurationMS: 7, FellBack: true, Notices: []string{"restored"}},
			Path: "main.go", Size: 100, Encoding: "utf-8", Content: content, Truncation: backends.Truncation{Truncated: true, NextOffset: 29}}, nil
	}, &strings.Builder{})
	out := callFull(t, s, "read_file", `{"workspace":"w","path":"main.go"}`)
	texts := contentTexts(t, &out)
	if len(texts) != 3 || texts[0] != "NOTICE: restored" || texts[1] != content || !strings.Contains(texts[2], "offset=29") {
		t.Fatalf("read_file content items %q, want the notice, the file exactly, the paging hint", texts)
	}
	if out.Meta == nil {
		t.Fatal("no _meta")
	}
	meta := out.Meta.AdditionalFields
	if meta["gitgate/backend"] != "approach2" || meta["gitgate/duration_ms"] != float64(7) || meta["gitgate/fell_back"] != true {
		t.Errorf("_meta = %v, want the backend, the duration and the fallback", meta)
	}
	st, _ := out.StructuredContent.(map[string]any)
	if st["backend"] != "approach2" || st["duration_ms"] != float64(7) || st["fell_back"] != true || st["content"] != content {
		t.Errorf("structured content = %v", st)
	}
}

// TestNoToolTextHasABackendFooter: no tool's readable text says which
// backend served it; every result's _meta does.
func TestNoToolTextHasABackendFooter(t *testing.T) {
	for _, info := range backends.Ops() {
		s := newTestServer(t, func(_ context.Context, req backends.Request) (backends.Result, error) {
			res := backends.NewResult(req.Op())
			*res.GetServed() = backends.Served{Backend: "approach1", DurationMS: 3}
			return res, nil
		}, &strings.Builder{})
		out := callFull(t, s, string(info.Op), argsFor(info.Op))
		if out.IsError {
			t.Fatalf("%s: %v", info.Op, contentTexts(t, &out))
		}
		for _, text := range contentTexts(t, &out) {
			if strings.Contains(text, "approach1") || strings.Contains(text, "served") {
				t.Errorf("%s: readable text names the backend: %q", info.Op, text)
			}
		}
		if out.Meta == nil || out.Meta.AdditionalFields["gitgate/backend"] != "approach1" {
			t.Errorf("%s: _meta %+v has no backend", info.Op, out.Meta)
		}
	}
}

// argsFor returns valid arguments for op.
func argsFor(op backends.Op) string {
	switch op {
	case backends.OpListWorkspaces:
		return `{}`
	case backends.OpClone:
		return `{"workspace":"w","url":"https://x/y"}`
	case backends.OpCheckout, backends.OpDeleteBranch:
		return `{"workspace":"w","branch":"b"}`
	case backends.OpCommit:
		return `{"workspace":"w","message":"m"}`
	case backends.OpReadFile, backends.OpDeleteFile:
		return `{"workspace":"w","path":"p"}`
	case backends.OpWriteFile:
		return `{"workspace":"w","path":"p","content":""}`
	case backends.OpBlame:
		return `{"workspace":"w","path":"p"}`
	case backends.OpCherryPick, backends.OpRevert:
		return `{"workspace":"w","commits":["c"]}`
	case backends.OpRestore, backends.OpMarkResolved:
		return `{"workspace":"w","paths":["p"]}`
	case backends.OpStash:
		return `{"workspace":"w","action":"push"}`
	case backends.OpTag:
		return `{"workspace":"w","name":"v1"}`
	case backends.OpForkWorkspace:
		return `{"workspace":"w2","source":"w","branch":"b"}`
	}
	return `{"workspace":"w"}`
}

// TestReadToolsOfferNoIdempotencyKey: write tools offer idempotency_key,
// read tools do not; a read called with one anyway runs, without it.
func TestReadToolsOfferNoIdempotencyKey(t *testing.T) {
	var mu sync.Mutex
	var got []string
	s := newTestServer(t, func(_ context.Context, req backends.Request) (backends.Result, error) {
		mu.Lock()
		got = append(got, req.GetScope().IdempotencyKey)
		mu.Unlock()
		return &backends.StatusResult{Served: backends.Served{Backend: "approach1"}, Branch: "main", Entries: []backends.StatusEntry{}}, nil
	}, &strings.Builder{})
	for _, tool := range listTools(t, s) {
		op := backends.Op(tool["name"].(string))
		props, _ := tool["inputSchema"].(map[string]any)["properties"].(map[string]any)
		_, offered := props["idempotency_key"]
		if want := op.Kind() == backends.Write; offered != want {
			t.Errorf("%s (%s): idempotency_key offered %v, want %v", op, op.Kind(), offered, want)
		}
	}
	if out := callFull(t, s, "status", `{"workspace":"w","idempotency_key":"k-1"}`); out.IsError {
		t.Fatalf("status with an idempotency key: %v", contentTexts(t, &out))
	}
	if len(got) != 1 || got[0] != "" {
		t.Errorf("the read ran with key %q, want it dropped", got)
	}
}

// TestErrorsAndNoticesAreEscaped: a backend's error message or notice
// quoting a hostile name reaches the agent escaped, layout kept.
func TestErrorsAndNoticesAreEscaped(t *testing.T) {
	s := newTestServer(t, func(_ context.Context, req backends.Request) (backends.Result, error) {
		if req.Op() == backends.OpStatus {
			return &backends.StatusResult{Served: backends.Served{Backend: "approach1", Notices: []string{"restored " + hostile}}, Entries: []backends.StatusEntry{}}, nil
		}
		return nil, backends.Errorf(backends.NotFound, "no file %s\nat all", hostile)
	}, &strings.Builder{})
	text, isErr, cat := callResult(t, s, "read_file", `{"workspace":"w","path":"x"}`)
	if !isErr || cat != "not_found" || !strings.HasPrefix(text, "not_found: no file ") {
		t.Fatalf("error %q (%v, %v)", text, isErr, cat)
	}
	if bad := unsafe(text, true); len(bad) > 0 || !strings.Contains(text, `a\x1b[31mB\u202eC`) || !strings.Contains(text, "\nat all") {
		t.Errorf("error text has %v or lost its layout: %q", bad, text)
	}
	out := callFull(t, s, "status", `{"workspace":"w"}`)
	notice := contentTexts(t, &out)[0]
	if bad := unsafe(notice, true); len(bad) > 0 || !strings.HasPrefix(notice, `NOTICE: restored a\x1b[31mB\u202eC`) {
		t.Errorf("notice has %v: %q", bad, notice)
	}
}

// TestProgressCarriesTheBackendsTextEscaped: a progress notification's
// message is what the backend reported, escaped, and nothing else.
func TestProgressCarriesTheBackendsTextEscaped(t *testing.T) {
	const reported = "Receiving objects: \x1b[2K 50% (1/2) \u202eevil\r"
	s := newTestServer(t, func(ctx context.Context, req backends.Request) (backends.Result, error) {
		backends.ProgressFrom(ctx)(reported)
		return &backends.CloneResult{Served: backends.Served{Backend: "approach1"}, Workspace: "w"}, nil
	}, &strings.Builder{})
	c, err := client.NewInProcessClient(s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	var mu sync.Mutex
	var messages []any
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			mu.Lock()
			messages = append(messages, n.Params.AdditionalFields["message"])
			mu.Unlock()
		}
	})
	ctx := gateway.WithPrincipal(t.Context(), backends.Principal{Project: "p", Agent: "a"})
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "clone", map[string]any{"workspace": "w", "url": "https://x/y"}
	req.Params.Meta = &mcp.Meta{ProgressToken: "p-1"}
	if res, err := c.CallTool(ctx, req); err != nil || res.IsError {
		t.Fatalf("clone: %v %v", err, res)
	}
	testkit.Eventually(t, "a progress message arrives", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(messages) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	want := `Receiving objects: \x1b[2K 50% (1/2) \u202eevil\r`
	if len(messages) != 1 || messages[0] != want {
		t.Fatalf("progress messages %q, want [%q]", messages, want)
	}
}
