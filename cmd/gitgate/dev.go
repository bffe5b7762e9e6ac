package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/internal/gitremote"
	"github.com/spf13/cobra"
)

// sampleFiles is the demo repository's first commit.
var sampleFiles = map[string]string{
	"README.md": "# sample\n\nA repository served by `gitgate dev` so that you can try gitgate at once.\n" +
		"Clone it, change something, commit and push a branch.\n",
	"hello.py": "def hello(name):\n    return f\"Hello, {name}!\"\n\n\nif __name__ == \"__main__\":\n    print(hello(\"world\"))\n",
}

func newDevCmd(o *globalOptions) *cobra.Command {
	var backend string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the gateway with a local demo git remote and a development agent token",
		Long: `dev starts everything a newcomer needs on loopback: a git remote served by
git http-backend with token auth, holding a sample repository; a project "dev"
allowed to reach it; an agent "dev-agent" with a fresh token; and the gateway
(embedded Approach 1, local sandboxes). When the local Redis and PostgreSQL
answer, it also starts the Approach 2 service in process (journal in the
gitgate_dev schema, locks and bindings in Redis, sandboxes shared), and
--backend approach2 sends every operation to it. It prints the MCP URL, the
token and a client configuration. Everything is removed when it stops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := configs.Load(o.configPath, os.Getenv)
			if err != nil {
				return err
			}
			if !backends.Name(backend).Known() {
				return fmt.Errorf("--backend: %q must be approach1 or approach2", backend)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDev(ctx, cfg, cmd, backends.Name(backend))
		},
	}
	cmd.Flags().StringVar(&backend, "backend", backends.Approach1.String(), "the backend every operation goes to: approach1, or approach2 (needs Redis and PostgreSQL)")
	cmd.AddCommand(newDevLedgerCmd())
	return cmd
}

// devWorld is what dev adds to the configuration.
type devWorld struct {
	remote     *gitremote.Server
	repoURL    string
	agentToken string
	// adminToken is the admin listener's token (kill-switch override),
	// generated unless the configuration sets listen.admin_token_sha256
	// (then empty).
	adminToken string
	// adminTokenless: the configuration lets the override change without a
	// token (listen.admin_kill_without_token).
	adminTokenless bool
	service        devServiceInfo // the in-process Approach 2 service, or why it is not running
	flagPath       string         // the canary flags, when the service runs and backend is approach1
	backend        backends.Name  // where every operation goes
}

func runDev(ctx context.Context, cfg *configs.Config, cmd *cobra.Command, backend backends.Name) error {
	state, err := os.MkdirTemp("", "gitgate-dev-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(state) }() // the demo keeps nothing; a leftover is only a temporary directory
	w, err := startDevWorld(ctx, cfg, state)
	if err != nil {
		return err
	}
	defer w.remote.Close()
	serviceCtx, stopService := context.WithCancel(ctx) // the signal's cause passes through
	defer stopService()
	w.service = devService(serviceCtx, cfg, cmd.ErrOrStderr())
	if w.service.stopped != nil {
		defer func() { stopService(); <-w.service.stopped }() // its shutdown is logged before dev returns
	}
	if w.service.addr == "" && backend == backends.Approach2 {
		return fmt.Errorf("--backend approach2: the Approach 2 service could not start: %s", w.service.why)
	}
	if w.service.addr != "" && backend == backends.Approach1 {
		// Canary flags (every operation at 0 %) make the kill switch and
		// `gitgate canary` work on the demo.
		w.flagPath = filepath.Join(state, "flags.flagd.json")
		if err := flags.NewFile(backends.OpNames()).Save(w.flagPath); err != nil {
			return err
		}
		cfg.Flags.Path = w.flagPath
	}
	cfg.Backend.Default, w.backend = backend, backend
	cfg.Listen.DrainDelay = 0 // no load balancer in front of the demo: a stop stops accepting at once
	banner := func(_ *gatewayRoot, mcpURL, adminURL string) { printBanner(cmd.OutOrStdout(), mcpURL, adminURL, w) }
	return runHTTP(ctx, cfg, cmd, banner, w.agentToken, w.adminToken)
}

// startDevWorld starts the demo remote and rewrites cfg to use it.
func startDevWorld(ctx context.Context, cfg *configs.Config, state string) (*devWorld, error) {
	gitToken, err := newToken("gitgate-dev-git-")
	if err != nil {
		return nil, err
	}
	agentToken, err := newToken("gga_dev_")
	if err != nil {
		return nil, err
	}
	remote, err := gitremote.New(gitremote.Config{Root: filepath.Join(state, "remote"), Username: "x-access-token", Token: gitToken})
	if err != nil {
		return nil, err
	}
	if err := remote.Start(); err != nil {
		return nil, err
	}
	if err := remote.CreateRepo(ctx, "sample", sampleFiles); err != nil {
		remote.Close()
		return nil, err
	}
	u, _ := url.Parse(remote.URL())
	cfg.Git.AllowHTTP = true
	cfg.Projects = map[string]configs.ProjectConfig{"dev": {AllowedHosts: []string{u.Host}, AllowedSchemes: []string{"http"},
		Token: gitToken, TokenUsername: "x-access-token"}}
	cfg.Agents = []configs.AgentConfig{{Name: "dev-agent", Project: "dev", TokenSHA256: gateway.HashToken(agentToken),
		AuthorName: "gitgate dev agent", AuthorEmail: "dev-agent@gitgate.invalid"}}
	cfg.MCP.StdioAgent = "dev-agent"
	var adminToken string
	if cfg.Listen.AdminTokenSHA256 == "" && !cfg.Listen.AdminKillWithoutToken {
		if adminToken, err = newToken("gga_admin_dev_"); err != nil {
			remote.Close()
			return nil, err
		}
		cfg.Listen.AdminTokenSHA256 = gateway.HashToken(adminToken) // a working kill switch, with a token
	}
	cfg.StateDir = state // the demo keeps nothing once it stops
	if cfg.Sandbox.Local.Dir == "" {
		cfg.Sandbox.Local.Dir = filepath.Join(state, "sandboxes")
	}
	if err := cfg.Validate(); err != nil {
		remote.Close()
		return nil, err
	}
	return &devWorld{remote: remote, repoURL: remote.RepoURL("sample"), agentToken: agentToken, adminToken: adminToken,
		adminTokenless: adminToken == "" && cfg.Listen.AdminTokenSHA256 == ""}, nil
}

func printBanner(out io.Writer, mcpURL, adminURL string, w *devWorld) {
	client := map[string]any{"mcpServers": map[string]any{"gitgate": map[string]any{
		"type": "http", "url": mcpURL, "headers": map[string]string{"Authorization": "Bearer " + w.agentToken},
	}}}
	clientJSON, _ := json.MarshalIndent(client, "", "  ")
	adminToken := w.adminToken
	switch {
	case adminToken != "":
	case w.adminTokenless:
		adminToken = "none needed (listen.admin_kill_without_token: true)"
	default:
		adminToken = "the one listen.admin_token_sha256 of your configuration is the hash of"
	}
	kill := fmt.Sprintf(`kill switch: GITGATE_ADMIN_TOKEN=<admin token> gitgate kill on --admin %s --file %s --reason "try it"`, adminURL, w.flagPath)
	if w.flagPath == "" {
		kill = "no kill switch: without the Approach 2 service and canary flags every operation has one backend"
	}
	service := "not started (" + w.service.why + ")"
	if w.service.addr != "" {
		service = fmt.Sprintf(`%s (gRPC; journal in PostgreSQL, locks and bindings in Redis)
  Service admin:    %s
                    (its /metrics, /healthz and /readyz; no token needed)
  Service token:    %s
                    (the bearer token the gateway presents to the service's gRPC GitService)`,
			w.service.addr, w.service.adminURL, w.service.token)
	}
	flagLine := ""
	if w.flagPath != "" {
		flagLine = fmt.Sprintf(`
  Canary flags:     %s
                    (every operation at 0 %%: gitgate canary set status 10 --file <flags> --reason "try it")
                    (kill-switch drill: GITGATE_ADMIN_TOKEN=<admin token> GITGATE_DRILL_FLAG_FILE=<flags> GITGATE_LISTEN_ADMIN=%s gitgate drill)`,
			w.flagPath, strings.TrimPrefix(adminURL, "http://"))
	}
	fmt.Fprintf(out, `gitgate dev is running (every operation goes to %s; local sandboxes).

  MCP endpoint:     %s
  Agent token:      %s
                    (agent "dev-agent" of project "dev"; send it as "Authorization: Bearer <token>")
  Demo repository:  %s
                    (the gateway holds its token; agents never see it)
  Gateway admin:    %s
                    (/metrics, /healthz, /readyz, /status; /kill needs the admin token)
  Admin token:      %s
                    (%s)
  Approach 2:       %s%s

MCP client configuration (Streamable HTTP):
%s

Try the tools: clone {"workspace": "demo", "url": "%s"}, then write_file, commit,
checkout {"workspace": "demo", "branch": "my-change", "create": true} and push.
Stop with Ctrl-C; the demo remote and the sandboxes are removed.
`, w.backend, mcpURL, w.agentToken, w.repoURL, adminURL, adminToken, kill, service, flagLine, clientJSON, w.repoURL)
}
