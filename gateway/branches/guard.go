package branches

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// GuardConfig configures a Guard.
type GuardConfig struct {
	// Next serves every call the guard lets through (the router). Required.
	Next backends.Executor
	// Policy is the branch policy.
	Policy Policy
	// Git, if set, tells the remote's default branch (protected besides
	// the patterns). If nil, only the patterns protect.
	Git *Git
	// Workspace tells a workspace's repository URL (for the default branch
	// and the record of the push) and its current branch, as the binding
	// both backends keep shows them; ok is false for a workspace it does
	// not know. If nil, or without a current branch, a push that names no
	// branch asks the backend for the workspace's status.
	Workspace func(ctx context.Context, p backends.Principal, workspace string) (w Workspace, ok bool, err error)
	// Store, if set, records every successful push (the branches cleanup
	// may delete).
	Store Store
	// Metrics counts refusals; nil counts nothing.
	Metrics *Metrics
	// Logger; if nil, slog.Default().
	Logger *slog.Logger
	// Now; if nil, time.Now.
	Now func() time.Time
}

// Workspace is what the guard learns of a workspace.
type Workspace struct {
	URL    string // the repository it was cloned from
	Branch string // the branch checked out ("" when unknown)
}

// Guard is an executor in front of the router that enforces the branch
// policy on pushes, whichever backend serves them, and records the
// branches pushed; it also serves delete_branch's remote part
// (deletetool.go). Other calls pass through unchanged.
type Guard struct {
	cfg GuardConfig
}

var _ backends.Executor = (*Guard)(nil)

// NewGuard returns a Guard.
func NewGuard(cfg GuardConfig) *Guard {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Guard{cfg: cfg}
}

// Execute implements backends.Executor.
func (g *Guard) Execute(ctx context.Context, req backends.Request) (backends.Result, error) {
	switch r := req.(type) {
	case *backends.PushRequest:
		return g.push(ctx, r)
	case *backends.DeleteBranchRequest:
		return g.deleteBranch(ctx, r) // deletetool.go
	}
	return g.cfg.Next.Execute(ctx, req)
}

// push checks the branch a push names (or the current branch, which it
// then names explicitly, so that the push cannot go elsewhere), runs it and
// records it.
func (g *Guard) push(ctx context.Context, r *backends.PushRequest) (backends.Result, error) {
	p := r.Principal
	rules := g.cfg.Policy.Rules(p.Project)
	ws, def, err := g.workspace(ctx, r)
	if err != nil {
		return nil, err
	}
	if dst, isRefspec := refspecTarget(r.Branch); isRefspec {
		return nil, g.refuseRefspec(ctx, r, rules, dst, def)
	}
	if err := g.checkTags(ctx, r, rules, def); err != nil {
		return nil, err
	}
	branch, err := g.branchOf(ctx, r, ws)
	if err != nil || branch == "" {
		return g.cfg.Next.Execute(ctx, r) // the backend says what is wrong (detached HEAD, no workspace)
	}
	if reason, err := rules.Check(p.Project, p.Agent, branch, def); err != nil {
		return nil, g.refuse(ctx, r, reason, err)
	}
	named := *r
	named.Branch = branch
	res, err := g.cfg.Next.Execute(ctx, &named)
	if err == nil {
		g.record(ctx, r, ws.URL, res)
	}
	return res, err
}

// checkTags checks the tags a push names besides its branch (a push with
// tags always pushes its branch too, so the branch is checked as well).
// A tag is a name, pushed by the backend to refs/tags/<name> and never
// moved there: a value that is a refspec or a full ref name is refused
// here, whichever backend serves the push, as a push to a protected
// branch when its destination is one (so tags cannot carry a push past
// the branch policy) and as invalid otherwise. A tag named like a
// protected branch is refused too: git resolves a name to the tag before
// the branch (refs/tags before refs/heads), so such a tag would stand in
// for the branch in every clone. With a required prefix, tags carry it as
// branches do: what an agent puts on the remote is under its prefix. Any
// refusal refuses the whole push: nothing is pushed.
func (g *Guard) checkTags(ctx context.Context, r *backends.PushRequest, rules Rules, def string) error {
	p := r.Principal
	for _, tag := range r.Tags {
		if dst, isRefspec := refspecTarget(tag); isRefspec {
			if rule := rules.ProtectedBy(dst, def); rule != "" {
				return g.refuse(ctx, r, ReasonProtected, backends.Errorf(backends.Forbidden,
					"push tag %q would update protected branch %q in project %q (%s): tags takes the names of your tags, each pushed to refs/tags/<name>",
					tag, dst, p.Project, rule))
			}
			return backends.Errorf(backends.InvalidArgument, "tags takes tag names, not refspecs or full ref names (%q): each is pushed to refs/tags/<name>", tag)
		}
		if rule := rules.ProtectedBy(tag, def); rule != "" {
			return g.refuse(ctx, r, ReasonProtected, backends.Errorf(backends.Forbidden,
				"tag %q has the name of protected branch %q in project %q (%s): git would take the tag for the branch; name the tag otherwise",
				tag, tag, p.Project, rule))
		}
		if pre := rules.AgentPrefix(p.Agent); pre != "" && !strings.HasPrefix(tag, pre) {
			return g.refuse(ctx, r, ReasonPrefix, backends.Errorf(backends.Forbidden,
				"tag %q does not start with %q, which project %q requires of what you push: create a tag such as %q (tag) and push that",
				tag, pre, p.Project, pre+"<name>"))
		}
	}
	return nil
}

