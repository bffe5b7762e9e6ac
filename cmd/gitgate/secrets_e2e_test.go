package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/gitremote"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/mark3labs/mcp-go/mcp"
)

// Rotated secrets of TestSecretFilesRotateWhileServing (the old git token is
// the world's gitToken), and the service token's grace window: from the
// service's reading of the new token, the gateway must read its own new
// file (one poll, 1 s) after two calls, within it; the test then waits the
// rest of it out with calls running.
const (
	rotatedGitToken = "ghp_e2eROTATEDtoken0123456789abcdefABCD"
	oldSvcToken     = "gga_svc_rotation_old_0123456789abcdef"
	newSvcToken     = "gga_svc_rotation_new_0123456789abcdef"
	tokenGrace      = 10 * time.Second
)

// secretVolume is a directory laid out as kubelet lays out a Secret
// volume: <dir>/token -> ..data/token, ..data -> ..<generation>/.
type secretVolume struct {
	t   testing.TB
	dir string
	gen int
}

func newSecretVolume(t testing.TB, value string) *secretVolume {
	v := &secretVolume{t: t, dir: t.TempDir()}
	v.publish(value)
	if err := os.Symlink(filepath.Join("..data", "token"), v.path()); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v *secretVolume) path() string { return filepath.Join(v.dir, "token") }

// publish swaps ..data to a new generation holding value, and removes the
// old one, as kubelet's atomic writer does.
func (v *secretVolume) publish(value string) {
	v.gen++
	gen := fmt.Sprintf("..gen_%d", v.gen)
	if err := os.Mkdir(filepath.Join(v.dir, gen), 0o755); err != nil {
		v.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.dir, gen, "token"), []byte(value+"\n"), 0o600); err != nil {
		v.t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	if err := os.Symlink(gen, filepath.Join(v.dir, "..data_tmp")); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(v.dir, "..data_tmp"), filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
	if old != "" {
		_ = os.RemoveAll(filepath.Join(v.dir, old))
	}
}

