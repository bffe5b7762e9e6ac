package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/gitgate/gitgate/internal/testkit"
)

// TestDrainTurnsAwayWhileServing: once the gateway's shutdown starts,
// /readyz answers 503 "draining" at once while /healthz still says ok and
// MCP is still served, each answer closing its connection, for
// listen.drain_delay; then the MCP listener closes. The keep-alive
// connection open before the drain is not closed under the client: its
// next call is answered (then the connection closes).
func TestDrainTurnsAwayWhileServing(t *testing.T) {
	w := newWorld(t)
	w.cfg.Listen.DrainDelay = 10 * time.Second // far longer than the checks below take
	w.startHTTP(t)
	var dials atomic.Int64 // the MCP client's connections
	dialer := &net.Dialer{}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dialer.DialContext(ctx, network, addr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := client.NewStreamableHttpClient(w.mcpURL,
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + agentToken}),
		transport.WithHTTPBasicClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	w.initialize(t, c)
	w.ok(t, c, "list_workspaces", map[string]any{})
	if code, body := get(t, w.adminURL+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before the shutdown: %d %q", code, body)
	}

	stopped := make(chan struct{})
	go func() { w.stopHTTP(); close(stopped) }()
	testkit.Eventually(t, "/readyz answers 503 draining", func() bool {
		code, body := get(t, w.adminURL+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "draining")
	})
	if code, body := get(t, w.adminURL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while draining: %d %q", code, body)
	}
	before := dials.Load()
	w.ok(t, c, "list_workspaces", map[string]any{}) // the session opened before goes on
	if n := dials.Load(); n != before {
		t.Errorf("the call after the drain started opened %d new connections; want it on the idle keep-alive connection from before (closing that under the client races its next request)", n-before)
	}
	w.ok(t, c, "list_workspaces", map[string]any{})
	if n := dials.Load(); n != before+1 {
		t.Errorf("the next call opened %d new connections; want 1 (the answer before closed its connection)", n-before)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, w.mcpURL, strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"drain-test","version":"1"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+agentToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("a new session while draining: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("a new session while draining: %s, connection close %v; want 200 and the connection closed", resp.Status, resp.Close)
	}

	select {
	case <-stopped:
	case <-time.After(testkit.Patience):
		t.Fatal("the gateway did not stop after its drain delay")
	}
	u, _ := url.Parse(w.mcpURL)
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		_ = c.Close()
		t.Error("the MCP listener still accepts after the gateway stopped")
	}
	if !strings.Contains(w.logs.String(), `"msg":"draining: not ready, still serving while the load balancer turns traffic away"`) {
		t.Error("no log line for the drain delay")
	}
}
