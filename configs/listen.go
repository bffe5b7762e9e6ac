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
	// DrainDelay (listen.drain_delay): on SIGTERM the admin listener's
	// /readyz answers 503 "draining" at once, and the gateway keeps
	// serving MCP this long, with HTTP keep-alive off, so that the load
	// balancer's health check takes it out of the rotation (and idle
	// connections close) before it stops accepting. 0 stops accepting at
	// once (no load balancer in front).
	DrainDelay time.Duration `mapstructure:"drain_delay"`
	// DrainTimeout (listen.drain_timeout) bounds, after DrainDelay, the
	// wait for the calls in flight; those still running then are cut.
	DrainTimeout time.Duration `mapstructure:"drain_timeout"`
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
	// SessionStore (mcp.session_store) says where MCP sessions live:
	// SessionStoreMemory (this process: a replica behind a load balancer
	// answers 404 to another replica's session), SessionStoreRedis (shared
	// by every replica on the same Redis and redis.prefix; needs Redis
	// configured) or SessionStoreAuto ("" too): Redis when Redis is
	// configured, else memory.
	SessionStore string `mapstructure:"session_store"`
}

// The values of mcp.session_store.
const (
	SessionStoreAuto   = "auto"
	SessionStoreMemory = "memory"
	SessionStoreRedis  = "redis"
)

// SessionsInRedis reports whether MCP sessions are kept in Redis, given
// whether Redis is configured (validation has refused "redis" without it).
func (c MCPConfig) SessionsInRedis(redisConfigured bool) bool {
	switch c.SessionStore {
	case SessionStoreRedis:
		return true
	case SessionStoreMemory:
		return false
	}
	return redisConfigured
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
	if c.Listen.DrainDelay < 0 {
		return fmt.Errorf("listen.drain_delay: %s is negative", c.Listen.DrainDelay)
	}
	if c.Listen.DrainTimeout <= 0 {
		return fmt.Errorf("listen.drain_timeout: %s is not positive (it bounds the calls in flight when the gateway stops)", c.Listen.DrainTimeout)
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

// validateSessions checks the MCP session limits and store.
func (c *Config) validateSessions() error {
	if c.MCP.SessionIdleTTL < 0 || c.MCP.MaxSessionsPerAgent < 0 {
		return fmt.Errorf("mcp: session_idle_ttl and max_sessions_per_agent must not be negative")
	}
	switch c.MCP.SessionStore {
	case "", SessionStoreAuto, SessionStoreMemory:
	case SessionStoreRedis:
		if !c.redisConfigured() {
			return fmt.Errorf("mcp.session_store: redis needs Redis configured (redis.addr or redis.sentinel)")
		}
	default:
		return fmt.Errorf("mcp.session_store: %q must be auto, memory or redis", c.MCP.SessionStore)
	}
	return nil
}

// redisConfigured reports whether the configuration names a Redis.
func (c *Config) redisConfigured() bool { return c.Redis.Configured() }
