package configs

import (
	"fmt"
	"slices"
	"time"

	"github.com/gitgate/gitgate/backends/sandbox"
)

// MetricsConfig configures what the binaries' /metrics exports beyond the
// defaults (see gitgate.yaml's metrics section).
type MetricsConfig struct {
	// AgentLabels adds gitgate_agent_cost_usd_total{project,agent}, with
	// one series per configured agent (any other agent is "_other").
	AgentLabels bool `mapstructure:"agent_labels"`
	// UsageInterval is how often the sandboxes' CPU and memory are
	// sampled. 0: sandbox.DefaultUsageInterval (15 s).
	UsageInterval time.Duration `mapstructure:"usage_interval"`
}

func (c *Config) validateMetrics() error {
	if c.Metrics.UsageInterval < 0 {
		return fmt.Errorf("metrics.usage_interval must not be negative (0: every %s)", sandbox.DefaultUsageInterval)
	}
	return nil
}

// CostAttribution bounds the labels of the cost attributed to projects and
// agents: the configured projects, and with metrics.agent_labels the
// configured agents.
func (c *Config) CostAttribution() sandbox.Attribution {
	var a sandbox.Attribution
	for name := range c.Projects {
		a.Projects = append(a.Projects, name)
	}
	slices.Sort(a.Projects)
	if c.Metrics.AgentLabels {
		for _, ag := range c.Agents {
			a.Agents = append(a.Agents, sandbox.Owner{Project: ag.Project, Agent: ag.Name})
		}
	}
	return a
}
