package approach1

import (
	"context"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/relay"
)

// RelayConfig is the git relay remote commands go through.
type RelayConfig struct {
	// Store keeps the capabilities: the relay that serves the sandboxes
	// reads the same one. Required.
	Store relay.Store
	// URL is the relay's base URL as the sandboxes reach it (loopback for
	// local sandboxes, relay.public_url for E2B). Required.
	URL string
	// TTL is a capability's lifetime, a bound for an operation that never
	// ends; it is revoked as soon as its command does. If zero, the
	// remote timeout and a minute.
	TTL time.Duration
	// Meter is the relay's tally of each capability's bytes (the relay of
	// this process shares it); with EgressUSDPerGiB, a command's transfer
	// is priced into its call's cost.
	Meter           *relay.Meter
	EgressUSDPerGiB float64
}

// remoteCredential is inv's remote as its command in sandbox id (whose
// root is root) gets it, and what to do when the command ends: through the
// relay, a capability for this command and never the token; without it,
// the token as a file, read by the credential helper, that leaves the
// sandbox with the command (credentialFile).
func (e *Executor) remoteCredential(ctx context.Context, workspace, id, root string, inv gitcmd.Invocation) (*gitcmd.Remote, func(), error) {
	remote, forget, relayed, err := e.relayRemote(ctx, workspace, inv)
	if err != nil || relayed {
		return remote, forget, err
	}
	return e.credentialFile(ctx, id, root, inv.Remote)
}

// relayRemote returns remote routed through the relay with a capability
// minted for inv's one command (a push, or a fetch: clone, fetch, pull,
// ls-remote; always a fetch for a shadow prediction), and the function
// that revokes it. Without a relay, or for a remote with no project or URL
// (a seed from a public URL), it returns remote and nothing to revoke.
func (e *Executor) relayRemote(ctx context.Context, workspace string, inv gitcmd.Invocation) (*gitcmd.Remote, func(), bool, error) {
	rc, remote := e.cfg.Relay, inv.Remote
	if rc == nil || remote == nil || remote.URL == "" || remote.Project == "" {
		return remote, func() {}, false, nil
	}
	c := relay.Capability{Project: remote.Project, Workspace: workspace, Agent: factsOf(ctx).who().Agent, Remote: remote.URL, Dir: relay.Fetch}
	if len(inv.Args) > 0 && inv.Args[0] == "push" && !backends.IsShadow(ctx) {
		c.Dir, c.Refs = relay.Push, pushRefs(inv.Args)
	}
	// The wire carries at most what the workspace's git directory may
	// hold (the transfer's pack is kept as it arrives).
	if repoMax, _ := e.sizeLimits(remote.Project); repoMax > 0 {
		c.MaxBytes = repoMax
	} else {
		c.MaxBytes = -1
	}
	ttl := rc.TTL
	if ttl <= 0 {
		ttl = e.cfg.Limits.RemoteTimeout + time.Minute
	}
	secret, revoke, err := relay.Mint(ctx, rc.Store, c, ttl)
	if err != nil {
		return nil, nil, false, backends.Errorf(backends.Unavailable, "the git relay cannot take a capability: %v", err)
	}
	routed := *remote
	routed.Token, routed.TokenFile, routed.Relay = "", "", relay.URL(rc.URL, secret)
	return &routed, func() {
		if err := revoke(context.WithoutCancel(ctx)); err != nil {
			e.cfg.Logger.Warn("revoking a relay capability failed; it expires by itself", "err", err)
		}
		if n := rc.Meter.Take(secret); n > 0 && rc.EgressUSDPerGiB > 0 {
			factsOf(ctx).addCost(float64(n) / (1 << 30) * rc.EgressUSDPerGiB)
		}
	}, true, nil
}

// pushRefs are the destination refs of a push command's refspecs
// ("src:dst" after the remote's name).
func pushRefs(args []string) []string {
	var refs []string
	for _, a := range args[1:] {
		if strings.HasPrefix(a, "-") {
			continue
		}
		if _, dst, ok := strings.Cut(a, ":"); ok && strings.HasPrefix(dst, "refs/") {
			refs = append(refs, dst)
		}
	}
	return refs
}
