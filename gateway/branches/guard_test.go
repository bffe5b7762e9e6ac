package branches

import (
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeBackend answers status with a current branch and records pushes.
type fakeBackend struct {
	current string
	pushes  []string
	tags    []string // the tags of every push, in order
}

func (b *fakeBackend) Execute(_ context.Context, req backends.Request) (backends.Result, error) {
	switch r := req.(type) {
	case *backends.StatusRequest:
		return &backends.StatusResult{Branch: b.current}, nil
	case *backends.PushRequest:
		b.pushes = append(b.pushes, r.Branch)
		b.tags = append(b.tags, r.Tags...)
		return &backends.PushResult{Branch: r.Branch, RemoteRef: "refs/heads/" + r.Branch, Head: "c0ffee", Tags: r.Tags}, nil
	}
	return nil, backends.Errorf(backends.Internal, "unexpected %s", req.Op())
}

func TestGuardRefusesProtectedAndUnprefixedBranches(t *testing.T) {
	f := newFixture(t)
	// The remote's default branch is "trunk", which no pattern names.
	f.setRef("trunk", f.ref("main"))
	if out, err := exec.Command("git", "--git-dir="+filepath.Join(f.root, "demo.git"), "symbolic-ref", "HEAD", "refs/heads/trunk").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	next := &fakeBackend{}
	bound := "" // the binding's current branch
	m := NewMetrics(nil)
	g := NewGuard(GuardConfig{Next: next, Git: f.git, Store: f.store, Metrics: m, Now: func() time.Time { return f.now },
		Policy: Policy{Default: Rules{Protected: DefaultProtected}, Projects: map[string]Rules{"p": {Protected: []string{"release/*"}, Prefix: "agent/<agent>/"}}},
		Workspace: func(_ context.Context, _ backends.Principal, name string) (Workspace, bool, error) {
			return Workspace{URL: f.url, Branch: bound}, name == "w", nil
		}})
	push := func(branch, current string) error {
		next.current = current
		_, err := g.Execute(t.Context(), &backends.PushRequest{Scope: backends.Scope{Principal: backends.Principal{Project: "p", Agent: "a1"}, Workspace: "w"}, Branch: branch})
		return err
	}
	refused := []struct {
		branch, current string
		reason          Reason
		says            []string
	}{
		{"main", "", ReasonProtected, []string{`"main" is protected`, `protected pattern "main"`, "agent/a1/<topic>"}},
		{"", "master", ReasonProtected, []string{`"master" is protected`}},
		{"trunk", "", ReasonProtected, []string{"the remote's default branch"}},
		{"release/1.0", "", ReasonProtected, []string{`protected pattern "release/*"`}},
		{"HEAD:main", "", ReasonProtected, []string{`protected branch "main"`}},
		{"+agent/a1/x:refs/heads/trunk", "", ReasonProtected, []string{`protected branch "trunk"`}},
		{"feature", "", ReasonPrefix, []string{`does not start with "agent/a1/"`}},
	}
	for _, c := range refused {
		err := push(c.branch, c.current)
		if backends.CategoryOf(err) != backends.Forbidden {
			t.Errorf("push %q (current %q): got %v, want forbidden", c.branch, c.current, err)
			continue
		}
		for _, s := range c.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("push %q: %q does not say %q", c.branch, err, s)
			}
		}
	}
	if err := push("feature:agent/a1/x", ""); backends.CategoryOf(err) != backends.InvalidArgument {
		t.Errorf("a refspec to an allowed branch: got %v, want invalid_argument", err)
	}
	if len(next.pushes) != 0 {
		t.Fatalf("refused pushes reached the backend: %q", next.pushes)
	}
	if got := testutil.ToFloat64(m.refused.WithLabelValues("protected")); got != 6 {
		t.Errorf("refused protected = %v, want 6", got)
	}
	if got := testutil.ToFloat64(m.refused.WithLabelValues("prefix")); got != 1 {
		t.Errorf("refused prefix = %v, want 1", got)
	}

	// Allowed pushes go through, naming the branch, and are recorded.
	if err := push("agent/a1/x", ""); err != nil {
		t.Fatal(err)
	}
	if err := push("", "agent/a1/y"); err != nil {
		t.Fatal(err)
	}
	// The binding's branch, when known, is the one pushed (no status call).
	bound = "agent/a1/z"
	if err := push("", "main"); err != nil {
		t.Fatal(err)
	}
	bound = "main"
	if err := push("", "agent/a1/z"); backends.CategoryOf(err) != backends.Forbidden {
		t.Errorf("push of the bound main: %v", err)
	}
	if want := []string{"agent/a1/x", "agent/a1/y", "agent/a1/z"}; strings.Join(next.pushes, " ") != strings.Join(want, " ") {
		t.Errorf("backend saw pushes of %q, want %q", next.pushes, want)
	}
	recs, err := f.store.Pushed(t.Context(), "p")
	if err != nil || len(recs) != 3 || recs[0].Branch != "agent/a1/x" || recs[0].Commit != "c0ffee" || recs[0].URL != f.url || recs[0].At != f.now {
		t.Errorf("recorded %+v, %v", recs, err)
	}
}

