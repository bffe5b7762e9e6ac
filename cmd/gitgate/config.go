package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/gateway"
	"github.com/spf13/viper"
)

// Config is the typed configuration; see configs/gitgate.yaml for every key.
type Config struct {
	// StateDir holds what must outlive the process on this machine (see
	// configs/gitgate.yaml); resolved at load time when empty.
	StateDir  string                   `mapstructure:"state_dir"`
	Listen    ListenConfig             `mapstructure:"listen"`
	MCP       MCPConfig                `mapstructure:"mcp"`
	Sandbox   SandboxConfig            `mapstructure:"sandbox"`
	Git       GitConfig                `mapstructure:"git"`
	Limits    LimitsConfig             `mapstructure:"limits"`
	Backend   BackendConfig            `mapstructure:"backend"`
	Approach2 Approach2Config          `mapstructure:"approach2"`
	Flags     FlagsConfig              `mapstructure:"flags"`
	Canary    CanaryConfig             `mapstructure:"canary"`
	Redis     RedisConfig              `mapstructure:"redis"`
	Postgres  PostgresConfig           `mapstructure:"postgres"`
	Log       LogConfig                `mapstructure:"log"`
	Projects  map[string]ProjectConfig `mapstructure:"projects"`
	Agents    []AgentConfig            `mapstructure:"agents"`
}

// ListenConfig holds listen addresses.
type ListenConfig struct {
	MCP   string `mapstructure:"mcp"`
	Admin string `mapstructure:"admin"`
	// AdminTokenSHA256 (hex, from `gitgate hash-token`) is the admin
	// token that setting or clearing the kill-switch override on the admin
	// listener needs. Without it the override cannot be changed, unless
	// AdminKillWithoutToken.
	AdminTokenSHA256 string `mapstructure:"admin_token_sha256"`
	// AdminKillWithoutToken (listen.admin_kill_without_token) opts out of
	// the admin token: with no AdminTokenSHA256, any process reaching the
	// admin listener may set or clear the override.
	AdminKillWithoutToken bool `mapstructure:"admin_kill_without_token"`
}

// MCPConfig configures the MCP endpoint.
type MCPConfig struct {
	Path           string   `mapstructure:"path"`
	AllowedHosts   []string `mapstructure:"allowed_hosts"`
	AllowedOrigins []string `mapstructure:"allowed_origins"`
	StdioAgent     string   `mapstructure:"stdio_agent"`
	// SessionIdleTTL ends MCP sessions idle this long.
	SessionIdleTTL time.Duration `mapstructure:"session_idle_ttl"`
	// MaxSessionsPerAgent caps one agent's live sessions; opening one
	// more ends its least recently used one.
	MaxSessionsPerAgent int `mapstructure:"max_sessions_per_agent"`
}

// SandboxConfig configures sandboxes.
type SandboxConfig struct {
	Provider string        `mapstructure:"provider"`
	Scope    string        `mapstructure:"scope"`
	TTL      time.Duration `mapstructure:"ttl"`
	Local    struct {
		Dir    string `mapstructure:"dir"`
		Shared bool   `mapstructure:"shared"`
	} `mapstructure:"local"`
	Pool PoolConfig `mapstructure:"pool"`
	E2B  E2BConfig  `mapstructure:"e2b"`
	// Vault keeps the unsaved work of sandboxes that were reaped or
	// dropped, until the workspace's next use restores it.
	Vault struct {
		Dir      string `mapstructure:"dir"`
		MaxBytes int64  `mapstructure:"max_bytes"`
	} `mapstructure:"vault"`
	// ShelfRetention is how long shelved work (and a binding with unsaved
	// work) is kept without being used.
	ShelfRetention time.Duration `mapstructure:"shelf_retention"`
}

// E2BConfig configures the E2B sandbox provider. The API key is read from
// the variable APIKeyEnv names, never from the file.
type E2BConfig struct {
	Domain    string        `mapstructure:"domain"`
	APIURL    string        `mapstructure:"api_url"`
	EnvdURL   string        `mapstructure:"envd_url"`
	APIKeyEnv string        `mapstructure:"api_key_env"`
	APIKey    string        `mapstructure:"-"`
	Template  string        `mapstructure:"template"`
	User      string        `mapstructure:"user"`
	Root      string        `mapstructure:"root"`
	Lifetime  time.Duration `mapstructure:"lifetime"`
	Keepalive time.Duration `mapstructure:"keepalive"`
	// Prices, in US dollars per second, for the cost metrics.
	VCPUSecondUSD float64 `mapstructure:"vcpu_second_usd"`
	GiBSecondUSD  float64 `mapstructure:"gib_second_usd"`
}

