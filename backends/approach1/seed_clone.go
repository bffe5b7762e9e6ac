package approach1

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// cloneFromSeed clones r into workspace k from a seed of its URL in the
// owner's sandbox (see seed.go), when the executor plants seeds of that
// URL, the clone asks for neither depth nor branch and the store knows no
// workspace k. ok false means the normal clone must run (nothing was left
// behind); ok true returns the clone's answer. The caller holds k's lock.
//
// The owner's sandbox is acquired while, at the same time, the owner's
// sandboxes are listed (the store may have lost k's binding: see
// checkFree): when any other sandbox of the owner exists, one that may
// hold k, the normal clone runs and looks into them. The acquired
// sandbox itself is looked at by the seed's script, which refuses to move
// the seed onto anything there.
func (e *Executor) cloneFromSeed(ctx context.Context, r *backends.CloneRequest, k sandbox.WorkspaceKey, remote *gitcmd.Remote, url string) (*backends.CloneResult, bool, error) {
	set := e.seedSet()
	if set == nil || !set.urls[url] || r.Depth != 0 || r.Branch != "" {
		return nil, false, nil
	}
	if _, bound, err := e.cfg.Bindings.Get(ctx, k); err != nil || bound {
		return nil, false, nil // the normal clone says why not
	}
	var others []sandbox.Info
	var listErr error
	var listing sync.WaitGroup
	listing.Go(func() { others, listErr = e.cfg.Sandboxes.Candidates(ctx, k.Owner()) })
	info, done, err := e.acquire(ctx, k.Owner())
	listing.Wait()
	if err != nil {
		return nil, true, err
	}
	defer done()
	if listErr != nil || ownsOthers(others, info.ID, k.Owner()) {
		return nil, false, nil
	}
	name, seeded := set.take(info.ID, url)
	if !seeded {
		return nil, false, nil
	}
	now := time.Now().UTC()
	b := sandbox.Binding{Key: k, SandboxID: info.ID, Root: info.Root, URL: url, Created: now, LastUsed: now}
	branch, sha, err := e.takeSeed(ctx, b, name, remote)
	if errors.Is(err, errNoSeed) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	b.Branch = branch
	b.Writes++
	if err := e.cfg.Bindings.Put(ctx, b); err != nil {
		return nil, true, backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
	}
	return &backends.CloneResult{Served: backends.Served{WriteSeq: b.Writes}, Workspace: k.Name, Branch: branch, Head: sha}, true, nil
}

// ownsOthers reports whether owner has a sandbox other than id among
// listed.
func ownsOthers(listed []sandbox.Info, id string, owner sandbox.Owner) bool {
	for _, info := range listed {
		if info.ID != id && info.Owner == owner {
			return true
		}
	}
	return false
}

// errNoSeed says that a seed could not become the workspace and that
// nothing of the attempt is left: the normal clone runs.
var errNoSeed = errors.New("the seed could not become the workspace")

// Exit codes of seedTakeScript.
const (
	seedUnusable = 90 // the seed is gone or the workspace's place is taken: nothing changed
	seedFailed   = 91 // a step failed after the move: what it made must be removed
	seedRefused  = 92 // the remote refused the fetch (or could not be reached): likewise
	seedTooLarge = 93 // past a size limit: likewise
)

