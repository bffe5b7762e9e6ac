package approach1

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// Seeds: warm sandboxes that hold a clone of a repository before any agent
// asks for it.
//
// A warm pool (sandbox.Pool) may be given seed repositories: Seeds returns
// the pool's Prepare, which clones each seed URL into every new idle
// sandbox — without any credential (public repositories, or a remote that
// lets anyone read), before the sandbox has an owner — in the layout of a
// workspace (a git directory and its work tree) under the sandbox's
// "seed" directory, where no workspace can be: workspaces live under "git"
// and "ws", which listing, recovery and the orphan sweep look at. A seed
// that fails is logged and left out; the sandbox is ready all the same.
// The executor records what each sandbox holds (seedSet).
//
// A clone of a seeded URL into such a sandbox, without depth or branch,
// moves the seed into the workspace's place (two renames: the git
// directory records no path of its own) and fetches with the agent's
// credential (cloneFromSeed, seed_clone.go): that fetch is what proves the
// agent may read the repository. Anything short of a whole workspace
// within the project's size limits — a refusal, a seed gone, a size limit
// — removes what the attempt made and runs the normal clone, which gives
// the agent exactly the answer a clone without seeds gives.

// seedSet is an executor's seeds: the URLs it plants in warm sandboxes,
// and the seeds each sandbox holds. A sandbox's seeds are known to the
// process that planted them only; another process clones from scratch.
type seedSet struct {
	urls map[string]bool // normalised

	mu      sync.Mutex
	planted map[string]map[string]string // sandbox id → URL → seed name, until taken
}

func (e *Executor) seedSet() *seedSet { return e.seeds.Load() }

// planted records that sandbox id holds seed name of URL u.
func (s *seedSet) plant(id, u, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.planted[id] == nil {
		s.planted[id] = map[string]string{}
	}
	s.planted[id][u] = name
}

// take returns the name of sandbox id's seed of URL u, once: a seed is
// taken by one clone (moved into its workspace, or spoilt trying).
func (s *seedSet) take(id, u string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, ok := s.planted[id][u]
	if ok {
		delete(s.planted[id], u)
		if len(s.planted[id]) == 0 {
			delete(s.planted, id)
		}
	}
	return name, ok
}

// Seeds returns the preparation of a warm pool's new sandboxes
// (sandbox.PoolConfig.Prepare) that clones each of urls into them, and
// makes the executor's clones of those URLs start from these seeds. The
// URLs must be http(s) repository URLs without credentials; they are
// normalised as a project's clone URL is, so that a clone finds the seed
// of the URL it names.
func (e *Executor) Seeds(urls []string) (func(context.Context, sandbox.Info) (sandbox.Info, error), error) {
	set := &seedSet{urls: map[string]bool{}, planted: map[string]map[string]string{}}
	var seeds []string
	for _, raw := range urls {
		u, err := seedURL(raw)
		if err != nil {
			return nil, fmt.Errorf("seed repository %q: %w", raw, err)
		}
		if !set.urls[u] {
			set.urls[u] = true
			seeds = append(seeds, u)
		}
	}
	e.seeds.Store(set)
	return func(ctx context.Context, info sandbox.Info) (sandbox.Info, error) {
		return info, e.plant(ctx, set, info, seeds)
	}, nil
}

// seedURL normalises a seed's URL the way gitcmd.ValidateURL normalises
// a clone's (the project's policy then decides whether an agent may clone
// it at all).
func seedURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", errors.New("a seed repository must be an https (or http) URL")
	}
	return gitcmd.ValidateURL(raw, gitcmd.RemotePolicy{Schemes: []string{scheme}, Hosts: []string{strings.ToLower(u.Host)}})
}

// seedName names the seed of URL u in a sandbox: a digest of it.
func seedName(u string) string {
	sum := sha256.Sum256([]byte(u))
	return hex.EncodeToString(sum[:8])
}

