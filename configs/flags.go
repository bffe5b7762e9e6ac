package configs

import (
	"fmt"
	"time"

	"github.com/gitgate/gitgate/backends"
)

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

// validateFlags checks the flag source and, when canary routing is
// configured, what it needs: Approach 1 as the fallback, and sandboxes,
// bindings, locks and the journal shared with the Approach 2 service.
func (c *Config) validateFlags() error {
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
	if !c.Flags.Canary() {
		return nil
	}
	if c.Backend.Default != backends.Approach1 {
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
	if err := c.NeedApproach2(); err != nil {
		return fmt.Errorf("canary routing needs Approach 2: %w", err)
	}
	return nil
}