// seedTakeScript makes workspace b out of a seed in one command, under the
// half-made mark (cloneMark) written first and removed last. It asks the
// remote for its refs with the agent's credential (N: git with the
// remote's settings, outside any repository; R: the same in the
// workspace's; L: git without the remote) while it moves the seed's git
// directory and work tree into the workspace's place and reads the
// seed's refs; only when they differ does it fetch. It then points
// origin/HEAD and the local branch at the remote's default branch and its
// tip, as a clone leaves them, refreshes the index when it changed it (see
// finishClone; the seed's was refreshed when it was planted),
// checks the project's size limits as the end of a transfer does, removes
// the mark and prints the branch and its commit. Its exit codes are the
// seed* constants above.
const seedTakeScript = `set -u
R=$1 SG=$2 SW=$3 G=$4 W=$5 M=$6 RMAX=$7 BMAX=$8 U=$9 LS=${10}
[ -d "$SG" ] && [ -d "$SW" ] || exit 90
if [ -e "$G" ] || [ -e "$W" ] || [ -e "$M" ]; then exit 90; fi
: > "$M" || exit 90
trap '/bin/rm -f -- "$LS"' EXIT
%N% ls-remote --symref -- "$U" HEAD 'refs/heads/*' 'refs/tags/*' > "$LS" &
asked=$!
/bin/mv -T -- "$SG" "$G" || exit 91
/bin/mv -T -- "$SW" "$W" || exit 91
T='	'
refs=$(%L% for-each-ref --format="%(objectname)$T%(refname)" refs/heads refs/remotes/origin refs/tags) || exit 91
IFS= read -r cur < "$G/HEAD" || exit 91
cur=${cur#ref: refs/heads/}
have= mine=
while IFS=$T read -r sha ref; do
	case $ref in
	refs/heads/*) [ "$ref" = "refs/heads/$cur" ] && mine=$sha ;;
	refs/remotes/origin/HEAD) ;;
	refs/remotes/origin/*) have="$have$sha refs/heads/${ref#refs/remotes/origin/};" ;;
	refs/tags/*) have="$have$sha $ref;" ;;
	esac
done <<EOF
$refs
EOF
wait "$asked" || exit 92
b= want=
while IFS=$T read -r sha ref; do
	case $sha in
	"ref: refs/heads/"*) [ "$ref" = HEAD ] && b=${sha#ref: refs/heads/} ;;
	*) case $ref in
		*"^{}") ;;
		refs/heads/* | refs/tags/*) want="$want$sha $ref;" ;;
		esac ;;
	esac
done < "$LS"
[ -n "$b" ] || exit 91
if [ "$want" != "$have" ]; then
	%R% fetch --quiet --prune --prune-tags --no-recurse-submodules origin || exit 92
fi
tip=
IFS=';'
for line in $want; do
	[ "${line#* }" = "refs/heads/$b" ] && tip=${line%% *}
done
unset IFS
[ -n "$tip" ] || exit 91
oh=
[ -f "$G/refs/remotes/origin/HEAD" ] && IFS= read -r oh < "$G/refs/remotes/origin/HEAD"
[ "$oh" = "ref: refs/remotes/origin/$b" ] ||
	%L% symbolic-ref refs/remotes/origin/HEAD "refs/remotes/origin/$b" || exit 91
if [ "$b" != "$cur" ]; then
	%L% update-ref "refs/heads/$b" "$tip" || exit 91
	%L% config "branch.$b.remote" origin || exit 91
	%L% config "branch.$b.merge" "refs/heads/$b" || exit 91
	%L% symbolic-ref HEAD "refs/heads/$b" || exit 91
	%L% branch -q -D "$cur" || exit 91
	%L% reset -q --hard || exit 91
	%L% update-index -q --refresh >/dev/null 2>&1
elif [ "$mine" != "$tip" ]; then
	%L% update-ref "refs/heads/$b" "$tip" || exit 91
	%L% reset -q --hard || exit 91
	%L% update-index -q --refresh >/dev/null 2>&1
fi
if [ "$RMAX" -gt 0 ] || [ "$BMAX" -gt 0 ]; then
	repo=$(/usr/bin/du -s -B1 -- "$G") || exit 91
	box=$(/usr/bin/du -s -B1 -- "$R") || exit 91
	repo=${repo%%[!0-9]*} box=${box%%[!0-9]*}
	if [ "$RMAX" -gt 0 ] && [ "$repo" -gt "$RMAX" ]; then exit 93; fi
	if [ "$BMAX" -gt 0 ] && [ "$box" -gt "$BMAX" ]; then exit 93; fi
fi
/bin/rm -f -- "$M" || exit 91
printf 'gitgate-seed %s %s\n' "$b" "$tip"
`

