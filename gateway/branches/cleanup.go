package branches

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// DeleteReason says why a branch was deleted (the reason label of
// gitgate_branches_deleted_total).
type DeleteReason string

// The reasons a branch is deleted.
const (
	DeleteMerged DeleteReason = "merged" // its tip is in the default branch
	DeleteStale  DeleteReason = "stale"  // no push for StaleAfter
	DeleteAgent  DeleteReason = "agent"  // the agent asked (delete_branch)
)

// KeepReason says why the cleanup kept a branch.
type KeepReason string

// The reasons a branch is kept.
const (
	KeepActive      KeepReason = "active"            // pushed within StaleAfter and not merged
	KeepProtected   KeepReason = "protected"         // the policy protects it
	KeepForeign     KeepReason = "foreign"           // the remote's tip is not the commit gitgate pushed
	KeepPullRequest KeepReason = "open_pull_request" // an open pull request uses it
	KeepGone        KeepReason = "gone"              // no longer on the remote (the record is dropped)
)

// DefaultStaleAfter is how long a branch without a push stays.
const DefaultStaleAfter = 30 * 24 * time.Hour

// KeepRefPrefix starts the remote refs that hold deleted branches' commits
// until restored: the remote keeps the commits reachable (no garbage
// collection), and a restore needs nothing but the remote.
const KeepRefPrefix = "refs/gitgate/deleted/"

// PullRequests tells whether an open pull request uses a branch (on hosts
// that can tell, such as GitHub).
type PullRequests interface {
	OpenFor(ctx context.Context, project, url, branch string) (bool, error)
}

// CleanerConfig configures a Cleaner.
type CleanerConfig struct {
	Store  Store // required
	Git    *Git  // required
	Policy Policy
	// StaleAfter; if zero, DefaultStaleAfter.
	StaleAfter time.Duration
	// DryRun lists what would be deleted and deletes nothing.
	DryRun bool
	// PullRequests, if set, keeps branches an open pull request uses.
	PullRequests PullRequests
	Metrics      *Metrics
	Logger       *slog.Logger
	Now          func() time.Time
}

// Cleaner deletes agents' merged and stale branches from their remotes.
type Cleaner struct {
	cfg CleanerConfig
}

// NewCleaner returns a Cleaner.
func NewCleaner(cfg CleanerConfig) *Cleaner {
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cleaner{cfg: cfg}
}

// Decision is what a run did (or, dry, would do) with one branch.
type Decision struct {
	Pushed
	Delete   DeleteReason `json:"delete,omitempty"`
	Keep     KeepReason   `json:"keep,omitempty"`
	Deletion string       `json:"deletion,omitempty"` // the record's id, once deleted
	Error    string       `json:"error,omitempty"`
}

// Report is one run's decisions.
type Report struct {
	DryRun    bool       `json:"dry_run"`
	Decisions []Decision `json:"decisions"`
}

// Run examines every recorded branch once. Errors on one remote do not stop
// the others; they are returned joined.
func (c *Cleaner) Run(ctx context.Context) (Report, error) {
	rep := Report{DryRun: c.cfg.DryRun}
	all, err := c.cfg.Store.Pushed(ctx, "")
	if err == nil {
		var errs []error
		for _, group := range byRemote(all) {
			ds, err := c.remote(ctx, group)
			rep.Decisions = append(rep.Decisions, ds...)
			errs = append(errs, err)
		}
		err = errors.Join(errs...)
	}
	outcome := OutcomeOK
	switch {
	case err != nil:
		outcome = OutcomeError
	case c.cfg.DryRun:
		outcome = OutcomeDryRun
	}
	c.cfg.Metrics.ran(outcome, float64(c.cfg.Now().Unix()))
	return rep, err
}

// byRemote groups records by project and remote, in order.
func byRemote(all []Pushed) [][]Pushed {
	var out [][]Pushed
	for i, p := range all {
		if i > 0 && p.Project == all[i-1].Project && p.URL == all[i-1].URL {
			out[len(out)-1] = append(out[len(out)-1], p)
			continue
		}
		out = append(out, []Pushed{p})
	}
	return out
}

// remote decides, and acts, on the branches of one remote.
func (c *Cleaner) remote(ctx context.Context, group []Pushed) ([]Decision, error) {
	project, url := group[0].Project, group[0].URL
	s, err := c.cfg.Git.open(ctx, project, url)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", project, url, err)
	}
	defer s.close()
	heads, def, err := s.heads(ctx)
	rules := c.cfg.Policy.Rules(project)
	if err == nil && heads[def] != "" {
		err = s.fetch(ctx, candidates(rules, heads, def, group)...)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", project, url, err)
	}
	var out []Decision
	var errs []error
	for _, p := range group {
		d := c.decide(ctx, s, rules, heads, def, p)
		if d.Delete != "" && d.Error == "" && !c.cfg.DryRun {
			c.delete(ctx, s, &d)
		}
		if d.Error != "" {
			errs = append(errs, fmt.Errorf("%s %s %s: %s", project, url, p.Branch, d.Error))
		}
		if d.Keep == KeepGone && !c.cfg.DryRun { // the branch is gone: so goes its record
			if err := c.cfg.Store.Forget(ctx, p.Key()); err != nil {
				errs = append(errs, err)
			}
		}
		out = append(out, d)
	}
	return out, errors.Join(errs...)
}

