package mcpserver

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/gateway"
)

// TestCallCutByAStoppingGatewayAnswersUnavailable: a call still running
// when its gateway's drain timeout cancels it (cause ErrStopping) tells
// the agent to retry, as unavailable; a call the agent itself cancelled
// keeps the executor's answer.
func TestCallCutByAStoppingGatewayAnswersUnavailable(t *testing.T) {
	started := make(chan struct{}, 1)
	ex := backends.ExecutorFunc(func(ctx context.Context, _ backends.Request) (backends.Result, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, backends.CallerGaveUp(ctx, backends.Errorf(backends.Unavailable, "the call was cancelled"))
	})
	s := newTestServer(t, ex, &strings.Builder{})
	for _, tc := range []struct {
		cause error
		want  string
	}{
		{ErrStopping, "unavailable: this gateway stopped before the call finished"},
		{context.Canceled, "canceled: "},
	} {
		ctx, cancel := context.WithCancelCause(gateway.WithPrincipal(t.Context(),
			backends.Principal{Project: "p", Agent: "a", AuthorName: "A", AuthorEmail: "a@x"}))
		go func() { <-started; cancel(tc.cause) }()
		raw, err := json.Marshal(s.mcp.HandleMessage(ctx, []byte(
			`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"commit","arguments":{"workspace":"w","message":"m"}}}`)))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), tc.want) {
			t.Errorf("cancelled with %v: answer %s, want it to contain %q", tc.cause, raw, tc.want)
		}
	}
}
