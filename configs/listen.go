package configs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"time"
)

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

// LogConfig configures logging.
type LogConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// validateListen checks the listen addresses, the admin token's hash and
// the MCP path.
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
	return nil
}

func (c *Config) validateLog() error {
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

// validateSessions checks the MCP session limits.
func (c *Config) validateSessions() error {
	if c.MCP.SessionIdleTTL < 0 || c.MCP.MaxSessionsPerAgent < 0 {
		return fmt.Errorf("mcp: session_idle_ttl and max_sessions_per_agent must not be negative")
	}
	return nil
}
