package configs

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

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
// the variable APIKeyEnv names or from the file APIKeyFile (re-read when
// it changes), never from the configuration itself.
type E2BConfig struct {
	Domain     string `mapstructure:"domain"`
	APIURL     string `mapstructure:"api_url"`
	EnvdURL    string `mapstructure:"envd_url"`
	APIKeyEnv  string `mapstructure:"api_key_env"`
	APIKeyFile string `mapstructure:"api_key_file"`
	// APIKey is the value at load time; APIKeySecret follows the file (nil
	// when no key sets it). CurrentAPIKey reads whichever is set.
	APIKey       string        `mapstructure:"-"`
	APIKeySecret *Secret       `mapstructure:"-"`
	Template     string        `mapstructure:"template"`
	User         string        `mapstructure:"user"`
	Root         string        `mapstructure:"root"`
	Lifetime     time.Duration `mapstructure:"lifetime"`
	Keepalive    time.Duration `mapstructure:"keepalive"`
	// Prices, in US dollars per second, for the cost metrics.
	VCPUSecondUSD float64 `mapstructure:"vcpu_second_usd"`
	GiBSecondUSD  float64 `mapstructure:"gib_second_usd"`
}

// CurrentAPIKey is the E2B API key now: APIKeySecret's current value when
// a key set it, else APIKey.
func (e E2BConfig) CurrentAPIKey() string {
	if e.APIKeySecret != nil {
		return e.APIKeySecret.Value()
	}
	return e.APIKey
}

// APIEndpoint is APIURL, or the API of Domain.
func (e E2BConfig) APIEndpoint() string {
	if e.APIURL != "" {
		return e.APIURL
	}
	return "https://api." + e.Domain
}

// EnvdEndpoint is EnvdURL, or the sandboxes' envd of Domain.
func (e E2BConfig) EnvdEndpoint() string {
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
	// Seeds are repository URLs cloned, without credentials, into every
	// warm sandbox before it is handed out: a first clone of one of them
	// there moves the seed into place and fetches (approach1.Executor.Seeds).
	Seeds []string `mapstructure:"seeds"`
}

// validateSandbox checks the provider (and E2B's settings), the scope,
// sharing and the idle TTL.
func (c *Config) validateSandbox() error {
	switch c.Sandbox.Provider {
	case "local":
	case "e2b":
		if err := c.Sandbox.E2B.validate(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("sandbox.provider: %q must be local or e2b", c.Sandbox.Provider)
	}
	if c.Sandbox.Scope != "project" && c.Sandbox.Scope != "agent" {
		return fmt.Errorf("sandbox.scope: %q must be project or agent", c.Sandbox.Scope)
	}
	if c.Sandbox.Local.Shared && !c.Redis.Configured() {
		return fmt.Errorf("sandbox.local.shared: a shared sandbox directory needs redis.addr (bindings and locks must be shared too)")
	}
	if c.Sandbox.TTL < time.Minute {
		return fmt.Errorf("sandbox.ttl: %s is shorter than one minute", c.Sandbox.TTL)
	}
	return nil
}

func (e E2BConfig) validate() error {
	if e.APIKey == "" {
		return fmt.Errorf("sandbox.e2b.api_key_env: environment variable %s (the E2B API key) is not set, and sandbox.e2b.api_key_file is not set", e.APIKeyEnv)
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
	return nil
}

// SandboxDir is the local sandbox directory: sandbox.local.dir, or
// <state_dir>/sandboxes.
func (c *Config) SandboxDir() string {
	if c.Sandbox.Local.Dir != "" {
		return c.Sandbox.Local.Dir
	}
	return filepath.Join(c.StateDir, "sandboxes")
}

// VaultDir is sandbox.vault.dir, or <state_dir>/vault.
func (c *Config) VaultDir() string {
	if c.Sandbox.Vault.Dir != "" {
		return c.Sandbox.Vault.Dir
	}
	return c.StatePath("vault")
}

// ServiceSandboxDir is the Approach 2 service's local sandbox directory:
// approach2.sandbox_dir, or the gateway's directory (SandboxDir) when it
// is shared, or a directory of the service's own beside it.
func (c *Config) ServiceSandboxDir() string {
	if c.Approach2.SandboxDir != "" {
		return c.Approach2.SandboxDir
	}
	base := c.SandboxDir()
	if c.Sandbox.Local.Shared {
		return base
	}
	return filepath.Join(filepath.Dir(base), "service-sandboxes")
}

// Retention is how long shelved work, and a binding holding unsaved work,
// is kept unused: sandbox.shelf_retention, but never shorter than the idle
// TTL or an hour.
func (s SandboxConfig) Retention() time.Duration {
	return max(s.ShelfRetention, s.TTL, time.Hour)
}
