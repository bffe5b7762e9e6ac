package e2b

import (
	"context"
	"encoding/json"

	"github.com/gitgate/gitgate/backends/sandbox"
)

// E2B sets a sandbox's metadata at creation only. A warm sandbox of a pool
// is made before anyone owns it, so the owner it is handed to is recorded
// in the sandbox itself, in ownerFile under the root; Find and Lookup read
// it for sandboxes whose metadata names no project, so that a restarted
// process (or one whose bindings store lost its records) finds an owner's
// workspaces also in them.
const ownerFile = ".gitgate-owner.json"

var _ sandbox.OwnerRecorder = (*Provider)(nil)

// RecordOwner records the owner a sandbox made without one was handed to.
func (p *Provider) RecordOwner(ctx context.Context, id string, owner sandbox.Owner) error {
	k, err := p.lookup(ctx, id)
	if err != nil {
		return err
	}
	if k.info.Owner == owner {
		return nil // its metadata says so already
	}
	data, err := json.Marshal(owner)
	if err != nil {
		return err
	}
	if err := p.envd(k).Upload(ctx, p.cfg.Root+"/"+ownerFile, data); err != nil {
		return p.check(id, err)
	}
	k.info.Owner = owner
	p.mu.Lock()
	p.known[id] = k
	p.mu.Unlock()
	return nil
}

// recordedOwner reads the owner recorded in sandbox k ("" project when
// none was).
func (p *Provider) recordedOwner(ctx context.Context, k known) sandbox.Owner {
	data, _, err := p.envd(k).Download(ctx, p.cfg.Root+"/"+ownerFile, 0, 4096)
	if err != nil {
		return sandbox.Owner{}
	}
	var o sandbox.Owner
	if json.Unmarshal(data, &o) != nil {
		return sandbox.Owner{}
	}
	return o
}

// pooledFor returns the running sandboxes made without an owner (warm
// ones of a pool) that were handed to owner.
func (p *Provider) pooledFor(ctx context.Context, owner sandbox.Owner) ([]sandbox.Info, error) {
	listed, err := p.cfg.API.List(ctx, map[string]string{metaApp: "1"})
	if err != nil {
		return nil, err
	}
	var out []sandbox.Info
	for _, l := range listed {
		if l.Metadata[metaProject] != "" {
			continue
		}
		k, err := p.lookup(ctx, l.SandboxID)
		if err != nil {
			continue
		}
		if k.info.Owner.Project == "" { // idle when last seen: another process may have handed it out since
			if k.info.Owner = p.recordedOwner(ctx, k); k.info.Owner.Project != "" {
				p.mu.Lock()
				p.known[k.info.ID] = k
				p.mu.Unlock()
			}
		}
		if k.info.Owner != owner {
			continue
		}
		out = append(out, k.info)
	}
	return out, nil
}
