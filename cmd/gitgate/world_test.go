package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/internal/gitremote"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Known secrets: the project's git token (GitHub-shaped) and the agents'
// bearer tokens. Tests scan everything they capture for them.
const (
	gitToken      = "ghp_e2eSECRETtoken0123456789abcdefABCD"
	gitReadToken  = "ghp_e2eREADONLYtoken0123456789abcdefAB"
	agentToken    = "gga_e2e_agent_token_ada_0123456789"
	strangerToken = "gga_e2e_agent_token_eve_0123456789"
)

// world is one gateway with a real smart-HTTP remote behind it.
type world struct {
	t          testing.TB
	remote     *gitremote.Server
	remoteRoot string
	repoURL    string
	cfg        *configs.Config
	logs       *testkit.SyncBuffer // everything the gateway logged
	mcpURL     string
	adminURL   string
	app        *gatewayRoot
	// stopHTTP stops the gateway startHTTP started, as its shutdown does
	// (its ledger's last entries written), once; the test's end calls it
	// too.
	stopHTTP func()

	backendWait func() error // waits for the `gitgate backend` child, when one runs
	redisPrefix string       // Redis keys of this test, when Redis is used
	redisAddr   string       // if set, where the service finds Redis (a proxy)
	lockTTL     string       // if set, redis.lock_ttl instead of testLockTTL
	pgDSN       string       // the service's journal schema, kept across restarts
	// serviceDrainDelay, if set, is the service's approach2.drain_delay
	// instead of its default (5 s of reporting NOT_SERVING on SIGTERM).
	serviceDrainDelay string
	pushHook          atomic.Pointer[func(repo string)]
	// sharedSandboxes, when set, is the sandbox directory the gateway and
	// the service share (sandbox.local.shared).
	sharedSandboxes string

	// extraYAML is appended to the configuration both processes read (a
	// relay section, say); gitPath, if set, is their git.path.
	extraYAML, gitPath string

	mu         sync.Mutex
	transcript []string // every tool result and error the clients saw
	e2bURL     string   // when set, sandboxes are E2B's (the local E2B at this URL)
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{t: t, remoteRoot: t.TempDir(), logs: &testkit.SyncBuffer{}}
	srv := w.serveRemote(t, "")
	if err := srv.CreateRepo(t.Context(), "demo", sampleFiles); err != nil {
		t.Fatal(err)
	}
	w.remote, w.repoURL = srv, srv.RepoURL("demo")
	w.cfg = w.config(t)
	t.Cleanup(w.scanForSecrets)
	return w
}

