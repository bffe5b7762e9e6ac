package approach1

import (
	"context"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// predictForkWorkspace expects the new workspace on the new branch at the
// commit the start point names in the source, with origin's URL and the
// remote-tracking refs (and tags) of the source, in the source's sandbox.
// It reads both workspaces without locks and changes nothing. The source
// must not have moved since the fork: the fork recorded the source's write
// count (forkRecord), and a source written since (or released, or
// restored elsewhere) makes the prediction stale rather than a mismatch.
func (e *Executor) predictForkWorkspace(ctx context.Context, r *backends.ForkWorkspaceRequest, res *backends.ForkWorkspaceResult) (*backends.Prediction, error) {
	_, sk, err := e.forkKeys(r)
	if err != nil {
		return nil, err
	}
	if !isObjectID(res.Head) {
		return nil, backends.Errorf(backends.InvalidArgument, "the primary's fork result does not name a commit")
	}
	w, branch, head, err := e.openAtHead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if branch != res.Branch || head != res.Head {
		return stale("the new workspace moved on from the fork"), nil
	}
	data, err := e.readGitFile(ctx, w.Binding, forkRecord)
	if backends.CategoryOf(err) == backends.NotFound {
		return stale("the new workspace holds no record of its fork (it was restored into another sandbox since)"), nil
	}
	if err != nil {
		return nil, err
	}
	recSource, recWrites, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	sb, ok, err := e.cfg.Bindings.Get(ctx, sk)
	if err != nil {
		return nil, backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
	}
	moved := func() bool {
		now, ok, err := e.cfg.Bindings.Get(ctx, sk)
		return err != nil || !ok || strconv.FormatUint(now.Writes, 10) != recWrites
	}
	if !ok || sb.Shelf != "" || strconv.FormatUint(sb.Writes, 10) != recWrites {
		return stale("the source workspace was written to, released or restored since the fork"), nil
	}
	done, alive := e.cfg.Sandboxes.Use(ctx, sb.SandboxID)
	if !alive {
		return stale("the source workspace's sandbox is gone"), nil
	}
	defer done()
	start := r.StartPoint
	if start == "" {
		start = "HEAD"
	}
	out, err := e.predictRun(ctx, sb, nil, gitRun{args: []string{"rev-parse", "--verify", "--quiet", "--end-of-options", start + "^{commit}"}, noTree: true})
	if err != nil {
		return nil, err
	}
	srcRefs, err := e.forkRefs(ctx, sb)
	if err != nil {
		return nil, err
	}
	forkRefs, err := e.forkRefs(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	forkURL, err := e.predictRun(ctx, w.Binding, nil, gitRun{args: []string{"config", "--get", "remote.origin.url"}, noTree: true})
	if err != nil {
		return nil, err
	}
	branches, err := e.predictRun(ctx, w.Binding, nil, gitRun{args: []string{"for-each-ref", "--format=%(refname)", "refs/heads/"}, noTree: true})
	if err != nil {
		return nil, err
	}
	expected := map[string]string{
		"workspace": r.Workspace, "source": r.Source, "sandbox": sb.SandboxID,
		"branch": r.Branch, "branches": "refs/heads/" + r.Branch, "head": firstLine(out.Stdout),
		"origin_url": sb.URL, "binding_url": sb.URL,
		"remote_tracking": srcRefs.tracking, "tags": srcRefs.tags,
	}
	found := map[string]string{
		"workspace": res.Workspace, "source": recSource, "sandbox": w.SandboxID,
		"branch": res.Branch, "branches": strings.Join(strings.Fields(string(branches.Stdout)), " "), "head": res.Head,
		"origin_url": firstLine(forkURL.Stdout), "binding_url": w.URL,
		"remote_tracking": forkRefs.tracking, "tags": forkRefs.tags,
	}
	if moved() {
		return stale("the source workspace was written to while the prediction was made"), nil
	}
	return e.unlessMoved(ctx, w.Binding, head, expected, found)
}

// forkRefs is a workspace's remote-tracking refs and tags, each as a
// digest of their names and targets (symbolic refs with their target).
type forkRefs struct{ tracking, tags string }

func (e *Executor) forkRefs(ctx context.Context, b sandbox.Binding) (forkRefs, error) {
	var d forkRefs
	for _, part := range []struct {
		prefix string
		into   *string
	}{{"refs/remotes/origin/", &d.tracking}, {"refs/tags/", &d.tags}} {
		args := []string{"for-each-ref", "--format=%(refname) %(objectname) %(symref)", part.prefix}
		out, err := e.predictRun(ctx, b, nil, gitRun{args: args, noTree: true})
		if err != nil {
			return d, err
		}
		if out.ExitCode != 0 {
			return d, gitError(out, b.Root)
		}
		*part.into = forkDigest(out.Stdout)
	}
	return d, nil
}

// forkDigest summarises a for-each-ref listing: its count and a hash, so that
// a mismatch shows in a short value.
func forkDigest(listing []byte) string {
	lines := strings.Count(string(listing), "\n")
	return strconv.Itoa(lines) + " refs, sha256 " + sha256Hex(listing)[:16]
}
