package configs

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
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
// client of it. The token comes from the variable TokenEnv names or from
// the file TokenFile (re-read when it changes).
type Approach2Config struct {
	Listen string `mapstructure:"listen"`
	// Target is where the gateway dials one service: host:port, or a gRPC
	// target URI (dns:///name:port, e.g. a Kubernetes headless Service,
	// whose addresses the gateway balances over). Targets lists several
	// services as host:port instead. Set at most one of them; with neither,
	// DefaultTarget. See DialTargets.
	Target  string   `mapstructure:"target"`
	Targets []string `mapstructure:"targets"`
	Admin   string   `mapstructure:"admin"`
	// DrainDelay is how long a stopping service reports NOT_SERVING while
	// it still serves, so that the gateways' health checks move new calls
	// to the other services (0: none); DrainTimeout then bounds the wait
	// for the calls in flight, after which the rest are cut (0:
	// DefaultDrainTimeout; see DrainBound).
	DrainDelay   time.Duration `mapstructure:"drain_delay"`
	DrainTimeout time.Duration `mapstructure:"drain_timeout"`
	// MaxConnectionAge: the service asks each gateway connection to go
	// away (GOAWAY) after this long, the calls on it finishing first, so
	// that the gateways reconnect and re-resolve a dns:/// target and new
	// service replicas get their share of calls (0: never).
	MaxConnectionAge time.Duration `mapstructure:"max_connection_age"`
	TokenEnv         string        `mapstructure:"token_env"`
	TokenFile        string        `mapstructure:"token_file"`
	// TokenGrace is how long, after a process sees the token file change,
	// the previous token still works: the service accepts it, and the
	// gateway sends it beside the new one, so that processes that see the
	// new file at different moments keep talking. 0: the old token stops
	// at once (a compromised token).
	TokenGrace time.Duration `mapstructure:"token_grace"`
	TLSCert    string        `mapstructure:"tls_cert"`
	TLSKey     string        `mapstructure:"tls_key"`
	TLSCA      string        `mapstructure:"tls_ca"`
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
	// Token is the value at load time; TokenSecret follows the file (nil
	// when no key sets it). CurrentTokens reads whichever is set.
	Token       string  `mapstructure:"-"`
	TokenSecret *Secret `mapstructure:"-"`
}

// CurrentTokens are the service token now and, within TokenGrace of a
// rotation, the one it replaced ("" otherwise).
func (a Approach2Config) CurrentTokens() (current, previous string) {
	if a.TokenSecret != nil {
		return a.TokenSecret.Value(), a.TokenSecret.Previous(a.TokenGrace)
	}
	return a.Token, ""
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
	if a.ReadTimeout < 0 || a.WriteSlack < 0 || a.Breaker.Interval < 0 || a.Breaker.OpenFor < 0 || a.TokenGrace < 0 {
		return fmt.Errorf("approach2: read_timeout, write_slack, token_grace, breaker.interval and breaker.open_for must not be negative")
	}
	if a.Breaker.FailureRatio < 0 || a.Breaker.FailureRatio > 1 {
		return fmt.Errorf("approach2.breaker.failure_ratio: %g is not between 0 and 1", a.Breaker.FailureRatio)
	}
	if a.DrainDelay < 0 {
		return fmt.Errorf("approach2.drain_delay: %s is negative", a.DrainDelay)
	}
	if a.DrainTimeout < 0 {
		return fmt.Errorf("approach2.drain_timeout: %s is negative", a.DrainTimeout)
	}
	if a.MaxConnectionAge < 0 || (a.MaxConnectionAge > 0 && a.MaxConnectionAge < time.Second) {
		return fmt.Errorf("approach2.max_connection_age: %s must be 0 (never) or at least 1s", a.MaxConnectionAge)
	}
	if err := a.checkDialTargets(); err != nil {
		return err
	}
	return nil
}