// serveRemote serves the world's repositories (on addr, or a free port
// when it is empty) until the test ends, calling the push hook before each
// push is received.
func (w *world) serveRemote(t testing.TB, addr string) *gitremote.Server {
	t.Helper()
	srv, err := gitremote.New(gitremote.Config{Root: w.remoteRoot, Addr: addr, Username: "x-access-token", Token: gitToken, ReadToken: gitReadToken,
		BeforeReceivePack: func(repo string) {
			if hook := w.pushHook.Load(); hook != nil {
				(*hook)(repo)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// config builds the configuration through the real loader: a file naming
// the token's environment variable, as an operator would write it.
func (w *world) config(t testing.TB) *configs.Config {
	path := filepath.Join(t.TempDir(), "gitgate.yaml")
	if err := os.WriteFile(path, []byte(w.configYAML(t.TempDir())), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(path, func(k string) string {
		switch k {
		case "E2E_GIT_TOKEN":
			return gitToken
		case "E2E_GIT_READ_TOKEN":
			return gitReadToken
		case "E2E_E2B_KEY":
			return e2bKey
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// testLockTTL is redis.lock_ttl in the worlds' configuration.
const testLockTTL = "4s"

func (w *world) configYAML(sandboxDir string) string {
	if w.sharedSandboxes != "" {
		sandboxDir = w.sharedSandboxes
	}
	redis := ""
	if w.redisPrefix != "" {
		addr := w.redisAddr
		if addr == "" {
			addr = "127.0.0.1:6379"
		}
		// The lease is renewed every TTL/3 and counts as lost when no
		// renewal succeeded within TTL/2: 4 s gives a renewal 670 ms on a
		// loaded machine (with 1 s, 170 ms: a clone under load lost its
		// lease and ended as "unknown outcome"), and a dead holder's lock
		// is free again within seconds.
		ttl := testLockTTL
		if w.lockTTL != "" {
			ttl = w.lockTTL
		}
		redis = fmt.Sprintf("redis: {addr: %q, prefix: %q, lock_ttl: %s}\n", addr, w.redisPrefix, ttl)
	}
	u, _ := url.Parse(w.remote.URL())
	sandboxes := fmt.Sprintf("sandbox: {local: {dir: %q, shared: %v}, pool: {min_idle: 1, max_size: 8}}", sandboxDir, w.sharedSandboxes != "")
	if w.e2bURL != "" {
		sandboxes = fmt.Sprintf("sandbox: {provider: e2b, e2b: {api_url: %q, envd_url: %q, api_key_env: E2E_E2B_KEY, template: gitgate}, pool: {min_idle: 0, max_size: 8}}", w.e2bURL, w.e2bURL)
	}
	gitPath := ""
	if w.gitPath != "" {
		gitPath = fmt.Sprintf(", path: %q", w.gitPath)
	}
	return fmt.Sprintf(`
state_dir: %q
listen: {mcp: "127.0.0.1:0", admin: "127.0.0.1:0", drain_delay: 0s} # no load balancer in front
log: {level: debug, format: json}
%s
git: {allow_http: true%s}
mcp: {stdio_agent: ada}
projects:
  alpha: {allowed_hosts: [%q], allowed_schemes: [http], token_env: E2E_GIT_TOKEN, read_token_env: E2E_GIT_READ_TOKEN, token_username: x-access-token}
  beta: {allowed_hosts: [%q], allowed_schemes: [http], token_env: E2E_GIT_TOKEN}
agents:
  - {name: ada, project: alpha, token_sha256: %s, author_name: Ada Agent, author_email: ada@agents.example}
  - {name: eve, project: beta, token_sha256: %s, author_name: Eve, author_email: eve@beta.example}
`, sandboxDir+".state", sandboxes, gitPath, u.Host, u.Host, gateway.HashToken(agentToken), gateway.HashToken(strangerToken)) + redis + w.extraYAML
}

// startHTTP runs the gateway on loopback until the test ends.
func (w *world) startHTTP(t testing.TB) {
	t.Helper()
	if w.pgDSN != "" && w.cfg.Postgres.DSN == "" {
		w.cfg.Postgres.DSN = w.pgDSN // the gateway shares the service's journal
	}
	a, err := newGatewayRoot(w.cfg, w.logs, agentToken, strangerToken)
	if err != nil {
		t.Fatal(err)
	}
	mcpLn, adminLn := listenLoopback(t), listenLoopback(t)
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	a.startReaper(ctx) // the background runners, as serve and dev start them
	done := make(chan error, 1)
	go func() { done <- a.serveHTTP(ctx, mcpLn, adminLn, 5*time.Second) }()
	w.stopHTTP = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		a.close(context.WithoutCancel(t.Context()))
	})
	t.Cleanup(w.stopHTTP)
	w.mcpURL = "http://" + mcpLn.Addr().String() + w.cfg.MCP.Path
	w.adminURL = "http://" + adminLn.Addr().String()
	w.app = a
}

func listenLoopback(t testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// httpClient connects an MCP client over Streamable HTTP with token.
func (w *world) httpClient(t testing.TB, token string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient(w.mcpURL, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	w.initialize(t, c)
	return c
}

func (w *world) initialize(t testing.TB, c *client.Client) {
	t.Helper()
	t.Cleanup(func() { _ = c.Close() })
	ctx := testCtx(t)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "gitgate-e2e", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// call calls a tool and records the result for the secret scan.
func (w *world) call(t testing.TB, c *client.Client, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	return w.callRequest(t, c, req)
}

func (w *world) callRequest(t testing.TB, c *client.Client, req mcp.CallToolRequest) *mcp.CallToolResult {
	t.Helper()
	res, err := c.CallTool(testCtx(t), req)
	if err != nil {
		w.record(err.Error())
		t.Fatalf("%s: protocol error: %v", req.Params.Name, err)
	}
	raw, _ := json.Marshal(res)
	w.record(string(raw))
	return res
}

func (w *world) record(s string) {
	w.mu.Lock()
	w.transcript = append(w.transcript, s)
	w.mu.Unlock()
}

// ok calls a tool that must succeed and decodes its structured result.
func (w *world) ok(t testing.TB, c *client.Client, tool string, args map[string]any) map[string]any {
	t.Helper()
	res := w.call(t, c, tool, args)
	if res.IsError {
		t.Fatalf("%s %v: %s", tool, args, text(res))
	}
	m, ok := res.StructuredContent.(map[string]any)
	if !ok {
		t.Fatalf("%s: structured content %T", tool, res.StructuredContent)
	}
	return m
}

// fail calls a tool that must fail with category want.
func (w *world) fail(t testing.TB, c *client.Client, tool string, args map[string]any, want string) {
	t.Helper()
	res := w.call(t, c, tool, args)
	if !res.IsError || !strings.HasPrefix(text(res), want+": ") {
		t.Errorf("%s %v: want a %s error, got %s", tool, args, want, text(res))
	}
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// scanForSecrets fails the test if any secret appears in the logs or in
// anything a client received.
func (w *world) scanForSecrets() {
	w.mu.Lock()
	captured := strings.Join(w.transcript, "\n") + "\n" + w.logs.String()
	w.mu.Unlock()
	for _, secret := range []string{gitToken, gitReadToken, agentToken, strangerToken, serviceToken} {
		if n := strings.Count(captured, secret); n > 0 {
			w.t.Errorf("secret %.8s… appears %d times in %d bytes of logs and results", secret, n, len(captured))
		}
	}
	if len(w.logs.String()) == 0 {
		w.t.Errorf("the gateway logged nothing; the secret scan would be vacuous")
	}
}

// remoteGit runs git on the remote's bare repository.
func (w *world) remoteGit(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("/usr/bin/git", append([]string{"--git-dir=" + filepath.Join(w.remoteRoot, "demo.git")}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// freshClone clones the remote over HTTP with the project's token, as a
// person checking the result would, and returns the clone's directory.
func (w *world) freshClone(t testing.TB, branch string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fresh")
	cmd := exec.Command("/usr/bin/git", "-c", "credential.helper=", "-c",
		`credential.helper=!f() { echo username=x-access-token; echo "password=$CHECK_TOKEN"; }; f`,
		"clone", "--quiet", "--branch="+branch, "--", w.repoURL, dir)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0", "LC_ALL=C", "CHECK_TOKEN=" + gitToken}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fresh clone: %v: %s", err, out)
	}
	return dir
}
