package relay

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// remoteGraphTimeout bounds the relay's own fetch of a remote's commits.
const remoteGraphTimeout = 5 * time.Minute

// descendsOnRemote reports whether old is an ancestor of one of tips,
// commits the remote has, in the remote's history. The relay fetches the
// remote's branches and tags without trees or blobs (--filter=tree:0; a
// remote that does not filter sends everything) into a temporary
// repository of its own, on its own machine, with the token in that git's
// environment only, and asks git. It runs only when the pushed pack alone
// does not show the update to be a fast-forward (the commits were on the
// remote already, under another branch).
func (r *Relay) descendsOnRemote(ctx context.Context, c Capability, user, token, old string, tips []string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, remoteGraphTimeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "gitgate-relay-graph-")
	if err != nil {
		return false, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	scheme, _, _ := strings.Cut(c.Remote, "://")
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "LC_ALL=C", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/false", "GIT_ALLOW_PROTOCOL=" + strings.ToLower(scheme),
		"GIT_CONFIG_COUNT=2", "GIT_CONFIG_KEY_0=http.extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+token)),
		"GIT_CONFIG_KEY_1=credential.helper", "GIT_CONFIG_VALUE_1="}
	run := func(args ...string) (int, string, error) {
		cmd := exec.CommandContext(ctx, r.cfg.GitPath, append([]string{"--git-dir=" + dir}, args...)...)
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.CombinedOutput()
		if exit, ok := errors.AsType[*exec.ExitError](err); ok {
			return exit.ExitCode(), string(out), nil
		}
		return 0, string(out), err
	}
	if code, out, err := run("init", "--quiet", "--bare"); err != nil || code != 0 {
		return false, fmt.Errorf("git init: %s: %w", firstLine(out), exitErr(code, err))
	}
	code, out, err := run("fetch", "--quiet", "--no-tags", "--filter=tree:0", "--", c.Remote,
		"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
	if err != nil || code != 0 {
		return false, fmt.Errorf("reading the remote's history failed: %s: %w", firstLine(out), exitErr(code, err))
	}
	for _, tip := range tips {
		if !objectID(tip) || !objectID(old) {
			return false, errors.New("an object id is malformed")
		}
		code, out, err := run("merge-base", "--is-ancestor", old, tip)
		switch {
		case err != nil:
			return false, err
		case code == 0:
			return true, nil
		case code != 1:
			return false, fmt.Errorf("git merge-base exit %d: %s", code, firstLine(out))
		}
	}
	return false, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// exitErr is err, or a git exit code as an error.
func exitErr(code int, err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("git exit %d", code)
}