// apiURL and envdURL default from the domain.
func (e E2BConfig) apiURL() string {
	if e.APIURL != "" {
		return e.APIURL
	}
	return "https://api." + e.Domain
}

func (e E2BConfig) envdURL() string {
	if e.EnvdURL != "" {
		return e.EnvdURL
	}
	return "https://sandbox." + e.Domain
}

// PoolConfig configures the service's warm pool.
type PoolConfig struct {
	MinIdle        int           `mapstructure:"min_idle"`
	MaxSize        int           `mapstructure:"max_size"`
	MaxQueue       int           `mapstructure:"max_queue"`
	AcquireTimeout time.Duration `mapstructure:"acquire_timeout"`
}

// FlagsConfig locates the canary flags: a file, or a flagd sync source
// shared by a fleet.
type FlagsConfig struct {
	Path         string `mapstructure:"path"`
	SyncAddr     string `mapstructure:"sync_addr"`
	SyncSelector string `mapstructure:"sync_selector"`
	OverridePath string `mapstructure:"override_path"`
}

// Canary reports whether canary routing is configured (a flag file or a
// sync source).
func (f FlagsConfig) Canary() bool { return f.Path != "" || f.SyncAddr != "" }

// CanaryConfig configures the ledger and automatic rollback.
type CanaryConfig struct {
	LedgerPath string `mapstructure:"ledger_path"`
	// LedgerDSNEnv names the variable holding a PostgreSQL DSN: when set,
	// the ledger is kept there instead of in LedgerPath.
	LedgerDSNEnv string `mapstructure:"ledger_dsn_env"`
	LedgerDSN    string `mapstructure:"-"`
	ShadowSelf   bool   `mapstructure:"shadow_self"`
	// ShadowBudget bounds a shadow call; past it the shadow is abandoned
	// and recorded as shadow_timeout. Zero: the gateway's default (5 s).
	ShadowBudget time.Duration `mapstructure:"shadow_budget"`
	Rollback     struct {
		Window       time.Duration `mapstructure:"window"`
		MinCalls     int           `mapstructure:"min_calls"`
		MaxErrorRate float64       `mapstructure:"max_error_rate"`
		MaxP95       time.Duration `mapstructure:"max_p95"`
	} `mapstructure:"rollback"`
}

// RedisConfig locates the shared Redis.
type RedisConfig struct {
	Addr    string        `mapstructure:"addr"`
	Prefix  string        `mapstructure:"prefix"`
	LockTTL time.Duration `mapstructure:"lock_ttl"`
}

// PostgresConfig locates the journal's database; DSN is resolved from
// DSNEnv at load time.
type PostgresConfig struct {
	DSNEnv string `mapstructure:"dsn_env"`
	DSN    string `mapstructure:"-"`
}

// GitConfig configures git.
type GitConfig struct {
	Path           string        `mapstructure:"path"`
	AllowHTTP      bool          `mapstructure:"allow_http"`
	CommandTimeout time.Duration `mapstructure:"command_timeout"`
	RemoteTimeout  time.Duration `mapstructure:"remote_timeout"`
}

// LimitsConfig caps sizes.
type LimitsConfig struct {
	MaxOutputBytes int `mapstructure:"max_output_bytes"`
	MaxFileBytes   int `mapstructure:"max_file_bytes"`
	MaxListEntries int `mapstructure:"max_list_entries"`
	// MaxRepoBytes caps what a clone, pull or fetch brings into one
	// workspace's repository; MaxSandboxBytes caps a sandbox's disk use.
	// Both are enforced while a transfer runs; negative means no limit.
	MaxRepoBytes    int64 `mapstructure:"max_repo_bytes"`
	MaxSandboxBytes int64 `mapstructure:"max_sandbox_bytes"`
	// DiskPollInterval is how often disk use is measured during a transfer.
	DiskPollInterval time.Duration `mapstructure:"disk_poll_interval"`
}

// BackendConfig chooses the backend.
type BackendConfig struct {
	Default string `mapstructure:"default"`
}