// seedGitDir and seedWorkTree are where seed name lies in a sandbox whose
// Root is root: beside the workspaces, never among them.
func seedGitDir(root, name string) string   { return root + "/seed/git/" + name + ".git" }
func seedWorkTree(root, name string) string { return root + "/seed/ws/" + name }

// plant clones urls into the new, ownerless sandbox info and records the
// seeds that succeeded in set. Only a sandbox gone (or the pool stopping)
// fails it.
func (e *Executor) plant(ctx context.Context, set *seedSet, info sandbox.Info, urls []string) error {
	for _, u := range urls {
		name := seedName(u)
		err := e.cloneSeed(ctx, info, u, name)
		if errors.Is(err, sandbox.ErrGone) || ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		}
		if err != nil {
			e.cfg.Logger.Warn("seed repository not cloned into a warm sandbox; clones of it there start from scratch",
				"url", u, "sandbox", info.ID, "err", err)
			continue
		}
		set.plant(info.ID, u, name)
	}
	return nil
}

// seedCloneScript clones (the command after its first two arguments) into
// the git directory $1 and the work tree $2, and removes the ".git" file
// clone leaves in the work tree; when the clone fails, or the repository
// is empty (nothing to start from: exit 3), it removes both.
const seedCloneScript = `set -u
g=$1 w=$2; shift 2
/bin/mkdir -p -- "${g%/*}" "${w%/*}" || exit 1
/bin/rm -rf -- "$g" "$w"
"$@" || { s=$?; /bin/rm -rf -- "$g" "$w"; exit $s; }
/bin/rm -f -- "$w/.git"
if [ -z "$(/bin/ls -A -- "$w")" ]; then /bin/rm -rf -- "$g" "$w"; exit 3; fi
`

// cloneSeed clones URL u, with no credential, into seed name of sandbox
// info, in one command, no file of it larger than the default sandbox
// limit (the project's limits apply when a clone takes the seed).
func (e *Executor) cloneSeed(ctx context.Context, info sandbox.Info, u, name string) error {
	scheme, _, _ := strings.Cut(u, "://")
	g, w := seedGitDir(info.Root, name), seedWorkTree(info.Root, name)
	inv := gitcmd.Invocation{Args: []string{"clone", "--no-recurse-submodules", "--separate-git-dir=" + g, "--", u, w},
		Remote: &gitcmd.Remote{Schemes: []string{scheme}}}
	cmd := gitcmd.Build(e.cfg.GitPath, info.Root+"/home", info.Root+"/tmp", inv)
	req := sandbox.ExecRequest{Path: "/bin/sh", Args: append([]string{"-c", seedCloneScript, "sh", g, w, cmd.Path}, cmd.Args...),
		Env: cmd.Env, Dir: info.Root, Timeout: e.cfg.Limits.RemoteTimeout, MaxFileBytes: e.cfg.Limits.MaxSandboxBytes}
	res, err := e.cfg.Sandboxes.Provider().Exec(ctx, info.ID, req)
	switch {
	case err != nil:
		return err
	case res.ExitCode == 3:
		return errors.New("the repository is empty")
	case res.ExitCode != 0:
		return gitError(res, info.Root)
	}
	// The index is refreshed now, off any agent's time, as finishClone does
	// after a clone: a seed taken unchanged needs no refresh then (moving
	// its directories changes no file's stat data).
	refresh := gitcmd.Build(e.cfg.GitPath, info.Root+"/home", info.Root+"/tmp", gitcmd.Invocation{GitDir: g, WorkTree: w, Args: []string{"update-index", "-q", "--refresh"}})
	res, err = e.cfg.Sandboxes.Provider().Exec(ctx, info.ID, sandbox.ExecRequest{Path: refresh.Path, Args: refresh.Args, Env: refresh.Env, Dir: info.Root, Timeout: e.cfg.Limits.CommandTimeout})
	if err == nil && res.ExitCode != 0 {
		err = gitError(res, info.Root) // not planted: clones of it run from scratch
	}
	return err
}
