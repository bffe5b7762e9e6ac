package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/backendtest"
	balancer "github.com/gitgate/gitgate/internal/fleet"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// gracefulDrainDelay is the gateways' listen.drain_delay in the graceful
// tests: well above the harness's health check (2 failures 250 ms apart),
// so that HAProxy turns traffic away before the listener closes, even on a
// loaded machine.
const gracefulDrainDelay = 3 * time.Second

// gatewayChild is one `gitgate serve` process behind the load balancer,
// restartable on the same addresses.
type gatewayChild struct {
	name, mcpAddr, adminAddr string
	env                      []string
	cmd                      *exec.Cmd
	logs                     *testkit.SyncBuffer // this run's standard error (also copied to the world's logs)
	exited                   chan error
}

// start runs the gateway with the configuration at path and waits for
// its "gitgate serving" line.
func (g *gatewayChild) start(t *testing.T, w *world, path string) {
	t.Helper()
	g.cmd = exec.Command(gitgateBinary(t), "serve", "--config", path)
	g.cmd.Env = g.env
	stderr, err := g.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g.logs = &testkit.SyncBuffer{}
	logs, serving := g.logs, make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			_, _ = logs.Write(append(sc.Bytes(), '\n'))
			_, _ = w.logs.Write(append(sc.Bytes(), '\n'))
			if strings.Contains(sc.Text(), `"msg":"gitgate serving"`) {
				once.Do(func() { close(serving) })
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	exited := make(chan error, 1)
	g.exited = exited
	cmd := g.cmd
	go func() {
		<-scanned // Wait closes the pipe: read it all first
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // once it exited: os.ErrProcessDone
	select {
	case <-serving:
	case err := <-exited:
		t.Fatalf("gateway %s exited at start (%v):\n%s", g.name, err, logs.String())
	case <-time.After(testkit.Patience):
		t.Fatalf("gateway %s did not start", g.name)
	}
}

// terminate sends SIGTERM.
func (g *gatewayChild) terminate(t *testing.T) {
	t.Helper()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

// wait waits for the process to exit and fails the test unless it exited
// cleanly.
func (g *gatewayChild) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-g.exited:
		if err != nil {
			t.Fatalf("gateway %s after SIGTERM: %v", g.name, err)
		}
	case <-time.After(testkit.Patience):
		t.Fatalf("gateway %s did not exit after SIGTERM", g.name)
	}
}

// readyz returns the status and body of the gateway's GET /readyz.
func (g *gatewayChild) readyz() (int, string, error) {
	resp, err := http.Get("http://" + g.adminAddr + "/readyz")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// holdingGit writes a git wrapper that, while the file hold exists, makes
// every clone write its parent's pid (the gateway's) to started and wait
// for the file release before running; everything else runs the real git
// at once. It returns the wrapper's path.
func holdingGit(t *testing.T, hold, started, release string) string {
	t.Helper()
	real, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "git")
	script := fmt.Sprintf(`#!/bin/sh
case " $* " in
*" clone "*)
  if [ -e %[1]q ]; then
    echo $PPID > %[2]q.tmp && mv %[2]q.tmp %[2]q
    while [ ! -e %[3]q ]; do sleep 0.05; done
  fi ;;
esac
exec %[4]q "$@"
`, hold, started, release, real)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil { //nolint:gosec // an executable script
		t.Fatal(err)
	}
	return path
}

// steadyLoad is agents calling tools through the load balancer in a
// loop: write a file, read it back, status.
type steadyLoad struct {
	calls    atomic.Int64
	mu       sync.Mutex
	failures []string
	stop     context.CancelFunc
	done     sync.WaitGroup
}

func (l *steadyLoad) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, fmt.Sprintf(format, args...))
}

// startSteadyLoad starts agents clients, each cloning a workspace of its
// own and then calling tools in a loop until the load stops.
func startSteadyLoad(t *testing.T, w *world, url string, agents int) *steadyLoad {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &steadyLoad{stop: cancel}
	for i := range agents {
		c := mcpClient(t, w, url)
		ws := fmt.Sprintf("loop-%d", i)
		w.ok(t, c, "clone", map[string]any{"workspace": ws, "url": w.repoURL})
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			l.loop(ctx, w, c, ws)
		}()
	}
	t.Cleanup(l.finish)
	return l
}

// finish stops the load and waits for the calls in flight.
func (l *steadyLoad) finish() {
	l.stop()
	l.done.Wait()
}

