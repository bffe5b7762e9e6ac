package configs

import (
	"strings"
	"testing"
)

// TestDrillDiscover: drill.discover is on when its dns is set, fills its
// defaults from the gateways' own keys (mcp.path, mcp.allowed_hosts), and
// replaces the configured gateways; its errors name the key to fix.
func TestDrillDiscover(t *testing.T) {
	cfg, err := Read(writeConfig(t, `
mcp: {path: /agents, allowed_hosts: [gitgate.example.com, other.example.com]}
drill: {discover: {dns: gitgate-gateway-pods}}
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateDrill(); err != nil {
		t.Fatal(err)
	}
	d, on := cfg.DrillDiscovery()
	want := DrillDiscover{DNS: "gitgate-gateway-pods", AdminPort: 7421, MCPPort: 7420, MCPPath: "/agents",
		MCPHost: "gitgate.example.com", Scheme: "http"}
	if !on || d != want {
		t.Fatalf("DrillDiscovery() = %+v, %v; want %+v", d, on, want)
	}
	if gws := cfg.DrillGateways(); gws != nil {
		t.Fatalf("with discovery, DrillGateways() = %+v, want none (not the local gateway)", gws)
	}

	cfg, err = Read(writeConfig(t, "drill: {}"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if _, on := cfg.DrillDiscovery(); on || len(cfg.DrillGateways()) != 1 {
		t.Fatalf("without drill.discover.dns: discovery %v, gateways %+v", on, cfg.DrillGateways())
	}
}

// TestDrillDiscoverRefusals: each mistake in drill.discover is refused by
// ValidateDrill, naming its key.
func TestDrillDiscoverRefusals(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{`drill: {discover: {dns: gw}, gateways: [{name: a, admin: "http://10.0.0.1:7421"}]}`,
			"drill.discover.dns and drill.gateways exclude each other"},
		{`drill: {discover: {dns: "http://gw"}}`, "drill.discover.dns: \"http://gw\" is not a DNS name"},
		{`drill: {discover: {dns: "gw:7421"}}`, "drill.discover.dns: \"gw:7421\" is not a DNS name"},
		{`drill: {discover: {dns: gw, admin_port: 0}}`, "drill.discover.admin_port: 0 is not a port"},
		{`drill: {discover: {dns: gw, admin_port: 70000}}`, "drill.discover.admin_port: 70000 is not a port"},
		{`drill: {discover: {dns: gw, mcp_port: -1}}`, "drill.discover.mcp_port: -1 is not a port"},
		{`{agents: [{name: ada, project: p, token_sha256: x}], drill: {discover: {dns: gw, mcp_port: 0}, probe: {agent: ada}}}`,
			"drill.discover.mcp_port: the drill agent"},
		{`drill: {discover: {dns: gw, mcp_path: mcp}}`, "drill.discover.mcp_path: \"mcp\" must start with /"},
		{`drill: {discover: {dns: gw, mcp_host: "https://gitgate.example.com"}}`, "drill.discover.mcp_host"},
		{`drill: {discover: {dns: gw, scheme: grpc}}`, "drill.discover.scheme: \"grpc\" is not http or https"},
	} {
		cfg, err := Read(writeConfig(t, tc.yaml), noEnv)
		if err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		if err := cfg.ValidateDrill(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ValidateDrill() = %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