// Approach2Config configures the Approach 2 service and the gateway's
// client of it. Token is resolved from TokenEnv at load time.
type Approach2Config struct {
	Listen   string `mapstructure:"listen"`
	Target   string `mapstructure:"target"`
	Admin    string `mapstructure:"admin"`
	TokenEnv string `mapstructure:"token_env"`
	TLSCert  string `mapstructure:"tls_cert"`
	TLSKey   string `mapstructure:"tls_key"`
	TLSCA    string `mapstructure:"tls_ca"`
	// Mutual TLS.
	TLSClientCA   string `mapstructure:"tls_client_ca"`
	TLSClientCert string `mapstructure:"tls_client_cert"`
	TLSClientKey  string `mapstructure:"tls_client_key"`
	Insecure      bool   `mapstructure:"insecure"`
	SandboxDir    string `mapstructure:"sandbox_dir"`
	// ReadTimeout bounds a read call to the service; WriteSlack is added
	// to git.command_timeout (and git.remote_timeout for remote
	// operations) to bound a write call. A dead link fails a call at its
	// deadline instead of hanging.
	ReadTimeout time.Duration `mapstructure:"read_timeout"`
	WriteSlack  time.Duration `mapstructure:"write_slack"`
	// Breaker configures the per-operation circuit breakers in front of
	// the service.
	Breaker BreakerConfig `mapstructure:"breaker"`
	Token   string        `mapstructure:"-"`
}

// BreakerConfig configures the circuit breakers in front of Approach 2
// (gateway.BreakerConfig; zero values take its defaults).
type BreakerConfig struct {
	ConsecutiveFailures uint32        `mapstructure:"consecutive_failures"`
	FailureRatio        float64       `mapstructure:"failure_ratio"`
	MinRequests         uint32        `mapstructure:"min_requests"`
	Interval            time.Duration `mapstructure:"interval"`
	OpenFor             time.Duration `mapstructure:"open_for"`
	Probes              uint32        `mapstructure:"probes"`
}

// LogConfig configures logging.
type LogConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// ProjectConfig is one project. Token is resolved from TokenEnv at load
// time and never read from the file.
type ProjectConfig struct {
	AllowedHosts   []string `mapstructure:"allowed_hosts"`
	AllowedSchemes []string `mapstructure:"allowed_schemes"`
	TokenEnv       string   `mapstructure:"token_env"`
	TokenUsername  string   `mapstructure:"token_username"`
	// ReadTokenEnv names the variable holding a read-only token for the
	// same remotes, used by shadow predictions (ls-remote). Optional.
	ReadTokenEnv string `mapstructure:"read_token_env"`
	// MaxRepoBytes and MaxSandboxBytes override limits.max_repo_bytes and
	// limits.max_sandbox_bytes for this project (0: the global value).
	MaxRepoBytes    int64  `mapstructure:"max_repo_bytes"`
	MaxSandboxBytes int64  `mapstructure:"max_sandbox_bytes"`
	Token           string `mapstructure:"-"`
	ReadToken       string `mapstructure:"-"`
}

// AgentConfig is one agent.
type AgentConfig struct {
	Name        string `mapstructure:"name"`
	Project     string `mapstructure:"project"`
	TokenSHA256 string `mapstructure:"token_sha256"`
	AuthorName  string `mapstructure:"author_name"`
	AuthorEmail string `mapstructure:"author_email"`
}

