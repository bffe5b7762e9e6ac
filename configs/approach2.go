package configs

import (
	"fmt"
	"net"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// BackendConfig chooses the backend.
type BackendConfig struct {
	// Default serves every call without canary flags; with them it is
	// the fallback, and must be Approach 1.
	Default backends.Name `mapstructure:"default"`
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

// validateBackend checks the default backend, and what Approach 2 needs
// when it is the default.
func (c *Config) validateBackend() error {
	switch c.Backend.Default {
	case backends.Approach1:
	case backends.Approach2:
		if err := c.NeedApproach2(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("backend.default: %q must be approach1 or approach2", c.Backend.Default)
	}
	return nil
}

// validateApproach2 checks the client's timeouts and breaker settings.
func (c *Config) validateApproach2() error {
	a := c.Approach2
	if a.ReadTimeout < 0 || a.WriteSlack < 0 || a.Breaker.Interval < 0 || a.Breaker.OpenFor < 0 {
		return fmt.Errorf("approach2: read_timeout, write_slack, breaker.interval and breaker.open_for must not be negative")
	}
	if a.Breaker.FailureRatio < 0 || a.Breaker.FailureRatio > 1 {
		return fmt.Errorf("approach2.breaker.failure_ratio: %g is not between 0 and 1", a.Breaker.FailureRatio)
	}
	return nil
}

// NeedApproach2 checks what using the Approach 2 service requires.
func (c *Config) NeedApproach2() error {
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

// NeedService checks what running the Approach 2 service requires beyond
// NeedApproach2: the journal's database and a sane pool.
func (c *Config) NeedService() error {
	if err := c.NeedApproach2(); err != nil {
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
