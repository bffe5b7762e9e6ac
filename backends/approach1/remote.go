package approach1

import (
	"context"
	"strings"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// RemoteRef returns the commit ref points to on a repository of principal's
// project ("" when the ref does not exist), asking the remote itself with
// git ls-remote in one of the project's sandboxes. Crash recovery uses it to
// learn whether an interrupted push landed.
func (e *Executor) RemoteRef(ctx context.Context, p backends.Principal, url, ref string) (string, error) {
	remote, u, err := e.remoteFor(p, url)
	if err != nil {
		return "", err
	}
	owner := sandbox.Owner{Project: p.Project}
	if e.cfg.PerAgent {
		owner.Agent = p.Agent
	}
	info, done, err := e.cfg.Sandboxes.Acquire(ctx, owner)
	if err != nil {
		return "", err
	}
	defer done()
	inv := gitcmd.Invocation{Args: []string{"ls-remote", "--", u, ref}, Remote: remote}
	res, err := e.exec(ctx, info.ID, info.Root, gitRun{op: "ls_remote", remote: remote}, inv)
	if err == nil && res.ExitCode != 0 {
		err = gitError(res, info.Root)
	}
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		if sha, name, ok := strings.Cut(line, "\t"); ok && name == ref {
			return sha, nil
		}
	}
	return "", nil
}