// takeSeed makes workspace b out of seed name of its sandbox with
// seedTakeScript, and returns its branch and commit. errNoSeed means the
// normal clone must run: nothing of the attempt is left.
func (e *Executor) takeSeed(ctx context.Context, b sandbox.Binding, name string, remote *gitcmd.Remote) (branch, sha string, err error) {
	remote, forget, err := e.remoteCredential(ctx, b.Key.String(), b.SandboxID, b.Root, gitcmd.Invocation{Remote: remote})
	if err != nil {
		return "", "", err
	}
	defer forget()
	home, tmp := b.Root+"/home", b.Root+"/tmp"
	fetch := gitcmd.Build(e.cfg.GitPath, home, tmp, gitcmd.Invocation{GitDir: b.GitDir(), WorkTree: b.WorkTree(), Remote: remote})
	local := gitcmd.Build(e.cfg.GitPath, home, tmp, gitcmd.Invocation{GitDir: b.GitDir(), WorkTree: b.WorkTree()})
	ask := gitcmd.Build(e.cfg.GitPath, home, tmp, gitcmd.Invocation{Remote: remote}) // before the git directory is in place
	script := strings.NewReplacer("%R%", shellWords(fetch.Path, fetch.Args), "%L%", shellWords(local.Path, local.Args),
		"%N%", shellWords(ask.Path, ask.Args)).Replace(seedTakeScript)
	repoMax, boxMax := e.sizeLimits(b.Key.Project)
	req := sandbox.ExecRequest{Path: "/bin/sh", Env: fetch.Env, Dir: b.Root, Timeout: e.cfg.Limits.RemoteTimeout,
		Args: []string{"-c", script, "sh", b.Root, seedGitDir(b.Root, name), seedWorkTree(b.Root, name), b.GitDir(), b.WorkTree(),
			b.Root + "/" + cloneMark(b.Key.Name), strconv.FormatInt(repoMax, 10), strconv.FormatInt(boxMax, 10),
			b.URL, tmp + "/seed-refs-" + secretName()}}
	res, err := e.execScript(ctx, b.SandboxID, backends.OpClone, req)
	if err != nil {
		if !errors.Is(err, sandbox.ErrMayStillRun) && !errors.Is(err, sandbox.ErrGone) {
			e.discardWorkspace(ctx, b)
		}
		return "", "", err
	}
	if res.ExitCode != 0 {
		if res.ExitCode != seedUnusable {
			e.discardWorkspace(ctx, b)
		}
		e.cfg.Logger.Info("a seed did not become the workspace; cloning it without", "workspace", b.Key.String(),
			"sandbox", b.SandboxID, "exit", res.ExitCode, "err", strings.TrimSpace(hideSandboxPaths(string(res.Stderr), b.Root)))
		return "", "", errNoSeed
	}
	for line := range strings.SplitSeq(string(res.Stdout), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "gitgate-seed" {
			return f[1], f[2], nil
		}
	}
	e.discardWorkspace(ctx, b)
	return "", "", errNoSeed
}

// credentialFile returns remote with its token in a file of sandbox id
// (whose Root is root) where the provider takes secrets as files, and the
// function that removes it; remote itself, and a function doing nothing,
// otherwise or when it has no token. The file leaves the sandbox with the
// command that reads it.
func (e *Executor) credentialFile(ctx context.Context, id, root string, remote *gitcmd.Remote) (*gitcmd.Remote, func(), error) {
	if _, ok := e.cfg.Sandboxes.Provider().(sandbox.SecretWriter); !ok || remote == nil || remote.Token == "" {
		return remote, func() {}, nil
	}
	path := root + "/tmp/.credential-" + secretName()
	if err := e.provider().WriteSecret(ctx, id, path, []byte(remote.Token+"\n")); err != nil {
		return nil, nil, err
	}
	withFile := *remote
	withFile.Token, withFile.TokenFile = "", path
	return &withFile, func() {
		if err := e.provider().RemoveAll(context.WithoutCancel(ctx), id, path); err != nil {
			e.cfg.Logger.Warn("removing the credential file from the sandbox failed", "sandbox", id, "err", err)
		}
	}, nil
}

// execScript runs req in sandbox id, counted and charged as exec counts
// and charges a git command of op.
func (e *Executor) execScript(ctx context.Context, id string, op backends.Op, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	e.metrics.processes.WithLabelValues(string(op)).Inc()
	start := time.Now()
	res, err := e.provider().Exec(ctx, id, req)
	d := time.Since(start).Seconds()
	e.metrics.sandboxSeconds.WithLabelValues(string(op)).Add(d)
	if c, ok := e.cfg.Sandboxes.Provider().(sandbox.Coster); ok {
		cost := d * c.CostPerSecond(id)
		e.metrics.sandboxCost.WithLabelValues(string(op)).Add(cost)
		factsOf(ctx).addCost(cost)
		e.cfg.Sandboxes.Charge(id, factsOf(ctx).who(), cost)
	}
	return res, err
}

// shellWords is the command path args as shell words, each quoted.
func shellWords(path string, args []string) string {
	words := make([]string, 0, len(args)+1)
	for _, w := range append([]string{path}, args...) {
		words = append(words, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
	}
	return strings.Join(words, " ")
}
