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
// Its owner as this Provider knows it (Lookup, Find) is the new one at
// once.
//
// For a sandbox this Provider created (a warm sandbox of this process's
// pool), the owner file is not uploaded now, which would cost the owner's
// first operation a round trip of its own: it is queued, and the next
// command carries it in the upload sent beside its start (see run), whose
// wrapper starts the program only once the whole upload is there. So the
// file is in the sandbox before any command runs there after RecordOwner,
// and so before anything of the owner is: until its first command, the
// sandbox holds nothing of the owner (a seed is nobody's), and nothing is
// lost if this process ends before it (the sandbox is found by no owner, as
// an idle one). Meanwhile no other process can hand the sandbox out: pools
// never take another process's sandboxes. The file stays queued, sent
// with every command, until an upload carrying it succeeded (writing it
// again is harmless); neither the wrapper nor the removal of a failed
// call's uploads removes it.
//
// Any other sandbox (one of another process, or of this process before a
// restart) gets the file at once.
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
	if !k.madeHere {
		if err := p.envd(k).Upload(ctx, p.ownerPath(), data); err != nil {
			return p.check(id, err)
		}
	}
	k.info.Owner = owner
	p.mu.Lock()
	p.known[id] = k
	if k.madeHere {
		p.unsentOwner[id] = &ownerUpload{data: data}
	}
	p.mu.Unlock()
	return nil
}

// ownerUpload is an owner file RecordOwner queued for the next command.
type ownerUpload struct{ data []byte }

func (p *Provider) ownerPath() string { return p.cfg.Root + "/" + ownerFile }

// ownerToSend returns the owner file queued for sandbox id, or nil.
func (p *Provider) ownerToSend(id string) *ownerUpload {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unsentOwner[id]
}

// ownerSent unqueues u, uploaded to sandbox id (unless RecordOwner
// queued another since).
func (p *Provider) ownerSent(id string, u *ownerUpload) {
	if u == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.unsentOwner[id] == u {
		delete(p.unsentOwner, id)
	}
}

// recordedOwner reads the owner recorded in sandbox k ("" project when
// none was).
func (p *Provider) recordedOwner(ctx context.Context, k known) sandbox.Owner {
	data, _, err := p.envd(k).Download(ctx, p.ownerPath(), 0, 4096)
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
		// Idle when last seen: another process may have handed it out
		// since, unless it is an idle one of this process's pool (made
		// here, and RecordOwner not called for it).
		if k.info.Owner.Project == "" && !k.madeHere {
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
