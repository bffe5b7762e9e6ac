package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/redact"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/mark3labs/mcp-go/server"
)

const (
	adaToken = "gga_unit_token_ada_0123456789abcdef"
	eveToken = "gga_unit_token_eve_0123456789abcdef"
)

// httpWorld is the Streamable HTTP endpoint of a server with two agents.
type httpWorld struct {
	url     string // of the MCP endpoint
	base    string // scheme://host:port
	handler http.Handler
	host    string
	logs    *testkit.SyncBuffer
	server  *Server
}

func newHTTPWorld(t *testing.T, cfg HTTPConfig) *httpWorld {
	t.Helper()
	dir, err := gateway.NewDirectory([]gateway.Agent{
		{Name: "ada", Project: "p", TokenSHA256: gateway.HashToken(adaToken), AuthorName: "Ada", AuthorEmail: "ada@x"},
		{Name: "eve", Project: "q", TokenSHA256: gateway.HashToken(eveToken), AuthorName: "Eve", AuthorEmail: "eve@x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.SyncBuffer{}
	r := redact.New(secret)
	ex := backends.ExecutorFunc(func(context.Context, backends.Request) (backends.Result, error) {
		return nil, backends.Errorf(backends.Internal, "not used")
	})
	srv := httptest.NewUnstartedServer(nil)
	host := srv.Listener.Addr().String()
	cfg.AllowedHosts = []string{host}
	s, err := New(Config{Executor: ex, Redactor: r, Directory: dir, HTTP: cfg,
		Logger: slog.New(r.Handler(slog.NewTextHandler(logs, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	h := s.HTTPHandler()
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(func() { s.Close(context.WithoutCancel(t.Context())) }) // runs after srv.Close
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		for _, tok := range []string{adaToken, eveToken} {
			if strings.Contains(logs.String(), tok) {
				t.Errorf("a bearer token appears in the logs")
			}
		}
	})
	return &httpWorld{url: srv.URL + "/mcp", base: srv.URL, handler: h, host: host, logs: logs, server: s}
}

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"unit","version":"1"}}}`
const toolsListBody = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`

// do sends one request to the MCP endpoint as the holder of token (none if
// empty) in session (none if empty) and returns the response and its body.
func (w *httpWorld) do(t *testing.T, method, token, session, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, w.url, strings.NewReader(body))
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
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	}
	return send(t, req)
}

func send(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	if req.Method == http.MethodGet {
		// A GET that is accepted opens an SSE stream: read only the status.
		ctx, cancel := context.WithCancel(req.Context())
		defer cancel()
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return resp, ""
		}
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// initialize opens a session as token's agent and returns its id.
func (w *httpWorld) initialize(t *testing.T, token string) string {
	t.Helper()
	resp, body := w.do(t, http.MethodPost, token, "", initializeBody)
	id := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("initialize: %d, session %q: %s", resp.StatusCode, id, body)
	}
	return id
}

// status sends method (with the tools/list body for POST) in session and
// returns the HTTP status.
func (w *httpWorld) status(t *testing.T, method, token, session string) int {
	t.Helper()
	body := ""
	if method == http.MethodPost {
		body = toolsListBody
	}
	resp, _ := w.do(t, method, token, session, body)
	return resp.StatusCode
}

// TestUnknownSessionIDsGet404: a made-up session id, well-formed for
// mcp-go's own generator or for gitgate's, gets 404 on every method, as
// the MCP transport spec requires; the client then starts a new session.
func TestUnknownSessionIDsGet404(t *testing.T) {
	w := newHTTPWorld(t, HTTPConfig{})
	real := w.initialize(t, adaToken)
	last := "Z" // the real id with its last character changed
	if strings.HasSuffix(real, last) {
		last = "Y"
	}
	for _, id := range []string{
		"mcp-session-3f2b8c1e-8a4d-4b9e-9c1a-2d3e4f5a6b7c",
		"gitgate-" + strings.Repeat("A", 26),
		real[:len(real)-1] + last,
		"",
	} {
		for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
			if id == "" && method != http.MethodPost {
				continue // GET without a session opens a new stream; DELETE of nothing is a no-op
			}
			if got := w.status(t, method, adaToken, id); got != http.StatusNotFound {
				t.Errorf("%s with session %q: %d, want 404", method, id, got)
			}
		}
	}
	if got := w.status(t, http.MethodPost, adaToken, real); got != http.StatusOK {
		t.Errorf("the real session: %d, want 200", got)
	}
}

