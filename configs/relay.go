package configs

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// RelayConfig is the git relay (backends/relay; gitgate.yaml's relay
// section): a listener of the gateway and of the Approach 2 service that
// holds the projects' tokens, so that git in a sandbox gets a capability
// for each remote command instead of the token.
type RelayConfig struct {
	// Listen is where the relay listens ("": no relay, and the token
	// reaches git per command: as an environment variable of the credential
	// helper for local sandboxes, as a file in E2B sandboxes).
	Listen string `mapstructure:"listen"`
	// PublicURL is the relay's URL as the sandboxes reach it (E2B
	// sandboxes need one, with TLS terminated in front of the gateway:
	// https://git-relay.example.com). "": http://<listen>, which local
	// sandboxes reach; E2B sandboxes then keep the token-per-command mode,
	// with a warning at start.
	PublicURL string `mapstructure:"public_url"`
	// ServiceListen and ServicePublicURL are the same for the Approach 2
	// service's own relay (its engine's sandboxes); "": the service gives
	// its git the token per command.
	ServiceListen    string `mapstructure:"service_listen"`
	ServicePublicURL string `mapstructure:"service_public_url"`
	// CapabilityTTL bounds a capability's life (it is revoked when its
	// command ends). 0: limits.remote_timeout and a minute.
	CapabilityTTL time.Duration `mapstructure:"capability_ttl"`
	// EgressUSDPerGiB prices the bytes a call's git moved through the
	// relay (both ways) into the call's cost; 0: not priced.
	EgressUSDPerGiB float64 `mapstructure:"egress_usd_per_gib"`
}

// RelayEndpoint is where one process's relay listens and how its
// sandboxes reach it.
type RelayEndpoint struct {
	Listen, PublicURL string
	Key               string // the configuration key of Listen, for messages
}

// Gateway is the gateway's relay; Service the Approach 2 service's.
func (r RelayConfig) Gateway() RelayEndpoint {
	return RelayEndpoint{Listen: r.Listen, PublicURL: r.PublicURL, Key: "relay.listen"}
}

// Service is the Approach 2 service's relay.
func (r RelayConfig) Service() RelayEndpoint {
	return RelayEndpoint{Listen: r.ServiceListen, PublicURL: r.ServicePublicURL, Key: "relay.service_listen"}
}

// validateRelay checks the listen addresses and the public URLs.
func (c *Config) validateRelay() error {
	if c.Relay.CapabilityTTL < 0 {
		return fmt.Errorf("relay.capability_ttl: %s is negative", c.Relay.CapabilityTTL)
	}
	if c.Relay.EgressUSDPerGiB < 0 {
		return fmt.Errorf("relay.egress_usd_per_gib: %g is negative", c.Relay.EgressUSDPerGiB)
	}
	for _, e := range []struct {
		RelayEndpoint
		urlKey string
	}{{c.Relay.Gateway(), "relay.public_url"}, {c.Relay.Service(), "relay.service_public_url"}} {
		if e.Listen == "" {
			if e.PublicURL != "" {
				return fmt.Errorf("%s is set but %s is not: set %s to the address the relay listens on", e.urlKey, e.Key, e.Key)
			}
			continue
		}
		if _, _, err := net.SplitHostPort(e.Listen); err != nil {
			return fmt.Errorf("%s: %q is not host:port: %w", e.Key, e.Listen, err)
		}
		if e.PublicURL != "" {
			u, err := url.Parse(e.PublicURL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
				return fmt.Errorf("%s: %q is not an http(s) URL without credentials, query or fragment (https://git-relay.example.com)", e.urlKey, e.PublicURL)
			}
		}
	}
	return nil
}

// URL is the relay's URL as the sandboxes reach it: the public URL, or
// http://<listen address> (addr: the address the listener got, for a port
// 0).
func (e RelayEndpoint) URL(addr string) string {
	if e.PublicURL != "" {
		return strings.TrimSuffix(e.PublicURL, "/")
	}
	return "http://" + addr
}
