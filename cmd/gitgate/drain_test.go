package main

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/testkit"
)

// TestDrainTurnsAwayWhileServing: once the gateway's shutdown starts,
// /readyz answers 503 "draining" at once while /healthz still says ok and
// MCP is still served, each answer closing its connection (keep-alive
// off), for listen.drain_delay; then the MCP listener closes.
func TestDrainTurnsAwayWhileServing(t *testing.T) {
	w := newWorld(t)
	w.cfg.Listen.DrainDelay = 10 * time.Second // far longer than the checks below take
	w.startHTTP(t)
	c := w.httpClient(t, agentToken)
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
	w.ok(t, c, "list_workspaces", map[string]any{}) // the session opened before goes on
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