// refuseRefspec refuses a refspec in place of a branch name: as a push to
// a protected branch when its destination is one.
func (g *Guard) refuseRefspec(ctx context.Context, r *backends.PushRequest, rules Rules, dst, def string) error {
	if rule := rules.ProtectedBy(dst, def); rule != "" {
		return g.refuse(ctx, r, ReasonProtected, backends.Errorf(backends.Forbidden,
			"push %q would update protected branch %q in project %q (%s): push takes the name of one of your branches, pushed to the branch of the same name",
			r.Branch, dst, r.Principal.Project, rule))
	}
	return backends.Errorf(backends.InvalidArgument, "push takes a branch name, not a refspec (%q): it pushes the branch to the branch of the same name", r.Branch)
}

// refspecTarget returns the destination branch of a refspec-like value
// ("src:dst", "+src", "refs/heads/x"); isRefspec is false for a branch name.
func refspecTarget(v string) (dst string, isRefspec bool) {
	if !strings.ContainsAny(v, ":+") && !strings.HasPrefix(v, "refs/") {
		return "", false
	}
	v = strings.TrimPrefix(v, "+")
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	return strings.TrimPrefix(v, "refs/heads/"), true
}

// branchOf is the branch the push names, or else the workspace's current
// branch ("" when it has none).
func (g *Guard) branchOf(ctx context.Context, r *backends.PushRequest, ws Workspace) (string, error) {
	if r.Branch != "" {
		return r.Branch, nil
	}
	if ws.Branch != "" {
		return ws.Branch, nil
	}
	st, err := backends.Do[*backends.StatusResult](ctx, g.cfg.Next, &backends.StatusRequest{Scope: backends.Scope{Principal: r.Principal, Workspace: r.Workspace}})
	if err != nil {
		return "", err
	}
	return st.Branch, nil
}

// workspace returns what the guard knows of the push's workspace and its
// remote's default branch ("" when it has no way to know them).
func (g *Guard) workspace(ctx context.Context, r *backends.PushRequest) (ws Workspace, def string, err error) {
	if g.cfg.Workspace == nil {
		return Workspace{}, "", nil
	}
	ws, ok, err := g.cfg.Workspace(ctx, r.Principal, r.Workspace)
	if err != nil {
		return Workspace{}, "", backends.Errorf(backends.Unavailable, "the branch policy could not look up workspace %q: %v", r.Workspace, err)
	}
	if !ok || ws.URL == "" || g.cfg.Git == nil {
		return ws, "", nil // an unknown workspace: the backend refuses the push
	}
	def, err = g.cfg.Git.DefaultBranch(ctx, r.Principal.Project, ws.URL)
	if err != nil {
		return Workspace{}, "", backends.Errorf(backends.CategoryOf(err), "the branch policy could not read the remote's default branch: %v", err)
	}
	return ws, def, nil
}

func (g *Guard) refuse(ctx context.Context, r *backends.PushRequest, reason Reason, err error) error {
	g.cfg.Metrics.refusedPush(reason)
	g.cfg.Logger.InfoContext(ctx, "push refused by the branch policy", "project", r.Principal.Project,
		"agent", r.Principal.Agent, "workspace", r.Workspace, "reason", string(reason), "err", err)
	return err
}

// record keeps the push for the cleanup; a failure is logged, never
// returned: the push happened. Tags pushed are logged, not recorded: the
// cleanup deletes branches only, and gitgate never moves or deletes a
// pushed tag.
func (g *Guard) record(ctx context.Context, r *backends.PushRequest, url string, res backends.Result) {
	pr, ok := res.(*backends.PushResult)
	if !ok {
		return
	}
	if len(pr.Tags) > 0 {
		g.cfg.Logger.InfoContext(ctx, "tags pushed", "project", r.Principal.Project, "agent", r.Principal.Agent,
			"workspace", r.Workspace, "branch", pr.Branch, "tags", pr.Tags)
	}
	if g.cfg.Store == nil || url == "" {
		return
	}
	rec := Pushed{Project: r.Principal.Project, Agent: r.Principal.Agent, Workspace: r.Workspace, URL: url,
		Branch: pr.Branch, Commit: pr.Head, At: g.cfg.Now()}
	if err := g.cfg.Store.RecordPush(context.WithoutCancel(ctx), rec); err != nil {
		g.cfg.Logger.WarnContext(ctx, "could not record a pushed branch; the cleanup will not know it", "project", rec.Project,
			"branch", rec.Branch, "err", err)
	}
}
