package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

func TestAgentFlowOverStreamableHTTP(t *testing.T) {
	w := newWorld(t)
	w.startHTTP(t)
	agentFlow(t, w, w.httpClient(t, agentToken))
}

func TestAgentFlowOverStdio(t *testing.T) {
	w := newWorld(t)
	agentFlow(t, w, w.stdioClient(t))
}

// agentFlow is what an agent does: clone (asking for progress), write a
// file, branch, commit, push; the remote then has the commit with the
// agent's identity, and a pull brings in a commit made on the remote.
func agentFlow(t *testing.T, w *world, c *client.Client) {
	var progress atomic.Int32
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			progress.Add(1)
		}
	})
	clone := mcp.CallToolRequest{}
	clone.Params.Name = "clone"
	clone.Params.Arguments = map[string]any{"workspace": "work", "url": w.repoURL}
	clone.Params.Meta = &mcp.Meta{ProgressToken: "clone-1"}
	res := w.callRequest(t, c, clone)
	if res.IsError {
		t.Fatalf("clone: %s", text(res))
	}
	if progress.Load() == 0 {
		t.Errorf("clone sent no progress notifications although the client asked for them")
	}
	if got := res.StructuredContent.(map[string]any)["backend"]; got != w.cfg.Backend.Default.String() {
		t.Errorf("clone served by %v, want %s", got, w.cfg.Backend.Default)
	}
	w.ok(t, c, "checkout", map[string]any{"workspace": "work", "branch": "ada/greeting", "create": true})
	w.ok(t, c, "write_file", map[string]any{"workspace": "work", "path": "greeting.txt", "content": "hello from an agent\n"})
	commit := w.ok(t, c, "commit", map[string]any{"workspace": "work", "message": "Add greeting"})
	push := w.ok(t, c, "push", map[string]any{"workspace": "work"})
	if push["head"] != commit["sha"] || push["created"] != true {
		t.Fatalf("push %v after commit %v", push, commit)
	}
	dir := w.freshClone(t, "ada/greeting")
	if got := gitIn(t, dir, "log", "-1", "--format=%H %an <%ae>"); got != commit["sha"].(string)+" Ada Agent <ada@agents.example>" {
		t.Fatalf("fresh clone's tip: %q", got)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "greeting.txt")); string(data) != "hello from an agent\n" {
		t.Fatalf("fresh clone's greeting.txt: %q", data)
	}
	upstream, err := w.remote.CommitFile(t.Context(), "demo", "ada/greeting", "review.txt", "looks good\n", "Review")
	if err != nil {
		t.Fatal(err)
	}
	pull := w.ok(t, c, "pull", map[string]any{"workspace": "work"})
	if pull["after"] != upstream || pull["updated"] != true {
		t.Fatalf("pull %v, want it at %s", pull, upstream)
	}
	if got := w.ok(t, c, "read_file", map[string]any{"workspace": "work", "path": "review.txt"})["content"]; got != "looks good\n" {
		t.Fatalf("pulled file: %q", got)
	}
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("/usr/bin/git", append([]string{"-C", dir}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// gitgateBinary builds the gitgate binary once per test run, or uses the
// one GITGATE_TEST_BINARY names (make test's bin/gitgate, built from the
// same tree just before).
func gitgateBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("GITGATE_TEST_BINARY"); p != "" {
			binPath, buildErr = p, nil
			if _, err := os.Stat(p); err != nil {
				buildErr = fmt.Errorf("GITGATE_TEST_BINARY: %w", err)
			}
			return
		}
		dir, err := os.MkdirTemp("", "gitgate-bin-") //nolint:usetesting // one binary for every test of the run: the first test's t.TempDir would go with it
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "gitgate")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("go build: %s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build gitgate: %v", buildErr)
	}
	return binPath
}

// stdioClient starts `gitgate serve --stdio` as agent ada with the world's
// configuration file; its standard error joins the world's logs.
func (w *world) stdioClient(t *testing.T) *client.Client {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gitgate.yaml")
	if err := os.WriteFile(path, []byte(w.configYAML(t.TempDir())), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "E2E_GIT_TOKEN=" + gitToken, "E2E_GIT_READ_TOKEN=" + gitReadToken}
	c, err := client.NewStdioMCPClientWithOptions(gitgateBinary(t), env, []string{"serve", "--stdio", "--config", path},
		transport.WithCommandStderrWriter(w.logs))
	if err != nil {
		t.Fatal(err)
	}
	w.initialize(t, c)
	return c
}
