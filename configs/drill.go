package configs

import (
	"cmp"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// DrillConfig configures `gitgate drill` (see gitgate.yaml's drill
// section).
type DrillConfig struct {
	FlagFile         string         `mapstructure:"flag_file"`
	Gateways         []DrillGateway `mapstructure:"gateways"`
	Discover         DrillDiscover  `mapstructure:"discover"`
	AdminTokenEnv    string         `mapstructure:"admin_token_env"`
	AdminTokenFile   string         `mapstructure:"admin_token_file"`
	Services         []string       `mapstructure:"services"`
	HistoryDir       string         `mapstructure:"history_dir"`
	MaxTimeToEffect  time.Duration  `mapstructure:"max_time_to_effect"`
	Hold             time.Duration  `mapstructure:"hold"`
	MaxErrorRate     float64        `mapstructure:"max_error_rate"`
	MinCalls         int64          `mapstructure:"min_calls"`
	UnreachableAfter time.Duration  `mapstructure:"unreachable_after"`
	BreakerOp        string         `mapstructure:"breaker_op"`
	MetricsTextfile  string         `mapstructure:"metrics_textfile"`
	Pushgateway      string         `mapstructure:"pushgateway"`
	Probe            DrillProbe     `mapstructure:"probe"`
}

// DrillGateway is one gateway to drill.
type DrillGateway struct {
	Name  string `mapstructure:"name"`
	Admin string `mapstructure:"admin"`
	MCP   string `mapstructure:"mcp"`
}

// DrillDiscover finds the gateways to drill by DNS when the drill starts,
// instead of drill.gateways: every address DNS gives for its name (a
// headless Service of the ready gateway pods) is one gateway, named by its
// IP. Discovery is on when DNS is set.
type DrillDiscover struct {
	DNS       string `mapstructure:"dns"`
	AdminPort int    `mapstructure:"admin_port"`
	MCPPort   int    `mapstructure:"mcp_port"` // 0: no MCP URL (no probes)
	MCPPath   string `mapstructure:"mcp_path"` // empty: mcp.path
	// MCPHost is the Host header of the drill agent's MCP calls; empty:
	// the first of mcp.allowed_hosts, or none (the pod's IP:port).
	MCPHost string `mapstructure:"mcp_host"`
	Scheme  string `mapstructure:"scheme"` // http or https; empty: http
}

// DrillProbe is the drill agent.
type DrillProbe struct {
	Agent     string `mapstructure:"agent"`
	TokenEnv  string `mapstructure:"token_env"`
	TokenFile string `mapstructure:"token_file"`
	Repo      string `mapstructure:"repo"`
	Op        string `mapstructure:"op"`
}

// DrillAdminToken is the gateways' admin token the drill sends, from
// drill.admin_token_env's variable or drill.admin_token_file ("" when
// neither gives one: gateways without an admin token). A drill is one
// short process: it reads the file once, at start.
func (c *Config) DrillAdminToken(getenv func(string) string) (string, error) {
	s, err := secretSource{envKey: "drill.admin_token_env", fileKey: "drill.admin_token_file",
		env: c.Drill.AdminTokenEnv, file: c.Drill.AdminTokenFile, what: "the gateways' admin token"}.resolve(getenv)
	return s.Value(), err
}

// DrillProbeToken is the drill agent's bearer token, from
// drill.probe.token_env's variable or drill.probe.token_file; one of them
// must give it.
func (c *Config) DrillProbeToken(getenv func(string) string) (string, error) {
	p := c.Drill.Probe
	s, err := secretSource{envKey: "drill.probe.token_env", fileKey: "drill.probe.token_file",
		env: p.TokenEnv, file: p.TokenFile, what: "the drill agent's token", required: true}.resolve(getenv)
	if err == nil && s.Value() == "" {
		err = fmt.Errorf("config: drill.probe.token_env/token_file: neither gives the drill agent's token")
	}
	return s.Value(), err
}

// DrillHistoryDir is where drills keep their results.
func (c *Config) DrillHistoryDir() string {
	return cmp.Or(c.Drill.HistoryDir, c.StatePath("drills"))
}

// DrillFlagFile is the flag file the drilled gateways follow.
func (c *Config) DrillFlagFile() string { return cmp.Or(c.Drill.FlagFile, c.Flags.Path) }

// DrillDiscovery is drill.discover with its defaults filled in, and
// whether discovery is on (drill.discover.dns set).
func (c *Config) DrillDiscovery() (DrillDiscover, bool) {
	d := c.Drill.Discover
	if d.DNS == "" {
		return d, false
	}
	d.MCPPath = cmp.Or(d.MCPPath, c.MCP.Path)
	if d.MCPHost == "" && len(c.MCP.AllowedHosts) > 0 {
		d.MCPHost = c.MCP.AllowedHosts[0]
	}
	d.Scheme = cmp.Or(d.Scheme, "http")
	return d, true
}

// DrillGateways are the gateways to drill: the configured ones, or this
// configuration's own gateway on loopback; none when they are discovered
// (DrillDiscovery).
func (c *Config) DrillGateways() []DrillGateway {
	if _, on := c.DrillDiscovery(); on {
		return nil
	}
	if len(c.Drill.Gateways) > 0 {
		return c.Drill.Gateways
	}
	g := DrillGateway{Name: "local", Admin: "http://" + c.Listen.Admin}
	if c.Listen.MCP != "" {
		g.MCP = "http://" + c.Listen.MCP + c.MCP.Path
	}
	return []DrillGateway{g}
}

// ValidateDrill checks the drill section, naming the key to fix.
func (c *Config) ValidateDrill() error {
	d := c.Drill
	for _, v := range []struct {
		key string
		bad bool
	}{
		{"max_time_to_effect", d.MaxTimeToEffect < 0},
		{"hold", d.Hold < 0},
		{"max_error_rate", d.MaxErrorRate < 0 || d.MaxErrorRate > 1},
		{"min_calls", d.MinCalls < 0},
		{"unreachable_after", d.UnreachableAfter < 0},
	} {
		if v.bad {
			return fmt.Errorf("config: drill.%s is out of range", v.key)
		}
	}
	if _, ok := backends.Info(backends.Op(d.BreakerOp)); d.BreakerOp != "" && !ok {
		return fmt.Errorf("config: drill.breaker_op: %q is not an operation", d.BreakerOp)
	}
	if _, ok := backends.Info(backends.Op(d.Probe.Op)); d.Probe.Op != "" && (!ok || !backends.Op(d.Probe.Op).IsRead()) {
		return fmt.Errorf("config: drill.probe.op: %q is not a read operation", d.Probe.Op)
	}
	names := map[string]bool{}
	for i, g := range d.Gateways {
		if g.Name == "" || names[g.Name] {
			return fmt.Errorf("config: drill.gateways[%d]: every gateway needs a name of its own", i)
		}
		names[g.Name] = true
		for key, u := range map[string]string{"admin": g.Admin, "mcp": g.MCP} {
			if u == "" && key == "mcp" {
				continue
			}
			if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
				return fmt.Errorf("config: drill.gateways[%d].%s: %q is not an http(s) URL", i, key, u)
			}
		}
	}
	if err := c.validateDrillDiscover(); err != nil {
		return err
	}
	if d.HistoryDir != "" && !filepath.IsAbs(d.HistoryDir) {
		return fmt.Errorf("config: drill.history_dir: %q must be an absolute path", d.HistoryDir)
	}
	if d.Probe.Agent != "" {
		if _, ok := c.agentProject(d.Probe.Agent); !ok {
			return fmt.Errorf("config: drill.probe.agent: %q is not one of agents", d.Probe.Agent)
		}
	}
	return nil
}