// candidates are the refs to fetch in one go: the default branch and the
// branches whose tip is still the commit gitgate pushed.
func candidates(rules Rules, heads map[string]string, def string, group []Pushed) []string {
	refs := []string{"refs/heads/" + def}
	for _, p := range group {
		if heads[p.Branch] == p.Commit && rules.ProtectedBy(p.Branch, def) == "" {
			refs = append(refs, "refs/heads/"+p.Branch)
		}
	}
	return refs
}

// decide says what to do with p, without changing anything.
func (c *Cleaner) decide(ctx context.Context, s *scratch, rules Rules, heads map[string]string, def string, p Pushed) Decision {
	d := Decision{Pushed: p}
	tip, onRemote := heads[p.Branch]
	switch {
	case rules.ProtectedBy(p.Branch, def) != "":
		d.Keep = KeepProtected
	case !onRemote:
		d.Keep = KeepGone
	case tip != p.Commit:
		d.Keep = KeepForeign
	default:
		d.Delete, d.Keep = c.due(ctx, s, heads[def], p)
	}
	if d.Delete != "" && c.cfg.PullRequests != nil {
		open, err := c.cfg.PullRequests.OpenFor(ctx, p.Project, p.URL, p.Branch)
		switch {
		case err != nil:
			d.Delete, d.Keep, d.Error = "", KeepPullRequest, "cannot tell whether a pull request uses it: "+err.Error()
		case open:
			d.Delete, d.Keep = "", KeepPullRequest
		}
	}
	return d
}

// due says whether p's branch (whose tip is p.Commit) is merged into the
// default branch (tip defTip) or stale.
func (c *Cleaner) due(ctx context.Context, s *scratch, defTip string, p Pushed) (DeleteReason, KeepReason) {
	if defTip != "" {
		if merged, err := s.isAncestor(ctx, p.Commit, defTip); err == nil && merged {
			return DeleteMerged, ""
		}
	}
	if c.cfg.Now().Sub(p.At) >= c.cfg.StaleAfter {
		return DeleteStale, ""
	}
	return "", KeepActive
}

// delete removes d's branch from the remote in one atomic push that keeps
// its commit under a keep ref and only succeeds while the branch's tip is
// still the recorded commit, then records the deletion.
func (c *Cleaner) delete(ctx context.Context, s *scratch, d *Decision) {
	del, err := deleteBranch(ctx, s, c.cfg.Store, d.Pushed, d.Delete, "cleanup", "", c.cfg.Now())
	if err != nil {
		if backends.CategoryOf(err) == backends.Conflict {
			d.Delete, d.Keep = "", KeepForeign // someone pushed meanwhile
			return
		}
		d.Error = err.Error()
		return
	}
	d.Deletion = del.ID
	c.cfg.Metrics.deletedBranch(d.Delete)
	c.cfg.Logger.InfoContext(ctx, "deleted an agent branch", "project", del.Project, "branch", del.Branch,
		"commit", del.Commit, "reason", string(del.Reason), "record", del.ID)
}

// deleteBranch deletes p's branch (tip p.Commit) from the remote, keeping
// the commit under a keep ref, and records the deletion (made by call,
// see Deletion.Call) and forgets p.
func deleteBranch(ctx context.Context, s *scratch, store Store, p Pushed, reason DeleteReason, by, call string, now time.Time) (Deletion, error) {
	d := Deletion{ID: newID(now), Project: p.Project, Agent: p.Agent, Workspace: p.Workspace, URL: p.URL, Branch: p.Branch,
		Commit: p.Commit, Reason: string(reason), By: by, At: now, Call: call}
	d.KeepRef = KeepRefPrefix + d.ID
	ref := "refs/heads/" + p.Branch
	if !s.has(ctx, p.Commit) {
		if err := s.fetch(ctx, ref); err != nil {
			return Deletion{}, err
		}
	}
	if err := s.push(ctx, []string{ref + ":" + p.Commit}, p.Commit+":"+d.KeepRef, ":"+ref); err != nil {
		return Deletion{}, err
	}
	ctx = context.WithoutCancel(ctx) // the remote changed: the record must follow
	if err := store.RecordDeletion(ctx, d); err != nil {
		return d, fmt.Errorf("deleted %s (commit %s, kept at %s) but could not record it: %w", p.Branch, p.Commit, d.KeepRef, err)
	}
	return d, store.Forget(ctx, p.Key())
}
