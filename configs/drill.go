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

// DrillGateways are the gateways to drill: the configured ones, or this
// configuration's own gateway on loopback.
func (c *Config) DrillGateways() []DrillGateway {
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
