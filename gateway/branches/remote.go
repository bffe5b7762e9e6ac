package branches

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
)

// Project is what Git needs of a project to reach its remotes.
type Project struct {
	Remotes  gitcmd.RemotePolicy
	Username string // sent with Token; if empty, "x-access-token"
	Token    string // the project's git token; "" for anonymous access
}

// Git runs git on the host against projects' remotes, with each project's
// token handed to gitcmd's credential helper through the environment (never
// an argument, a URL or a log line), in scratch directories it deletes.
type Git struct {
	// Projects resolves a project's remotes and token. Required.
	Projects func(project string) (Project, bool)
	// GitPath is the host's git; if empty, "git" on PATH.
	GitPath string
	// Timeout bounds one command; if zero, two minutes.
	Timeout time.Duration
	// DefaultTTL is how long a remote's default branch is cached; if
	// zero, five minutes.
	DefaultTTL time.Duration

	mu       sync.Mutex
	defaults map[string]cachedDefault
}

type cachedDefault struct {
	branch string
	at     time.Time
}

// remote validates url for project and returns the invocation's remote.
func (g *Git) remote(project, url string) (*gitcmd.Remote, string, error) {
	p, ok := g.Projects(project)
	if !ok {
		return nil, "", backends.Errorf(backends.Forbidden, "project %q is not configured", project)
	}
	u, err := gitcmd.ValidateURL(url, p.Remotes)
	if err != nil {
		return nil, "", err
	}
	return &gitcmd.Remote{Schemes: p.Remotes.Schemes, CredentialHosts: []string{gitcmd.CredentialHost(u)},
		Username: p.Username, Token: p.Token}, u, nil
}

// scratch is a temporary bare repository on the host.
type scratch struct {
	g      *Git
	root   string
	remote *gitcmd.Remote
	url    string
	exit   int // the last command's exit status
}

// open makes a scratch repository for url of project; close removes it.
func (g *Git) open(ctx context.Context, project, url string) (*scratch, error) {
	remote, u, err := g.remote(project, url)
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "gitgate-branches-")
	if err != nil {
		return nil, fmt.Errorf("branches: %w", err)
	}
	s := &scratch{g: g, root: root, remote: remote, url: u}
	for _, d := range []string{"home", "tmp"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o700); err != nil {
			s.close()
			return nil, fmt.Errorf("branches: %w", err)
		}
	}
	if _, err := s.run(ctx, false, "init", "--bare", "--quiet", filepath.Join(root, "repo.git")); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *scratch) close() { _ = os.RemoveAll(s.root) }

// run runs one git command in the scratch repository (talking to the
// remote when remote is true) and returns its standard output.
func (s *scratch) run(ctx context.Context, remote bool, args ...string) (string, error) {
	inv := gitcmd.Invocation{Args: args}
	if len(args) > 0 && args[0] != "init" {
		inv.GitDir = filepath.Join(s.root, "repo.git")
	}
	if remote {
		inv.Remote = s.remote
	}
	cmd := gitcmd.Build(s.g.gitPath(), filepath.Join(s.root, "home"), filepath.Join(s.root, "tmp"), inv)
	ctx, cancel := context.WithTimeout(ctx, s.g.timeout())
	defer cancel()
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args...)
	c.Env, c.Dir = cmd.Env, s.root
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	s.exit = c.ProcessState.ExitCode()
	if err != nil {
		return stdout.String(), gitFailure(args[0], err, stderr.String())
	}
	return stdout.String(), nil
}

// gitFailure describes a failed command by its first line of stderr (git
// never prints the token: the helper hands it over on a pipe).
func gitFailure(sub string, err error, stderr string) error {
	line, _, _ := strings.Cut(strings.TrimSpace(stderr), "\n")
	if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
		return backends.Errorf(backends.Unavailable, "git %s on the remote failed: %s", sub, line)
	}
	return backends.Errorf(backends.Internal, "git %s: %v", sub, err)
}

func (g *Git) gitPath() string {
	if g.GitPath != "" {
		return g.GitPath
	}
	if p, err := exec.LookPath("git"); err == nil {
		return p
	}
	return gitcmd.DefaultGitPath
}

func (g *Git) timeout() time.Duration {
	if g.Timeout > 0 {
		return g.Timeout
	}
	return 2 * time.Minute
}

// Heads returns the remote's branches (name → tip) and its default branch
// ("" when it advertises none).
func (g *Git) Heads(ctx context.Context, project, url string) (heads map[string]string, defaultBranch string, err error) {
	s, err := g.open(ctx, project, url)
	if err != nil {
		return nil, "", err
	}
	defer s.close()
	return s.heads(ctx)
}

func (s *scratch) heads(ctx context.Context) (map[string]string, string, error) {
	out, err := s.run(ctx, true, "ls-remote", "--symref", "--", s.url, "HEAD", "refs/heads/*")
	if err != nil {
		return nil, "", err
	}
	heads, def := map[string]string{}, ""
	for _, line := range strings.Split(out, "\n") {
		left, name, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		if target, isSym := strings.CutPrefix(left, "ref: "); isSym && name == "HEAD" {
			def = strings.TrimPrefix(target, "refs/heads/")
		} else if b, isHead := strings.CutPrefix(name, "refs/heads/"); isHead {
			heads[b] = left
		}
	}
	return heads, def, nil
}

// DefaultBranch returns the remote's default branch, cached for
// DefaultTTL.
func (g *Git) DefaultBranch(ctx context.Context, project, url string) (string, error) {
	key := project + "\x00" + url
	ttl := g.DefaultTTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	g.mu.Lock()
	c, ok := g.defaults[key]
	g.mu.Unlock()
	if ok && time.Since(c.at) < ttl {
		return c.branch, nil
	}
	_, def, err := g.Heads(ctx, project, url)
	if err != nil {
		return "", err
	}
	g.mu.Lock()
	if g.defaults == nil {
		g.defaults = map[string]cachedDefault{}
	}
	g.defaults[key] = cachedDefault{branch: def, at: time.Now()}
	g.mu.Unlock()
	return def, nil
}

// fetch brings the commits of the remote's refs into the scratch
// repository (no local ref is updated).
func (s *scratch) fetch(ctx context.Context, refs ...string) error {
	args := append([]string{"fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", s.url}, refs...)
	_, err := s.run(ctx, true, args...)
	return err
}

// has reports whether the scratch repository holds commit.
func (s *scratch) has(ctx context.Context, commit string) bool {
	_, err := s.run(ctx, false, "cat-file", "-e", commit+"^{commit}")
	return err == nil
}

// isAncestor reports whether commit is an ancestor of (or equal to) tip.
func (s *scratch) isAncestor(ctx context.Context, commit, tip string) (bool, error) {
	_, err := s.run(ctx, false, "merge-base", "--is-ancestor", commit, tip)
	if err == nil {
		return true, nil
	}
	if s.exit == 1 { // not an ancestor; other failures exit with 128
		return false, nil
	}
	return false, err
}

// push runs an atomic push of refspecs, with leases ("ref:expected").
func (s *scratch) push(ctx context.Context, leases []string, refspecs ...string) error {
	args := []string{"push", "--porcelain", "--atomic"}
	for _, l := range leases {
		args = append(args, "--force-with-lease="+l)
	}
	args = append(append(args, "--", s.url), refspecs...)
	out, err := s.run(ctx, true, args...)
	for _, st := range gitcmd.ParsePush([]byte(out)) {
		if st.Flag == '!' {
			return backends.Errorf(backends.Conflict, "the remote refused %s: %s", st.Ref, st.Summary)
		}
	}
	return err
}
