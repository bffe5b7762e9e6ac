package configs

import (
	"fmt"
	"path/filepath"
	"time"
)

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

func (c *Config) validateGit() error {
	if !filepath.IsAbs(c.Git.Path) {
		return fmt.Errorf("git.path: %q must be an absolute path", c.Git.Path)
	}
	if c.Git.CommandTimeout <= 0 || c.Git.RemoteTimeout <= 0 {
		return fmt.Errorf("git.command_timeout and git.remote_timeout must be positive")
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
