package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
)

// persistentConfig writes a configuration (the embedded default: no
// Redis, no PostgreSQL, Approach 1, local sandboxes) whose sandbox and
// state directories stay the same across the processes that read it.
func (w *world) persistentConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gitgate.yaml")
	if err := os.WriteFile(path, []byte(w.configYAML(filepath.Join(t.TempDir(), "sandboxes"))), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func childEnv(t testing.TB) []string {
	return []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "E2E_GIT_TOKEN=" + gitToken, "E2E_GIT_READ_TOKEN=" + gitReadToken}
}

// startServe starts `gitgate serve` with the configuration at path and the
// environment env, copies its log lines into w.logs, and returns the
// command, where its MCP URL (read from its "gitgate serving" log line)
// arrives, and a channel closed when its log has ended. Stopping it is the
// caller's.
func (w *world) startServe(t testing.TB, path string, env []string) (cmd *exec.Cmd, mcpURL <-chan string, scanned <-chan struct{}) {
	t.Helper()
	cmd = exec.Command(gitgateBinary(t), "serve", "--config", path)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			_, _ = w.logs.Write(append(sc.Bytes(), '\n'))
			var line struct {
				Msg string `json:"msg"`
				MCP string `json:"mcp"`
			}
			if !sent && json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "gitgate serving" {
				urls <- line.MCP
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	return cmd, urls, done
}

// serveChild starts `gitgate serve` with the configuration at path and
// returns its MCP URL (read from its "gitgate serving" log line) and a
// function that stops it with SIGTERM and waits for it.
func (w *world) serveChild(t *testing.T, path string) (mcpURL string, stop func()) {
	t.Helper()
	cmd, urls, _ := w.startServe(t, path, childEnv(t))
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("gitgate serve did not stop cleanly: %v", err)
		}
	}
	t.Cleanup(stop)
	select {
	case mcpURL = <-urls:
	case <-time.After(2 * time.Minute):
		t.Fatal("gitgate serve did not start")
	}
	return mcpURL, stop
}

// TestServeRestartKeepsWorkspaces: stopping and starting `gitgate serve`
// in the embedded default (no Redis, no PostgreSQL) keeps the workspace,
// its branch, its unpushed commit and its uncommitted changes.
func TestServeRestartKeepsWorkspaces(t *testing.T) {
	w := newWorld(t)
	path := w.persistentConfig(t)
	url, stop := w.serveChild(t, path)
	w.mcpURL = url
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "work", "url": w.repoURL})
	w.ok(t, c, "checkout", map[string]any{"workspace": "work", "branch": "feature", "create": true})
	w.ok(t, c, "write_file", map[string]any{"workspace": "work", "path": "a.txt", "content": "committed\n"})
	commit := w.ok(t, c, "commit", map[string]any{"workspace": "work", "message": "Not pushed yet"})
	w.ok(t, c, "write_file", map[string]any{"workspace": "work", "path": "b.txt", "content": "uncommitted\n"})
	_ = c.Close()
	stop()

	url, _ = w.serveChild(t, path)
	w.mcpURL = url
	c = w.httpClient(t, agentToken)
	st := w.ok(t, c, "status", map[string]any{"workspace": "work"})
	if st["branch"] != "feature" || st["clean"] != false || !strings.Contains(toJSON(st["entries"]), "b.txt") {
		t.Errorf("status after the restart: %v", st)
	}
	log := w.ok(t, c, "log", map[string]any{"workspace": "work", "limit": 1})
	if !strings.Contains(toJSON(log["commits"]), commit["sha"].(string)) {
		t.Errorf("the unpushed commit %v is gone: %v", commit["sha"], log)
	}
	if got := w.ok(t, c, "read_file", map[string]any{"workspace": "work", "path": "b.txt"})["content"]; got != "uncommitted\n" {
		t.Errorf("uncommitted b.txt after the restart: %q", got)
	}
	if list := toJSON(w.ok(t, c, "list_workspaces", map[string]any{})["workspaces"]); !strings.Contains(list, `"work"`) {
		t.Errorf("list_workspaces after the restart: %s", list)
	}
	w.fail(t, c, "clone", map[string]any{"workspace": "work", "url": w.repoURL}, "conflict")
}

// TestStdioProcessPerCall: a client that starts `gitgate serve --stdio`
// for every call (as the MCP Inspector does) works on the workspace the
// previous process made.
func TestStdioProcessPerCall(t *testing.T) {
	w := newWorld(t)
	path := w.persistentConfig(t)
	env := childEnv(t)
	call := func(tool string, args map[string]any) map[string]any {
		t.Helper()
		c, err := client.NewStdioMCPClientWithOptions(gitgateBinary(t), env, []string{"serve", "--stdio", "--config", path},
			transport.WithCommandStderrWriter(w.logs))
		if err != nil {
			t.Fatal(err)
		}
		w.initialize(t, c)
		defer c.Close()
		return w.ok(t, c, tool, args)
	}
	call("clone", map[string]any{"workspace": "w", "url": w.repoURL})
	call("write_file", map[string]any{"workspace": "w", "path": "notes.md", "content": "hi\n"})
	commit := call("commit", map[string]any{"workspace": "w", "message": "Add notes"})
	call("write_file", map[string]any{"workspace": "w", "path": "draft.md", "content": "draft\n"})
	st := call("status", map[string]any{"workspace": "w"})
	if st["head"] != commit["sha"] || st["clean"] != false || !strings.Contains(toJSON(st["entries"]), "draft.md") {
		t.Errorf("status in the fifth process: %v (want head %v and draft.md uncommitted)", st, commit["sha"])
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