// TestEndedSessionGets404: after its own DELETE, a session id gets 404.
func TestEndedSessionGets404(t *testing.T) {
	w := newHTTPWorld(t, HTTPConfig{})
	id := w.initialize(t, adaToken)
	if got := w.status(t, http.MethodPost, adaToken, id); got != http.StatusOK {
		t.Fatalf("tools/list in a new session: %d", got)
	}
	if got := w.status(t, http.MethodDelete, adaToken, id); got != http.StatusOK {
		t.Fatalf("DELETE: %d", got)
	}
	for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
		if got := w.status(t, method, adaToken, id); got != http.StatusNotFound {
			t.Errorf("%s after DELETE: %d, want 404", method, got)
		}
	}
	// A new initialize works as usual.
	if got := w.status(t, http.MethodPost, adaToken, w.initialize(t, adaToken)); got != http.StatusOK {
		t.Errorf("tools/list in the next session: %d", got)
	}
}

// TestOtherAgentsSessionIsRefused: another agent's session id gets 404 on
// every method (it is not told the session exists), and its DELETE does
// not end the session.
func TestOtherAgentsSessionIsRefused(t *testing.T) {
	w := newHTTPWorld(t, HTTPConfig{})
	id := w.initialize(t, adaToken)
	for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
		if got := w.status(t, method, eveToken, id); got != http.StatusNotFound {
			t.Errorf("eve %s in ada's session: %d, want 404", method, got)
		}
	}
	if got := w.status(t, http.MethodPost, adaToken, id); got != http.StatusOK {
		t.Errorf("ada's session after eve's attempts: %d, want 200", got)
	}
}

// TestSessionsPerAgentAreCapped: an agent opening more sessions than the
// cap loses its least recently used ones (404, so its client starts a new
// session); its live sessions never exceed the cap, and another agent's
// sessions are untouched.
func TestSessionsPerAgentAreCapped(t *testing.T) {
	const limit = 4
	w := newHTTPWorld(t, HTTPConfig{MaxSessionsPerAgent: limit})
	eve := w.initialize(t, eveToken)
	var ada []string
	for range 3 * limit {
		ada = append(ada, w.initialize(t, adaToken))
	}
	// The live sessions are the last limit opened. Using the oldest of them
	// makes it the most recently used, so the next one opened evicts the
	// second oldest instead.
	keep := ada[len(ada)-limit]
	if got := w.status(t, http.MethodPost, adaToken, keep); got != http.StatusOK {
		t.Fatalf("a session within the cap: %d", got)
	}
	ada = append(ada, w.initialize(t, adaToken))
	live := 0
	for i, id := range ada {
		got := w.status(t, http.MethodPost, adaToken, id)
		if got == http.StatusOK {
			live++
		}
		switch {
		case i < len(ada)-limit-1 && got != http.StatusNotFound:
			t.Errorf("session %d of %d (evicted): %d, want 404", i, len(ada), got)
		case id == keep && got != http.StatusOK:
			t.Errorf("the recently used session was evicted: %d", got)
		case i == len(ada)-limit && id != keep && got != http.StatusNotFound:
			t.Errorf("the least recently used session survived: %d", got)
		}
	}
	if live != limit {
		t.Errorf("%d live sessions, want the cap %d", live, limit)
	}
	if got := w.status(t, http.MethodPost, eveToken, eve); got != http.StatusOK {
		t.Errorf("eve's session after ada's flood: %d, want 200", got)
	}
}

