package main

import (
	"bufio"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
)

// TestDevCommand runs `gitgate dev` (what make run starts) as a newcomer
// would, on free ports: the banner's URL, token and repository work with a
// real MCP client, and SIGINT stops it cleanly.
func TestDevCommand(t *testing.T) {
	cmd := exec.Command(gitgateBinary(t), "dev")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "GITGATE_LISTEN_MCP=127.0.0.1:0", "GITGATE_LISTEN_ADMIN=127.0.0.1:0"}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	banner := readBanner(t, stdout)
	c, err := client.NewStreamableHttpClient(banner["MCP endpoint:"], transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + banner["Agent token:"]}))
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, logs: &syncBuffer{}}
	w.initialize(t, c)
	res := w.ok(t, c, "clone", map[string]any{"workspace": "first", "url": banner["Demo repository:"]})
	if res["branch"] != "main" {
		t.Fatalf("clone of the demo repository: %v", res)
	}
	_ = c.Close()
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
	case <-time.After(patience):
		t.Fatal("gitgate dev did not stop after SIGINT")
	}
}

// readBanner collects "Label: value" lines of the banner until the token.
func readBanner(t *testing.T, out interface{ Read([]byte) (int, error) }) map[string]string {
	t.Helper()
	got := map[string]string{}
	sc := bufio.NewScanner(out)
	deadline := time.AfterFunc(60*time.Second, func() { t.Error("no banner within 60 s") })
	defer deadline.Stop()
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		for _, label := range []string{"MCP endpoint:", "Agent token:", "Demo repository:"} {
			if v, ok := strings.CutPrefix(line, label); ok {
				got[label] = strings.TrimSpace(v)
			}
		}
		if len(got) == 3 {
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
