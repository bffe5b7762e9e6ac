package drill

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// resolverFunc is a Resolver for tests.
type resolverFunc func(ctx context.Context, host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(ctx context.Context, _, host string) ([]netip.Addr, error) {
	return f(ctx, host)
}

func fixedAddrs(addrs ...string) resolverFunc {
	return func(context.Context, string) ([]netip.Addr, error) {
		var out []netip.Addr
		for _, a := range addrs {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
}

// TestDiscoveryTargets: each address is one gateway named by its IP, in
// address order without repeats, at the same ports; IPv6 addresses are
// bracketed in the URLs; the MCP Host header goes with each MCP URL.
func TestDiscoveryTargets(t *testing.T) {
	d := Discovery{Name: "gitgate-gateway-pods", AdminPort: 7421, MCPPort: 7420, MCPHost: "gitgate.example.com",
		Resolver: fixedAddrs("10.0.0.9", "fd00::1", "10.0.0.10", "10.0.0.9", "::ffff:10.0.0.2")}
	got, err := d.Targets(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{
		{Name: "10.0.0.2", Admin: "http://10.0.0.2:7421", MCP: "http://10.0.0.2:7420/mcp", MCPHost: "gitgate.example.com"},
		{Name: "10.0.0.9", Admin: "http://10.0.0.9:7421", MCP: "http://10.0.0.9:7420/mcp", MCPHost: "gitgate.example.com"},
		{Name: "10.0.0.10", Admin: "http://10.0.0.10:7421", MCP: "http://10.0.0.10:7420/mcp", MCPHost: "gitgate.example.com"},
		{Name: "fd00::1", Admin: "http://[fd00::1]:7421", MCP: "http://[fd00::1]:7420/mcp", MCPHost: "gitgate.example.com"},
	}
	if len(got) != len(want) {
		t.Fatalf("targets %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("target %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	d.MCPPort, d.Scheme, d.Resolver = 0, "https", fixedAddrs("10.0.0.1")
	if got, _ := d.Targets(t.Context()); len(got) != 1 || got[0].Admin != "https://10.0.0.1:7421" || got[0].MCP != "" {
		t.Errorf("without an MCP port, over https: %+v", got)
	}
}

// TestDiscoveryFindingNothingRefuses: a name that resolves to no address,
// or a resolver that fails (or does not answer in time), refuses the
// drill with the name and the cause in the result, which is kept; no
// gateway is contacted and the flag file is untouched.
func TestDiscoveryFindingNothingRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  resolverFunc
		want string
	}{
		{"no address", fixedAddrs(), "gitgate-gateway-pods resolves to no address"},
		{"DNS fails", func(context.Context, string) ([]netip.Addr, error) {
			return nil, errors.New("lookup gitgate-gateway-pods: no such host")
		}, "resolving gitgate-gateway-pods: lookup gitgate-gateway-pods: no such host"},
		{"DNS does not answer", func(ctx context.Context, _ string) ([]netip.Addr, error) {
			<-ctx.Done() // the resolution's own deadline
			return nil, ctx.Err()
		}, "context deadline exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, data := flagFile(t)
			history := t.TempDir()
			cfg := Config{FlagPath: path, Ops: backends.OpNames(), HistoryDir: history,
				Discover: &Discovery{Name: "gitgate-gateway-pods", AdminPort: 7421, Resolver: tc.res, Timeout: 50 * time.Millisecond},
				Connect: func(g Target) Gateway {
					t.Fatalf("gateway %s contacted", g.Name)
					return nil
				}}
			res, err := Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != Refused || len(res.Reasons) != 1 || !strings.Contains(res.Reasons[0], tc.want) ||
				res.Discovery != "gitgate-gateway-pods" || len(res.Gateways) != 0 {
				t.Fatalf("verdict %s, reasons %q, discovery %q, gateways %+v", res.Verdict, res.Reasons, res.Discovery, res.Gateways)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
				t.Errorf("the flag file changed:\n%s", got)
			}
			if kept, err := (History{Dir: history}).List(); err != nil || len(kept) != 1 || kept[0].Verdict != Refused {
				t.Errorf("history: %+v, %v", kept, err)
			}
			if md := Markdown(res); !strings.Contains(md, "Discovered by DNS: gitgate-gateway-pods.") {
				t.Errorf("the report does not name the DNS name:\n%s", md)
			}
		})
	}
}

// TestDiscoveryOrGateways: a drill is given its gateways or their
// discovery, not both.
func TestDiscoveryOrGateways(t *testing.T) {
	path, _ := flagFile(t)
	cfg := Config{FlagPath: path, Ops: backends.OpNames(), HistoryDir: t.TempDir(), Connect: Connect(""),
		Targets:  []Target{{Name: "a", Admin: "http://127.0.0.1:1"}},
		Discover: &Discovery{Name: "gw", AdminPort: 7421}}
	if _, err := Run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("gateways and discovery: %v", err)
	}
	cfg.Targets, cfg.Discover = nil, &Discovery{Name: "gw"}
	if _, err := Run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "drill.discover.admin_port") {
		t.Errorf("discovery without the admin port: %v", err)
	}
}
