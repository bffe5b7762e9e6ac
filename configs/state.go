package configs

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// RedisConfig locates the shared Redis: one instance at Addr, or the
// master a Redis Sentinel set names (Sentinel); exactly one of the two, or
// neither when nothing is shared.
type RedisConfig struct {
	Addr     string              `mapstructure:"addr"`
	Sentinel RedisSentinelConfig `mapstructure:"sentinel"`
	Prefix   string              `mapstructure:"prefix"`
	LockTTL  time.Duration       `mapstructure:"lock_ttl"`
	// PasswordEnv names the variable holding the Redis password, or
	// PasswordFile the file holding it (re-read when it changes; new
	// connections authenticate with the current value, see
	// CredentialsProvider). Optional.
	PasswordEnv    string  `mapstructure:"password_env"`
	PasswordFile   string  `mapstructure:"password_file"`
	Password       string  `mapstructure:"-"`
	PasswordSecret *Secret `mapstructure:"-"`
}

// RedisSentinelConfig locates Redis through Sentinel: the master the
// sentinels at Addrs name MasterName, followed across failovers.
type RedisSentinelConfig struct {
	MasterName string   `mapstructure:"master_name"`
	Addrs      []string `mapstructure:"addrs"` // the sentinels' host:port
	// WaitReplicas is how many replicas must have acknowledged a workspace
	// lock's grant (and each renewal) before it counts (Redis WAIT), so
	// that the grant and its fence survive the promotion of a replica. A
	// grant not acknowledged within WaitTimeout is given back and the
	// acquisition fails as unavailable. 0 waits for none: after a failover
	// a fence may then be issued twice.
	WaitReplicas int           `mapstructure:"wait_replicas"`
	WaitTimeout  time.Duration `mapstructure:"wait_timeout"`
}

// Enabled reports whether a Sentinel set is configured.
func (s RedisSentinelConfig) Enabled() bool { return s.MasterName != "" || len(s.Addrs) > 0 }

// Configured reports whether a shared Redis is configured (redis.addr or
// redis.sentinel).
func (r RedisConfig) Configured() bool { return r.Addr != "" || r.Sentinel.Enabled() }

// validateRedis checks that at most one way to reach Redis is set, and the
// sentinel keys when they are.
func (c *Config) validateRedis() error {
	r := c.Redis
	s := r.Sentinel
	switch {
	case !s.Enabled():
		return nil
	case r.Addr != "":
		return fmt.Errorf("redis.addr and redis.sentinel: set one of them (one instance, or the master Sentinel names), not both")
	case s.MasterName == "":
		return fmt.Errorf("redis.sentinel.master_name: required with redis.sentinel.addrs")
	case len(s.Addrs) == 0:
		return fmt.Errorf("redis.sentinel.addrs: required with redis.sentinel.master_name (the sentinels' host:port)")
	case s.WaitReplicas < 0:
		return fmt.Errorf("redis.sentinel.wait_replicas: %d is negative", s.WaitReplicas)
	case s.WaitReplicas > 0 && (s.WaitTimeout <= 0 || s.WaitTimeout > r.LockTTL/4):
		return fmt.Errorf("redis.sentinel.wait_timeout: %s must be positive and at most a quarter of redis.lock_ttl (%s)", s.WaitTimeout, r.LockTTL)
	}
	seen := map[string]bool{}
	for _, a := range s.Addrs {
		host, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return fmt.Errorf("redis.sentinel.addrs: %q is not host:port", a)
		}
		if seen[a] {
			return fmt.Errorf("redis.sentinel.addrs: %s is listed twice", a)
		}
		seen[a] = true
	}
	return nil
}

// CredentialsProvider returns the Redis password now, for go-redis'
// Options.CredentialsProvider (called for each new connection); nil when
// no password is configured.
func (r RedisConfig) CredentialsProvider() func() (username, password string) {
	if r.PasswordSecret == nil && r.Password == "" {
		return nil
	}
	return func() (string, string) {
		if r.PasswordSecret != nil {
			return "", r.PasswordSecret.Value()
		}
		return "", r.Password
	}
}

// PostgresConfig locates the journal's database: the DSN comes from the
// variable DSNEnv names or from the file DSNFile (re-read when it changes).
// DSN is the value at load time; DSNSecret follows the file.
type PostgresConfig struct {
	DSNEnv    string  `mapstructure:"dsn_env"`
	DSNFile   string  `mapstructure:"dsn_file"`
	DSN       string  `mapstructure:"-"`
	DSNSecret *Secret `mapstructure:"-"`
}

// CurrentDSN is the DSN now: DSNSecret's current value when a key set it,
// else DSN.
func (p PostgresConfig) CurrentDSN() string {
	if p.DSNSecret != nil {
		return p.DSNSecret.Value()
	}
	return p.DSN
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
