package main

// The git relay (relay section): its listener, beside the MCP or gRPC one,
// and what the engine needs to send git through it.

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/relay"
	"github.com/gitgate/gitgate/configs"
	"github.com/prometheus/client_golang/prometheus"
)

// startRelay starts this process's relay (c: relay.listen for the
// gateway, relay.service_listen for the service) when it is set, and
// returns the engine's RelayConfig; nil when git gets the token per
// command instead (no relay, or E2B sandboxes without a public URL, with a
// warning).
func (a *base) startRelay(c configs.RelayEndpoint) (*approach1.RelayConfig, error) {
	e2bSandboxes := a.cfg.Sandbox.Provider == "e2b"
	if c.Listen == "" {
		if e2bSandboxes {
			a.log.Warn("no git relay (" + c.Key + "): each remote command puts the project's token in its E2B sandbox as a file, for as long as the command runs")
		}
		return nil, nil
	}
	if e2bSandboxes && c.PublicURL == "" {
		a.log.Warn("the relay has no public URL: E2B sandboxes cannot reach it at " + c.Key + ", so each remote command puts the project's token in its sandbox as a file (set the public URL to the relay's address behind TLS)")
		return nil, nil
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.Key, c.Listen, err)
	}
	var store relay.Store = relay.NewMemoryStore()
	if a.redis != nil {
		store = relay.RedisStore{Client: a.redis, Prefix: a.cfg.Redis.Prefix}
	}
	policy := a.cfg.BranchPolicy()
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gitgate_relay_bytes_total",
		Help: "Bytes relayed between git in the sandboxes and the remotes, by project and direction (in: from the sandboxes; out: to them)."},
		[]string{"project", "direction"})
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gitgate_relay_refused_total",
		Help: "Relay requests refused on the wire (a push the policy forbids, a fetch capability asked to push) or cut off at the size cap, by project and service."},
		[]string{"project", "service"})
	a.registry.MustRegister(bytes, refused)
	meter := relay.NewMeter()
	h, err := relay.New(relay.Config{Store: store, Logger: a.log, Meter: meter,
		Credentials: func(project string, dir relay.Direction) (string, string, bool) {
			p, ok := a.cfg.Projects[project]
			if !ok {
				return "", "", false
			}
			user := p.TokenUsername
			if user == "" {
				user = "x-access-token"
			}
			if dir == relay.Fetch && p.CurrentReadToken() != "" {
				return user, p.CurrentReadToken(), true
			}
			return user, p.CurrentToken(), true
		},
		Policy: func(cap relay.Capability, u relay.RefUpdate, defaultBranch string) error {
			branch, ok := strings.CutPrefix(u.Ref, "refs/heads/")
			if !ok {
				return nil // tags: the capability names them, and none is ever moved
			}
			_, err := policy.Rules(cap.Project).Check(cap.Project, cap.Agent, branch, defaultBranch)
			return err
		},
		Report: func(e relay.Event) {
			if e.Project == "" {
				return
			}
			bytes.WithLabelValues(e.Project, "in").Add(float64(e.In))
			bytes.WithLabelValues(e.Project, "out").Add(float64(e.Out))
			if e.Refused != "" || e.CutOff {
				refused.WithLabelValues(e.Project, e.Service).Inc()
				a.log.Warn("relay refused", "project", e.Project, "workspace", e.Workspace, "service", e.Service, "reason", e.Refused, "cut_off", e.CutOff)
			}
			for _, u := range e.Updates {
				a.log.Info("relay ref update", "project", e.Project, "workspace", e.Workspace, "ref", u.Ref, "old", u.Old, "new", u.New,
					"refused", e.Refused != "", "remote_status", e.Status)
			}
		}})
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	srv := newHTTPServer(h, a.log)
	go func() { _ = srv.Serve(ln) }()
	a.closers = append(a.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
	})
	url := c.URL(ln.Addr().String())
	a.log.Info("git relay listening", "listen", ln.Addr().String(), "url", url)
	return &approach1.RelayConfig{Store: store, URL: url, TTL: a.cfg.Relay.CapabilityTTL, Meter: meter,
		EgressUSDPerGiB: a.cfg.Relay.EgressUSDPerGiB}, nil
}
