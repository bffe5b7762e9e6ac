package configs

import (
	"fmt"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
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

// CanaryConfig configures the ledger, the shadows and the judge of the
// canary stages (which the automatic rollback uses).
type CanaryConfig struct {
	LedgerPath string `mapstructure:"ledger_path"`
	// LedgerDSNEnv names the variable holding a PostgreSQL DSN, or
	// LedgerDSNFile the file holding it: when set, the ledger is kept there
	// instead of in LedgerPath. LedgerDSN is the DSN at load time;
	// LedgerDSNSecret follows the file.
	LedgerDSNEnv    string  `mapstructure:"ledger_dsn_env"`
	LedgerDSNFile   string  `mapstructure:"ledger_dsn_file"`
	LedgerDSN       string  `mapstructure:"-"`
	LedgerDSNSecret *Secret `mapstructure:"-"`
	ShadowSelf      bool    `mapstructure:"shadow_self"`
	// ShadowBudget bounds a shadow call; past it the shadow is abandoned
	// and recorded as shadow_timeout. Zero: the gateway's default (5 s).
	ShadowBudget time.Duration `mapstructure:"shadow_budget"`
	// LedgerRawRetention is how long the PostgreSQL ledger keeps its raw
	// rows once they are rolled up into hourly summaries (which the
	// report, `canary advance` and the automatic rollback read); 0 keeps
	// them. The file ledger is never pruned.
	LedgerRawRetention time.Duration `mapstructure:"ledger_raw_retention"`
	// Judge configures the one judge of a canary stage: the automatic
	// rollback, `gitgate canary advance` and `gitgate report` all use it
	// (JudgeConfig).
	Judge JudgeSettings `mapstructure:"judge"`
}

// JudgeSettings are the keys of canary.judge (see gitgate.yaml). Zero
// values take canary.JudgeConfig's defaults.
type JudgeSettings struct {
	FalseAlarmRate float64 `mapstructure:"false_alarm_rate"`
	MissRate       float64 `mapstructure:"miss_rate"`
	MinCalls       int64   `mapstructure:"min_calls"`
	ErrorFloor     struct {
		Abs float64 `mapstructure:"abs"`
		Rel float64 `mapstructure:"rel"`
	} `mapstructure:"error_floor"`
	LatencyFloor struct {
		Abs time.Duration `mapstructure:"abs"`
		Rel float64       `mapstructure:"rel"`
	} `mapstructure:"latency_floor"`
	MaxMismatchRate float64       `mapstructure:"max_mismatch_rate"`
	MaxCostRatio    float64       `mapstructure:"max_cost_ratio"`
	MinStageTime    time.Duration `mapstructure:"min_stage_time"`
}

// JudgeConfig is canary.judge as the judge takes it (the latency floor in
// milliseconds), its zero values filled with the defaults: the one
// conversion the gateway, `canary advance` and `report` share.
func (c CanaryConfig) JudgeConfig() canary.JudgeConfig {
	j := c.Judge
	return canary.JudgeConfig{FalseAlarmRate: j.FalseAlarmRate, MissRate: j.MissRate, MinCalls: j.MinCalls,
		ErrorFloor:      canary.Floor{Abs: j.ErrorFloor.Abs, Rel: j.ErrorFloor.Rel},
		LatencyFloor:    canary.Floor{Abs: float64(j.LatencyFloor.Abs) / float64(time.Millisecond), Rel: j.LatencyFloor.Rel},
		MaxMismatchRate: j.MaxMismatchRate, MaxCostRatio: j.MaxCostRatio, MinStageTime: j.MinStageTime}.WithDefaults()
}

// ValidateJudge checks canary.judge: no negative value (zero takes the
// default), then the judge's own checks (canary.JudgeConfig.Validate).
func (c CanaryConfig) ValidateJudge() error {
	j := c.Judge
	for _, v := range []struct {
		key      string
		negative bool
	}{
		{"false_alarm_rate", j.FalseAlarmRate < 0}, {"miss_rate", j.MissRate < 0}, {"min_calls", j.MinCalls < 0},
		{"error_floor.abs", j.ErrorFloor.Abs < 0}, {"error_floor.rel", j.ErrorFloor.Rel < 0},
		{"latency_floor.abs", j.LatencyFloor.Abs < 0}, {"latency_floor.rel", j.LatencyFloor.Rel < 0},
		{"max_mismatch_rate", j.MaxMismatchRate < 0}, {"max_cost_ratio", j.MaxCostRatio < 0}, {"min_stage_time", j.MinStageTime < 0},
	} {
		if v.negative {
			return fmt.Errorf("canary.judge.%s: cannot be negative (0 takes the default)", v.key)
		}
	}
	if err := c.JudgeConfig().Validate(); err != nil {
		return fmt.Errorf("canary.judge.%w", err)
	}
	return nil
}

// validateFlags checks the flag source and, when canary routing is
// configured, what it needs: Approach 1 as the fallback, and sandboxes,
// bindings, locks and the journal shared with the Approach 2 service.
func (c *Config) validateFlags() error {
	if r := c.Canary.LedgerRawRetention; r < 0 || (r > 0 && r < 24*time.Hour) {
		return fmt.Errorf("canary.ledger_raw_retention: %s is less than a day (0 keeps the raw rows)", r)
	}
	if err := c.Canary.ValidateJudge(); err != nil {
		return err
	}
	if c.Flags.Path != "" && c.Flags.SyncAddr != "" {
		return fmt.Errorf("flags.sync_addr: set either flags.path (a file) or flags.sync_addr (a flagd sync source), not both")
	}
	if c.Flags.SyncAddr != "" {
		if c.Flags.OverridePath == "" {
			return fmt.Errorf("flags.override_path: required with flags.sync_addr (where the kill-switch override is kept across restarts)")
		}
		if c.Canary.LedgerPath == "" && c.Canary.LedgerDSNEnv == "" && c.Canary.LedgerDSNFile == "" {
			return fmt.Errorf("canary.ledger_path: required with flags.sync_addr, unless canary.ledger_dsn_env or canary.ledger_dsn_file is set")
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
	if !c.Redis.Configured() {
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
