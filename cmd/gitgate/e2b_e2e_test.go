package main

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/e2bfake"
)

const e2bKey = "e2b_e2eKEY0123456789abcdef0123456789"

// TestGatewayOnE2B: a gateway configured with sandbox.provider e2b (the
// local E2B standing in for the cloud) serves an agent's clone → write →
// commit → push over MCP; the commit is on the remote; the sandbox carries
// the project in its metadata; neither the API key nor the git token
// appears in any command sent to E2B or in the gateway's output.
func TestGatewayOnE2B(t *testing.T) {
	s, err := e2bfake.Start(e2bfake.Config{APIKey: e2bKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	w := newWorld(t)
	w.cfg.Sandbox.Provider = "e2b"
	w.cfg.Sandbox.E2B.APIURL, w.cfg.Sandbox.E2B.EnvdURL, w.cfg.Sandbox.E2B.APIKey = s.URL(), s.URL(), e2bKey
	if err := w.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	w.startHTTP(t)
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "cloud", "url": w.repoURL})
	w.ok(t, c, "checkout", map[string]any{"workspace": "cloud", "branch": "from-e2b", "create": true})
	w.ok(t, c, "write_file", map[string]any{"workspace": "cloud", "path": "e2b.txt", "content": "made in a microVM\n"})
	w.ok(t, c, "commit", map[string]any{"workspace": "cloud", "message": "Commit made on E2B"})
	w.ok(t, c, "push", map[string]any{"workspace": "cloud"})
	if got := w.remoteGit(t, "log", "-1", "--format=%s %an", "refs/heads/from-e2b"); got != "Commit made on E2B Ada Agent" {
		t.Fatalf("remote branch head: %q", got)
	}
	sandboxes := s.Sandboxes()
	if len(sandboxes) != 1 || sandboxes[0].Metadata["gitgate.project"] != "alpha" || time.Until(sandboxes[0].End) < 50*time.Minute {
		t.Fatalf("sandboxes on E2B: %+v", sandboxes)
	}
	for _, r := range s.Records() {
		if r.Path == "/files" && r.Method == "POST" {
			continue // credential files carry the token, by design
		}
		all := r.Method + r.Path + r.Query + string(r.Body)
		for k, v := range r.Header {
			if k != "X-Api-Key" {
				all += strings.Join(v, ",")
			}
		}
		if strings.Contains(all, gitToken) || strings.Contains(all, e2bKey) {
			t.Fatalf("a secret in a request to E2B: %s %s", r.Method, r.Path)
		}
	}
	if strings.Contains(w.logs.String(), e2bKey) {
		t.Fatal("the E2B API key is in the gateway's log")
	}
	// 2 vCPUs and 512 MiB at E2B's prices: $0.00003025 per second of commands.
	seconds, _ := strconv.ParseFloat(w.metric(t, `gitgate_sandbox_seconds_total{backend="approach1",op="clone"}`), 64)
	cost, _ := strconv.ParseFloat(w.metric(t, `gitgate_sandbox_cost_usd_total{backend="approach1",op="clone"}`), 64)
	if seconds <= 0 || math.Abs(cost-seconds*0.00003025) > 1e-12 {
		t.Fatalf("clone: %v sandbox-seconds cost $%v, want $%v", seconds, cost, seconds*0.00003025)
	}
}

// TestCanaryOnE2B: with sandbox.provider e2b in both processes (the gateway
// and the Approach 2 service child, sharing Redis), a workspace cloned and
// changed through Approach 1 is read through Approach 2 in the same E2B
// sandbox: configuration alone moves both backends to E2B.
func TestCanaryOnE2B(t *testing.T) {
	s, err := e2bfake.Start(e2bfake.Config{APIKey: e2bKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	f := flags.NewFile(backends.OpNames())
	_ = f.SetRoute("status", 100)
	w, _, _ := newCanaryWorldWith(t, f, func(w *world) { w.e2bURL = s.URL() })
	if w.cfg.Sandbox.Provider != "e2b" {
		t.Fatalf("the gateway runs on %q sandboxes", w.cfg.Sandbox.Provider)
	}
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "both", "url": w.repoURL})
	w.ok(t, c, "write_file", map[string]any{"workspace": "both", "path": "shared.txt", "content": "s"})
	w.ok(t, c, "commit", map[string]any{"workspace": "both", "message": "made through approach1"})
	st := w.ok(t, c, "status", map[string]any{"workspace": "both"})
	if st["backend"] != "approach2" || st["ahead"] != float64(1) || st["clean"] != true {
		t.Fatalf("status through approach2: %v", st)
	}
	if sbs := s.Sandboxes(); len(sbs) != 1 || sbs[0].Metadata["gitgate.project"] != "alpha" {
		t.Fatalf("E2B holds %+v; both backends should use the workspace's one sandbox (and no warm pool: min_idle 0)", sbs)
	}
	w.ok(t, c, "checkout", map[string]any{"workspace": "both", "branch": "agent/ada/both", "create": true}) // agents may not push to main
	w.ok(t, c, "push", map[string]any{"workspace": "both"})
	if got := w.remoteGit(t, "log", "-1", "--format=%s", "refs/heads/agent/ada/both"); got != "made through approach1" {
		t.Fatalf("remote agent/ada/both: %q", got)
	}
}
