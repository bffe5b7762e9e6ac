// Package fleet holds the test harness of a fleet on loopback: a real
// HAProxy (Debian's) in front of gateway processes, with the load-balancing
// settings of the production example deploy/haproxy/haproxy.cfg and faster
// health checks.
package fleet

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/gitgate/gitgate/internal/testkit"
)

// Backend is one gateway behind the load balancer.
type Backend struct {
	Name      string // the server's name in HAProxy (letters, digits, '-', '_', '.')
	Addr      string // the gateway's MCP listener, host:port
	CheckAddr string // its admin listener, host:port: the health check is GET /readyz there
}

// HAProxy is a running haproxy in front of some gateways.
type HAProxy struct {
	URL    string // http://127.0.0.1:<port>, the frontend (append the MCP path)
	socket string // the stats socket (level admin)
	logs   *testkit.SyncBuffer
}

// Health-check timing of the harness: a gateway whose /readyz fails is
// out of the rotation within checkFall checks checkInter apart (plus the
// check timeout when it hangs), so a gateway's listen.drain_delay must be
// well above checkFall*checkInter for the load balancer to turn traffic
// away before the gateway stops accepting.
const (
	checkInter = 250 * time.Millisecond
	checkFall  = 2
	checkRise  = 2
)

// backendName is HAProxy's backend holding the gateways, as in
// deploy/haproxy/haproxy.cfg.
const backendName = "gitgate_mcp"

// configTemplate is the harness's configuration: the frontend and the
// backend of deploy/haproxy/haproxy.cfg (the same balancing, health check,
// retry and redispatch settings; TestHarnessMatchesProductionConfig keeps
// them the same) with loopback addresses, a stats socket in a temporary
// directory, logs on standard error and faster checks.
var configTemplate = template.Must(template.New("haproxy.cfg").Parse(`global
    maxconn 2048
    stats socket {{.Socket}} mode 600 level admin
    stats timeout 30s
    log stderr format raw local0 info

defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 2s
    timeout client 10m
    timeout server 10m
    timeout http-keep-alive 30s
    timeout check 2s

frontend mcp
    bind 127.0.0.1:{{.Port}}
    default_backend ` + backendName + `

backend ` + backendName + `
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    option redispatch 1
    retries 3
    retry-on conn-failure empty-response
    default-server check inter {{.Inter}} fastinter {{.Inter}} downinter {{.Inter}} fall {{.Fall}} rise {{.Rise}}
{{- range .Backends}}
    server {{.Name}} {{.Addr}} addr {{.CheckHost}} port {{.CheckPort}}
{{- end}}
`))

type configData struct {
	Socket     string
	Port       string
	Inter      string
	Fall, Rise int
	Backends   []serverLine
}

type serverLine struct{ Name, Addr, CheckHost, CheckPort string }

var validName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// StartHAProxy starts haproxy in the foreground in front of backends, on a
// free loopback port, and returns once its frontend accepts connections
// and its stats socket answers; it is stopped when the test ends. The
// servers start as HAProxy starts them (up until their checks fail): wait
// on ServerStates for the states a test needs. It fails the test when
// haproxy is not installed (make haproxy installs Debian's).
func StartHAProxy(t testing.TB, backends []Backend) *HAProxy {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := render(backends)
	if err != nil {
		t.Fatal(err)
	}
	// A directory of its own under the system's temporary directory: a
	// Unix socket's path must stay short (108 bytes), which a test's
	// TempDir under a long test name may not.
	dir, err := os.MkdirTemp("", "haproxy") //nolint:usetesting // a short path for the socket, removed at cleanup
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	cfg.Socket = filepath.Join(dir, "stats.sock")
	var text bytes.Buffer
	if err := configTemplate.Execute(&text, cfg); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, text.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &HAProxy{URL: "http://127.0.0.1:" + cfg.Port, socket: cfg.Socket, logs: &testkit.SyncBuffer{}}
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = h.logs, h.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { h.stop(t, cmd, exited) })
	h.waitStarted(t, exited)
	return h
}

// Binary returns the path of haproxy: on PATH, or Debian's in /usr/sbin
// (which a user's PATH may lack).
func Binary() (string, error) {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p, nil
	}
	if p, err := exec.LookPath("/usr/sbin/haproxy"); err == nil {
		return p, nil
	}
	return "", errors.New("haproxy is not installed (make haproxy installs Debian's package)")
}

