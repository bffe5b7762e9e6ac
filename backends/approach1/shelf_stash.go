package approach1

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// Stash entries on the shelf (shelf.go). A workspace with stash entries is
// dirty (see the record above), so the shelf keeps it when its sandbox
// goes; these keep the entries themselves: each is pinned under a shelf
// ref so that the bundle carries its commits, listed in the manifest
// (oldest first) and stored again in the same order on restore, so that
// stash@{n} names the same entry, with the same message, as before.

// shelfStashPrefix is where the shelf pins stash entries while it bundles.
const shelfStashPrefix = shelfRefPrefix + "stash/"

// shelfStash is one stash entry in a shelf's manifest.
type shelfStash struct {
	SHA     string `json:"sha"`
	Message string `json:"message"`
}

// shelfStashRefs are the refs snapshotStashes pinned entries under.
func shelfStashRefs(entries []shelfStash) []string {
	refs := make([]string, len(entries))
	for i := range entries {
		refs[i] = shelfStashPrefix + strconv.Itoa(i)
	}
	return refs
}

// snapshotStashes lists the workspace's stash entries, oldest first, and
// pins them under shelfStashRefs.
func (sx shelfExec) snapshotStashes(ctx context.Context) ([]shelfStash, error) {
	res, err := sx.run(ctx, []string{"rev-parse", "-q", "--verify", "refs/stash"}, "", nil)
	if err != nil || res.ExitCode != 0 {
		return nil, err // no stash
	}
	out, err := sx.git(ctx, []string{"log", "--walk-reflogs", "--format=%H%x00%gs", "refs/stash", "--"}, "", nil)
	if err != nil {
		return nil, err
	}
	var entries []shelfStash
	for line := range strings.Lines(string(out)) {
		h, subject, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "\x00")
		if ok && isObjectID(h) {
			entries = append(entries, shelfStash{SHA: h, Message: subject})
		}
	}
	slices.Reverse(entries)
	var refs strings.Builder
	for i, ref := range shelfStashRefs(entries) {
		fmt.Fprintf(&refs, "update %s %s\n", ref, entries[i].SHA)
	}
	if _, err := sx.git(ctx, []string{"update-ref", "--stdin"}, "", []byte(refs.String())); err != nil {
		return nil, err
	}
	return entries, nil
}

// dropShelfStashRefs removes the refs snapshotStashes made.
func (sx shelfExec) dropShelfStashRefs(ctx context.Context) {
	out, err := sx.git(ctx, []string{"for-each-ref", "--format=delete %(refname)", shelfStashPrefix}, "", nil)
	if err == nil && len(out) > 0 {
		_, err = sx.git(ctx, []string{"update-ref", "--stdin"}, "", out)
	}
	if err != nil {
		sx.e.cfg.Logger.Debug("removing the shelf's stash refs failed", "workspace", sx.b.Key.String(), "err", err)
	}
}

// restoreStashes stores a shelf's stash entries (oldest first) in the
// restored workspace, whose bundle brought their commits.
func (e *Executor) restoreStashes(ctx context.Context, b sandbox.Binding, entries []shelfStash) error {
	for _, s := range entries {
		if !isObjectID(s.SHA) {
			return backends.Errorf(backends.Internal, "a shelved stash entry names no commit")
		}
		args := []string{"stash", "store", "--quiet", "--message=" + s.Message, s.SHA}
		if _, err := e.git(ctx, b, gitRun{op: "restore", args: args, author: shelfIdentity}); err != nil {
			return err
		}
	}
	return nil
}
