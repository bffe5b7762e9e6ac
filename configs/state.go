package configs

import (
	"os"
	"path/filepath"
	"time"
)

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

// StatePath is a directory under the state directory.
func (c *Config) StatePath(name string) string { return filepath.Join(c.StateDir, name) }
