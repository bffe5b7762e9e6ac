package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/mark3labs/mcp-go/client"
)

// bigFileLimit is a limits.max_file_bytes above the default (10 MiB), so
// that gRPC messages sized for the default could not carry it: the service
// and the gateway's client must both size theirs from the configuration.
const bigFileLimit = 15 << 20

// TestOneFileSizeLimitOnBothBackends: with limits.max_file_bytes set,
// write_file refuses one byte more than that with the same answer whether
// the gateway serves it (Approach 1) or the service in another process
// does (Approach 2, over gRPC), and the service takes exactly that many
// bytes (through the gateway's MCP transport and gRPC both ways). Approach
// 1's write at the limit is left out: each such request costs seconds
// under -race, and it would cross nothing the service's does not. make
// test runs it without -race (NORACE_TESTS in the Makefile).
func TestOneFileSizeLimitOnBothBackends(t *testing.T) {
	t.Parallel() // megabytes through JSON under -race: it overlaps the tests that mostly wait
	w := newWorld(t)
	w.cfg.Limits.MaxFileBytes = bigFileLimit
	addr := freeAddr(t)
	w.startBackendWithYAML(t, addr, fmt.Sprintf("limits: {max_file_bytes: %d}\n", bigFileLimit))
	w.startHTTP(t) // Approach 1
	c1 := w.httpClient(t, agentToken)
	cfg2 := *w.cfg // a second gateway, sending everything to the service
	cfg2.StateDir, cfg2.Sandbox.Local.Dir = t.TempDir(), t.TempDir()
	cfg2.Backend.Default = "approach2"
	cfg2.Approach2.Target, cfg2.Approach2.Token, cfg2.Approach2.Insecure = addr, serviceToken, true
	w.cfg = &cfg2
	w.startHTTP(t)
	c2 := w.httpClient(t, agentToken)

	exact := strings.Repeat("x", bigFileLimit)
	want := fmt.Sprintf("resource_exhausted: content is larger than the %d-byte limit", bigFileLimit)
	for _, run := range []struct {
		backend string
		c       *client.Client
	}{{"approach1", c1}, {"approach2", c2}} {
		w.ok(t, run.c, "clone", map[string]any{"workspace": "big", "url": w.repoURL})
		if run.backend == "approach2" {
			res := w.ok(t, run.c, "write_file", map[string]any{"workspace": "big", "path": "big.txt", "content": exact})
			if res["backend"] != run.backend || res["size"] != float64(bigFileLimit) {
				t.Fatalf("%s: write_file at the limit: backend %v, size %v", run.backend, res["backend"], res["size"])
			}
		}
		over := w.call(t, run.c, "write_file", map[string]any{"workspace": "big", "path": "over.txt", "content": exact + "x"})
		if got := text(over); !over.IsError || !strings.Contains(got, want) {
			t.Errorf("%s: write_file one byte over the limit: %.300s; want %q", run.backend, got, want)
		}
	}
}

// startBackendWithYAML is startBackendOn with extra configuration lines.
func (w *world) startBackendWithYAML(t *testing.T, addr, extra string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gitgate.yaml")
	yaml := w.configYAML(t.TempDir()) + extra + "approach2: {listen: \"" + addr + "\", admin: \"" + freeAddr(t) +
		"\", token_env: E2E_SERVICE_TOKEN, sandbox_dir: \"" + t.TempDir() + "\"}\n" +
		"postgres: {dsn_env: E2E_PG_DSN}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gitgateBinary(t), "backend", "--config", path)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "E2E_GIT_TOKEN=" + gitToken, "E2E_GIT_READ_TOKEN=" + gitReadToken,
		"E2E_SERVICE_TOKEN=" + serviceToken, "E2E_PG_DSN=" + backendtest.PostgresDSN(t)}
	cmd.Stderr = w.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitServing(t, addr)
}

// TestTransferLimitsArePerProject: a project whose repository limit is
// below a repository's size gets resource_exhausted from clone and keeps no
// workspace, while another project clones the same repository. The limit
// is read from the configuration (projects.<name>.max_repo_bytes).
func TestTransferLimitsArePerProject(t *testing.T) {
	w := newWorld(t)
	big := make([]byte, 6<<20) // incompressible: the pack is as large as the blob, half again alpha's limit
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	if err := w.remote.CreateRepo(t.Context(), "big", map[string]string{"blob.bin": string(big), "README.md": "big\n"}); err != nil {
		t.Fatal(err)
	}
	alpha := w.cfg.Projects["alpha"]
	alpha.MaxRepoBytes = 4 << 20
	w.cfg.Projects["alpha"] = alpha
	w.startHTTP(t)
	ada, eve := w.httpClient(t, agentToken), w.httpClient(t, strangerToken)
	url := w.remote.RepoURL("big")

	res := w.call(t, ada, "clone", map[string]any{"workspace": "big", "url": url})
	if got := text(res); !res.IsError || !strings.Contains(got, "resource_exhausted") || !strings.Contains(got, "4 MiB") {
		t.Fatalf("clone over alpha's 4 MiB repository limit: %.300s; want resource_exhausted naming the limit", got)
	}
	if ws := w.ok(t, ada, "list_workspaces", map[string]any{})["workspaces"]; ws != nil && len(ws.([]any)) != 0 {
		t.Fatalf("the refused clone left workspaces: %v", ws)
	}
	got := w.ok(t, eve, "clone", map[string]any{"workspace": "big", "url": url})
	if got["head"] == "" || got["head"] == nil {
		t.Fatalf("beta's clone of the same repository: %v", got)
	}
	if files := w.ok(t, eve, "list_files", map[string]any{"workspace": "big"}); !strings.Contains(fmt.Sprint(files["entries"]), "blob.bin") {
		t.Fatalf("beta's workspace lacks the blob: %v", files["entries"])
	}
}