// TestSessionFloodIsBounded replays the attack (5,000 initialize requests
// from one agent) against the handler and checks the agent's live sessions
// stay at the cap. The heap figure is logged, not asserted.
func TestSessionFloodIsBounded(t *testing.T) {
	w := newHTTPWorld(t, HTTPConfig{})
	before := heapInUse()
	ids := make([]string, 0, 5000)
	for i := range 5000 {
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(initializeBody))
		req.Host = w.host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+adaToken)
		rec := httptest.NewRecorder()
		w.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("initialize %d: %d %s", i, rec.Code, rec.Body)
		}
		ids = append(ids, rec.Header().Get("Mcp-Session-Id"))
	}
	after := heapInUse()
	// mcp-go keeps every initialized session until it is deleted: the
	// evicted ones must be gone there too (the probe sends nothing to a
	// session that has not finished initializing).
	held := 0
	for _, id := range ids {
		if err := w.server.MCP().SendNotificationToSpecificClient(id, "notifications/message", nil); !errors.Is(err, server.ErrSessionNotFound) {
			held++
		}
	}
	if held > DefaultMaxSessionsPerAgent {
		t.Errorf("mcp-go still holds %d of the %d sessions, cap %d", held, len(ids), DefaultMaxSessionsPerAgent)
	}
	store := sessionStoreOf(t, w)
	if n := store.count("ada"); n > DefaultMaxSessionsPerAgent {
		t.Errorf("%d live sessions after the flood, cap %d", n, DefaultMaxSessionsPerAgent)
	}
	if n := store.count(""); n > DefaultMaxSessionsPerAgent {
		t.Errorf("%d sessions in the store after one agent's flood", n)
	}
	t.Logf("heap in use: %.1f MiB before, %.1f MiB after 5000 initialize requests; %d live sessions",
		float64(before)/(1<<20), float64(after)/(1<<20), store.count(""))
}

// sessionStoreOf digs the session store out of the handler built by
// HTTPHandler.
func sessionStoreOf(t *testing.T, w *httpWorld) *sessionStore {
	t.Helper()
	h, _ := w.handler.(*http.ServeMux).Handler(httptest.NewRequest(http.MethodPost, "/mcp", nil))
	g, ok := h.(*guard)
	if !ok {
		t.Fatalf("the MCP path is served by %T", h)
	}
	return g.sessions
}

// TestIdleSessionsExpire: a session idle longer than the TTL is refused
// and dropped; one in use stays.
func TestIdleSessionsExpire(t *testing.T) {
	s := newSessionStore(8, 15*time.Minute)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	idle, busy := s.open("ada"), s.open("ada")
	for range 4 {
		now = now.Add(5 * time.Minute)
		if !s.use(busy, "ada") {
			t.Fatal("a session in use expired")
		}
	}
	if s.use(idle, "ada") {
		t.Error("a session idle for 20 minutes is still usable")
	}
	if n := s.count("ada"); n != 1 {
		t.Errorf("%d sessions left, want 1", n)
	}
	// Expired sessions are also dropped when the agent opens another.
	now = now.Add(time.Hour)
	s.open("ada")
	if n := s.count(""); n != 1 {
		t.Errorf("%d sessions after an hour and a new one, want 1", n)
	}
}

