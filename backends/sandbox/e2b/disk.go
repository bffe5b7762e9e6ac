package e2b

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// prlimitPath is util-linux's prlimit(1) (in E2B's Debian-based templates,
// as util-linux is essential there): it sets the command's file-size limit
// (ExecRequest.MaxFileBytes) and then becomes the command, so timeout(1)
// still runs the same process group.
const prlimitPath = "/usr/bin/prlimit"

var _ sandbox.DiskUser = (*Provider)(nil)

// DiskUsage measures each path with its own `du -s -B1` (hard links under
// the path counted once), all in one shell in the sandbox (one envd round
// trip): one du over several paths would count a file, or a nested path,
// only under the first path that reaches it. A path that does not exist
// measures 0.
func (p *Provider) DiskUsage(ctx context.Context, id string, paths []string) ([]int64, error) {
	for _, x := range paths {
		if !strings.HasPrefix(x, p.cfg.Root+"/") && x != p.cfg.Root {
			return nil, backends.Errorf(backends.Internal, "e2b: disk use of %q, outside the sandbox's root", x)
		}
	}
	args := append([]string{"-c", `for p do /usr/bin/du -s -B1 -- "$p"; done`, "sh"}, paths...)
	res, err := p.Exec(ctx, id, sandbox.ExecRequest{Path: "/bin/sh", Args: args, Dir: "/", Timeout: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(paths))
	found := 0
	for line := range strings.SplitSeq(string(res.Stdout), "\n") {
		size, path, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil {
			continue
		}
		for i, x := range paths {
			if x == path {
				out[i] = n
				found++
			}
		}
	}
	if res.ExitCode != 0 && found == 0 && !strings.Contains(string(res.Stderr), "No such file") {
		return nil, backends.Errorf(backends.Internal, "e2b: du failed: %s", strings.TrimSpace(string(res.Stderr)))
	}
	return out, nil
}
