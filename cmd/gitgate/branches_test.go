package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/gateway/branches"
	"github.com/gitgate/gitgate/internal/gitremote"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
)

// TestAgentPushToMainIsRefused: through the gateway (MCP over HTTP), an
// agent's push to main is refused with a message naming the branch, the
// rule and what to do, whether it names main or is on it; a push of its own
// branch goes through and is recorded for the cleanup, which deletes it
// once merged.
func TestAgentPushToMainIsRefused(t *testing.T) {
	w := newWorld(t)
	w.startHTTP(t)
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "work", "url": w.repoURL})
	w.ok(t, c, "write_file", map[string]any{"workspace": "work", "path": "x.txt", "content": "x\n"})
	w.ok(t, c, "commit", map[string]any{"workspace": "work", "message": "on main"})
	mainBefore := w.remoteGit(t, "rev-parse", "refs/heads/main")
	for _, args := range []map[string]any{{"workspace": "work"}, {"workspace": "work", "branch": "main"}} {
		res := w.call(t, c, "push", args)
		msg := text(res)
		if !res.IsError || !strings.HasPrefix(msg, "forbidden: ") || !strings.Contains(msg, `branch "main" is protected`) ||
			!strings.Contains(msg, "agent/ada/<topic>") {
			t.Errorf("push %v: got %q, want a forbidden error naming main, the rule and a branch of the agent's own", args, msg)
		}
	}
	if got := w.remoteGit(t, "rev-parse", "refs/heads/main"); got != mainBefore {
		t.Fatalf("main moved to %s", got)
	}
	if got := w.metric(t, `gitgate_branch_pushes_refused_total{reason="protected"}`); got != "2" {
		t.Errorf("refused pushes metric = %q, want 2", got)
	}

	w.ok(t, c, "checkout", map[string]any{"workspace": "work", "branch": "agent/ada/topic", "create": true})
	push := w.ok(t, c, "push", map[string]any{"workspace": "work"})
	store, closeStore, err := openBranchStore(t.Context(), w.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	recs, err := store.Pushed(t.Context(), "alpha")
	if err != nil || len(recs) != 1 || recs[0].Branch != "agent/ada/topic" || recs[0].Commit != push["head"] || recs[0].Agent != "ada" || recs[0].URL != w.repoURL {
		t.Fatalf("recorded %+v, %v; want agent/ada/topic at %v", recs, err, push["head"])
	}

	// Merged into main (a fast-forward made on the remote), it is deleted.
	w.remoteGit(t, "update-ref", "refs/heads/main", push["head"].(string))
	w.cfg.Branches.Cleanup.Enabled = true
	rep, err := newCleaner(w.cfg, store, branchGit(w.cfg), nil, w.app.log, false).Run(t.Context())
	if err != nil || len(rep.Decisions) != 1 || rep.Decisions[0].Delete != branches.DeleteMerged || rep.Decisions[0].Deletion == "" {
		t.Fatalf("cleanup: %+v, %v", rep, err)
	}
	if got := w.remoteGit(t, "for-each-ref", "refs/heads/agent/"); got != "" {
		t.Errorf("the merged branch is still on the remote: %s", got)
	}
}

// TestBranchesCommands runs `gitgate branches list`, `cleanup` (a dry run
// while cleanup is not enabled, then with --dry-run) and `restore` on a
// remote without auth.
func TestBranchesCommands(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	srv, err := gitremote.New(gitremote.Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.CreateRepo(t.Context(), "demo", map[string]string{"README.md": "hi\n"}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	u, _ := url.Parse(srv.URL())
	state := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "gitgate.yaml")
	yaml := fmt.Sprintf("state_dir: %q\ngit: {allow_http: true}\nprojects:\n  alpha: {allowed_hosts: [%q], allowed_schemes: [http]}\nbranches: {cleanup: {enabled: %%v}}\n", state, u.Host)
	write := func(enabled bool) {
		if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(yaml, enabled)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(false)
	sha, err := srv.CommitFile(t.Context(), "demo", "agent/ada/old", "old.txt", "old\n", "")
	if err != nil {
		t.Fatal(err)
	}
	store, err := branches.OpenFileStore(filepath.Join(state, "branches"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-40 * 24 * time.Hour)
	if err := store.RecordPush(t.Context(), branches.Pushed{Project: "alpha", Agent: "ada", URL: srv.RepoURL("demo"), Branch: "agent/ada/old", Commit: sha, At: at}); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "--config", cfgPath, "branches", "list")
	if err != nil || !strings.Contains(out, "agent/ada/old") || !strings.Contains(out, sha[:12]) {
		t.Fatalf("branches list: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"branches", "cleanup"}, {"branches", "cleanup", "--dry-run"}} {
		if out, err := runCLI(t, append([]string{"--config", cfgPath}, args...)...); err != nil || !strings.Contains(out, "would delete (stale)") {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		if ref, _ := srv.Ref(t.Context(), "demo", "refs/heads/agent/ada/old"); ref != sha {
			t.Fatalf("%v deleted the branch", args)
		}
	}
	write(true)
	if out, err := runCLI(t, "--config", cfgPath, "branches", "cleanup"); err != nil || !strings.Contains(out, "deleted (stale)") {
		t.Fatalf("cleanup: %v\n%s", err, out)
	}
	if ref, _ := srv.Ref(t.Context(), "demo", "refs/heads/agent/ada/old"); ref != "" {
		t.Fatal("cleanup kept the stale branch")
	}
	dels, err := store.Deletions(t.Context())
	if err != nil || len(dels) != 1 {
		t.Fatalf("deletions %+v, %v", dels, err)
	}
	out, err = runCLI(t, "--config", cfgPath, "branches", "list", "--deleted")
	if err != nil || !strings.Contains(out, dels[0].ID) || !strings.Contains(out, "stale") {
		t.Fatalf("branches list --deleted: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "--config", cfgPath, "branches", "restore", dels[0].ID); err != nil || !strings.Contains(out, "restored agent/ada/old") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if ref, _ := srv.Ref(context.Background(), "demo", "refs/heads/agent/ada/old"); ref != sha {
		t.Fatalf("restored branch at %q, want %s", ref, sha)
	}
}

// TestScheduledCleanupRuns: the gateway's schedule runs the cleanup every
// interval (a dry run while not enabled) until its context ends.
func TestScheduledCleanupRuns(t *testing.T) {
	cfg := &configs.Config{StateDir: t.TempDir()}
	store, closeStore, err := openBranchStore(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	reg := prometheus.NewRegistry()
	c := newCleaner(cfg, store, branchGit(cfg), branches.NewMetrics(reg), slog.New(slog.DiscardHandler), false)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { runCleanups(ctx, c, 10*time.Millisecond, slog.New(slog.DiscardHandler)); close(done) }()
	runs := func() float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "gitgate_branch_cleanup_runs_total" {
				for _, m := range mf.GetMetric() {
					if m.GetLabel()[0].GetValue() == "dry_run" {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}
	testkit.Eventually(t, "two scheduled dry runs", func() bool { return runs() >= 2 })
	cancel()
	<-done
}