// TestAuthenticationFailures: missing, wrong and malformed credentials get
// 401 with an RFC 6750 Bearer challenge (no error code when there were no
// credentials, invalid_token for a wrong token, invalid_request for a
// malformed header), no resource_metadata (there is no authorization
// server), and a JSON body saying what is wrong; nothing from the header
// is echoed.
func TestAuthenticationFailures(t *testing.T) {
	w := newHTTPWorld(t, HTTPConfig{})
	for _, tc := range []struct {
		name      string
		header    []string
		challenge string // WWW-Authenticate prefix
		code      string // JSON error
		says      string
	}{
		{"missing", nil, `Bearer realm="gitgate"`, "unauthenticated", "no bearer token"},
		{"wrong", []string{"Bearer " + eveToken + "x"}, `Bearer realm="gitgate", error="invalid_token", error_description="wrong token`, "invalid_token", "wrong token"},
		{"wrong, scheme lower case", []string{"bearer " + adaToken[:10]}, `Bearer realm="gitgate", error="invalid_token"`, "invalid_token", "wrong token"},
		{"no scheme", []string{adaToken}, `Bearer realm="gitgate", error="invalid_request"`, "invalid_request", "malformed Authorization header"},
		{"basic", []string{"Basic " + adaToken}, `Bearer realm="gitgate", error="invalid_request"`, "invalid_request", "malformed"},
		{"empty bearer", []string{"Bearer "}, `Bearer realm="gitgate", error="invalid_request"`, "invalid_request", "malformed"},
		{"two tokens", []string{"Bearer " + adaToken + " " + adaToken}, `Bearer realm="gitgate", error="invalid_request"`, "invalid_request", "malformed"},
		{"two headers", []string{"Bearer " + adaToken, "Bearer " + eveToken}, `Bearer realm="gitgate", error="invalid_request"`, "invalid_request", "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, w.url, strings.NewReader(initializeBody))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			for _, h := range tc.header {
				req.Header.Add("Authorization", h)
			}
			resp, body := send(t, req)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", resp.StatusCode, body)
			}
			challenge := resp.Header.Get("WWW-Authenticate")
			if !strings.HasPrefix(challenge, tc.challenge) {
				t.Errorf("WWW-Authenticate %q, want it to start with %q", challenge, tc.challenge)
			}
			if tc.code == "unauthenticated" && challenge != tc.challenge {
				t.Errorf("WWW-Authenticate %q: a request without credentials gets no error code", challenge)
			}
			if strings.Contains(challenge, "resource_metadata") {
				t.Errorf("WWW-Authenticate %q points to OAuth metadata gitgate does not have", challenge)
			}
			var got struct{ Error, ErrorDescription string }
			if err := json.Unmarshal([]byte(body), &struct {
				Error            *string `json:"error"`
				ErrorDescription *string `json:"error_description"`
			}{&got.Error, &got.ErrorDescription}); err != nil {
				t.Fatalf("body is not JSON: %q", body)
			}
			if got.Error != tc.code || !strings.Contains(got.ErrorDescription, tc.says) || !strings.Contains(got.ErrorDescription, "does not use OAuth") {
				t.Errorf("body %q, want error %q saying %q and that gitgate does not use OAuth", body, tc.code, tc.says)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			for _, tok := range []string{adaToken, eveToken, adaToken[:10]} {
				if strings.Contains(body, tok) || strings.Contains(challenge, tok) {
					t.Errorf("the response echoes the token")
				}
			}
		})
	}
}

// TestOAuthDiscoveryPathsSayThereIsNoOAuth: the paths a client probes
// after a 401 answer 404 with a JSON OAuth error whose description tells
// the user to configure the bearer token; they keep the Host check.
func TestOAuthDiscoveryPathsSayThereIsNoOAuth(t *testing.T) {
	w := newHTTPWorld(t, HTTPConfig{})
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/.well-known/oauth-protected-resource"},
		{http.MethodGet, "/.well-known/oauth-protected-resource/mcp"},
		{http.MethodGet, "/.well-known/oauth-authorization-server"},
		{http.MethodGet, "/.well-known/oauth-authorization-server/mcp"},
		{http.MethodGet, "/.well-known/openid-configuration"},
		{http.MethodGet, "/.well-known/openid-configuration/mcp"},
		{http.MethodPost, "/register"},
		{http.MethodGet, "/authorize"},
		{http.MethodPost, "/token"},
	} {
		req, err := http.NewRequestWithContext(t.Context(), tc.method, w.base+tc.path, strings.NewReader(`{"redirect_uris":["http://localhost/cb"]}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, body := send(t, req)
		var got map[string]string
		if resp.StatusCode != http.StatusNotFound || json.Unmarshal([]byte(body), &got) != nil ||
			got["error"] != "invalid_request" || !strings.Contains(got["error_description"], "does not use OAuth") ||
			!strings.Contains(got["error_description"], "Authorization: Bearer <token>") {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, body)
		}
	}
	u, _ := url.Parse(w.base + "/.well-known/oauth-protected-resource")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "evil.example:80"
	if resp, _ := send(t, req); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a foreign Host on a discovery path: %d, want 403", resp.StatusCode)
	}
}

// TestMCPPathMayShadowAnOAuthPath: an MCP endpoint configured at one of
// the OAuth paths is still served (the stub does not take its place).
func TestMCPPathMayShadowAnOAuthPath(t *testing.T) {
	w := newHTTPWorld(t, HTTPConfig{Path: "/token"})
	w.url = w.base + "/token"
	w.initialize(t, adaToken)
}

// heapInUse returns the bytes of heap in use after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
