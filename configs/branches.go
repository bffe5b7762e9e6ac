package configs

import (
	"fmt"
	"strings"
	"time"

	"github.com/gitgate/gitgate/gateway/branches"
)

// BranchesConfig is the branch policy and the cleanup of agents' branches
// (see gitgate.yaml's branches section).
type BranchesConfig struct {
	// Protected are patterns of branches agents may not push to, besides
	// each remote's default branch.
	Protected []string `mapstructure:"protected"`
	// Prefix, if set, is required of agents' branches ("<agent>" is the
	// agent's name).
	Prefix string `mapstructure:"prefix"`
	// Projects add protected patterns and replace the prefix per project.
	Projects map[string]BranchRulesConfig `mapstructure:"projects"`
	Cleanup  BranchCleanupConfig          `mapstructure:"cleanup"`
}

// BranchRulesConfig is one project's own branch rules.
type BranchRulesConfig struct {
	Protected []string `mapstructure:"protected"`
	Prefix    string   `mapstructure:"prefix"`
}

// BranchCleanupConfig configures the cleanup of agents' branches.
type BranchCleanupConfig struct {
	// Enabled false makes every run a dry run (it lists, deletes nothing).
	Enabled bool `mapstructure:"enabled"`
	// Interval is the gateway's schedule; 0: no scheduled run.
	Interval time.Duration `mapstructure:"interval"`
	// StaleAfter is how long a branch gitgate pushed stays without a push.
	StaleAfter time.Duration `mapstructure:"stale_after"`
	// SkipOpenPullRequests keeps branches an open pull request uses (GitHub
	// remotes, asked through GitHubAPI with the project's token).
	SkipOpenPullRequests bool   `mapstructure:"skip_open_pull_requests"`
	GitHubAPI            string `mapstructure:"github_api"`
}

// validateBranches checks the branch patterns, prefixes, projects and
// durations.
func (c *Config) validateBranches() error {
	b := c.Branches
	check := func(key string, patterns []string, prefix string) error {
		for _, p := range patterns {
			if err := branches.ValidatePattern(p); err != nil {
				return fmt.Errorf("%s.protected: %w", key, err)
			}
		}
		if strings.ContainsAny(prefix, " :~^?*[\\") || strings.HasPrefix(prefix, "-") || strings.HasPrefix(prefix, "/") {
			return fmt.Errorf("%s.prefix: %q cannot start a branch name", key, prefix)
		}
		return nil
	}
	if err := check("branches", b.Protected, b.Prefix); err != nil {
		return err
	}
	for name, r := range b.Projects {
		if _, ok := c.Projects[name]; !ok {
			return fmt.Errorf("branches.projects.%s: project %q is not configured under projects", name, name)
		}
		if err := check("branches.projects."+name, r.Protected, r.Prefix); err != nil {
			return err
		}
	}
	if b.Cleanup.Interval < 0 || b.Cleanup.StaleAfter < 0 {
		return fmt.Errorf("branches.cleanup: interval and stale_after cannot be negative")
	}
	if b.Cleanup.Interval > 0 && b.Cleanup.Interval < time.Minute {
		return fmt.Errorf("branches.cleanup.interval: %s is shorter than a minute (0 turns the schedule off)", b.Cleanup.Interval)
	}
	return nil
}

// BranchPolicy is the configured branch policy: branches.protected (main
// and master when empty) and each project's own rules.
func (c *Config) BranchPolicy() branches.Policy {
	def := branches.Rules{Protected: c.Branches.Protected, Prefix: c.Branches.Prefix}
	if len(def.Protected) == 0 {
		def.Protected = branches.DefaultProtected
	}
	p := branches.Policy{Default: def, Projects: map[string]branches.Rules{}}
	for name, r := range c.Branches.Projects {
		p.Projects[name] = branches.Rules{Protected: r.Protected, Prefix: r.Prefix}
	}
	return p
}
