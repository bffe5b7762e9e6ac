package configs

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/viper"
)

// Config is the typed configuration; gitgate.yaml (DefaultYAML) lists
// every key. Each section's type and its validation live in the file named
// after its concern: listen.go, sandbox.go, flags.go, approach2.go,
// git.go, state.go, projects.go, admission.go; keys.go refuses unknown
// keys.
type Config struct {
	// StateDir holds what must outlive the process on this machine (see
	// gitgate.yaml); resolved at load time when empty.
	StateDir  string                   `mapstructure:"state_dir"`
	Listen    ListenConfig             `mapstructure:"listen"`
	MCP       MCPConfig                `mapstructure:"mcp"`
	Sandbox   SandboxConfig            `mapstructure:"sandbox"`
	Git       GitConfig                `mapstructure:"git"`
	Limits    LimitsConfig             `mapstructure:"limits"`
	Admission AdmissionConfig          `mapstructure:"admission"`
	Backend   BackendConfig            `mapstructure:"backend"`
	Approach2 Approach2Config          `mapstructure:"approach2"`
	Flags     FlagsConfig              `mapstructure:"flags"`
	Canary    CanaryConfig             `mapstructure:"canary"`
	Report    ReportConfig             `mapstructure:"report"`
	Drill     DrillConfig              `mapstructure:"drill"`
	Budget    BudgetConfig             `mapstructure:"budget"`
	Branches  BranchesConfig           `mapstructure:"branches"`
	Relay     RelayConfig              `mapstructure:"relay"`
	Redis     RedisConfig              `mapstructure:"redis"`
	Postgres  PostgresConfig           `mapstructure:"postgres"`
	Log       LogConfig                `mapstructure:"log"`
	Metrics   MetricsConfig            `mapstructure:"metrics"`
	Projects  map[string]ProjectConfig `mapstructure:"projects"`
	Agents    []AgentConfig            `mapstructure:"agents"`
}

// Load reads the configuration (Read), resolves the secrets of the *_env
// keys (with getenv, os.Getenv in production) and *_file keys (see
// secretkeys.go) and validates the result: what commands that serve need.
func Load(path string, getenv func(string) string) (*Config, error) {
	c, err := Read(path, getenv)
	if err != nil {
		return nil, err
	}
	if err := c.resolveTokens(getenv); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Read reads the embedded defaults, then the file at path (if any), then
// GITGATE_* environment variables, and refuses keys and variables that are
// not configuration (checkFileKeys, checkEnvironment). It neither resolves
// secrets nor validates values: commands that only edit flags need no
// project token. getenv locates the default state directory.
func Read(path string, getenv func(string) string) (*Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(DefaultYAML)); err != nil {
		return nil, fmt.Errorf("config: embedded defaults: %w", err)
	}
	if path != "" {
		file := viper.New()
		file.SetConfigFile(path)
		if err := file.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config: %s: %w", path, err)
		}
		if err := checkFileKeys(file.AllSettings()); err != nil {
			return nil, fmt.Errorf("config: %s: %w", path, err)
		}
		v.SetConfigFile(path)
		if err := v.MergeInConfig(); err != nil {
			return nil, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	v.SetEnvPrefix(envPrefix[:len(envPrefix)-1])
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	bindEnvironment(v)
	if err := checkEnvironment(os.Environ(), v); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var c Config
	if err := v.Unmarshal(&c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if c.StateDir == "" {
		c.StateDir = defaultStateDir(getenv)
	}
	return &c, nil
}

// Validate checks every section, in a fixed order, and returns the first
// refusal, naming the key to fix. It fills two defaults as it goes: a
// project's allowed_schemes (https) and agents' project names (lower
// case).
func (c *Config) Validate() error {
	for _, check := range []func() error{
		c.validateListen, c.validateLog, c.validateRedis, c.validateSandbox, c.validateFlags, c.validateBackend,
		c.validateGit, c.validateApproach2, c.validateLimits, c.validateSessions, c.validateProjects, c.validateAgents,
		c.validateBudget, c.validateBranches, c.validateMetrics, c.validateAdmission, c.validateRelay,
	} {
		if err := check(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return nil
}
