package approach1

import (
	"context"
	"strings"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// predictFetch reads the remote (ls-remote, with the project's read-only
// token when it has one) and expects the workspace's remote-tracking
// branches to be the remote's branches its fetch refspec names, at the
// same commits; with prune, no other remote-tracking branch; every tag of
// the remote to exist in the workspace (at whatever commit: a tag the
// workspace had is never moved); and the primary's reported updates to end
// where the workspace's refs are. It changes nothing: reads run lock-free,
// the remote is only listed.
//
// A remote branch or tag the workspace does not show came after the
// fetch (another user pushed) when the workspace does not hold its object,
// or when FETCH_HEAD (what the fetch saw on the remote) has it at another
// object or not at all: the remote moved on, which says nothing of the
// fetch, so the prediction is stale, as it is when another write to the
// workspace came after the fetch. One the fetch saw, and whose object it
// brought, is compared. Likewise a remote-tracking branch a pruning fetch
// kept for a branch the remote no longer has is stale when FETCH_HEAD
// lists the branch (the remote deleted it after the fetch), a mismatch
// otherwise.
func (e *Executor) predictFetch(ctx context.Context, r *backends.FetchRequest, res *backends.FetchResult) (*backends.Prediction, error) {
	w, err := e.openRead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	tracking, err := e.trackingBranches(ctx, w.Binding, "predict")
	if err != nil {
		return nil, err
	}
	tags, err := e.listRefs(ctx, w.Binding, "predict", "refs/tags/")
	if err != nil {
		return nil, err
	}
	specs, err := e.fetchRefspecs(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	seen, err := e.fetchHeadRefs(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	remote, err := e.lsRemote(ctx, r.Principal, w.Binding, "refs/heads/*", "refs/tags/*")
	if err != nil {
		return nil, err
	}
	expected, found := map[string]string{}, map[string]string{}
	var moved []string
	for name, sha := range remote {
		if branch, ok := strings.CutPrefix(name, "refs/heads/"); ok {
			dst, fetched := trackingRefFor(specs, branch)
			if !fetched {
				continue
			}
			key := "origin/" + strings.TrimPrefix(dst, trackingPrefix)
			expected[key], found[key] = sha, orNone(tracking[dst], "(missing)")
			if tracking[dst] != sha {
				if has, err := e.hasObject(ctx, w.Binding, sha); err != nil {
					return nil, err
				} else if !has || seen[name] != sha {
					moved = append(moved, "branch "+branch)
				}
			}
			continue
		}
		tag, ok := strings.CutPrefix(name, "refs/tags/")
		if !ok || strings.HasSuffix(tag, "^{}") {
			continue
		}
		key := "tag " + tag
		expected[key], found[key] = "present", "present"
		if tags["refs/tags/"+tag] == "" {
			found[key] = "(missing)"
			if has, err := e.hasObject(ctx, w.Binding, sha); err != nil {
				return nil, err
			} else if !has || seen[name] != sha {
				moved = append(moved, "tag "+tag)
			}
		}
	}
	if r.Prune {
		for ref, sha := range tracking {
			key := "origin/" + strings.TrimPrefix(ref, trackingPrefix)
			if _, onRemote := expected[key]; !onRemote {
				expected[key], found[key] = "(pruned)", sha
				if branch := strings.TrimPrefix(ref, trackingPrefix); seen["refs/heads/"+branch] != "" {
					moved = append(moved, "branch "+branch+" (deleted)") // the fetch saw it
				}
			}
		}
	}
	for _, u := range res.Updated {
		key := "updated " + u.Ref
		expected[key] = orNone(tracking[trackingPrefix+strings.TrimPrefix(u.Ref, "origin/")], "(pruned)")
		found[key] = orNone(u.After, "(pruned)")
	}
	if len(moved) > 0 {
		return stale("the remote moved on after the fetch (%s: not what the fetch saw there)", strings.Join(moved, ", ")), nil
	}
	if later, err := e.superseded(ctx, &r.Scope, res); err != nil {
		return nil, err
	} else if later {
		return stale("another write to the workspace came after it"), nil
	}
	return &backends.Prediction{Expected: expected, Found: found}, nil
}

func orNone(v, none string) string {
	if v == "" {
		return none
	}
	return v
}

// fetchRefspecs returns the workspace's fetch refspecs for origin (the
// ones clone wrote: checkLocalConfig refuses any other before a fetch).
func (e *Executor) fetchRefspecs(ctx context.Context, b sandbox.Binding) ([]string, error) {
	out, err := e.predictRun(ctx, b, nil, gitRun{args: []string{"config", "--get-all", "remote.origin.fetch"}, noTree: true})
	if err != nil {
		return nil, err
	}
	switch out.ExitCode {
	case 0:
		return strings.Fields(string(out.Stdout)), nil
	case 1:
		return nil, nil // none: a fetch updates no remote-tracking branch
	}
	return nil, gitError(out, b.Root)
}

// trackingRefFor returns the ref the refspecs fetch the remote's branch
// into, if any names it ("+refs/heads/*:refs/remotes/origin/*", or one
// branch's for a single-branch clone).
func trackingRefFor(specs []string, branch string) (string, bool) {
	src := "refs/heads/" + branch
	for _, spec := range specs {
		from, to, ok := strings.Cut(strings.TrimPrefix(spec, "+"), ":")
		if !ok || strings.HasPrefix(from, "^") {
			continue
		}
		pre, suf, glob := strings.Cut(from, "*")
		if !glob {
			if from == src {
				return to, true
			}
			continue
		}
		if len(src) >= len(pre)+len(suf) && strings.HasPrefix(src, pre) && strings.HasSuffix(src, suf) {
			mid := src[len(pre) : len(src)-len(suf)]
			return strings.Replace(to, "*", mid, 1), true
		}
	}
	return "", false
}

// hasObject reports whether the workspace's repository holds the object.
func (e *Executor) hasObject(ctx context.Context, b sandbox.Binding, object string) (bool, error) {
	res, err := e.predictRun(ctx, b, nil, gitRun{args: []string{"cat-file", "-e", "--end-of-options", object}, noTree: true})
	if err != nil {
		return false, err
	}
	return res.ExitCode == 0, nil
}

// fetchHeadRefs reads FETCH_HEAD, where the last fetch listed what it saw
// on the remote ("<object>\t[not-for-merge]\t<branch|tag> '<name>' of
// <url>"), as full ref names and their objects. Without the file (no fetch
// yet), none.
func (e *Executor) fetchHeadRefs(ctx context.Context, b sandbox.Binding) (map[string]string, error) {
	seen := map[string]string{}
	data, err := e.readGitFile(ctx, b, "FETCH_HEAD")
	if backends.CategoryOf(err) == backends.NotFound {
		return seen, nil
	}
	if err != nil {
		return nil, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			continue
		}
		kind, rest, ok := strings.Cut(f[2], " '")
		i := strings.LastIndex(rest, "' of ")
		if !ok || i < 0 {
			continue
		}
		switch kind {
		case "branch":
			seen["refs/heads/"+rest[:i]] = f[0]
		case "tag":
			seen["refs/tags/"+rest[:i]] = f[0]
		}
	}
	return seen, nil
}
