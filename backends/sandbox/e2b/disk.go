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

// DiskUsage measures the paths with one `du -s -B1 -l` in the sandbox (one
// envd round trip). A path that does not exist measures 0.
func (p *Provider) DiskUsage(ctx context.Context, id string, paths []string) ([]int64, error) {
	for _, x := range paths {
		if !strings.HasPrefix(x, p.cfg.Root+"/") && x != p.cfg.Root {
			return nil, backends.Errorf(backends.Internal, "e2b: disk use of %q, outside the sandbox's root", x)
		}
	}
	args := append([]string{"-s", "-B1", "-l", "--"}, paths...)
	res, err := p.Exec(ctx, id, sandbox.ExecRequest{Path: "/usr/bin/du", Args: args, Dir: "/", Timeout: 30 * time.Second})
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
