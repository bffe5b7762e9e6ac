package mcpserver

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/redact"
)

// TestGatewayPathsAreHidden: an error or a result that names one of the
// gateway's directories reaches the agent with "<sandbox>" in its place,
// in the readable text and in the structured content, and secrets are
// still masked.
func TestGatewayPathsAreHidden(t *testing.T) {
	const root = "/var/lib/gitgate/sandboxes"
	var fail bool
	ex := backends.ExecutorFunc(func(_ context.Context, req backends.Request) (backends.Result, error) {
		if fail {
			return nil, backends.Errorf(backends.Internal, "remove %s/sbx-1/ws/x: permission denied (token %s)", root, secret)
		}
		return &backends.WriteFileResult{Path: root + "/sbx-1/ws/a.txt", Size: 1}, nil
	})
	s, err := New(Config{Executor: ex, Redactor: redact.New(secret), HidePaths: []string{"/", root + "/", "/var/lib/gitgate"}})
	if err != nil {
		t.Fatal(err)
	}
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write_file","arguments":{"workspace":"w","path":"a.txt","content":"x"}}}`
	for _, fail = range []bool{false, true} {
		raw, err := json.Marshal(handle(t, s, call))
		if err != nil {
			t.Fatal(err)
		}
		out := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(string(raw))
		if strings.Contains(out, "/var/lib") || strings.Contains(out, secret) || !strings.Contains(out, "<sandbox>/sbx-1/ws/") {
			t.Errorf("failing %v: %s; want the gateway's directory hidden and the secret masked", fail, out)
		}
	}
}
