package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
)

// TestDevCommand runs `gitgate dev` (what make run starts) as a newcomer
// would, on free ports: the banner's URL, token and repository work with a
// real MCP client; its admin URL and admin token work with `gitgate kill
// --admin` (and the override refuses a caller without the token); the
// service's admin URL answers when the service runs; SIGINT stops it
// cleanly, and its standard error is slog JSON lines only, ending with the
// shutdown of the gateway and the service logged with their figures.
func TestDevCommand(t *testing.T) {
	cmd := exec.Command(gitgateBinary(t), "dev")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "GITGATE_LISTEN_MCP=127.0.0.1:0", "GITGATE_LISTEN_ADMIN=127.0.0.1:0"}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &testkit.SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	banner := readBanner(t, stdout, "MCP endpoint:", "Agent token:", "Demo repository:", "Gateway admin:", "Admin token:", "Approach 2:")
	c, err := client.NewStreamableHttpClient(banner["MCP endpoint:"], transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + banner["Agent token:"]}))
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, logs: &testkit.SyncBuffer{}}
	w.initialize(t, c)
	res := w.ok(t, c, "clone", map[string]any{"workspace": "first", "url": banner["Demo repository:"]})
	if res["branch"] != "main" {
		t.Fatalf("clone of the demo repository: %v", res)
	}
	_ = c.Close()

	// The kill switch, as the banner says to use it.
	kill := func(token string, args ...string) (string, error) {
		k := exec.Command(gitgateBinary(t), append([]string{"kill"}, args...)...)
		k.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
		if token != "" {
			k.Env = append(k.Env, "GITGATE_ADMIN_TOKEN="+token)
		}
		out, err := k.CombinedOutput()
		return string(out), err
	}
	admin, token := banner["Gateway admin:"], banner["Admin token:"]
	if !strings.HasPrefix(admin, "http://127.0.0.1:") || !strings.HasPrefix(token, "gga_admin_dev_") {
		t.Fatalf("banner: gateway admin %q, admin token %q", admin, token)
	}
	if svc := banner["Service admin:"]; svc != "" {
		resp, err := http.Get(svc + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("service admin %s/healthz: %v %v", svc, resp, err)
		}
		resp.Body.Close()
		flagFile := banner["Canary flags:"]
		if out, err := kill("", "on", "--admin", admin, "--file", flagFile, "--reason", "no token"); err == nil {
			t.Fatalf("kill on without the admin token succeeded:\n%s", out)
		}
		for _, onOff := range []string{"on", "off"} {
			if out, err := kill(token, onOff, "--admin", admin, "--file", flagFile, "--reason", "dev drill"); err != nil {
				t.Fatalf("kill %s --admin with the banner's token: %v\n%s", onOff, err, out)
			}
		}
	} else if !strings.Contains(banner["Approach 2:"], "not started") {
		t.Fatalf("the service runs (%s) but the banner gives no service admin URL", banner["Approach 2:"])
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("gitgate dev after SIGINT: %v", err)
		}
	case <-time.After(testkit.Patience):
		t.Fatal("gitgate dev did not stop after SIGINT")
	}
	lines := slogLines(t, stderr.String())
	processes := []string{"gateway"}
	if banner["Service admin:"] != "" {
		processes = append(processes, "approach2 service")
	}
	for _, p := range processes {
		var shutting, stopped map[string]any
		for _, l := range lines {
			if l["process"] == p && l["msg"] == "shutting down" {
				shutting = l
			}
			if l["process"] == p && l["msg"] == "stopped" {
				stopped = l
			}
		}
		if shutting == nil || shutting["level"] != "INFO" || shutting["reason"] != "interrupt signal received" || shutting["in_flight"] == nil {
			t.Errorf("%s: no info line for the start of the shutdown with the signal and the calls in flight: %v", p, shutting)
		}
		if stopped == nil || stopped["level"] != "INFO" || stopped["took"] == nil || stopped["took_ms"] == nil || stopped["in_flight_at_start"] == nil {
			t.Errorf("%s: no info line for the exit with its figures: %v", p, stopped)
		}
	}
}

// slogLines parses every line of a process's standard error as a slog
// JSON record with time, level and msg, failing the test on one that is
// not.
func slogLines(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("a standard error line is not JSON: %s", line)
			continue
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k].(string); !ok {
				t.Errorf("a standard error line has no %s (not slog's format): %s", k, line)
			}
		}
		lines = append(lines, rec)
	}
	return lines
}

// readBanner collects the values of the banner's "Label: value" lines
// until every label of want has one (others it meets are kept too).
func readBanner(t *testing.T, out interface{ Read([]byte) (int, error) }, want ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	sc := bufio.NewScanner(out)
	deadline := time.AfterFunc(testkit.Patience, func() { t.Error("no banner in time") })
	defer deadline.Stop()
	labels := append([]string{"Service admin:", "Service token:", "Canary flags:"}, want...)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		for _, label := range labels {
			if v, ok := strings.CutPrefix(line, label); ok {
				got[label] = strings.TrimSpace(v)
			}
		}
		complete := true
		for _, label := range want {
			_, ok := got[label]
			complete = complete && ok
		}
		if a2, ok := got["Approach 2:"]; ok && !strings.Contains(a2, "not started") {
			_, ok := got["Canary flags:"] // the last line about a running service
			complete = complete && ok
		}
		if complete {
			go func() { _, _ = bufioDiscard(sc) }()
			return got
		}
	}
	t.Fatalf("banner incomplete: %v", got)
	return nil
}

func bufioDiscard(sc *bufio.Scanner) (int, error) {
	n := 0
	for sc.Scan() {
		n++
	}
	return n, sc.Err()
}
