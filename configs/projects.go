package configs

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/gateway"
)

// ProjectConfig is one project. Its git token comes from the variable
// TokenEnv names or from the file TokenFile (re-read when it changes),
// never from the configuration itself.
type ProjectConfig struct {
	AllowedHosts   []string `mapstructure:"allowed_hosts"`
	AllowedSchemes []string `mapstructure:"allowed_schemes"`
	TokenEnv       string   `mapstructure:"token_env"`
	TokenFile      string   `mapstructure:"token_file"`
	TokenUsername  string   `mapstructure:"token_username"`
	// ReadTokenEnv names the variable holding a read-only token for the
	// same remotes, used by shadow predictions (ls-remote), or
	// ReadTokenFile the file holding it. Optional.
	ReadTokenEnv  string `mapstructure:"read_token_env"`
	ReadTokenFile string `mapstructure:"read_token_file"`
	// MaxRepoBytes and MaxSandboxBytes override limits.max_repo_bytes and
	// limits.max_sandbox_bytes for this project (0: the global value).
	MaxRepoBytes    int64 `mapstructure:"max_repo_bytes"`
	MaxSandboxBytes int64 `mapstructure:"max_sandbox_bytes"`
	// Token and ReadToken are the values at load time; TokenSecret and
	// ReadTokenSecret follow the files (nil when no key sets them).
	// CurrentToken and CurrentReadToken read whichever is set.
	Token           string  `mapstructure:"-"`
	ReadToken       string  `mapstructure:"-"`
	TokenSecret     *Secret `mapstructure:"-"`
	ReadTokenSecret *Secret `mapstructure:"-"`
}

// CurrentToken is the project's git token now: TokenSecret's current value
// when a key set it, else Token.
func (p ProjectConfig) CurrentToken() string {
	if p.TokenSecret != nil {
		return p.TokenSecret.Value()
	}
	return p.Token
}

// CurrentReadToken is CurrentToken for the read-only token.
func (p ProjectConfig) CurrentReadToken() string {
	if p.ReadTokenSecret != nil {
		return p.ReadTokenSecret.Value()
	}
	return p.ReadToken
}

// AgentConfig is one agent.
type AgentConfig struct {
	Name        string `mapstructure:"name"`
	Project     string `mapstructure:"project"`
	TokenSHA256 string `mapstructure:"token_sha256"`
	AuthorName  string `mapstructure:"author_name"`
	AuthorEmail string `mapstructure:"author_email"`
}

var (
	projectName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	agentName   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
)

// validateProjects checks each project's name, remotes and limits, and
// defaults its allowed_schemes to https.
func (c *Config) validateProjects() error {
	for name, p := range c.Projects {
		key := "projects." + name
		if !projectName.MatchString(name) {
			return fmt.Errorf("%s: project names are lower-case letters, digits, '_' and '-'", key)
		}
		if len(p.AllowedHosts) == 0 {
			return fmt.Errorf("%s.allowed_hosts: list at least one host", key)
		}
		if len(p.AllowedSchemes) == 0 {
			p.AllowedSchemes = []string{"https"}
			c.Projects[name] = p
		}
		for _, s := range p.AllowedSchemes {
			if s != "https" && (s != "http" || !c.Git.AllowHTTP) {
				return fmt.Errorf("%s.allowed_schemes: %q is not allowed (https; http only with git.allow_http: true)", key, s)
			}
		}
		for k, n := range map[string]int64{key + ".max_repo_bytes": p.MaxRepoBytes, key + ".max_sandbox_bytes": p.MaxSandboxBytes} {
			if err := checkTransferLimit(k, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// validateAgents checks each agent (name, project, commit identity), that
// the agents make a directory (Directory: distinct token hashes) and the
// stdio agent. Agents' project names are lower-cased: project keys are
// case-insensitive.
func (c *Config) validateAgents() error {
	for i := range c.Agents {
		c.Agents[i].Project = strings.ToLower(c.Agents[i].Project)
		a := c.Agents[i]
		key := fmt.Sprintf("agents[%d]", i)
		if !agentName.MatchString(a.Name) {
			return fmt.Errorf("%s.name: %q must be letters, digits, '.', '_' or '-'", key, a.Name)
		}
		if _, ok := c.Projects[a.Project]; !ok {
			return fmt.Errorf("%s.project: project %q is not configured under projects", key, a.Project)
		}
		if err := gitcmd.ValidateIdentity(a.AuthorName, a.AuthorEmail); err != nil {
			return fmt.Errorf("%s.author_name/author_email: %w", key, err)
		}
	}
	if _, err := c.Directory(); err != nil {
		return err
	}
	if a := c.MCP.StdioAgent; a != "" && !slices.ContainsFunc(c.Agents, func(x AgentConfig) bool { return x.Name == a }) {
		return fmt.Errorf("mcp.stdio_agent: agent %q is not configured under agents", a)
	}
	return nil
}

// Directory is the gateway's directory of the configured agents.
func (c *Config) Directory() (*gateway.Directory, error) {
	agents := make([]gateway.Agent, len(c.Agents))
	for i, a := range c.Agents {
		agents[i] = gateway.Agent{Name: a.Name, Project: a.Project, TokenSHA256: strings.ToLower(a.TokenSHA256),
			AuthorName: a.AuthorName, AuthorEmail: a.AuthorEmail}
	}
	return gateway.NewDirectory(agents)
}
