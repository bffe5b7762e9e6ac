package main

import (
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/testkit"
)

// TestReapedWorkspaceIsRestoredThroughMCP: a gateway (embedded default)
// reaps an idle sandbox whose workspace holds an unpushed commit and
// uncommitted changes; the agent's next call finds everything as it was,
// with a notice, and the operator has a WARN line and the metrics.
func TestReapedWorkspaceIsRestoredThroughMCP(t *testing.T) {
	w := newWorld(t)
	w.cfg.Sandbox.TTL = 2 * time.Second // the reaper looks every TTL/4
	w.startHTTP(t)
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "work", "url": w.repoURL})
	w.ok(t, c, "checkout", map[string]any{"workspace": "work", "branch": "feature", "create": true})
	w.ok(t, c, "write_file", map[string]any{"workspace": "work", "path": "a.txt", "content": "committed\n"})
	commit := w.ok(t, c, "commit", map[string]any{"workspace": "work", "message": "Not pushed yet"})
	w.ok(t, c, "write_file", map[string]any{"workspace": "work", "path": "b.txt", "content": "uncommitted\n"})
	w.ok(t, c, "delete_file", map[string]any{"workspace": "work", "path": "README.md"})
	before := w.ok(t, c, "status", map[string]any{"workspace": "work"})
	dir := w.cfg.SandboxDir()
	testkit.Eventually(t, "the idle sandbox is reaped", func() bool {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "sbx-") {
				return false
			}
		}
		return true
	})
	res := w.call(t, c, "status", map[string]any{"workspace": "work"})
	if res.IsError || !strings.Contains(text(res), "NOTICE") || !strings.Contains(text(res), "restored") {
		t.Fatalf("first call after the reap: %s", text(res))
	}
	after := w.ok(t, c, "status", map[string]any{"workspace": "work"})
	if toJSON(after["entries"]) != toJSON(before["entries"]) || after["branch"] != "feature" || after["head"] != commit["sha"] {
		t.Errorf("status after the restore %v, before the reap %v", after, before)
	}
	if got := w.ok(t, c, "read_file", map[string]any{"workspace": "work", "path": "b.txt"})["content"]; got != "uncommitted\n" {
		t.Errorf("b.txt after the restore: %q", got)
	}
	logs := w.logs.String()
	if !strings.Contains(logs, `"level":"WARN"`) || !strings.Contains(logs, "shelved") {
		t.Error("no WARN line about the shelved workspace")
	}
	// At least once each: on a busy machine a pause longer than the 2 s
	// TTL between two calls reaps (and later restores) the sandbox again.
	metrics := scrape(t, w.adminURL+"/metrics")
	for _, m := range []string{`gitgate_workspaces_shelved_total{backend="approach1",outcome="ok"}`, `gitgate_workspaces_restored_total{backend="approach1",outcome="ok"}`} {
		if v := metricValue(metrics, m); v < 1 {
			t.Errorf("%s = %v, want at least 1", m, v)
		}
	}
	if v := metricValue(metrics, `gitgate_workspaces_lost_total{backend="approach1",reason="sandbox_gone"}`); v != 0 {
		t.Errorf("work counted as lost: %v", v)
	}
}

// metricValue returns the value of the sample named series in a
// Prometheus text exposition, or 0 when there is none.
func metricValue(exposition, series string) float64 {
	for line := range strings.SplitSeq(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return 0
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}
