// Package backendtest is the conformance suite for backends.Executor: every
// operation, including the bad-input cases, run against a real smart-HTTP
// git remote (git http-backend behind token auth). Every backend's tests
// call Run, so "the same behaviour" is proven once.
package backendtest

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/gitremote"
)

// Token is the project's git token the remote requires. It has the shape of
// a GitHub token so that redaction by pattern is exercised too.
const Token = "ghs_conformanceTOKEN0123456789abcdefXYZ"

// ReadToken is the project's read-only token: the remote lets it fetch and
// refuses it on push. Shadow predictions read the remote with it.
const ReadToken = "ghs_conformanceREADONLY0123456789abcdef"

// Project describes the project the backend must be configured with.
type Project struct {
	Name    string
	Schemes []string // transports the project allows
	Hosts   []string // hosts the project allows
	Token   string
	// ReadToken is the read-only token ("" for none).
	ReadToken string
	// MaxRepoBytes and MaxSandboxBytes are the project's size limits (0:
	// the engine's defaults).
	MaxRepoBytes, MaxSandboxBytes int64
}

// Env is one test's world: a remote with a seeded repository and the
// principals that act on it.
type Env struct {
	Remote   *gitremote.Server
	RemoteFS string // the remote's repository root on disk
	RepoURL  string // URL of the seeded repository "demo"
	Project  Project
	// Agent and Agent2 act in Project; Stranger belongs to another project
	// configured with the same hosts and token, so that only the project
	// check keeps it out of Project's workspaces.
	Agent, Agent2, Stranger backends.Principal
	StrangerProject         Project
	// SandboxRoots are the local sandbox directories of the engines built
	// for this env (NewEngine), for tests that fingerprint them.
	SandboxRoots []string
}

// Factory builds the executor under test for env. It registers its own
// cleanup with t.
type Factory func(t *testing.T, env *Env) backends.Executor

// SeedFiles is the content of the seeded repository's first commit.
var SeedFiles = map[string]string{
	"README.md":   "# demo\n\nA sample repository.\n",
	"src/main.go": "package main\n\nfunc main() {}\n",
}

// NewEnv starts a remote with the seeded repository "demo".
func NewEnv(t testing.TB) *Env {
	t.Helper()
	root := t.TempDir()
	srv, err := gitremote.New(gitremote.Config{Root: root, Username: "x-access-token", Token: Token, ReadToken: ReadToken})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if err := srv.CreateRepo(context.Background(), "demo", SeedFiles); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL())
	env := &Env{
		Remote: srv, RemoteFS: root, RepoURL: srv.RepoURL("demo"),
		Project:         Project{Name: "alpha", Schemes: []string{"http"}, Hosts: []string{u.Host}, Token: Token, ReadToken: ReadToken},
		StrangerProject: Project{Name: "beta", Schemes: []string{"http"}, Hosts: []string{u.Host}, Token: Token},
		Agent:           backends.Principal{Project: "alpha", Agent: "ada", AuthorName: "Ada Agent", AuthorEmail: "ada@agents.example"},
		Agent2:          backends.Principal{Project: "alpha", Agent: "bob", AuthorName: "Bob Agent", AuthorEmail: "bob@agents.example"},
		Stranger:        backends.Principal{Project: "beta", Agent: "eve", AuthorName: "Eve", AuthorEmail: "eve@beta.example"},
	}
	return env
}

// Run runs the whole suite against executors built by f. The executor
// must keep every promise of the tool schemas, idempotency keys included:
// build it the way the product runs it, behind the exactly-once layer
// (NewApproach1Once, WithOnce), with the default limits.
//
// Options change how much of the suite runs (see Sampled and Core).
func Run(t *testing.T, f Factory, opts ...Option) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	t.Run("Flow", func(t *testing.T) { testFlow(t, f) })
	t.Run("Reads", func(t *testing.T) { testReads(t, f) })
	t.Run("Files", func(t *testing.T) { testFiles(t, f) })
	t.Run("Pull", func(t *testing.T) { testPull(t, f) })
	t.Run("PushRefusals", func(t *testing.T) { testPushRefusals(t, f) })
	t.Run("Workspaces", func(t *testing.T) { testWorkspaces(t, f) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, f) })
	t.Run("Paging", func(t *testing.T) { testPaging(t, f) })
	t.Run("GitOps", func(t *testing.T) { testGitOps(t, f) })
	if o.core {
		return
	}
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, f) })
	t.Run("DeleteBranch", func(t *testing.T) { testDeleteBranch(t, f) })
	t.Run("HostileRefs", func(t *testing.T) { testHostileRefs(t, f, o) })
	t.Run("PlantedConfig", func(t *testing.T) { testPlantedConfig(t, f, o) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, f, o) })
	t.Run("Predictions", func(t *testing.T) { testPredictions(t, f, o) })
	t.Run("GitOpsBadInput", func(t *testing.T) { testGitOpsBadInput(t, f, o) })
	t.Run("GitOpsPredictions", func(t *testing.T) { testGitOpsPredictions(t, f) })
	t.Run("SizeLimits", func(t *testing.T) { testSizeLimits(t, f, o) })
	t.Run("TransferLimits", func(t *testing.T) { testTransferLimits(t, f) })
	t.Run("AgentText", func(t *testing.T) {
		testAgentText(t, f)
		t.Run("StaleIndexLock", func(t *testing.T) { testStaleIndexLock(t, f) })
		t.Run("CallerGaveUp", func(t *testing.T) { testCallerGaveUp(t, f) })
	})
}

