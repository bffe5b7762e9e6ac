package fleet

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/testkit"
)

// replica stands for a gateway: an "MCP" listener answering with its name
// and an admin listener whose /readyz follows ready.
type replica struct {
	name        string
	addr, check string
	ready       atomic.Bool
	served      atomic.Int64
}

// startReplica serves a replica on loopback until the test ends; mcp, when
// not nil, replaces its MCP handler.
func startReplica(t *testing.T, name string, mcp http.Handler) *replica {
	t.Helper()
	r := &replica{name: name}
	r.ready.Store(true)
	if mcp == nil {
		mcp = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			_, _ = io.Copy(io.Discard, req.Body)
			r.served.Add(1)
			_, _ = fmt.Fprint(w, r.name)
		})
	}
	admin := http.NewServeMux()
	admin.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !r.ready.Load() {
			http.Error(w, "not ready: draining", http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintln(w, "ready")
	})
	r.addr, r.check = serve(t, mcp), serve(t, admin)
	return r
}

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func (r *replica) backend() Backend { return Backend{Name: r.name, Addr: r.addr, CheckAddr: r.check} }

// waitStates waits until HAProxy shows exactly want.
func waitStates(t *testing.T, h *HAProxy, want map[string]string) {
	t.Helper()
	testkit.EventuallyNil(t, fmt.Sprintf("haproxy shows %v", want), func() error {
		got, err := h.ServerStates(context.Background())
		if err != nil {
			return err
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("states %v", got)
		}
		return nil
	})
}

// post sends a POST through the frontend and returns the status and body.
func post(t *testing.T, h *HAProxy) (int, string) {
	t.Helper()
	resp, err := http.Post(h.URL+"/mcp", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHAProxyFollowsReadiness: a replica whose /readyz answers 503 is
// taken out of the rotation (DOWN) and gets no request; back to 200, it is
// UP again and gets requests.
func TestHAProxyFollowsReadiness(t *testing.T) {
	a, b := startReplica(t, "gw-a", nil), startReplica(t, "gw-b", nil)
	h := StartHAProxy(t, []Backend{a.backend(), b.backend()})
	waitStates(t, h, map[string]string{"gw-a": "UP", "gw-b": "UP"})

	a.ready.Store(false)
	waitStates(t, h, map[string]string{"gw-a": "DOWN", "gw-b": "UP"})
	before := a.served.Load()
	for range 20 {
		if code, body := post(t, h); code != http.StatusOK || body != "gw-b" {
			t.Fatalf("with gw-a down: %d %q, want 200 from gw-b", code, body)
		}
	}
	if got := a.served.Load() - before; got != 0 {
		t.Errorf("gw-a, down, served %d requests", got)
	}

	a.ready.Store(true)
	waitStates(t, h, map[string]string{"gw-a": "UP", "gw-b": "UP"})
	testkit.Eventually(t, "gw-a serves again", func() bool {
		_, body := post(t, h)
		return body == "gw-a"
	})
}

// TestHAProxyRetriesAConnectionFailureElsewhere: a replica that passes its
// check but refuses connections on its MCP port (a gateway that stopped
// accepting before the check saw it) costs no request: each is retried on
// the other replica.
func TestHAProxyRetriesAConnectionFailureElsewhere(t *testing.T) {
	a, b := startReplica(t, "gw-a", nil), startReplica(t, "gw-b", nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	_ = ln.Close()
	dead := a.backend()
	dead.Addr = closed
	h := StartHAProxy(t, []Backend{dead, b.backend()})
	waitStates(t, h, map[string]string{"gw-a": "UP", "gw-b": "UP"})
	for i := range 20 {
		if code, body := post(t, h); code != http.StatusOK || body != "gw-b" {
			t.Fatalf("request %d: %d %q, want 200 from gw-b", i, code, body)
		}
	}
	if !strings.Contains(h.Logs(), "gitgate_mcp/gw-b") {
		t.Errorf("haproxy's log shows no request served by gw-b:\n%s", tail(h.Logs(), 20))
	}
}

// TestHAProxyRetriesAnEmptyResponseElsewhere: a replica that closes the
// connection without answering (as Go's server closes an idle keep-alive
// connection HAProxy reuses at that moment) costs no request: it is
// retried on the other replica.
func TestHAProxyRetriesAnEmptyResponseElsewhere(t *testing.T) {
	var hungUp atomic.Int64
	closer := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hungUp.Add(1)
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = c.Close()
		}
	})
	a, b := startReplica(t, "gw-a", closer), startReplica(t, "gw-b", nil)
	h := StartHAProxy(t, []Backend{a.backend(), b.backend()})
	waitStates(t, h, map[string]string{"gw-a": "UP", "gw-b": "UP"})
	for i := range 20 {
		if code, body := post(t, h); code != http.StatusOK || body != "gw-b" {
			t.Fatalf("request %d: %d %q, want 200 from gw-b", i, code, body)
		}
	}
	if hungUp.Load() == 0 {
		t.Error("no request reached gw-a: the test did not exercise the retry")
	}
}

