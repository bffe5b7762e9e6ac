package e2b_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/e2b"
)

// TestLiveE2B runs clone → commit → push in a real E2B sandbox against a
// real remote. It needs E2B_API_KEY, and a repository the sandbox can reach
// with push rights: GITGATE_LIVE_REPO_URL (https) and GITGATE_LIVE_GIT_TOKEN.
// Optional: E2B_DOMAIN (default e2b.app), E2B_TEMPLATE (default base). It
// pushes a new branch gitgate-live-<random> and kills its sandbox.
func TestLiveE2B(t *testing.T) {
	key, repo, token := os.Getenv("E2B_API_KEY"), os.Getenv("GITGATE_LIVE_REPO_URL"), os.Getenv("GITGATE_LIVE_GIT_TOKEN")
	if key == "" || repo == "" || token == "" {
		t.Skip("live E2B test skipped: set E2B_API_KEY, GITGATE_LIVE_REPO_URL (https, pushable) and GITGATE_LIVE_GIT_TOKEN to run it")
	}
	u, err := url.Parse(repo)
	if err != nil || u.Scheme != "https" {
		t.Fatalf("GITGATE_LIVE_REPO_URL must be an https URL: %q", repo)
	}
	domain, template := envOr("E2B_DOMAIN", "e2b.app"), envOr("E2B_TEMPLATE", "base")
	api, err := e2b.NewAPI(e2b.APIConfig{BaseURL: "https://api." + domain, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	provider, err := e2b.NewProvider(e2b.ProviderConfig{API: api, EnvdURL: "https://sandbox." + domain, Template: template, Lifetime: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	bindings := sandbox.NewMemoryBindings()
	mgr, err := sandbox.NewManager(sandbox.ManagerConfig{Provider: provider, Bindings: bindings, IdleTTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close(context.Background()) // kills the sandbox
	ex, err := approach1.New(approach1.Config{Sandboxes: mgr, Bindings: bindings, Locker: &lock.Memory{}, Logger: slog.Default(),
		Projects: approach1.ProjectMap{"live": {Remotes: gitcmd.RemotePolicy{Schemes: []string{"https"}, Hosts: []string{u.Host}}, Token: token}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p := backends.Principal{Project: "live", Agent: "live-test", AuthorName: "gitgate live test", AuthorEmail: "live@gitgate.invalid"}
	scope := backends.Scope{Principal: p, Workspace: "live"}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	branch := "gitgate-live-" + hex.EncodeToString(suffix[:])
	steps := []backends.Request{
		&backends.CloneRequest{Scope: scope, URL: repo, Depth: 1},
		&backends.CheckoutRequest{Scope: scope, Branch: branch, Create: true},
		&backends.WriteFileRequest{Scope: scope, Path: "gitgate-live.txt", Content: branch + "\n"},
		&backends.CommitRequest{Scope: scope, Message: "gitgate live E2B test"},
		&backends.PushRequest{Scope: scope},
	}
	var pushed *backends.PushResult
	for _, step := range steps {
		res, err := ex.Execute(ctx, step)
		if err != nil {
			t.Fatalf("%s: %v", step.Op(), err)
		}
		pushed, _ = res.(*backends.PushResult)
	}
	remote, err := ex.RemoteRef(ctx, p, repo, "refs/heads/"+branch)
	if err != nil || remote != pushed.Head {
		t.Fatalf("the remote has %s at %q (%v), want %s", branch, remote, err, pushed.Head)
	}
	t.Logf("pushed %s at %s from E2B; delete the branch when done", branch, pushed.Head)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