// render checks backends and fills the template's data, with a free port
// for the frontend.
func render(backends []Backend) (configData, error) {
	d := configData{Inter: fmt.Sprintf("%dms", checkInter.Milliseconds()), Fall: checkFall, Rise: checkRise}
	seen := map[string]bool{}
	for _, b := range backends {
		if !validName.MatchString(b.Name) || seen[b.Name] {
			return d, fmt.Errorf("fleet: backend name %q must be unique and made of letters, digits, '-', '_' or '.'", b.Name)
		}
		seen[b.Name] = true
		if _, _, err := net.SplitHostPort(b.Addr); err != nil {
			return d, fmt.Errorf("fleet: backend %s: Addr %q is not host:port", b.Name, b.Addr)
		}
		host, port, err := net.SplitHostPort(b.CheckAddr)
		if err != nil {
			return d, fmt.Errorf("fleet: backend %s: CheckAddr %q is not host:port", b.Name, b.CheckAddr)
		}
		d.Backends = append(d.Backends, serverLine{Name: b.Name, Addr: b.Addr, CheckHost: host, CheckPort: port})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return d, fmt.Errorf("fleet: a free port for haproxy: %w", err)
	}
	_, d.Port, _ = net.SplitHostPort(ln.Addr().String())
	_ = ln.Close()
	return d, nil
}

// waitStarted waits until the frontend accepts connections and the stats
// socket answers, failing the test if haproxy exits first.
func (h *HAProxy) waitStarted(t testing.TB, exited <-chan error) {
	t.Helper()
	addr := strings.TrimPrefix(h.URL, "http://")
	testkit.EventuallyNil(t, "haproxy serves its frontend and its stats socket", func() error {
		select {
		case err := <-exited:
			t.Fatalf("haproxy exited at start (%v):\n%s", err, h.logs.String())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		_ = c.Close()
		_, err = h.command(context.Background(), "show info")
		return err
	})
}

// stop ends haproxy (SIGTERM: a hard stop, connections closed) and, when
// the test failed, logs the end of haproxy's log.
func (h *HAProxy) stop(t testing.TB, cmd *exec.Cmd, exited <-chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		err = <-exited
	}
	if t.Failed() {
		t.Logf("haproxy (exit: %v) log, last lines:\n%s", err, tail(h.logs.String(), 200))
	}
}

// Logs returns what haproxy wrote so far: its alerts and one line per
// request (option httplog: the server that answered, the retries, the
// termination state).
func (h *HAProxy) Logs() string { return h.logs.String() }

// ServerStates returns the state of every gateway as HAProxy's stats show
// it, by server name: "UP", "DOWN", "MAINT", "NOLB", or a transition
// such as "UP 1/2" (up, one failed check of the fall count) and
// "DOWN 1/2" (down, one good check of the rise count).
func (h *HAProxy) ServerStates(ctx context.Context) (map[string]string, error) {
	out, err := h.command(ctx, "show stat")
	if err != nil {
		return nil, err
	}
	return parseStat(out)
}

// parseStat reads the servers' states of the gateways' backend from the
// CSV of `show stat`.
func parseStat(out []byte) (map[string]string, error) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(out, []byte("# "))))
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("haproxy show stat: %w", err)
	}
	col := map[string]int{}
	for i, name := range head {
		col[name] = i
	}
	px, sv, st := col["pxname"], col["svname"], col["status"]
	if _, ok := col["status"]; !ok {
		return nil, fmt.Errorf("haproxy show stat: no status column in %q", head)
	}
	states := map[string]string{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return states, nil
		}
		if err != nil {
			return nil, fmt.Errorf("haproxy show stat: %w", err)
		}
		if len(rec) <= st || rec[px] != backendName || rec[sv] == "BACKEND" || rec[sv] == "FRONTEND" {
			continue
		}
		states[rec[sv]] = rec[st]
	}
}

// command sends one command to the stats socket and returns the answer.
func (h *HAProxy) command(ctx context.Context, cmd string) ([]byte, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", h.socket)
	if err != nil {
		return nil, fmt.Errorf("haproxy stats socket: %w", err)
	}
	defer c.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	_ = c.SetDeadline(deadline)
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return nil, fmt.Errorf("haproxy stats socket: %w", err)
	}
	out, err := io.ReadAll(c) // not in interactive mode: haproxy closes after the answer
	if err != nil {
		return nil, fmt.Errorf("haproxy stats socket %q: %w", cmd, err)
	}
	return out, nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