// TestServerStatesNamesEveryServer: before any check has run, every
// server is listed; a server whose admin listener does not answer goes
// DOWN.
func TestServerStatesNamesEveryServer(t *testing.T) {
	a := startReplica(t, "gw-a", nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := ln.Addr().String()
	_ = ln.Close()
	h := StartHAProxy(t, []Backend{a.backend(), {Name: "gw-gone", Addr: nowhere, CheckAddr: nowhere}})
	got, err := h.ServerStates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["gw-a"]; !ok || len(got) != 2 {
		t.Errorf("states %v: want gw-a and gw-gone", got)
	}
	waitStates(t, h, map[string]string{"gw-a": "UP", "gw-gone": "DOWN"})
}

// TestStartHAProxyRefusesBadBackends: names HAProxy would reject, or
// addresses that are not host:port, are refused before haproxy starts.
func TestStartHAProxyRefusesBadBackends(t *testing.T) {
	for _, bs := range [][]Backend{
		{{Name: "has space", Addr: "127.0.0.1:1", CheckAddr: "127.0.0.1:2"}},
		{{Name: "a", Addr: "127.0.0.1:1", CheckAddr: "127.0.0.1:2"}, {Name: "a", Addr: "127.0.0.1:3", CheckAddr: "127.0.0.1:4"}},
		{{Name: "a", Addr: "nowhere", CheckAddr: "127.0.0.1:2"}},
		{{Name: "a", Addr: "127.0.0.1:1", CheckAddr: ""}},
	} {
		if _, err := render(bs); err == nil {
			t.Errorf("render(%v) accepted them", bs)
		}
	}
}

const productionConfig = "../../deploy/haproxy/haproxy.cfg"

// TestProductionConfigIsValid: haproxy -c accepts deploy/haproxy/haproxy.cfg.
func TestProductionConfigIsValid(t *testing.T) {
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-c", "-f", productionConfig).CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c %s: %v\n%s", productionConfig, err, out)
	}
}

// TestHarnessMatchesProductionConfig: the harness balances, checks,
// retries and redispatches as the production example does, and neither
// sticks a client to a server.
func TestHarnessMatchesProductionConfig(t *testing.T) {
	prod, err := os.ReadFile(productionConfig)
	if err != nil {
		t.Fatal(err)
	}
	want := backendPolicy(t, string(prod))
	got := backendPolicy(t, configTemplate.Root.String())
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the harness's backend policy\n%v\ndiffers from deploy/haproxy/haproxy.cfg's\n%v", got, want)
	}
	for _, d := range []string{"balance", "option httpchk", "http-check expect", "retry-on", "retries", "option redispatch"} {
		if _, ok := want[d]; !ok {
			t.Errorf("deploy/haproxy/haproxy.cfg's backend has no %s", d)
		}
	}
}

// backendPolicy returns the load-balancing directives of the config's
// gitgate_mcp backend, and fails on any stickiness.
func backendPolicy(t *testing.T, cfg string) map[string]string {
	t.Helper()
	policy := map[string]string{}
	in := false
	sc := bufio.NewScanner(strings.NewReader(cfg))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(sc.Text(), " ") && line != "" {
			in = line == "backend "+backendName
			continue
		}
		if !in || line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, sticky := range []string{"cookie", "stick", "hash-type", "balance source", "balance uri", "balance hdr"} {
			if strings.HasPrefix(line, sticky) {
				t.Errorf("the backend sticks clients to servers: %q", line)
			}
		}
		for _, d := range []string{"balance", "option httpchk", "http-check expect", "retry-on", "retries", "option redispatch"} {
			if strings.HasPrefix(line, d+" ") || line == d {
				policy[d] = line
			}
		}
	}
	if len(policy) == 0 {
		t.Fatalf("no backend %s found", backendName)
	}
	return policy
}
