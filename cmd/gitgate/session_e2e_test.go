package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/gateway/mcpserver"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// rawMCP sends one request to the gateway's MCP endpoint with token (none
// if empty) in session (none if empty), and returns the status, the
// headers and the body, recording the body for the secret scan.
func (w *world) rawMCP(t *testing.T, method, token, session, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), method, w.mcpURL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", mcp.ProtocolVersion20251125)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b []byte
	if !(method == http.MethodGet && resp.StatusCode == http.StatusOK) { // an accepted GET is an endless stream
		if b, err = io.ReadAll(resp.Body); err != nil {
			t.Fatal(err)
		}
	}
	w.record(string(b) + "\n" + resp.Header.Get("WWW-Authenticate"))
	return resp.StatusCode, resp.Header, string(b)
}

// sessionClient connects an MCP client with token on protocol version
// 2025-11-25, the last with sessions (mcp-go's latest, 2026-07-28, has
// none, so the world's clients never carry a session id).
func (w *world) sessionClient(t *testing.T, token string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient(w.mcpURL, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	w.initializeSession(t, c)
	return c
}

func (w *world) initializeSession(t *testing.T, c *client.Client) {
	t.Helper()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.ProtocolVersion20251125
	init.Params.ClientInfo = mcp.Implementation{Name: "gitgate-e2e-sessions", Version: "1"}
	if _, err := c.Initialize(testCtx(t), init); err != nil {
		t.Fatal(err)
	}
	if c.GetSessionId() == "" {
		t.Fatal("no session after initialize")
	}
}

const (
	e2eInitialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	e2eToolsList  = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
)

// TestE2ESessionsFollowTheSpec replays the session attacks against a
// running gateway: a made-up session id, another agent's, and one reused
// after its own DELETE all get 404 (the MCP transport spec), while the
// real client's session keeps working until it ends it.
func TestE2ESessionsFollowTheSpec(t *testing.T) {
	w := newWorld(t)
	w.startHTTP(t)
	ada := w.sessionClient(t, agentToken)
	id := ada.GetSessionId()
	for _, tc := range []struct{ who, token, session string }{
		{"made-up id", agentToken, "mcp-session-3f2b8c1e-8a4d-4b9e-9c1a-2d3e4f5a6b7c"},
		{"made-up gitgate-style id", agentToken, "gitgate-" + strings.Repeat("Q", 26)},
		{"another agent", strangerToken, id},
	} {
		for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
			if code, _, body := w.rawMCP(t, method, tc.token, tc.session, e2eToolsList); code != http.StatusNotFound {
				t.Errorf("%s, %s: %d %s, want 404", tc.who, method, code, body)
			}
		}
	}
	w.ok(t, ada, "list_workspaces", map[string]any{}) // the real session still works
	// The client ends its session with DELETE (mcp-go's Close sends it
	// without the client's headers, so it would get 401: send it here).
	if code, _, body := w.rawMCP(t, http.MethodDelete, agentToken, id, ""); code != http.StatusOK {
		t.Fatalf("DELETE of the session by its agent: %d %s", code, body)
	}
	for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
		if code, _, body := w.rawMCP(t, method, agentToken, id, e2eToolsList); code != http.StatusNotFound {
			t.Errorf("the session after its DELETE, %s: %d %s, want 404", method, code, body)
		}
	}
}

// TestE2ESessionFloodEvictsTheAgentsOldest: an agent opening more than the
// cap of sessions loses its least recently used one; its client gets
// "session terminated (404)", re-initializes, and carries on. Another
// agent's session is untouched.
func TestE2ESessionFloodEvictsTheAgentsOldest(t *testing.T) {
	w := newWorld(t)
	w.startHTTP(t)
	ada, eve := w.sessionClient(t, agentToken), w.sessionClient(t, strangerToken)
	for i := range mcpserver.DefaultMaxSessionsPerAgent {
		if code, hdr, body := w.rawMCP(t, http.MethodPost, agentToken, "", e2eInitialize); code != http.StatusOK || hdr.Get("Mcp-Session-Id") == "" {
			t.Fatalf("initialize %d: %d %s", i, code, body)
		}
	}
	ctx := testCtx(t)
	if _, err := ada.ListTools(ctx, mcp.ListToolsRequest{}); !errors.Is(err, transport.ErrSessionTerminated) {
		t.Fatalf("ada's oldest session after %d newer ones: %v, want session terminated", mcpserver.DefaultMaxSessionsPerAgent, err)
	}
	w.initializeSession(t, ada)
	w.ok(t, ada, "list_workspaces", map[string]any{}) // ada after re-initializing
	w.ok(t, eve, "list_workspaces", map[string]any{}) // eve's session after ada's flood
}

// TestE2EAuthenticationFailures: against a running gateway, missing, wrong
// and malformed credentials get 401 with a Bearer challenge that names the
// problem and no OAuth metadata, the OAuth discovery paths say gitgate has
// no OAuth, and an MCP client with a wrong token is refused.
func TestE2EAuthenticationFailures(t *testing.T) {
	w := newWorld(t)
	w.startHTTP(t)
	for _, tc := range []struct {
		name, header, challenge string
	}{
		{"missing", "", `Bearer realm="gitgate"`},
		{"wrong", "Bearer " + strangerToken + "0", `Bearer realm="gitgate", error="invalid_token", error_description="wrong token`},
		{"malformed", agentToken, `Bearer realm="gitgate", error="invalid_request", error_description="malformed Authorization header`},
	} {
		req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, w.mcpURL, strings.NewReader(e2eInitialize))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		challenge := resp.Header.Get("WWW-Authenticate")
		w.record(string(body) + "\n" + challenge)
		var got map[string]string
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(challenge, tc.challenge) ||
			json.Unmarshal(body, &got) != nil || !strings.Contains(got["error_description"], "does not use OAuth") {
			t.Errorf("%s: %d, WWW-Authenticate %q, body %s", tc.name, resp.StatusCode, challenge, body)
		}
	}
	base := strings.TrimSuffix(w.mcpURL, w.cfg.MCP.Path)
	for _, path := range []string{"/.well-known/oauth-protected-resource" + w.cfg.MCP.Path, "/.well-known/oauth-authorization-server", "/register"} {
		resp, err := http.Post(base+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "does not use OAuth") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	c, err := client.NewStreamableHttpClient(w.mcpURL, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + strangerToken + "0"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx := testCtx(t)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "gitgate-e2e", Version: "1"}
	_, err = c.Initialize(ctx, init)
	var authErr *transport.AuthorizationRequiredError
	if !errors.As(err, &authErr) {
		t.Fatalf("initialize with a wrong token: %v, want an authorization error", err)
	}
	w.record(err.Error())
	t.Logf("mcp-go client with a wrong token: %v", err)
}
