package approach1

import (
	"bufio"
	"bytes"
	"context"
	"slices"
	"strings"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// Refs are read straight from the gateway-owned git directory, which saves a
// git process per operation (a commit or push reports the new tip without
// running rev-parse). Loose refs win over packed-refs, as in git's files
// backend.

// head returns the current branch ("" when detached) and HEAD's commit (""
// before the first commit).
func (e *Executor) head(ctx context.Context, b sandbox.Binding) (branch, sha string, err error) {
	data, err := e.readGitFile(ctx, b, "HEAD")
	if err != nil {
		return "", "", err
	}
	line := strings.TrimSpace(string(data))
	ref, symbolic := strings.CutPrefix(line, "ref: ")
	if !symbolic {
		return "", line, nil
	}
	sha, err = e.refSHA(ctx, b, ref)
	return strings.TrimPrefix(ref, "refs/heads/"), sha, err
}

// refSHA returns the commit a full ref name points to, or "" when the ref
// does not exist.
func (e *Executor) refSHA(ctx context.Context, b sandbox.Binding, ref string) (string, error) {
	data, err := e.readGitFile(ctx, b, ref)
	if err == nil {
		return strings.TrimSpace(string(data)), nil
	}
	if backends.CategoryOf(err) != backends.NotFound {
		return "", err
	}
	packed, err := e.readGitFile(ctx, b, "packed-refs")
	if backends.CategoryOf(err) == backends.NotFound {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return findPacked(packed, ref), nil
}

// headRead asks for HEAD and the ref it names to be read after a command
// (sandbox.Around.Head), so that headAfter needs no round trip of its own.
func headRead(b sandbox.Binding) sandbox.Around { return sandbox.Around{Head: b.GitDir()} }

// headAfter is head as res, the result of a command run with headRead,
// read it after the command; when the provider did not read it, or HEAD
// was missing then, it is read now (head).
func (e *Executor) headAfter(ctx context.Context, b sandbox.Binding, res sandbox.ExecResult) (branch, sha string, err error) {
	files := res.Around.Files
	data, ok := files[b.GitDir()+"/HEAD"]
	if !res.Around.After || !ok {
		return e.head(ctx, b)
	}
	line := strings.TrimSpace(string(data))
	ref, symbolic := strings.CutPrefix(line, "ref: ")
	if !symbolic {
		return "", line, nil
	}
	if !strings.HasPrefix(ref, "refs/") {
		return e.head(ctx, b) // not a ref the provider reads: read it as head does
	}
	return strings.TrimPrefix(ref, "refs/heads/"), refIn(files, b.GitDir(), ref), nil
}

// refIn is refSHA over files read after a command: the ref's own file,
// else its line in packed-refs, else "".
func refIn(files map[string][]byte, gitDir, ref string) string {
	if data, ok := files[gitDir+"/"+ref]; ok {
		return strings.TrimSpace(string(data))
	}
	return findPacked(files[gitDir+"/packed-refs"], ref)
}

func findPacked(packed []byte, ref string) string {
	sc := bufio.NewScanner(bytes.NewReader(packed))
	for sc.Scan() {
		sha, name, ok := strings.Cut(sc.Text(), " ")
		if ok && name == ref {
			return sha
		}
	}
	return ""
}

func (e *Executor) readGitFile(ctx context.Context, b sandbox.Binding, rel string) ([]byte, error) {
	fd, err := e.provider().ReadFile(ctx, b.SandboxID, b.GitDir(), rel, 0, 1<<20)
	if err != nil {
		return nil, err
	}
	return fd.Data, nil
}

// currentBranch returns the current branch or an error when HEAD is
// detached.
func (e *Executor) currentBranch(ctx context.Context, b sandbox.Binding) (string, string, error) {
	branch, sha, err := e.head(ctx, b)
	if err != nil {
		return "", "", err
	}
	if branch == "" {
		return "", "", backends.Errorf(backends.Conflict, "HEAD is detached; check out a branch first")
	}
	return branch, sha, nil
}

// checkNewBranch refuses a name for a branch to create that git would
// resolve to something else or that would mislead a reader (see
// gitcmd.ValidateNewBranch and gitcmd.CheckNewBranch): it compares the name
// with the workspace's branches, remote-tracking branches, tags and remotes,
// and a short all-hexadecimal name with the repository's objects. The
// remotes are "origin" and every remote that has remote-tracking branches
// (the gateway's workspaces have only origin; see checkLocalConfig).
func (e *Executor) checkNewBranch(ctx context.Context, b sandbox.Binding, op backends.Op, name string) error {
	if err := gitcmd.ValidateNewBranch(name); err != nil {
		return err
	}
	args := []string{"for-each-ref", "--format=%(refname)", "refs/heads/", "refs/remotes/", "refs/tags/"}
	res, err := e.git(ctx, b, gitRun{op: op, args: args, read: true, noTree: true})
	if err != nil {
		return err
	}
	refs := strings.Fields(string(res.Stdout))
	remotes := []string{"origin"}
	for _, ref := range refs {
		if rest, ok := strings.CutPrefix(ref, "refs/remotes/"); ok {
			if r, _, ok := strings.Cut(rest, "/"); ok && !slices.Contains(remotes, r) {
				remotes = append(remotes, r)
			}
		}
	}
	if err := gitcmd.CheckNewBranch(name, remotes, refs); err != nil {
		return err
	}
	if gitcmd.ShortHexName(name) {
		res, err := e.git(ctx, b, gitRun{op: op, args: []string{"rev-parse", "--disambiguate=" + name}, read: true, noTree: true})
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(res.Stdout)) > 0 {
			return gitcmd.AbbreviatedObject(name)
		}
	}
	return nil
}

// checkoutFailed gives a failed checkout of a branch that does not exist
// (without create) its next step; other failures are returned as they are.
func checkoutFailed(r *backends.CheckoutRequest, err error) error {
	if r.Create || backends.CategoryOf(err) != backends.NotFound {
		return err
	}
	return backends.Errorf(backends.NotFound, "branch %q does not exist, neither here nor on the remote; pass create: true to create it from the current commit", r.Branch)
}
