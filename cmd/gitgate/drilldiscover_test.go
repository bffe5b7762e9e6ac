package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gitgate/gitgate/canary/drill"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/gateway"
)

// drillDiscoveryHost is the Host a fleet's gateways accept besides their
// own listen addresses (mcp.allowed_hosts), standing for the Ingress's host
// name on Kubernetes: the drill agent's calls to a discovered pod carry it.
// On loopback it must be a loopback name: mcp-go refuses any other Host on
// a loopback connection (DNS-rebinding protection), which a pod's
// connection is not.
const drillDiscoveryHost = "localhost"

// allowDrillDiscoveryHost adds drillDiscoveryHost to a gateway's
// mcp.allowed_hosts (fleetOptions.tune).
func allowDrillDiscoveryHost(c *configs.Config) {
	c.MCP.AllowedHosts = append(c.MCP.AllowedHosts, drillDiscoveryHost)
}

// resolverFunc is drill.Resolver over a function.
type resolverFunc func(ctx context.Context, host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(ctx context.Context, _, host string) ([]netip.Addr, error) {
	return f(ctx, host)
}

// discoveryDryRun: a dry run of `gitgate drill` configured with
// drill.discover (through newDrillConfig, as the command builds it) finds
// the fleet's gateways as a headless Service shows a Deployment's pods:
// one address each (127.0.0.1, .2, .3, given by an injected resolver for
// the configured name), every one at the same admin and MCP ports — a TCP
// forwarder on each address and port to one gateway's listeners. The
// preflight reads every gateway's /status and /readyz and connects the
// drill agent to every MCP endpoint (Host: mcp.allowed_hosts' first, since
// a gateway refuses a Host it does not list), and the result lists the
// discovered gateways by IP, with the DNS name.
func (d *drillDriver) discoveryDryRun(t *testing.T) {
	t.Helper()
	var addrs []netip.Addr
	var admins, mcps []string
	for i, w := range d.f.gateways {
		addrs = append(addrs, netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 1)}))
		admins, mcps = append(admins, hostOf(t, w.adminURL)), append(mcps, hostOf(t, w.mcpURL))
	}
	adminPort, adminConns := forwardEach(t, addrs, admins)
	mcpPort, mcpConns := forwardEach(t, addrs, mcps)
	dir := t.TempDir()
	history := filepath.Join(dir, "drills")
	yaml := fmt.Sprintf(`state_dir: %q
flags: {path: %q}
mcp: {allowed_hosts: [%s]}
agents:
  - {name: ada, project: alpha, token_sha256: %s}
drill:
  discover: {dns: gitgate-gateway-pods, admin_port: %d, mcp_port: %d}
  admin_token_env: E2E_ADMIN_TOKEN
  history_dir: %q
  probe: {agent: ada, token_env: E2E_DRILL_AGENT_TOKEN, repo: %q, op: status}
`, filepath.Join(dir, "state"), d.f.flagPath, drillDiscoveryHost, gateway.HashToken(agentToken), adminPort, mcpPort,
		history, d.f.gateways[0].repoURL)
	path := filepath.Join(dir, "drill.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Read(path, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"E2E_ADMIN_TOKEN": testAdminToken, "E2E_DRILL_AGENT_TOKEN": agentToken}
	dc, err := newDrillConfig(cfg, func(k string) string { return env[k] }, "", "discovery test")
	if err != nil {
		t.Fatal(err)
	}
	if dc.Discover == nil || len(dc.Targets) != 0 {
		t.Fatalf("drill.discover: discovery %+v, targets %+v", dc.Discover, dc.Targets)
	}
	var asked []string
	dc.Discover.Resolver = resolverFunc(func(_ context.Context, host string) ([]netip.Addr, error) {
		asked = append(asked, host)
		return slices.Clone(addrs), nil
	})
	dc.DryRun = true
	res, err := drill.Run(t.Context(), dc)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != drill.DryRun || len(res.Reasons) != 0 || res.Discovery != "gitgate-gateway-pods" ||
		!slices.Equal(asked, []string{"gitgate-gateway-pods"}) {
		t.Fatalf("discovery dry run: verdict %s, reasons %q, discovery %q, resolved %q\n%s", res.Verdict, res.Reasons,
			res.Discovery, asked, drill.Markdown(res))
	}
	var names []string
	for i, g := range res.Gateways {
		names = append(names, g.Name)
		if want := "http://" + net.JoinHostPort(addrs[i].String(), strconv.Itoa(adminPort)); g.Admin != want {
			t.Errorf("gateway %s: admin %s, want %s", g.Name, g.Admin, want)
		}
	}
	if !slices.Equal(names, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}[:len(addrs)]) {
		t.Errorf("discovered gateways %q", names)
	}
	for i := range addrs {
		if adminConns[i].Load() == 0 || mcpConns[i].Load() == 0 {
			t.Errorf("%s: %d admin and %d MCP connections, want both", addrs[i], adminConns[i].Load(), mcpConns[i].Load())
		}
	}
	if kept, err := (drill.History{Dir: history}).List(); err != nil || len(kept) != 1 || len(kept[0].Gateways) != len(addrs) {
		t.Errorf("history: %+v, %v", kept, err)
	}
}

// hostOf is rawURL's host:port.
func hostOf(t *testing.T, rawURL string) string {
	t.Helper()
	_, rest, _ := strings.Cut(rawURL, "://")
	host, _, _ := strings.Cut(rest, "/")
	return host
}

// forwardEach listens on one port, the same on every address of addrs,
// and forwards connections to addrs[i] to targets[i], until the test
// ends. It returns the port and each address's count of connections.
func forwardEach(t *testing.T, addrs []netip.Addr, targets []string) (int, []*atomic.Int64) {
	t.Helper()
	var lns []net.Listener
	for attempt := 0; len(lns) < len(addrs) && attempt < 20; attempt++ {
		for _, ln := range lns {
			ln.Close()
		}
		lns = lns[:0]
		port := 0
		for _, a := range addrs {
			ln, err := net.Listen("tcp", net.JoinHostPort(a.String(), strconv.Itoa(port)))
			if err != nil {
				break // the port is taken on this address: another port
			}
			port = ln.Addr().(*net.TCPAddr).Port
			lns = append(lns, ln)
		}
	}
	if len(lns) < len(addrs) {
		t.Fatalf("no port free on all of %v", addrs)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	counts := make([]*atomic.Int64, len(lns))
	for i, ln := range lns {
		counts[i] = &atomic.Int64{}
		wg.Go(func() {
			for {
				in, err := ln.Accept()
				if err != nil {
					return
				}
				counts[i].Add(1)
				out, err := net.Dial("tcp", targets[i])
				if err != nil {
					in.Close()
					continue
				}
				mu.Lock()
				conns = append(conns, in, out)
				mu.Unlock()
				wg.Go(func() { _, _ = io.Copy(out, in); out.Close() })
				wg.Go(func() { _, _ = io.Copy(in, out); in.Close() })
			}
		})
	}
	t.Cleanup(func() {
		for _, ln := range lns {
			ln.Close()
		}
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return lns[0].Addr().(*net.TCPAddr).Port, counts
}
