package mcpserver

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// TestNoticesReachTheAgent: a result's notices (a workspace restored after
// its sandbox was removed) lead the readable text and are part of the
// structured content.
func TestNoticesReachTheAgent(t *testing.T) {
	const notice = `Workspace "w"'s sandbox was removed; your work is restored.`
	s := newTestServer(t, func(context.Context, backends.Request) (backends.Result, error) {
		return &backends.StatusResult{Served: backends.Served{Backend: "approach1", Notices: []string{notice}}, Branch: "main", Entries: []backends.StatusEntry{}}, nil
	}, &strings.Builder{})
	res := handle(t, s, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"status","arguments":{"workspace":"w"}}}`)
	raw, _ := json.Marshal(res)
	var out struct {
		Result struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
			Structured struct {
				Notices []string `json:"notices"`
			} `json:"structuredContent"`
		} `json:"result"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Result.Content) == 0 {
		t.Fatalf("result: %v %s", err, raw)
	}
	if text := out.Result.Content[0].Text; !strings.HasPrefix(text, "NOTICE: "+notice) {
		t.Errorf("readable text does not start with the notice:\n%s", text)
	}
	if got := out.Result.Structured.Notices; len(got) != 1 || got[0] != notice {
		t.Errorf("structured notices = %q, want [%q]", got, notice)
	}
}
