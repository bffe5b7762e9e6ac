package approach2

import (
	"fmt"
	"strings"

	"google.golang.org/grpc"
	_ "google.golang.org/grpc/health" // client-side health checking (healthCheckConfig below)
	"google.golang.org/grpc/resolver"
)

// serviceConfig balances calls round robin over every address the target
// resolves to, and sends them only to the services whose gRPC health says
// GitService is SERVING: one that reports NOT_SERVING (not ready, or
// draining before it stops) gets no new calls, while the calls it already
// has run to their end. A service without the health service counts as
// healthy (gRPC's rule for UNIMPLEMENTED).
//
// No retry policy is configured: only gRPC's transparent retry applies,
// which sends a call again only when it provably never reached a service's
// handler (the connection failed before the stream was created, or the
// service refused the stream, e.g. after its GOAWAY). A write that did reach
// a service and lost its answer is never resent by the client; its retry is
// the caller's, with the same idempotency key, which the journal answers.
var serviceConfig = fmt.Sprintf(`{
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": %q}
}`, ServiceName)

// staticScheme is the resolver scheme of a client given several service
// addresses.
const staticScheme = "gitgate-services"

// staticResolver resolves to a fixed list of host:port addresses, each its
// own endpoint. Each address is its own TLS server name and :authority, as
// it would be if dialled alone.
type staticResolver struct{ addrs []string }

// Scheme implements resolver.Builder.
func (staticResolver) Scheme() string { return staticScheme }

// Build implements resolver.Builder: the state is given once; there is
// nothing to re-resolve.
func (s staticResolver) Build(_ resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	eps := make([]resolver.Endpoint, 0, len(s.addrs))
	for _, a := range s.addrs {
		eps = append(eps, resolver.Endpoint{Addresses: []resolver.Address{{Addr: a, ServerName: a}}})
	}
	// An error here is the balancer's about the addresses, which the
	// channel reports itself (as passthrough does, it is not returned).
	_ = cc.UpdateState(resolver.State{Endpoints: eps})
	return s, nil
}

// ResolveNow implements resolver.Resolver.
func (staticResolver) ResolveNow(resolver.ResolveNowOptions) {}

// Close implements resolver.Resolver.
func (staticResolver) Close() {}

// dialTarget returns the gRPC target for targets and the options it needs:
// one target as it is (host:port, or a URI such as dns:///name:port); several
// host:port addresses through a static resolver of this client's own.
func dialTarget(targets []string) (string, []grpc.DialOption, error) {
	switch len(targets) {
	case 0:
		return "", nil, fmt.Errorf("approach2: no service address to dial")
	case 1:
		return targets[0], nil, nil
	}
	return staticScheme + ":///" + strings.Join(targets, ","), []grpc.DialOption{grpc.WithResolvers(staticResolver{addrs: targets})}, nil
}