// validateDrillDiscover checks drill.discover, when it is on.
func (c *Config) validateDrillDiscover() error {
	d := c.Drill.Discover
	if d.DNS == "" {
		return nil
	}
	switch {
	case len(c.Drill.Gateways) > 0:
		return fmt.Errorf("config: drill.discover.dns and drill.gateways exclude each other: list the gateways or discover them, not both")
	case strings.ContainsAny(d.DNS, ":/ \t"):
		return fmt.Errorf("config: drill.discover.dns: %q is not a DNS name (no scheme, no port: the ports are admin_port and mcp_port)", d.DNS)
	case d.AdminPort < 1 || d.AdminPort > 65535:
		return fmt.Errorf("config: drill.discover.admin_port: %d is not a port (the gateways' listen.admin port)", d.AdminPort)
	case d.MCPPort < 0 || d.MCPPort > 65535:
		return fmt.Errorf("config: drill.discover.mcp_port: %d is not a port (the gateways' listen.mcp port; 0: none)", d.MCPPort)
	case d.MCPPort == 0 && c.Drill.Probe.Agent != "":
		return fmt.Errorf("config: drill.discover.mcp_port: the drill agent (drill.probe.agent) calls the gateways through MCP: set the port")
	case d.MCPPath != "" && !strings.HasPrefix(d.MCPPath, "/"):
		return fmt.Errorf("config: drill.discover.mcp_path: %q must start with /", d.MCPPath)
	case strings.ContainsAny(d.MCPHost, "/ \t"):
		return fmt.Errorf("config: drill.discover.mcp_host: %q is not a Host header (host or host:port)", d.MCPHost)
	case d.Scheme != "" && d.Scheme != "http" && d.Scheme != "https":
		return fmt.Errorf("config: drill.discover.scheme: %q is not http or https", d.Scheme)
	}
	return nil
}

// agentProject is the project of the agent named name.
func (c *Config) agentProject(name string) (string, bool) {
	for _, a := range c.Agents {
		if a.Name == name {
			return strings.ToLower(a.Project), true
		}
	}
	return "", false
}

// DrillProbeProject is the drill agent's project.
func (c *Config) DrillProbeProject() string {
	p, _ := c.agentProject(c.Drill.Probe.Agent)
	return p
}