// loadConfig reads the configuration (readConfig), resolves the secrets
// the *_env keys name with getenv (os.Getenv in production) and validates
// the result: what commands that serve need.
func loadConfig(path string, getenv func(string) string) (*Config, error) {
	c, err := readConfig(path, getenv)
	if err != nil {
		return nil, err
	}
	if err := c.resolveTokens(getenv); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// readConfig reads the embedded defaults, then the file at path (if any),
// then GITGATE_* environment variables, and refuses keys and variables
// that are not configuration (checkFileKeys, checkEnvironment). It neither
// resolves secrets nor validates values: commands that only edit flags
// need no project token. getenv locates the default state directory.
func readConfig(path string, getenv func(string) string) (*Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(configs.DefaultYAML)); err != nil {
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

func (c *Config) resolveTokens(getenv func(string) string) error {
	if c.Sandbox.Provider == "e2b" && c.Sandbox.E2B.APIKeyEnv != "" {
		c.Sandbox.E2B.APIKey = getenv(c.Sandbox.E2B.APIKeyEnv)
	}
	if c.Approach2.TokenEnv != "" {
		c.Approach2.Token = getenv(c.Approach2.TokenEnv)
	}
	if c.Postgres.DSNEnv != "" {
		c.Postgres.DSN = getenv(c.Postgres.DSNEnv)
	}
	if c.Canary.LedgerDSNEnv != "" {
		c.Canary.LedgerDSN = getenv(c.Canary.LedgerDSNEnv)
		if c.Canary.LedgerDSN == "" {
			return fmt.Errorf("config: canary.ledger_dsn_env: environment variable %s (the ledger's PostgreSQL DSN) is not set", c.Canary.LedgerDSNEnv)
		}
	}
	for name, p := range c.Projects {
		if p.TokenEnv != "" {
			p.Token = getenv(p.TokenEnv)
			if p.Token == "" {
				return fmt.Errorf("config: projects.%s.token_env: environment variable %s is not set (or empty)", name, p.TokenEnv)
			}
		}
		if p.ReadTokenEnv != "" {
			if p.ReadToken = getenv(p.ReadTokenEnv); p.ReadToken == "" {
				return fmt.Errorf("config: projects.%s.read_token_env: environment variable %s is not set (or empty)", name, p.ReadTokenEnv)
			}
		}
		c.Projects[name] = p
	}
	return nil
}

var (
	projectName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	agentName   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
)

func (c *Config) validate() error {
	for _, check := range []func() error{c.validateListen, c.validateSandbox, c.validateGit, c.validateLimits, c.validateProjects, c.validateAgents} {
		if err := check(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return nil
}

func (c *Config) validateListen() error {
	for key, addr := range map[string]string{"listen.mcp": c.Listen.MCP, "listen.admin": c.Listen.Admin} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s: %q is not host:port", key, addr)
		}
	}
	if t := c.Listen.AdminTokenSHA256; t != "" {
		if b, err := hex.DecodeString(t); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("listen.admin_token_sha256: must be 64 hex digits (gitgate hash-token)")
		}
	}
	if !strings.HasPrefix(c.MCP.Path, "/") {
		return fmt.Errorf("mcp.path: %q must start with /", c.MCP.Path)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q must be debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		return fmt.Errorf("log.format: %q must be json or text", c.Log.Format)
	}
	return nil
}

func (c *Config) validateSandbox() error {
	switch c.Sandbox.Provider {
	case "local":
	case "e2b":
		e := c.Sandbox.E2B
		if e.APIKey == "" {
			return fmt.Errorf("sandbox.e2b.api_key_env: environment variable %s (the E2B API key) is not set", e.APIKeyEnv)
		}
		if e.Template == "" {
			return fmt.Errorf("sandbox.e2b.template: a template (with git installed) is required")
		}
		if e.Domain == "" && (e.APIURL == "" || e.EnvdURL == "") {
			return fmt.Errorf("sandbox.e2b.domain: set the domain (e2b.app) or both api_url and envd_url")
		}
		if !strings.HasPrefix(e.Root, "/") {
			return fmt.Errorf("sandbox.e2b.root: %q must be an absolute path in the sandbox", e.Root)
		}
		if e.Lifetime < time.Minute {
			return fmt.Errorf("sandbox.e2b.lifetime: %s is shorter than one minute", e.Lifetime)
		}
	default:
		return fmt.Errorf("sandbox.provider: %q must be local or e2b", c.Sandbox.Provider)
	}
	if c.Sandbox.Scope != "project" && c.Sandbox.Scope != "agent" {
		return fmt.Errorf("sandbox.scope: %q must be project or agent", c.Sandbox.Scope)
	}
	if c.Sandbox.Local.Shared && c.Redis.Addr == "" {
		return fmt.Errorf("sandbox.local.shared: a shared sandbox directory needs redis.addr (bindings and locks must be shared too)")
	}
	if c.Sandbox.TTL < time.Minute {
		return fmt.Errorf("sandbox.ttl: %s is shorter than one minute", c.Sandbox.TTL)
	}
	if c.Flags.Path != "" && c.Flags.SyncAddr != "" {
		return fmt.Errorf("flags.sync_addr: set either flags.path (a file) or flags.sync_addr (a flagd sync source), not both")
	}
	if c.Flags.SyncAddr != "" {
		if c.Flags.OverridePath == "" {
			return fmt.Errorf("flags.override_path: required with flags.sync_addr (where the kill-switch override is kept across restarts)")
		}
		if c.Canary.LedgerPath == "" && c.Canary.LedgerDSNEnv == "" {
			return fmt.Errorf("canary.ledger_path: required with flags.sync_addr, unless canary.ledger_dsn_env is set")
		}
	}
	if c.Flags.Canary() {
		if c.Backend.Default != string(backends.Approach1) {
			return fmt.Errorf("backend.default: with canary flags (flags.path or flags.sync_addr) it is the fallback and must be approach1")
		}
		// A workspace cloned through one backend must be usable through the
		// other: a fallback, a rollback or an operation at a different stage
		// sends it there. E2B sandboxes are reachable from both; local ones
		// only through a shared directory; the bindings live in Redis.
		if c.Sandbox.Provider == "local" && !c.Sandbox.Local.Shared {
			return fmt.Errorf("sandbox.local.shared: canary routing (flags.path or flags.sync_addr) needs the sandbox directory shared with the Approach 2 service, and Redis")
		}
		if c.Redis.Addr == "" {
			return fmt.Errorf("redis.addr: canary routing needs the workspace bindings and locks shared with the Approach 2 service")
		}
		if c.Postgres.DSN == "" {
			return fmt.Errorf("postgres.dsn_env: canary routing needs the journal shared with the Approach 2 service (so that an idempotency key used on one backend is honoured by the other); set %s", c.Postgres.DSNEnv)
		}
		if err := c.needApproach2(); err != nil {
			return fmt.Errorf("canary routing needs Approach 2: %w", err)
		}
	}
	switch c.Backend.Default {
	case string(backends.Approach1):
	case string(backends.Approach2):
		if err := c.needApproach2(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("backend.default: %q must be approach1 or approach2", c.Backend.Default)
	}
	return nil
}

// needApproach2 checks what using the Approach 2 service requires.
func (c *Config) needApproach2() error {
	a := c.Approach2
	if a.Token == "" {
		return fmt.Errorf("approach2.token_env: environment variable %s (the service token) is not set", a.TokenEnv)
	}
	for key, addr := range map[string]string{"approach2.listen": a.Listen, "approach2.target": a.Target, "approach2.admin": a.Admin} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s: %q is not host:port", key, addr)
		}
	}
	if !a.Insecure && (a.TLSCert == "" || a.TLSKey == "") {
		return fmt.Errorf("approach2.tls_cert/tls_key: TLS is required unless approach2.insecure is true")
	}
	return nil
}

