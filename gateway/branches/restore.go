package branches

import (
	"context"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// Restore pushes deletion id's commit back to its branch (never forced: a
// branch of that name that exists again is left alone, a Conflict), drops
// the keep ref in the same atomic push, marks the record restored and
// records the branch as pushed again (so the cleanup looks after it).
func Restore(ctx context.Context, store Store, g *Git, id string, now time.Time) (Deletion, error) {
	d, ok, err := findDeletion(ctx, store, id)
	if err != nil {
		return Deletion{}, err
	}
	if !ok {
		return Deletion{}, backends.Errorf(backends.NotFound, "there is no deletion record %q (see gitgate branches list --deleted)", id)
	}
	if d.RestoredAt != nil {
		return d, backends.Errorf(backends.Conflict, "deletion %s was already restored at %s", id, d.RestoredAt.Format(time.RFC3339))
	}
	s, err := g.open(ctx, d.Project, d.URL)
	if err != nil {
		return d, err
	}
	defer s.close()
	if err := s.fetch(ctx, d.KeepRef); err != nil {
		return d, backends.Errorf(backends.NotFound, "the remote no longer keeps %s (commit %s): %v", d.KeepRef, d.Commit, err)
	}
	ref := "refs/heads/" + d.Branch
	if err := s.push(ctx, []string{d.KeepRef + ":" + d.Commit, ref + ":"}, d.Commit+":"+ref, ":"+d.KeepRef); err != nil {
		return d, err
	}
	ctx = context.WithoutCancel(ctx)
	if err := store.MarkRestored(ctx, id, now); err != nil {
		return d, err
	}
	d.RestoredAt = &now
	err = store.RecordPush(ctx, Pushed{Project: d.Project, Agent: d.Agent, Workspace: d.Workspace, URL: d.URL,
		Branch: d.Branch, Commit: d.Commit, At: now})
	return d, err
}
