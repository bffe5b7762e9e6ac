package configs

import (
	"fmt"
	"slices"
	"time"
)

// BudgetConfig configures the monthly sandbox budgets (see gitgate.yaml's
// budget section).
type BudgetConfig struct {
	MonthlyUSD      float64                  `mapstructure:"monthly_usd"`
	Projects        map[string]ProjectBudget `mapstructure:"projects"`
	WarnAt          float64                  `mapstructure:"warn_at"`
	Action          string                   `mapstructure:"action"`
	Store           string                   `mapstructure:"store"`
	ForecastMinDays float64                  `mapstructure:"forecast_min_days"`
	Interval        time.Duration            `mapstructure:"interval"`
	Contact         string                   `mapstructure:"contact"`
}

// ProjectBudget is one project's own monthly budget.
type ProjectBudget struct {
	MonthlyUSD float64 `mapstructure:"monthly_usd"`
}

// The budget actions and stores.
var (
	budgetActions = []string{"refuse", "alert"}
	budgetStores  = []string{"auto", "redis", "postgres", "file"}
)

// BudgetStore is the store the budget's spend is kept in: the configured
// one, or for auto PostgreSQL when postgres.dsn_env names a DSN (durable),
// else Redis when redis.addr is set, else the state directory's file.
func (c *Config) BudgetStore() string {
	if s := c.Budget.Store; s != "" && s != "auto" {
		return s
	}
	switch {
	case c.Postgres.DSN != "":
		return "postgres"
	case c.Redis.Configured():
		return "redis"
	}
	return "file"
}

// BudgetForecastAfter is how much of a month's data the forecast waits for.
func (c *Config) BudgetForecastAfter() time.Duration {
	return time.Duration(c.Budget.ForecastMinDays * float64(24*time.Hour))
}

// validateBudget checks the budget section, naming the key to fix.
func (c *Config) validateBudget() error {
	b := c.Budget
	for _, v := range []struct {
		key string
		bad bool
		why string
	}{
		{"monthly_usd", b.MonthlyUSD < 0, "is negative (0: no overall limit)"},
		{"warn_at", b.WarnAt <= 0 || b.WarnAt > 1, "must be a ratio in (0, 1], such as 0.75"},
		{"forecast_min_days", b.ForecastMinDays < 0, "is negative"},
		{"interval", b.Interval < 0, "is negative"},
		{"action", !slices.Contains(budgetActions, b.Action), fmt.Sprintf("%q is not one of %v", b.Action, budgetActions)},
		{"store", !slices.Contains(budgetStores, b.Store), fmt.Sprintf("%q is not one of %v", b.Store, budgetStores)},
	} {
		if v.bad {
			return fmt.Errorf("budget.%s %s", v.key, v.why)
		}
	}
	switch {
	case b.Store == "redis" && !c.Redis.Configured():
		return fmt.Errorf("budget.store: redis needs redis.addr or redis.sentinel")
	case b.Store == "postgres" && c.Postgres.DSN == "":
		return fmt.Errorf("budget.store: postgres needs a DSN in the variable postgres.dsn_env names (%s)", c.Postgres.DSNEnv)
	}
	for name, p := range b.Projects {
		if _, ok := c.Projects[name]; !ok {
			return fmt.Errorf("budget.projects.%s: %q is not one of projects", name, name)
		}
		if p.MonthlyUSD <= 0 {
			return fmt.Errorf("budget.projects.%s.monthly_usd must be positive (remove the project to leave it without a limit of its own)", name)
		}
	}
	return nil
}

// ResolveBudget reads what the budget's store needs from the environment
// (the PostgreSQL DSN postgres.dsn_env names) and checks the budget
// section: for commands that read the budget without serving (`gitgate
// budget`), which need no project token.
func (c *Config) ResolveBudget(getenv func(string) string) error {
	if c.Postgres.DSNEnv != "" && c.Postgres.DSN == "" {
		c.Postgres.DSN = getenv(c.Postgres.DSNEnv)
	}
	if err := c.validateBudget(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