// needService checks what running the Approach 2 service requires beyond
// needApproach2: the journal's database and a sane pool.
func (c *Config) needService() error {
	if err := c.needApproach2(); err != nil {
		return err
	}
	if c.Postgres.DSN == "" {
		return fmt.Errorf("postgres.dsn_env: environment variable %s (the journal's PostgreSQL DSN) is not set", c.Postgres.DSNEnv)
	}
	p := c.Sandbox.Pool
	if p.MaxSize < 1 || p.MinIdle < 0 || p.MinIdle > p.MaxSize || p.MaxQueue < 0 || p.AcquireTimeout <= 0 {
		return fmt.Errorf("sandbox.pool: need 0 <= min_idle <= max_size, max_size >= 1, max_queue >= 0, acquire_timeout > 0")
	}
	if c.Redis.Addr != "" && c.Redis.LockTTL < time.Second {
		return fmt.Errorf("redis.lock_ttl: %s is shorter than one second", c.Redis.LockTTL)
	}
	return nil
}

func (c *Config) validateGit() error {
	if !filepath.IsAbs(c.Git.Path) {
		return fmt.Errorf("git.path: %q must be an absolute path", c.Git.Path)
	}
	if c.Git.CommandTimeout <= 0 || c.Git.RemoteTimeout <= 0 {
		return fmt.Errorf("git.command_timeout and git.remote_timeout must be positive")
	}
	a := c.Approach2
	if a.ReadTimeout < 0 || a.WriteSlack < 0 || a.Breaker.Interval < 0 || a.Breaker.OpenFor < 0 {
		return fmt.Errorf("approach2: read_timeout, write_slack, breaker.interval and breaker.open_for must not be negative")
	}
	if a.Breaker.FailureRatio < 0 || a.Breaker.FailureRatio > 1 {
		return fmt.Errorf("approach2.breaker.failure_ratio: %g is not between 0 and 1", a.Breaker.FailureRatio)
	}
	return nil
}

