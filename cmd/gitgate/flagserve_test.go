package main

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/testkit"
)

// TestGatewayFollowsFlagsServe: `gitgate flags serve` (the built binary)
// serves a flag file as a flagd sync source; a gateway with flags.sync_addr
// routes by it, and `gitgate canary set` and `gitgate kill on` on that file
// reach the gateway within a second.
func TestGatewayFollowsFlagsServe(t *testing.T) {
	f := flags.NewFile(backends.OpNames())
	_ = f.SetRoute("status", 100)
	flagPath := filepath.Join(t.TempDir(), "fleet-flags.json")
	if err := f.Save(flagPath); err != nil {
		t.Fatal(err)
	}
	serve := exec.Command(gitgateBinary(t), "flags", "serve", "--file", flagPath, "--listen", "127.0.0.1:0")
	out, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = serve.Process.Kill(); _ = serve.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSpace(line[strings.LastIndex(line, " "):])

	dir := t.TempDir()
	w, _, _ := newCanaryWorld(t, flags.NewFile(backends.OpNames()), func(c *configs.Config) {
		c.Flags.Path, c.Flags.SyncAddr = "", addr
		c.Flags.OverridePath = filepath.Join(dir, "override.json")
		c.Canary.LedgerPath = filepath.Join(dir, "ledger.jsonl")
	})
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "fleet", "url": w.repoURL})
	servedBy := func() string {
		return w.ok(t, c, "status", map[string]any{"workspace": "fleet"})["backend"].(string)
	}
	waitFor := func(what, backend string) {
		t.Helper()
		took := testkit.Eventually(t, "status is served by "+backend+" after "+what, func() bool { return servedBy() == backend })
		t.Logf("%s reached the gateway in %s", what, took.Round(time.Millisecond)) // how soon: flags.BenchmarkChangeApplies
	}
	waitFor("the first sync", "approach2")
	if _, err := run(t, "canary", "set", "status", "0", "--file", flagPath, "--by", "ana", "--reason", "fleet test"); err != nil {
		t.Fatal(err)
	}
	waitFor("canary set status 0", "approach1")
	if _, err := run(t, "canary", "set", "status", "100", "--file", flagPath, "--by", "ana", "--reason", "fleet test"); err != nil {
		t.Fatal(err)
	}
	waitFor("canary set status 100", "approach2")
	if _, err := run(t, "kill", "on", "--file", flagPath, "--by", "oncall", "--reason", "fleet drill"); err != nil {
		t.Fatal(err)
	}
	waitFor("kill on", "approach1")
}