// NeedApproach2 checks what using the Approach 2 service requires.
func (c *Config) NeedApproach2() error {
	a := c.Approach2
	if a.Token == "" {
		return fmt.Errorf("approach2.token_env: environment variable %s (the service token) is not set, and approach2.token_file is not set", a.TokenEnv)
	}
	for key, addr := range map[string]string{"approach2.listen": a.Listen, "approach2.admin": a.Admin} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s: %q is not host:port", key, addr)
		}
	}
	if err := a.checkDialTargets(); err != nil {
		return err
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
		return fmt.Errorf("postgres.dsn_env: environment variable %s (the journal's PostgreSQL DSN) is not set, and postgres.dsn_file is not set", c.Postgres.DSNEnv)
	}
	p := c.Sandbox.Pool
	if p.MaxSize < 1 || p.MinIdle < 0 || p.MinIdle > p.MaxSize || p.MaxQueue < 0 || p.AcquireTimeout <= 0 {
		return fmt.Errorf("sandbox.pool: need 0 <= min_idle <= max_size, max_size >= 1, max_queue >= 0, acquire_timeout > 0")
	}
	if c.Redis.Configured() && c.Redis.LockTTL < time.Second {
		return fmt.Errorf("redis.lock_ttl: %s is shorter than one second", c.Redis.LockTTL)
	}
	return nil
}

// DefaultTarget is where the gateway dials the service when neither
// approach2.target nor approach2.targets is set: the service's default
// approach2.listen.
const DefaultTarget = "127.0.0.1:7430"

// DialTargets returns where the gateway dials the service: Targets when
// set, else Target, else DefaultTarget.
func (a Approach2Config) DialTargets() []string {
	switch {
	case len(a.Targets) > 0:
		return a.Targets
	case a.Target != "":
		return []string{a.Target}
	}
	return []string{DefaultTarget}
}

// DefaultDrainTimeout is the bound on a stopping service's calls in
// flight when approach2.drain_timeout is 0.
const DefaultDrainTimeout = 15 * time.Second

// DrainBound returns how long a stopping service waits for its calls in
// flight: DrainTimeout, or DefaultDrainTimeout when it is 0.
func (a Approach2Config) DrainBound() time.Duration {
	if a.DrainTimeout <= 0 {
		return DefaultDrainTimeout
	}
	return a.DrainTimeout
}

// targetSchemes are the gRPC resolver schemes approach2.target may name,
// with the form of their endpoint.
var targetSchemes = map[string]string{
	"dns":         "host:port",
	"passthrough": "host:port",
	"unix":        "a socket path",
}

// checkDialTargets checks approach2.target and approach2.targets: at most
// one set; every entry of targets a distinct host:port; target host:port or
// a gRPC target URI of a scheme in targetSchemes.
func (a Approach2Config) checkDialTargets() error {
	if a.Target != "" && len(a.Targets) > 0 {
		return fmt.Errorf("approach2.target and approach2.targets are both set: set target for one service (or a gRPC target URI such as dns:///name:port), targets for several")
	}
	seen := map[string]bool{}
	for i, t := range a.Targets {
		if err := checkHostPort(t); err != nil {
			return fmt.Errorf("approach2.targets[%d]: %q %w", i, t, err)
		}
		if seen[t] {
			return fmt.Errorf("approach2.targets[%d]: %q is listed twice", i, t)
		}
		seen[t] = true
	}
	if a.Target == "" {
		return nil
	}
	if err := checkTarget(a.Target); err != nil {
		return fmt.Errorf("approach2.target: %q %w", a.Target, err)
	}
	return nil
}

// checkTarget checks a gRPC target: host:port, or scheme:[//authority]/endpoint
// with a scheme of targetSchemes.
func checkTarget(t string) error {
	scheme, _, isURI := strings.Cut(t, ":")
	if _, known := targetSchemes[scheme]; !isURI || !known {
		if strings.Contains(t, "://") {
			return fmt.Errorf("is not host:port nor a gRPC target URI of a supported scheme (%s)", strings.Join(slices.Sorted(maps.Keys(targetSchemes)), ", "))
		}
		return checkHostPort(t)
	}
	u, err := url.Parse(t)
	if err != nil {
		return fmt.Errorf("is not a valid gRPC target URI: %w", err)
	}
	endpoint := strings.TrimPrefix(u.Path, "/")
	if u.Opaque != "" {
		endpoint = u.Opaque
	}
	if scheme == "unix" {
		if endpoint == "" {
			return fmt.Errorf("names no socket path (unix:///absolute/path or unix:relative/path)")
		}
		return nil
	}
	if err := checkHostPort(endpoint); err != nil {
		return fmt.Errorf("names the endpoint %q, which %w (e.g. %s:///gitgate-backend.gitgate.svc:7430)", endpoint, err, scheme)
	}
	return nil
}

// checkHostPort checks an address of the form host:port (port 1-65535).
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("is not host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("is not host:port (port %q is not 1-65535)", port)
	}
	return nil
}
