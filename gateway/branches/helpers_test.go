package branches

import (
	"context"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/internal/gitremote"
)

const testToken = "tok-branches-8c1e55a0"

// fixture is a real remote with a "demo" repository and the host git that
// reaches it with the project's token.
type fixture struct {
	t      *testing.T
	remote *gitremote.Server
	root   string
	url    string
	git    *Git
	store  *FileStore
	now    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	srv, err := gitremote.New(gitremote.Config{Root: root, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.CreateRepo(t.Context(), "demo", map[string]string{"README.md": "hello\n"}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	u, _ := url.Parse(srv.RepoURL("demo"))
	g := &Git{Projects: func(p string) (Project, bool) {
		return Project{Remotes: gitcmd.RemotePolicy{Schemes: []string{"http"}, Hosts: []string{u.Host}}, Token: testToken}, p == "p"
	}}
	store, err := OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, remote: srv, root: root, url: srv.RepoURL("demo"), git: g, store: store,
		now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
}

// ref is the remote's tip of branch ("" when absent).
func (f *fixture) ref(branch string) string {
	f.t.Helper()
	sha, err := f.remote.Ref(context.Background(), "demo", "refs/heads/"+branch)
	if err != nil {
		f.t.Fatal(err)
	}
	return sha
}

// commit commits on branch of the remote as someone else.
func (f *fixture) commit(branch, content string) string {
	f.t.Helper()
	sha, err := f.remote.CommitFile(f.t.Context(), "demo", branch, "f-"+strings.ReplaceAll(branch, "/", "-")+".txt", content, "")
	if err != nil {
		f.t.Fatal(err)
	}
	return sha
}

// setRef points branch at sha on the remote.
func (f *fixture) setRef(branch, sha string) {
	f.t.Helper()
	out, err := exec.Command("git", "--git-dir="+filepath.Join(f.root, "demo.git"), "update-ref", "refs/heads/"+branch, sha).CombinedOutput()
	if err != nil {
		f.t.Fatalf("update-ref: %v: %s", err, out)
	}
}

// pushed records branch at sha as pushed by agent a1 at time at.
func (f *fixture) pushed(branch, sha string, at time.Time) Pushed {
	f.t.Helper()
	p := Pushed{Project: "p", Agent: "a1", Workspace: "w", URL: f.url, Branch: branch, Commit: sha, At: at}
	if err := f.store.RecordPush(f.t.Context(), p); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) cleaner(dry bool, m *Metrics) *Cleaner {
	return NewCleaner(CleanerConfig{Store: f.store, Git: f.git, Policy: Policy{Default: Rules{Protected: DefaultProtected}},
		DryRun: dry, Metrics: m, Now: func() time.Time { return f.now }})
}