func (c *Config) validateLimits() error {
	l := c.Limits
	if l.MaxOutputBytes < 1024 || l.MaxFileBytes < 1024 || l.MaxListEntries < 1 {
		return fmt.Errorf("limits: max_output_bytes and max_file_bytes must be at least 1024 and max_list_entries at least 1")
	}
	if l.MaxFileBytes > 20<<20 {
		return fmt.Errorf("limits.max_file_bytes: %d is above the 20 MiB the MCP transport accepts", l.MaxFileBytes)
	}
	for key, n := range map[string]int64{"limits.max_repo_bytes": l.MaxRepoBytes, "limits.max_sandbox_bytes": l.MaxSandboxBytes} {
		if err := checkTransferLimit(key, n); err != nil {
			return err
		}
	}
	if c.MCP.SessionIdleTTL < 0 || c.MCP.MaxSessionsPerAgent < 0 {
		return fmt.Errorf("mcp: session_idle_ttl and max_sessions_per_agent must not be negative")
	}
	return nil
}

// checkTransferLimit accepts 0 (the default), a negative value (no limit)
// or at least 1 MiB: a smaller limit would refuse every clone.
func checkTransferLimit(key string, n int64) error {
	if n > 0 && n < 1<<20 {
		return fmt.Errorf("%s: %d is below 1 MiB (use a negative value for no limit)", key, n)
	}
	return nil
}

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

func (c *Config) validateAgents() error {
	for i := range c.Agents {
		c.Agents[i].Project = strings.ToLower(c.Agents[i].Project) // project keys are case-insensitive
		a := c.Agents[i]
		key := fmt.Sprintf("agents[%d]", i)
		if !agentName.MatchString(a.Name) {
			return fmt.Errorf("%s.name: %q must be letters, digits, '.', '_' or '-'", key, a.Name)
		}
		if _, ok := c.Projects[a.Project]; !ok {
			return fmt.Errorf("%s.project: project %q is not configured under projects", key, a.Project)
		}
		if err := gitcmd.ValidateIdentity(a.AuthorName, a.AuthorEmail); err != nil {
			return fmt.Errorf("%s.author_name/author_email: %v", key, err)
		}
	}
	if _, err := c.directory(); err != nil {
		return err
	}
	if a := c.MCP.StdioAgent; a != "" && !slices.ContainsFunc(c.Agents, func(x AgentConfig) bool { return x.Name == a }) {
		return fmt.Errorf("mcp.stdio_agent: agent %q is not configured under agents", a)
	}
	return nil
}

func (c *Config) directory() (*gateway.Directory, error) {
	agents := make([]gateway.Agent, len(c.Agents))
	for i, a := range c.Agents {
		agents[i] = gateway.Agent{Name: a.Name, Project: a.Project, TokenSHA256: strings.ToLower(a.TokenSHA256),
			AuthorName: a.AuthorName, AuthorEmail: a.AuthorEmail}
	}
	return gateway.NewDirectory(agents)
}

// sandboxDir returns the local sandbox directory.
func (c *Config) sandboxDir() (string, error) {
	if c.Sandbox.Local.Dir != "" {
		return c.Sandbox.Local.Dir, nil
	}
	return filepath.Join(c.StateDir, "sandboxes"), nil
}

// defaultStateDir is $XDG_STATE_HOME/gitgate, or ~/.local/state/gitgate.
func defaultStateDir(getenv func(string) string) string {
	if x := getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "gitgate")
	}
	home := getenv("HOME")
	if home == "" {
		if h, err := os.UserHomeDir(); err == nil {
			home = h
		} else {
			home = os.TempDir()
		}
	}
	return filepath.Join(home, ".local", "state", "gitgate")
}

// vaultDir is sandbox.vault.dir, or <state_dir>/vault.
func (c *Config) vaultDir() string {
	if c.Sandbox.Vault.Dir != "" {
		return c.Sandbox.Vault.Dir
	}
	return c.statePath("vault")
}

// statePath is a directory under the state directory.
func (c *Config) statePath(name string) string { return filepath.Join(c.StateDir, name) }