func (l *steadyLoad) loop(ctx context.Context, w *world, c *client.Client, ws string) {
	for i := 0; ctx.Err() == nil; i++ {
		content := fmt.Sprintf("%s round %d\n", ws, i)
		l.call(w, c, "write_file", map[string]any{"workspace": ws, "path": "loop.txt", "content": content, "idempotency_key": rand.Text()}, nil)
		l.call(w, c, "read_file", map[string]any{"workspace": ws, "path": "loop.txt"}, func(m map[string]any) error {
			if m["content"] != content {
				return fmt.Errorf("content %q, want %q", m["content"], content)
			}
			return nil
		})
		l.call(w, c, "status", map[string]any{"workspace": ws}, nil)
	}
}

// call makes one call, with a context of its own: stopping the load does
// not cut a call in flight.
func (l *steadyLoad) call(w *world, c *client.Client, tool string, args map[string]any, check func(map[string]any) error) {
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Patience)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = tool, args
	began := time.Now()
	res, err := c.CallTool(ctx, req)
	l.calls.Add(1)
	switch {
	case err != nil:
		w.record(err.Error())
		l.fail("%s at %s: %v", tool, began.Format("15:04:05.000"), err)
	case res.IsError:
		w.record(text(res))
		l.fail("%s at %s: %s", tool, began.Format("15:04:05.000"), text(res))
	default:
		raw, _ := json.Marshal(res)
		w.record(string(raw))
		if m, ok := res.StructuredContent.(map[string]any); check != nil && (!ok || check(m) != nil) {
			l.fail("%s: %v", tool, check(m))
		}
	}
}

// mcpClient connects agent ada over Streamable HTTP to url.
func mcpClient(t *testing.T, w *world, url string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient(url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + agentToken}))
	if err != nil {
		t.Fatal(err)
	}
	w.initialize(t, c)
	return c
}

// waitServerState waits until HAProxy shows server name in state want
// ("UP" or "DOWN", transitions such as "UP 1/2" excluded) and returns how
// long that took.
func waitServerState(t *testing.T, h *balancer.HAProxy, name, want string) time.Duration {
	t.Helper()
	return testkit.EventuallyNil(t, fmt.Sprintf("haproxy shows %s %s", name, want), func() error {
		st, err := h.ServerStates(context.Background())
		if err != nil {
			return err
		}
		if st[name] != want {
			return fmt.Errorf("states %v", st)
		}
		return nil
	})
}

