package mcpserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/redact"
	"github.com/gitgate/gitgate/gateway"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// byWorkspace answers by the workspace's name: "ok" succeeds, "missing"
// is the agent's mistake, "down" a dependency's outage, "boom" panics.
func byWorkspace(_ context.Context, req backends.Request) (backends.Result, error) {
	switch req.GetScope().Workspace {
	case "ok":
		return backends.NewResult(req.Op()), nil
	case "missing":
		return nil, backends.Errorf(backends.NotFound, "no such workspace")
	case "down":
		return nil, backends.Errorf(backends.Unavailable, "a dependency is down")
	default:
		panic("backend bug")
	}
}

func statusCall(workspace string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"status","arguments":{"workspace":%q}}}`, workspace)
}

// TestAPIRequestsCountedByClass: every request to the HTTP endpoint is
// counted by class — an authentication refusal is a client error, a tool
// call's error takes its category's class (not_found: client;
// unavailable and a panic: server) — and every tool call over stdio too.
func TestAPIRequestsCountedByClass(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewAPIMetrics(reg)
	dir, err := gateway.NewDirectory([]gateway.Agent{
		{Name: "ada", Project: "p", TokenSHA256: gateway.HashToken(adaToken), AuthorName: "Ada", AuthorEmail: "ada@x"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	s, err := New(Config{Executor: backends.ExecutorFunc(byWorkspace), Redactor: redact.New(secret), Directory: dir, Metrics: m,
		HTTP: HTTPConfig{AllowedHosts: []string{srv.Listener.Addr().String()}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = s.HTTPHandler()
	srv.Start()
	t.Cleanup(func() { s.Close(context.WithoutCancel(t.Context())) })
	t.Cleanup(srv.Close)
	w := &httpWorld{url: srv.URL + "/mcp", base: srv.URL, server: s}
	count := func(transport Transport, class Class) float64 {
		return testutil.ToFloat64(m.requests.WithLabelValues(string(transport), string(class)))
	}
	want := func(transport Transport, ok, client, server float64) {
		t.Helper()
		if g := [3]float64{count(transport, ClassOK), count(transport, ClassClientError), count(transport, ClassServerError)}; g != [3]float64{ok, client, server} {
			t.Errorf("%s requests (ok, client_error, server_error) = %v, want %v", transport, g, [3]float64{ok, client, server})
		}
	}

	if resp, _ := w.do(t, http.MethodPost, "", "", initializeBody); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	want(TransportHTTP, 0, 1, 0)
	session := w.initialize(t, adaToken)
	want(TransportHTTP, 1, 1, 0)
	for _, ws := range []string{"ok", "missing", "down", "boom"} {
		if resp, body := w.do(t, http.MethodPost, adaToken, session, statusCall(ws)); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", ws, resp.StatusCode, body)
		}
	}
	want(TransportHTTP, 2, 2, 2)

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- s.ServeStdio(ctx, gateway.Agent{Name: "ada", Project: "p", AuthorName: "Ada", AuthorEmail: "ada@x"}, inR, outW)
	}()
	lines := bufio.NewScanner(outR)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	for _, msg := range []string{initializeBody, statusCall("ok"), statusCall("missing"), statusCall("down")} {
		if _, err := io.WriteString(inW, msg+"\n"); err != nil {
			t.Fatal(err)
		}
		if !lines.Scan() || !strings.Contains(lines.Text(), `"id"`) {
			t.Fatalf("no answer over stdio to %s", msg)
		}
	}
	cancel()
	_ = inW.Close()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("ServeStdio: %v", err)
	}
	_ = outR.Close()
	want(TransportStdio, 1, 1, 1)
}