// Option changes how Run covers the suite.
type Option func(*options)

type options struct {
	sampled bool
	core    bool
}

// Core runs only the subtests that exercise what a backend adds around the
// engine (the flow, reads, files, pull and push, workspaces, idempotency,
// paging, the flows of issue 16's operations), not the engine's own tables of refused input, limits,
// predictions and concurrency. It is for a combination whose parts full
// runs cover one by one: Approach 2's service on E2B sandboxes, whose
// engine on E2B (package e2b) and whose service locally (package
// approach2) each run the rest.
func Core() Option { return func(o *options) { o.core = true } }

// Sampled runs the long tables of refused input (hostile branch names and
// paths, planted repository configuration, the write_file size cases) with
// a few representative cases each instead of all of them, and the
// concurrent parts (Concurrency, predictions made while the agent writes)
// with fewer agents. It is for runs whose engine (approach1's, the same
// code for every provider and behind the service) a full run covers, and
// whose own part is the path around it: E2B, where every git call is a
// network round trip, and Approach 2's service, where every call crosses
// gRPC. The sample still crosses every such path (the refs listing, the
// config check read in the sandbox, the refusal before git runs, the
// categories and messages carried back).
func Sampled() Option { return func(o *options) { o.sampled = true } }

// agents returns how many concurrent agents a concurrent subtest runs: full
// with the whole suite, fewer with Sampled.
func (o options) agents(full int) int {
	if o.sampled {
		return max(full/4, 5)
	}
	return full
}

// sample returns cases, or with o.sampled the first, the middle and the
// last of them.
func sample[T any](o options, cases []T) []T {
	if !o.sampled || len(cases) <= 3 {
		return cases
	}
	return []T{cases[0], cases[len(cases)/2], cases[len(cases)-1]}
}

// RemoteGit runs git on the remote's bare repository "demo" and returns its
// trimmed output.
func (env *Env) RemoteGit(t testing.TB, args ...string) string {
	t.Helper()
	full := append([]string{"--git-dir=" + filepath.Join(env.RemoteFS, "demo.git")}, args...)
	cmd := exec.Command("/usr/bin/git", full...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v on remote: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// RemoteRef returns the sha of ref on the remote's "demo", "" if missing.
func (env *Env) RemoteRef(t testing.TB, ref string) string {
	t.Helper()
	sha, err := env.Remote.Ref(context.Background(), "demo", ref)
	if err != nil {
		t.Fatal(err)
	}
	return sha
}

// Ctx returns a context bounded to a minute.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Do runs req as p on ex and fails the test on error.
func Do[R backends.Result](t testing.TB, ex backends.Executor, p backends.Principal, req backends.Request) R {
	t.Helper()
	req.GetScope().Principal = p
	res, err := backends.Do[R](Ctx(t), ex, req)
	if err != nil {
		t.Fatalf("%s: %v", req.Op(), err)
	}
	return res
}

// Fail runs req as p and returns its error, failing the test on success.
func Fail(t testing.TB, ex backends.Executor, p backends.Principal, req backends.Request) error {
	t.Helper()
	req.GetScope().Principal = p
	res, err := ex.Execute(Ctx(t), req)
	if err == nil {
		t.Fatalf("%s: want an error, got %+v", req.Op(), res)
	}
	return err
}

// Clone clones the seeded repository into workspace ws as p.
func Clone(t testing.TB, ex backends.Executor, env *Env, p backends.Principal, ws string) *backends.CloneResult {
	t.Helper()
	return Do[*backends.CloneResult](t, ex, p, &backends.CloneRequest{Scope: scope(ws), URL: env.RepoURL})
}

func scope(ws string) backends.Scope { return backends.Scope{Workspace: ws} }

// WantCategory fails unless err has category want.
func WantCategory(t testing.TB, err error, want backends.Category) {
	t.Helper()
	if got := backends.CategoryOf(err); got != want {
		t.Fatalf("category %q, want %q (error: %v)", got, want, err)
	}
}

func uniq(prefix string, i int) string { return fmt.Sprintf("%s-%02d", prefix, i) }

// RemoteSymlinks commits symbolic links (name → target) on the remote's
// main branch, the way a hostile repository would carry them.
func (env *Env) RemoteSymlinks(t testing.TB, links map[string]string) {
	t.Helper()
	tree := env.RemoteGit(t, "rev-parse", "refs/heads/main^{tree}")
	entries := env.RemoteGit(t, "ls-tree", "-z", tree)
	var lines []string
	for _, e := range strings.Split(entries, "\x00") {
		if e != "" {
			lines = append(lines, e)
		}
	}
	for name, target := range links {
		blob := env.remoteGitInput(t, target, "hash-object", "-w", "--stdin")
		lines = append(lines, "120000 blob "+blob+"\t"+name)
	}
	newTree := env.remoteGitInput(t, strings.Join(lines, "\n")+"\n", "mktree")
	parent := env.RemoteRef(t, "refs/heads/main")
	commit := env.remoteGitInput(t, "Add symbolic links\n", "-c", "user.name=Mallory", "-c", "user.email=m@example.com", "commit-tree", newTree, "-p", parent)
	env.RemoteGit(t, "update-ref", "refs/heads/main", commit, parent)
}

func (env *Env) remoteGitInput(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	full := append([]string{"--git-dir=" + filepath.Join(env.RemoteFS, "demo.git")}, args...)
	cmd := exec.Command("/usr/bin/git", full...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C"}
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %v on remote: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}
