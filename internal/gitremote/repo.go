package gitremote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Identity and time of every commit this package makes. The time is fixed so
// that the same inputs always yield the same commit IDs.
const (
	commitName  = "gitgate demo"
	commitEmail = "demo@gitgate.invalid"
	commitDate  = "@1704067200 +0000" // 2024-01-01T00:00:00Z
)

// ErrInvalidName is returned (wrapped) for a repository name that does not
// match ^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$ or contains "..".
var ErrInvalidName = errors.New("gitremote: invalid repository name")

// ErrInvalidPath is returned (wrapped) for a file path that is empty,
// absolute, contains NUL or an empty, ".", ".." or ".git" component.
var ErrInvalidPath = errors.New("gitremote: invalid file path")

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

func validName(name string) bool {
	return nameRE.MatchString(name) && !strings.Contains(name, "..")
}

// repoDir returns the directory of existing repository name. A missing repo
// yields an error wrapping fs.ErrNotExist.
func (s *Server) repoDir(name string) (string, error) {
	if !validName(name) {
		return "", fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	dir := filepath.Join(s.cfg.Root, name+".git")
	fi, err := os.Lstat(dir) // Lstat: a symlink must not lead out of Root
	if err == nil && !fi.IsDir() {
		err = fs.ErrNotExist
	}
	if err != nil {
		return "", fmt.Errorf("gitremote: repository %q: %w", name, err)
	}
	return dir, nil
}

// lockRepo locks the per-repository mutex and returns its unlock function.
func (s *Server) lockRepo(name string) (unlock func()) {
	s.mu.Lock()
	m := s.repoMu[name]
	if m == nil {
		m = new(sync.Mutex)
		s.repoMu[name] = m
	}
	s.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// CreateRepo creates Root/<name>.git as a bare repository whose default
// branch is "main". If files (path → content) is non-empty, it also makes one
// initial commit on main holding them, authored by
// "gitgate demo <demo@gitgate.invalid>" at a fixed date, so the commit ID is
// deterministic. Paths may contain "/" for subdirectories. It fails, wrapping
// fs.ErrExist, if the repository already exists.
func (s *Server) CreateRepo(ctx context.Context, name string, files map[string]string) error {
	if !validName(name) {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	if err := checkPaths(files); err != nil {
		return err
	}
	defer s.lockRepo(name)()
	dir := filepath.Join(s.cfg.Root, name+".git")
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("gitremote: create repository %q: %w", name, errors.Join(fs.ErrExist, err))
	}
	if _, err := s.git("").run(ctx, nil, "init", "--quiet", "--bare", "--initial-branch=main", "--", dir); err != nil {
		return fmt.Errorf("gitremote: create repository %q: %w", name, err)
	}
	if len(files) == 0 {
		return nil
	}
	if _, err := s.commit(ctx, dir, "refs/heads/main", "", files, "Initial commit"); err != nil {
		return fmt.Errorf("gitremote: create repository %q: %w", name, errors.Join(err, os.RemoveAll(dir)))
	}
	return nil
}

// CommitFile commits directly in bare repository repo, on branch, a change
// setting path to content, as if someone else had pushed. The parent is the
// branch's current tip; if the branch does not exist, a root commit creates
// it. An empty message defaults to "Update <path>". It returns the new
// commit ID. The branch moves only if nobody pushed to it meanwhile.
func (s *Server) CommitFile(ctx context.Context, repo, branch, path, content, message string) (sha string, err error) {
	dir, err := s.repoDir(repo)
	if err != nil {
		return "", err
	}
	files := map[string]string{path: content}
	if err := checkPaths(files); err != nil {
		return "", err
	}
	ref := "refs/heads/" + branch
	defer s.lockRepo(repo)()
	if _, err := s.git(dir).run(ctx, nil, "check-ref-format", ref); err != nil {
		return "", fmt.Errorf("gitremote: invalid branch name %q: %w", branch, err)
	}
	if message == "" {
		message = "Update " + path
	}
	parent, err := s.ref(ctx, dir, ref)
	if err == nil {
		sha, err = s.commit(ctx, dir, ref, parent, files, message)
	}
	if err != nil {
		return "", fmt.Errorf("gitremote: commit %s to %s@%s: %w", path, repo, branch, err)
	}
	return sha, nil
}

// Ref returns the object ID that ref (e.g. "refs/heads/main") points to in
// repository repo, or "" if the ref does not exist.
func (s *Server) Ref(ctx context.Context, repo, ref string) (sha string, err error) {
	dir, err := s.repoDir(repo)
	if err != nil {
		return "", err
	}
	defer s.lockRepo(repo)()
	sha, err = s.ref(ctx, dir, ref)
	if err != nil {
		return "", fmt.Errorf("gitremote: read %s in %s: %w", ref, repo, err)
	}
	return sha, nil
}

// ref resolves ref in the bare repository at dir; "" if it does not exist.
func (s *Server) ref(ctx context.Context, dir, ref string) (string, error) {
	out, err := s.git(dir).run(ctx, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", ref)
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() == 1 && out == "" {
		return "", nil // --quiet --verify: exit 1 means "no such ref"
	}
	return out, err
}

// commit writes a commit whose tree is parent's tree (empty if parent is "")
// with files set, then moves ref to it, but only if ref still points to
// parent (or, for parent "", does not exist yet).
func (s *Server) commit(ctx context.Context, dir, ref, parent string, files map[string]string, msg string) (string, error) {
	g := s.git(dir)
	tree, err := s.buildTree(ctx, g, parent, files)
	if err != nil {
		return "", err
	}
	args := []string{"commit-tree", "-F", "-"}
	if parent != "" {
		args = append(args, "-p", parent)
	}
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	sha, err := g.with(commitEnv()...).run(ctx, strings.NewReader(msg), append(args, "--end-of-options", tree)...)
	if err != nil {
		return "", err
	}
	if _, err := g.run(ctx, nil, "update-ref", "--end-of-options", ref, sha, parent); err != nil {
		return "", err
	}
	return sha, nil
}

// buildTree writes the tree of base (a commit, or "" for none) with files
// set, using a throw-away index so no work tree is needed.
func (s *Server) buildTree(ctx context.Context, g gitCmd, base string, files map[string]string) (string, error) {
	idx, err := os.MkdirTemp(s.scratch, "index-")
	if err != nil {
		return "", fmt.Errorf("temporary index: %w", err)
	}
	defer func() { _ = os.RemoveAll(idx) }()
	g = g.with("GIT_INDEX_FILE=" + filepath.Join(idx, "index"))
	if base != "" {
		if _, err := g.run(ctx, nil, "read-tree", "--end-of-options", base); err != nil {
			return "", err
		}
	}
	list, err := hashFiles(ctx, g, files)
	if err != nil {
		return "", err
	}
	if _, err := g.run(ctx, list, "update-index", "-z", "--add", "--replace", "--index-info"); err != nil {
		return "", err
	}
	return g.run(ctx, nil, "write-tree")
}

// hashFiles stores each file as a blob and returns the NUL-terminated
// `update-index -z --index-info` lines adding them.
func hashFiles(ctx context.Context, g gitCmd, files map[string]string) (io.Reader, error) {
	var list bytes.Buffer
	for _, p := range slices.Sorted(maps.Keys(files)) {
		blob, err := g.run(ctx, strings.NewReader(files[p]), "hash-object", "-w", "--no-filters", "--stdin")
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&list, "100644 %s\t%s\x00", blob, p)
	}
	return &list, nil
}

// checkPaths validates file paths up front: `git update-index` silently
// skips bad ones.
func checkPaths(files map[string]string) error {
	for p := range files {
		if !validPath(p) {
			return fmt.Errorf("%w: %q", ErrInvalidPath, p)
		}
	}
	return nil
}

func validPath(p string) bool {
	if p == "" || strings.ContainsRune(p, 0) {
		return false
	}
	for c := range strings.SplitSeq(p, "/") {
		if c == "" || c == "." || c == ".." || strings.EqualFold(c, ".git") {
			return false
		}
	}
	return true
}

func commitEnv() []string {
	return []string{
		"GIT_AUTHOR_NAME=" + commitName, "GIT_AUTHOR_EMAIL=" + commitEmail, "GIT_AUTHOR_DATE=" + commitDate,
		"GIT_COMMITTER_NAME=" + commitName, "GIT_COMMITTER_EMAIL=" + commitEmail, "GIT_COMMITTER_DATE=" + commitDate,
	}
}

// baseEnv is the from-scratch environment of every git process started.
func (s *Server) baseEnv() []string {
	return []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + s.home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"LC_ALL=C",
	}
}

// gitCmd runs git with a fixed environment.
type gitCmd struct {
	path, dir string
	env       []string
}

// git returns a runner for the bare repository gitDir ("" for none).
func (s *Server) git(gitDir string) gitCmd {
	g := gitCmd{path: s.cfg.GitPath, dir: s.cfg.Root, env: s.baseEnv()}
	if gitDir != "" {
		g.env = append(g.env, "GIT_DIR="+gitDir)
	}
	return g
}

// with returns a copy of g with extra environment entries.
func (g gitCmd) with(env ...string) gitCmd {
	g.env = append(slices.Clip(g.env), env...)
	return g
}

// run runs git args with stdin and returns its trimmed stdout. On failure
// the error wraps the *exec.ExitError and includes git's stderr.
func (g gitCmd) run(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, g.path, args...)
	cmd.Env, cmd.Dir, cmd.Stdin = g.env, g.dir, stdin
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := strings.TrimSpace(stdout.String())
	if err != nil {
		return out, fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