// TestGracefulRollingRestartBehindHAProxy: two `gitgate serve` processes
// behind a real HAProxy (deploy/haproxy's balancing, health check and
// retries), agents calling tools through it in a steady loop. Each
// gateway in turn gets SIGTERM and is started again: /readyz answers 503
// "draining" at once, HAProxy takes the gateway out of the rotation while
// it still serves, its listener then closes, a clone it had in flight
// since before the signal completes, and it exits cleanly. No agent call
// fails, and the loop keeps going through every drain.
func TestGracefulRollingRestartBehindHAProxy(t *testing.T) {
	t.Parallel() // it mostly waits for drain delays, HAProxy's checks and restarts
	w := newWorld(t)
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	w.sharedSandboxes = t.TempDir()
	w.lockTTL = "10s" // a loaded machine cannot renew the tests' 4 s lease in time
	path := w.persistentConfig(t)

	marks := t.TempDir()
	hold, started, release := filepath.Join(marks, "hold"), filepath.Join(marks, "started"), filepath.Join(marks, "release")
	git := holdingGit(t, hold, started, release)

	gws := []*gatewayChild{{name: "gw-a"}, {name: "gw-b"}}
	var backends []balancer.Backend
	for _, g := range gws {
		g.mcpAddr, g.adminAddr = freeAddr(t), freeAddr(t)
		backends = append(backends, balancer.Backend{Name: g.name, Addr: g.mcpAddr, CheckAddr: g.adminAddr})
	}
	h := balancer.StartHAProxy(t, backends)
	for _, g := range gws {
		g.env = append(childEnv(t), "GITGATE_LISTEN_MCP="+g.mcpAddr, "GITGATE_LISTEN_ADMIN="+g.adminAddr,
			"GITGATE_LISTEN_DRAIN_DELAY="+gracefulDrainDelay.String(),
			"GITGATE_MCP_ALLOWED_HOSTS="+strings.TrimPrefix(h.URL, "http://"), // the Host agents send: the load balancer's
			"GITGATE_GIT_PATH="+git)
		g.start(t, w, path)
	}
	for _, g := range gws {
		waitServerState(t, h, g.name, "UP")
	}
	url := h.URL + w.cfg.MCP.Path
	load := startSteadyLoad(t, w, url, 2)

	// A clone held in git (the wrapper) from before the first SIGTERM
	// until the draining gateway's listener has closed.
	if err := os.WriteFile(hold, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cloner := mcpClient(t, w, url)
	cloned := make(chan error, 1)
	go func() {
		res, err := cloner.CallTool(context.Background(), toolRequest("clone", map[string]any{"workspace": "held", "url": w.repoURL}))
		switch {
		case err != nil:
			cloned <- err
		case res.IsError:
			cloned <- errors.New(text(res))
		default:
			cloned <- nil
		}
	}()
	var pid string
	testkit.EventuallyNil(t, "the held clone runs git on a gateway", func() error {
		b, err := os.ReadFile(started)
		pid = strings.TrimSpace(string(b))
		return err
	})
	first, second := gws[0], gws[1]
	if pid == strconv.Itoa(second.cmd.Process.Pid) {
		first, second = second, first
	} else if pid != strconv.Itoa(first.cmd.Process.Pid) {
		t.Fatalf("the held clone's git runs under pid %s, neither gateway (%d, %d)", pid, first.cmd.Process.Pid, second.cmd.Process.Pid)
	}

	for round, g := range []*gatewayChild{first, second} {
		callsBefore := load.calls.Load()
		signalled := time.Now()
		g.terminate(t)
		testkit.EventuallyNil(t, g.name+"'s /readyz answers 503 draining", func() error {
			code, body, err := g.readyz()
			if err != nil {
				return err
			}
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
				return fmt.Errorf("/readyz %d %q", code, body)
			}
			return nil
		})
		waitServerState(t, h, g.name, "DOWN")
		down := time.Since(signalled)
		// Still draining: the MCP listener closes only after the delay.
		testkit.EventuallyNil(t, g.name+"'s MCP listener closes", func() error {
			c, err := net.DialTimeout("tcp", g.mcpAddr, time.Second)
			if err == nil {
				_ = c.Close()
				return errors.New("still accepting")
			}
			return nil // refused: closed
		})
		closed := time.Since(signalled)
		if round == 0 {
			select {
			case err := <-cloned:
				t.Fatalf("the held clone ended before its release: %v", err)
			default:
			}
			if err := os.Remove(hold); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(release, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := <-cloned; err != nil {
				t.Errorf("the clone in flight across %s's SIGTERM failed: %v", g.name, err)
			}
		}
		g.wait(t)
		exited := time.Since(signalled)
		stopped := shutdownLine(t, g.logs.String(), "stopped")
		if round == 0 && (stopped["in_flight_at_start"] == nil || stopped["in_flight_at_start"].(float64) < 1 || stopped["in_flight_left"] != 0.0) {
			t.Errorf("%s's exit line: %v; want the clone among the calls in flight at the start and none left", g.name, stopped)
		}
		t.Logf("%s: SIGTERM → HAProxy DOWN %s, listener closed %s, exited %s; %d loop calls meanwhile",
			g.name, down.Round(time.Millisecond), closed.Round(time.Millisecond), exited.Round(time.Millisecond), load.calls.Load()-callsBefore)
		if load.calls.Load() == callsBefore {
			t.Errorf("no loop call completed while %s drained: the test exercised nothing", g.name)
		}
		g.start(t, w, path)
		up := waitServerState(t, h, g.name, "UP")
		t.Logf("%s restarted: UP in HAProxy %s after its start", g.name, up.Round(time.Millisecond))
	}
	before := load.calls.Load()
	testkit.Eventually(t, "the loop goes on after both restarts", func() bool { return load.calls.Load() > before+6 })
	load.finish()

	load.mu.Lock()
	defer load.mu.Unlock()
	t.Logf("%d loop calls, %d failed; HAProxy retried %d requests", load.calls.Load(), len(load.failures), retried(h.Logs()))
	for _, f := range load.failures {
		t.Errorf("failed call: %s", f)
	}
	for _, g := range gws {
		if !strings.Contains(h.Logs(), "gitgate_mcp/"+g.name+" ") {
			t.Errorf("HAProxy's log shows no request served by %s", g.name)
		}
	}
}

func toolRequest(tool string, args map[string]any) mcp.CallToolRequest {
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = tool, args
	return req
}

// shutdownLine returns the gateway's last log line with msg.
func shutdownLine(t *testing.T, logs, msg string) map[string]any {
	t.Helper()
	var found map[string]any
	for _, l := range slogLines(t, logs) {
		if l["process"] == "gateway" && l["msg"] == msg {
			found = l
		}
	}
	if found == nil {
		t.Errorf("no %q line in the gateway's log", msg)
	}
	return found
}

// haproxyRetries matches httplog's termination state and connection
// counts ("actconn/feconn/beconn/srv_conn/retries", "+" when redispatched).
var haproxyRetries = regexp.MustCompile(` [-A-Za-z]{4} \d+/\d+/\d+/\d+/\+?(\d+) `)

// retried counts the requests HAProxy's log shows retried.
func retried(logs string) int {
	n := 0
	for _, m := range haproxyRetries.FindAllStringSubmatch(logs, -1) {
		if m[1] != "0" {
			n++
		}
	}
	return n
}