// TestGuardChecksPushedTags: a push's tags cannot carry it past the branch
// policy: a refspec or full ref name among them is refused (as a push to
// a protected branch when it would update one), so is a tag named like a
// protected branch (git would resolve the name to the tag) and, with a
// required prefix, a tag without it; a refusal pushes nothing, the
// branch included. Allowed tags go through beside their branch, which
// alone is recorded; the tags are logged.
func TestGuardChecksPushedTags(t *testing.T) {
	f := newFixture(t)
	next := &fakeBackend{}
	m := NewMetrics(nil)
	var logs strings.Builder
	guard := func(prefix string) *Guard {
		return NewGuard(GuardConfig{Next: next, Git: f.git, Store: f.store, Metrics: m, Now: func() time.Time { return f.now },
			Logger: slog.New(slog.NewTextHandler(&logs, nil)), Policy: Policy{Default: Rules{Protected: DefaultProtected, Prefix: prefix}},
			Workspace: func(context.Context, backends.Principal, string) (Workspace, bool, error) {
				return Workspace{URL: f.url, Branch: "agent/a1/x"}, true, nil
			}})
	}
	plain, prefixed := guard(""), guard("agent/<agent>/")
	push := func(prefix string, tags ...string) error {
		g := plain
		if prefix != "" {
			g = prefixed
		}
		_, err := g.Execute(t.Context(), &backends.PushRequest{Scope: backends.Scope{Principal: backends.Principal{Project: "p", Agent: "a1"}, Workspace: "w"},
			Branch: "agent/a1/x", Tags: tags})
		return err
	}
	refused := []struct {
		prefix string
		tags   []string
		want   backends.Category
		says   string
	}{
		{"", []string{"v1", "HEAD:refs/heads/main"}, backends.Forbidden, `protected branch "main"`},
		{"", []string{"refs/heads/master"}, backends.Forbidden, `protected branch "master"`},
		{"", []string{"+v1:main"}, backends.Forbidden, `protected branch "main"`},
		{"", []string{"main"}, backends.Forbidden, `the name of protected branch "main"`},
		{"", []string{"refs/tags/v1"}, backends.InvalidArgument, "tags takes tag names"},
		{"", []string{"v1:refs/tags/v2"}, backends.InvalidArgument, "tags takes tag names"},
		{"pre", []string{"agent/a1/v1", "v2"}, backends.Forbidden, `tag "v2" does not start with "agent/a1/"`},
	}
	for _, c := range refused {
		err := push(c.prefix, c.tags...)
		if backends.CategoryOf(err) != c.want || err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("push with tags %q (prefix %q): got %v, want %s saying %q", c.tags, c.prefix, err, c.want, c.says)
		}
	}
	if len(next.pushes) != 0 {
		t.Fatalf("refused pushes reached the backend: %q", next.pushes)
	}
	if got := testutil.ToFloat64(m.refused.WithLabelValues("protected")); got != 4 {
		t.Errorf("refused protected = %v, want 4", got)
	}
	if got := testutil.ToFloat64(m.refused.WithLabelValues("prefix")); got != 1 {
		t.Errorf("refused prefix = %v, want 1", got)
	}
	if err := push("", "v1", "release-candidate"); err != nil {
		t.Fatal(err)
	}
	if err := push("pre", "agent/a1/v1"); err != nil {
		t.Fatal(err)
	}
	if want := "v1 release-candidate agent/a1/v1"; strings.Join(next.tags, " ") != want {
		t.Errorf("backend saw tags %q, want %q", next.tags, want)
	}
	recs, err := f.store.Pushed(t.Context(), "p")
	if err != nil || len(recs) != 1 || recs[0].Branch != "agent/a1/x" { // two pushes of one branch: one record
		t.Errorf("recorded %+v, %v; want the branch alone", recs, err)
	}
	if !strings.Contains(logs.String(), `msg="tags pushed"`) || !strings.Contains(logs.String(), "release-candidate") {
		t.Errorf("the tags pushed are not logged:\n%s", logs.String())
	}
}
