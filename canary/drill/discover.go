package drill

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// Resolver resolves a DNS name to its addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Discovery finds the gateways to drill by DNS, where they have no stable
// addresses of their own (a Kubernetes Deployment): Name resolves to every
// gateway that can be drilled (a headless Service of the ready gateway
// pods), and each address is one gateway, named by its IP. Every gateway
// listens on the same ports.
type Discovery struct {
	// Name is the DNS name to resolve. Required.
	Name string
	// AdminPort is the gateways' admin listener port. Required.
	AdminPort int
	// MCPPort is the gateways' MCP port; 0: no MCP URL (no probes).
	MCPPort int
	// MCPPath is the MCP endpoint's path. If empty, "/mcp".
	MCPPath string
	// MCPHost is the Host header of the drill agent's MCP calls: a gateway
	// answers 403 to a Host outside its mcp.allowed_hosts, and a pod's IP
	// is not among them. If empty, the URL's host (IP:port).
	MCPHost string
	// Scheme is the gateways' listeners' scheme, http or https. If empty,
	// http.
	Scheme string
	// Resolver resolves Name. If nil, net.DefaultResolver.
	Resolver Resolver
	// Timeout bounds the resolution. If zero, 5 s.
	Timeout time.Duration
}

// Targets resolves d.Name and returns one target per address, in address
// order. Zero addresses is an error: a drill on no gateway proves nothing.
func (d Discovery) Targets(ctx context.Context) ([]Target, error) {
	if d.Name == "" || d.AdminPort <= 0 {
		return nil, errors.New("discovery needs a DNS name and the admin port")
	}
	res := d.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addrs, err := res.LookupNetIP(ctx, "ip", d.Name)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", d.Name, err)
	}
	addrs = slices.Clone(addrs)
	for i, a := range addrs {
		addrs[i] = a.Unmap().WithZone("")
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%s resolves to no address: no ready gateway to drill", d.Name)
	}
	scheme, path := d.Scheme, d.MCPPath
	if scheme == "" {
		scheme = "http"
	}
	if path == "" {
		path = "/mcp"
	}
	targets := make([]Target, 0, len(addrs))
	for _, a := range addrs {
		t := Target{Name: a.String(), Admin: scheme + "://" + hostPort(a, d.AdminPort)}
		if d.MCPPort > 0 {
			t.MCP, t.MCPHost = scheme+"://"+hostPort(a, d.MCPPort)+path, d.MCPHost
		}
		targets = append(targets, t)
	}
	return targets, nil
}

func hostPort(a netip.Addr, port int) string {
	return net.JoinHostPort(a.String(), strconv.Itoa(port))
}

// hostHeader sends every request with host as its Host header, to the
// address of its URL.
type hostHeader struct {
	host string
	next http.RoundTripper
}

func (h hostHeader) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Host = h.host
	return h.next.RoundTrip(req)
}