// replaceFile writes value to a temporary file and renames it over path
// (a Vault agent template, a secrets operator).
func replaceFile(t testing.TB, path, value string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// withTokenFile makes the world's configuration take the projects' git
// token from file instead of the environment.
func withTokenFile(yaml, file string) string {
	yaml = strings.ReplaceAll(yaml, ", read_token_env: E2E_GIT_READ_TOKEN", "")
	return strings.ReplaceAll(yaml, "token_env: E2E_GIT_TOKEN", fmt.Sprintf("token_file: %q", file))
}

// waitLogged waits until the captured logs hold n lines with every part.
func waitLogged(t *testing.T, w *world, what string, n int, parts ...string) {
	t.Helper()
	testkit.Eventually(t, what, func() bool {
		found := 0
		for _, line := range strings.Split(w.logs.String(), "\n") {
			if containsAll(line, parts) {
				found++
			}
		}
		return found >= n
	})
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// TestSecretFilesRotateWhileServing: a gateway (in process) and an Approach
// 2 service (a child process) read the service token and the project's git
// token from files. While an agent keeps calling, the git token is rotated
// (a Kubernetes ..data swap, the remote accepting only the new token) and
// then the service token (the service's file first, the gateway's after):
// every call succeeds, pushes use the new git token, a client still holding
// the old service token works during the grace window and is refused after
// it, and no token appears in any log, result or error.
func TestSecretFilesRotateWhileServing(t *testing.T) {
	w := newWorld(t)
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	w.pgDSN = backendtest.PostgresDSN(t)
	gitVol := newSecretVolume(t, gitToken)
	files := t.TempDir()
	svcFile, gwFile := filepath.Join(files, "service-token"), filepath.Join(files, "gateway-token")
	replaceFile(t, svcFile, oldSvcToken)
	replaceFile(t, gwFile, oldSvcToken)
	addr := startSecretsBackend(t, w, gitVol.path(), svcFile)

	gwYAML := withTokenFile(w.configYAML(t.TempDir()), gitVol.path()) + fmt.Sprintf(
		"approach2: {target: %q, insecure: true, token_env: '', token_file: %q, token_grace: %s}\nbackend: {default: approach2}\n",
		addr, gwFile, tokenGrace)
	cfg, err := configs.Load(testkit.WriteTemp(t, "gateway.yaml", gwYAML), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	w.startHTTP(t)
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "work", "url": w.repoURL})
	w.ok(t, c, "checkout", map[string]any{"workspace": "work", "branch": "ada/rotation", "create": true})

	calls, failures := w.keepCalling(t)

	// The git token: the volume swaps to the new token and the remote
	// accepts only that one from now on.
	gitVol.publish(rotatedGitToken)
	w.restartRemote(t, rotatedGitToken)
	waitLogged(t, w, "the gateway and the service read the new git token", 2, "secret file changed", "projects.alpha.token_file")
	w.ok(t, c, "write_file", map[string]any{"workspace": "work", "path": "rotated.txt", "content": "after the rotation\n"})
	commit := w.ok(t, c, "commit", map[string]any{"workspace": "work", "message": "After the git token rotation"})
	w.ok(t, c, "push", map[string]any{"workspace": "work"})
	if head := w.remoteGit(t, "rev-parse", "ada/rotation"); head != commit["sha"] {
		t.Fatalf("the remote's ada/rotation is %s, want the pushed %v", head, commit["sha"])
	}

	// The service token: the service sees the new file first.
	stale, err := approach2.Dial(addr, approach2.ClientConfig{Token: oldSvcToken, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	probe := &backends.StatusRequest{Scope: backends.Scope{Principal: backends.Principal{Project: "alpha", Agent: "ada"}, Workspace: "work"}}
	replaceFile(t, svcFile, newSvcToken)
	waitLogged(t, w, "the service reads the new service token", 1, "secret file changed", svcFile)
	w.ok(t, c, "status", map[string]any{"workspace": "work"}) // the gateway still sends the old token: in the grace window
	if _, err := stale.Execute(t.Context(), probe); err != nil {
		w.record(err.Error())
		t.Fatalf("a client with the old token within the grace window: %v", err)
	}
	replaceFile(t, gwFile, newSvcToken)
	waitLogged(t, w, "the gateway reads the new service token", 1, "secret file changed", gwFile)
	w.ok(t, c, "status", map[string]any{"workspace": "work"})
	testkit.Eventually(t, "the old service token is refused after the grace window", func() bool {
		_, err := stale.Execute(t.Context(), probe)
		if err != nil {
			w.record(err.Error())
		}
		return backends.CategoryOf(err) == backends.Unauthenticated
	})
	w.ok(t, c, "status", map[string]any{"workspace": "work"}) // the gateway's own token: the new one

	n, failed := calls(), failures()
	if n == 0 || len(failed) > 0 {
		t.Fatalf("%d calls during the rotations, %d failed: %s", n, len(failed), strings.Join(failed, "; "))
	}
	t.Logf("%d status calls during the rotations, none failed", n)
	w.mu.Lock()
	captured := strings.Join(w.transcript, "\n") + "\n" + w.logs.String()
	w.mu.Unlock()
	for _, secret := range []string{rotatedGitToken, oldSvcToken, newSvcToken} {
		if k := strings.Count(captured, secret); k > 0 {
			t.Errorf("secret %.12s… appears %d times in the logs and results", secret, k)
		}
	}
	if !strings.Contains(captured, gitVol.path()) {
		t.Errorf("the logs do not name the token file (a rotation is logged by its path)")
	}
}

// keepCalling calls status through the gateway on its own client until
// the test ends; it returns how many calls were made and the failures.
func (w *world) keepCalling(t *testing.T) (calls func() int, failures func() []string) {
	c := w.httpClient(t, agentToken)
	var n atomic.Int64
	var mu sync.Mutex
	var failed []string
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = "status", map[string]any{"workspace": "work"}
		for ctx.Err() == nil {
			res, err := c.CallTool(ctx, req)
			if ctx.Err() != nil {
				return
			}
			n.Add(1)
			switch {
			case err != nil:
				w.record(err.Error())
				mu.Lock()
				failed = append(failed, err.Error())
				mu.Unlock()
			case res.IsError:
				w.record(text(res))
				mu.Lock()
				failed = append(failed, text(res))
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() int { return int(n.Load()) }, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), failed...)
	}
}

// restartRemote serves the world's repositories at the same address with
// token as the only password.
func (w *world) restartRemote(t *testing.T, token string) {
	t.Helper()
	u, err := url.Parse(w.remote.URL())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.remote.Close(); err != nil {
		t.Fatal(err)
	}
	srv, err := gitremote.New(gitremote.Config{Root: w.remoteRoot, Addr: u.Host, Username: "x-access-token", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	w.remote = srv
}

// startSecretsBackend runs `gitgate backend` with the git token and the
// service token in files, and returns its address once it is SERVING.
func startSecretsBackend(t *testing.T, w *world, gitTokenFile, svcTokenFile string) string {
	t.Helper()
	addr, adminAddr := freeAddr(t), freeAddr(t)
	yaml := withTokenFile(w.configYAML(t.TempDir()), gitTokenFile) + fmt.Sprintf(
		"approach2: {listen: %q, admin: %q, token_env: '', token_file: %q, token_grace: %s, sandbox_dir: %q, insecure: true}\n"+
			"postgres: {dsn_env: E2E_PG_DSN}\n", addr, adminAddr, svcTokenFile, tokenGrace, t.TempDir())
	cmd := exec.Command(gitgateBinary(t), "backend", "--config", testkit.WriteTemp(t, "backend.yaml", yaml))
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "E2E_PG_DSN=" + w.pgDSN}
	cmd.Stderr = w.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitServing(t, addr)
	return addr
}
