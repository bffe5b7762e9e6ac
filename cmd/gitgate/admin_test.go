package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestAdminListener: health, readiness and the metrics an operator needs,
// with bounded labels and no secrets.
func TestAdminListener(t *testing.T) {
	w := newWorld(t)
	w.startHTTP(t)
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "m", "url": w.repoURL})
	w.ok(t, c, "status", map[string]any{"workspace": "m"})
	w.fail(t, c, "read_file", map[string]any{"workspace": "m", "path": "absent"}, "not_found")
	if code, body := get(t, w.adminURL+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz %d %q", code, body)
	}
	if code, body := get(t, w.adminURL+"/readyz"); code != 200 {
		t.Fatalf("readyz %d %q", code, body)
	}
	code, metrics := get(t, w.adminURL+"/metrics")
	if code != 200 {
		t.Fatalf("metrics %d", code)
	}
	w.record(metrics)
	for _, want := range []string{
		`gitgate_operations_total{backend="approach1",category="",op="clone",outcome="ok"} 1`,
		`gitgate_operations_total{backend="approach1",category="",op="status",outcome="ok"} 1`,
		`gitgate_operations_total{backend="approach1",category="not_found",op="read_file",outcome="error"} 1`,
		`gitgate_operations_total{backend="approach1",category="conflict",op="push",outcome="error"} 0`,
		`gitgate_operation_duration_seconds_bucket{backend="approach1",op="status",le="+Inf"} 1`,
		`gitgate_operations_in_flight{op="clone"} 0`,
		`gitgate_sandbox_create_seconds_count{outcome="ok",provider="local"} 1`,
		`gitgate_sandboxes_active{provider="local"} 1`,
		`gitgate_lock_wait_seconds_count{backend="approach1"}`,
		`gitgate_git_processes_total{backend="approach1",op="status"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// A project label (cost per project, agents active) takes only the
	// configured projects' names, a bounded set; agents appear only with
	// metrics.agent_labels, off here.
	for _, leak := range []string{w.repoURL, `workspace="`, `agent="`, `"ada"`, `"m"`} {
		if strings.Contains(metrics, leak) {
			t.Errorf("metrics carry an unbounded or identifying label value %q", leak)
		}
	}
	for _, m := range regexp.MustCompile(`project="([^"]*)"`).FindAllStringSubmatch(metrics, -1) {
		if _, configured := w.cfg.Projects[m[1]]; !configured && m[1] != "_other" {
			t.Errorf("metrics carry project=%q, which is not a configured project", m[1])
		}
	}
	if code, _ := get(t, strings.TrimSuffix(w.mcpURL, w.cfg.MCP.Path)+"/metrics"); code == 200 {
		t.Errorf("metrics are reachable on the MCP listener")
	}
}
