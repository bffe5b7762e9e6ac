package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/gitremote"
)

const (
	testUser  = "x-access-token"
	testToken = "ghp_relayTestToken0123456789abcdefABCDEF"
)

// world is a real git remote behind HTTP Basic auth, and a relay in front
// of it holding the remote's token.
type world struct {
	t          testing.TB
	remote     *gitremote.Server
	remoteRoot string
	store      *MemoryStore
	relay      *httptest.Server
	mu         sync.Mutex
	events     []Event
}

func newWorld(t *testing.T, cfg Config) *world {
	t.Helper()
	w := newWorldTB(t, cfg)
	if err := w.remote.CreateRepo(t.Context(), "demo", map[string]string{"README.md": "hello\n"}); err != nil {
		t.Fatal(err)
	}
	return w
}

func newWorldTB(t testing.TB, cfg Config) *world {
	t.Helper()
	root := t.TempDir()
	rs, err := gitremote.New(gitremote.Config{Root: root, Username: testUser, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Close() })
	w := &world{t: t, remote: rs, remoteRoot: root, store: NewMemoryStore()}
	cfg.Store = w.store
	cfg.Credentials = func(project string, _ Direction) (string, string, bool) {
		return testUser, testToken, project == "alpha"
	}
	cfg.Report = func(e Event) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.events = append(w.events, e)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.relay = httptest.NewServer(r)
	t.Cleanup(w.relay.Close)
	return w
}

func (w *world) mint(dir Direction, refs ...string) (secret string, revoke func(context.Context) error) {
	w.t.Helper()
	secret, revoke, err := Mint(w.t.Context(), w.store, Capability{Project: "alpha", Workspace: "alpha/ws1",
		Remote: w.remote.RepoURL("demo"), Dir: dir, Refs: refs}, time.Minute)
	if err != nil {
		w.t.Fatal(err)
	}
	return secret, revoke
}

// git runs git in dir with an environment that holds no credential: no
// helper, no prompt, a home of its own.
func git(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	return gitIn(t, dir, args...)
}

func gitIn(t testing.TB, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=ada", "GIT_AUTHOR_EMAIL=ada@agents.invalid", "GIT_COMMITTER_NAME=ada", "GIT_COMMITTER_EMAIL=ada@agents.invalid"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := git(t, dir, args...)
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return out
}

// TestAgentSessionThroughTheRelay: git with no credential at all clones,
// fetches, commits and pushes (2 MiB) through the relay with capabilities; the
// commit is on the remote; the token is in no byte git saw or kept (its
// repository, its output); the relay reported the bytes and the ref update.
func TestAgentSessionThroughTheRelay(t *testing.T) {
	w := newWorld(t, Config{})
	work := t.TempDir()
	fetchCap, revokeFetch := w.mint(Fetch)
	out := mustGit(t, work, "clone", URL(w.relay.URL, fetchCap), "repo")
	repo := filepath.Join(work, "repo")
	out += mustGit(t, repo, "fetch", "origin")
	if err := revokeFetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Over git's 1 MiB post buffer, so that the push starts with git's
	// probe request (a lone flush-pkt), which the relay forwards.
	big := make([]byte, 1<<20)
	_, _ = rand.Read(big)
	if err := os.WriteFile(filepath.Join(repo, "notes.md"), []byte(hex.EncodeToString(big)), 0o644); err != nil {
		t.Fatal(err)
	}
	out += mustGit(t, repo, "checkout", "-b", "agent/ada-1")
	out += mustGit(t, repo, "add", "notes.md")
	out += mustGit(t, repo, "commit", "-m", "notes")
	head := strings.TrimSpace(mustGit(t, repo, "rev-parse", "HEAD"))
	pushCap, revokePush := w.mint(Push, "refs/heads/agent/ada-1")
	out += mustGit(t, repo, "push", URL(w.relay.URL, pushCap), "agent/ada-1")
	_ = revokePush(t.Context())
	if got, _ := w.remote.Ref(t.Context(), "demo", "refs/heads/agent/ada-1"); got != head {
		t.Fatalf("the remote has %q for the pushed branch, want %s\n%s", got, head, out)
	}
	if w.store.Len() != 0 {
		t.Errorf("%d capabilities left after their operations", w.store.Len())
	}
	// Nowhere in what git had: its output, its whole repository.
	forbidden := secretForms(testToken)
	scan := func(what string, data []byte) {
		for _, f := range forbidden {
			if bytes.Contains(data, []byte(f)) {
				t.Errorf("the token (as %q) is in %s", f, what)
			}
		}
	}
	scan("git's output", []byte(out))
	_ = filepath.WalkDir(repo, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(path)
			scan(path, data)
		}
		return nil
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	var in, outBytes int64
	var pushed []RefUpdate
	for _, e := range w.events {
		in, outBytes = in+e.In, outBytes+e.Out
		pushed = append(pushed, e.Updates...)
		if e.Refused != "" || e.CutOff {
			t.Errorf("event %+v", e)
		}
	}
	if in == 0 || outBytes == 0 || len(pushed) != 1 || pushed[0].Ref != "refs/heads/agent/ada-1" || pushed[0].New != head {
		t.Errorf("metered %d in, %d out; ref updates %+v", in, outBytes, pushed)
	}
}

// secretForms are the ways a token can appear: plain, URL-encoded, and in
// base64 of user:token (HTTP Basic).
func secretForms(token string) []string {
	return []string{token, url.QueryEscape(token), base64.StdEncoding.EncodeToString([]byte(testUser + ":" + token)),
		base64.StdEncoding.EncodeToString([]byte(":" + token))}
}

// TestCapabilitiesAreRefused: a revoked capability gets 401, a fetch
// capability asked to push gets 403, and a made-up one 401; nothing
// reaches the remote.
func TestCapabilitiesAreRefused(t *testing.T) {
	w := newWorld(t, Config{})
	fetchCap, revoke := w.mint(Fetch)
	get := func(secret, service string) int {
		res, err := http.Get(URL(w.relay.URL, secret) + "/info/refs?service=" + service)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if code := get(fetchCap, UploadPack); code != http.StatusOK {
		t.Fatalf("a live fetch capability: %d", code)
	}
	if code := get(fetchCap, ReceivePack); code != http.StatusForbidden {
		t.Errorf("a fetch capability asking to push: %d, want 403", code)
	}
	before := len(w.remote.Requests())
	_ = revoke(t.Context())
	if code := get(fetchCap, UploadPack); code != http.StatusUnauthorized {
		t.Errorf("a capability replayed after its operation: %d, want 401", code)
	}
	if code := get(secretPrefix+"made-up", UploadPack); code != http.StatusUnauthorized {
		t.Errorf("a made-up capability: %d, want 401", code)
	}
	if n := len(w.remote.Requests()) - before; n != 0 {
		t.Errorf("%d refused requests reached the remote", n)
	}
	// git itself, with the replayed capability, fails without a prompt.
	if out, err := git(t, t.TempDir(), "ls-remote", URL(w.relay.URL, fetchCap)); err == nil {
		t.Errorf("ls-remote with a revoked capability worked:\n%s", out)
	}
}

// rawPush sends a receive-pack request made by hand (as anything in a
// sandbox could) with a valid push capability: commands and an empty pack.
func rawPush(t *testing.T, w *world, secret string, commands ...string) string {
	t.Helper()
	var body strings.Builder
	for i, c := range commands {
		if i == 0 {
			c += "\x00report-status side-band-64k"
		}
		body.WriteString(pkt(c + "\n"))
	}
	body.WriteString("0000")
	// An empty pack: header (version 2, no objects) and its SHA-1.
	pack := []byte("PACK\x00\x00\x00\x02\x00\x00\x00\x00")
	sum, _ := hex.DecodeString("029d08823bd8a8eab510ad6ac75c823cfd3ed31e")
	body.Write(pack)
	body.Write(sum)
	res, err := http.Post(URL(w.relay.URL, secret)+"/"+ReceivePack, "application/x-git-receive-pack-request", strings.NewReader(body.String()))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return fmt.Sprintf("%d %s", res.StatusCode, data)
}

// TestPushPolicyOnTheWire: hand-made receive-pack requests with a valid
// push capability, bypassing gitgate's git, are refused when they update a
// protected branch, delete a branch or name a ref the capability does not
// allow; the remote is unchanged. Real git pushing the same is refused
// with the reason.
func TestPushPolicyOnTheWire(t *testing.T) {
	protected := errors.New("refs/heads/main is protected (permission_denied)")
	w := newWorld(t, Config{Policy: func(_ Capability, u RefUpdate, defaultBranch string) error {
		if u.Ref == "refs/heads/"+defaultBranch {
			return protected
		}
		return nil
	}})
	ctx := t.Context()
	main, _ := w.remote.Ref(ctx, "demo", "refs/heads/main")
	other, err := w.remote.CommitFile(ctx, "demo", "agent/other", "x.md", "x\n", "")
	if err != nil {
		t.Fatal(err)
	}
	zero := strings.Repeat("0", 40)
	anyRef, _ := w.mint(Push)
	onlyMine, _ := w.mint(Push, "refs/heads/agent/mine")
	before := w.remote.Pushes("demo")
	for _, c := range []struct {
		name, secret, command, reason string
	}{
		{"update a protected branch", anyRef, main + " " + other + " refs/heads/main", "protected"},
		{"delete a branch", anyRef, other + " " + zero + " refs/heads/agent/other", "deleting refs/heads/agent/other"},
		{"update a ref the capability does not name", onlyMine, zero + " " + other + " refs/heads/agent/elsewhere", "not a ref this operation may update"},
	} {
		got := rawPush(t, w, c.secret, c.command)
		if !strings.Contains(got, "ng refs/heads/") || !strings.Contains(got, c.reason) {
			t.Errorf("%s: the relay answered %q", c.name, got)
		}
	}
	if n := w.remote.Pushes("demo") - before; n != 0 {
		t.Errorf("%d refused pushes reached the remote", n)
	}
	if now, _ := w.remote.Ref(ctx, "demo", "refs/heads/main"); now != main {
		t.Errorf("main moved from %s to %s", main, now)
	}
	if now, _ := w.remote.Ref(ctx, "demo", "refs/heads/agent/other"); now != other {
		t.Errorf("agent/other moved from %s to %s", other, now)
	}
	// Real git, told to push to main, hears why.
	work := t.TempDir()
	fetchCap, _ := w.mint(Fetch)
	mustGit(t, work, "clone", URL(w.relay.URL, fetchCap), "repo")
	repo := filepath.Join(work, "repo")
	mustGit(t, repo, "commit", "--allow-empty", "-m", "to main")
	out, err := git(t, repo, "push", URL(w.relay.URL, anyRef), "HEAD:main")
	if err == nil || !strings.Contains(out, "remote rejected") || !strings.Contains(out, "protected") {
		t.Errorf("git push to main through the relay: %v\n%s", err, out)
	}
	if now, _ := w.remote.Ref(ctx, "demo", "refs/heads/main"); now != main {
		t.Errorf("main moved from %s to %s", main, now)
	}
}

// TestCloneOverTheCapIsCutOff: a clone of a repository over the size cap
// is cut off mid-stream, and git says resource_exhausted.
func TestCloneOverTheCapIsCutOff(t *testing.T) {
	w := newWorld(t, Config{MaxBytes: 64 << 10})
	big := make([]byte, 512<<10)
	_, _ = rand.Read(big)
	if _, err := w.remote.CommitFile(t.Context(), "demo", "main", "big.bin", hex.EncodeToString(big), ""); err != nil {
		t.Fatal(err)
	}
	fetchCap, _ := w.mint(Fetch)
	out, err := git(t, t.TempDir(), "clone", URL(w.relay.URL, fetchCap), "repo")
	if err == nil || !strings.Contains(out, "resource_exhausted") {
		t.Fatalf("a clone over the cap: %v\n%s", err, out)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	cut := false
	for _, e := range w.events {
		cut = cut || e.CutOff
		if e.Out > 64<<10+maxPktLen {
			t.Errorf("the relay sent %d bytes with a cap of %d", e.Out, 64<<10)
		}
	}
	if !cut {
		t.Errorf("no event reports the cut-off: %+v", w.events)
	}
}

// TestForcedPushesAreRefusedOnTheWire: through the relay with a valid push
// capability, git itself pushing a branch update that is a fast-forward
// (plain, and through a merge of a commit the remote already has) goes
// through; a forced update (history rewritten) and moving an existing tag
// are refused by the relay, and the remote is unchanged.
func TestForcedPushesAreRefusedOnTheWire(t *testing.T) {
	w := newWorld(t, Config{})
	ctx := t.Context()
	work := t.TempDir()
	fetchCap, _ := w.mint(Fetch)
	mustGit(t, work, "clone", URL(w.relay.URL, fetchCap), "repo")
	repo := filepath.Join(work, "repo")
	push := func(args ...string) (string, error) {
		secret, revoke := w.mint(Push)
		defer func() { _ = revoke(ctx) }()
		return git(t, repo, append([]string{"push", URL(w.relay.URL, secret)}, args...)...)
	}
	mustGit(t, repo, "checkout", "-b", "agent/x")
	mustGit(t, repo, "commit", "--allow-empty", "-m", "one")
	if out, err := push("agent/x"); err != nil {
		t.Fatalf("creating the branch: %v\n%s", err, out)
	}
	mustGit(t, repo, "commit", "--allow-empty", "-m", "two")
	if out, err := push("agent/x"); err != nil {
		t.Fatalf("a fast-forward: %v\n%s", err, out)
	}
	// A commit someone else pushed to main, merged into the branch: the
	// merge's other parent is on the remote, not in the pack.
	if _, err := w.remote.CommitFile(ctx, "demo", "main", "other.md", "someone else\n", ""); err != nil {
		t.Fatal(err)
	}
	mustGit(t, repo, "fetch", URL(w.relay.URL, fetchCap), "main:refs/remotes/origin/main")
	mustGit(t, repo, "merge", "--no-edit", "origin/main")
	if out, err := push("agent/x"); err != nil {
		t.Fatalf("a fast-forward through a merge: %v\n%s", err, out)
	}
	tip, _ := w.remote.Ref(ctx, "demo", "refs/heads/agent/x")
	// Commits the remote has already (no pack to read): agent/y created
	// at an older commit, then moved to agent/x's tip (a fast-forward the
	// relay reads from the remote's history), and agent/x forced back to
	// agent/y's old commit (refused).
	if out, err := push("HEAD~2:refs/heads/agent/y"); err != nil {
		t.Fatalf("creating agent/y: %v\n%s", err, out)
	}
	older, _ := w.remote.Ref(ctx, "demo", "refs/heads/agent/y")
	if out, err := push("agent/x:agent/y"); err != nil {
		t.Fatalf("a fast-forward to commits the remote has: %v\n%s", err, out)
	}
	out, err := push("--force", older+":refs/heads/agent/x")
	if err == nil || !strings.Contains(out, "not a fast-forward") {
		t.Errorf("agent/x forced back to an older commit the remote has: %v\n%s", err, out)
	}
	if now, _ := w.remote.Ref(ctx, "demo", "refs/heads/agent/x"); now != tip {
		t.Errorf("agent/x moved from %s to %s", tip, now)
	}
	// History rewritten, pushed with --force.
	mustGit(t, repo, "reset", "--hard", "HEAD~2")
	mustGit(t, repo, "commit", "--allow-empty", "-m", "rewritten")
	out, err = push("--force", "agent/x")
	if err == nil || !strings.Contains(out, "not a fast-forward") {
		t.Errorf("a forced update through the relay: %v\n%s", err, out)
	}
	if now, _ := w.remote.Ref(ctx, "demo", "refs/heads/agent/x"); now != tip {
		t.Errorf("agent/x moved from %s to %s", tip, now)
	}
	// A tag, created, then moved with --force.
	mustGit(t, repo, "tag", "v1", "HEAD~1")
	if out, err := push("v1"); err != nil {
		t.Fatalf("creating a tag: %v\n%s", err, out)
	}
	tag, _ := w.remote.Ref(ctx, "demo", "refs/tags/v1")
	mustGit(t, repo, "tag", "-f", "v1", "HEAD")
	out, err = push("--force", "v1")
	if err == nil || !strings.Contains(out, "never moved") {
		t.Errorf("moving a tag through the relay: %v\n%s", err, out)
	}
	if now, _ := w.remote.Ref(ctx, "demo", "refs/tags/v1"); now != tag {
		t.Errorf("v1 moved from %s to %s", tag, now)
	}
}

// TestApplyDelta: git's delta format (copy from the base, insert new
// bytes), and malformed deltas refused.
func TestApplyDelta(t *testing.T) {
	base := []byte("tree 1234\nparent abcd\n\nmessage\n")
	// The source's size, the target's (20): copy 10 bytes from offset 0,
	// then insert 10.
	delta := []byte{byte(len(base)), 20, 0x80 | 0x10, 10, 10}
	delta = append(delta, []byte("0123456789")...)
	got, err := applyDelta(base, delta)
	if err != nil || string(got) != "tree 1234\n0123456789" {
		t.Fatalf("applyDelta: %q %v", got, err)
	}
	for _, bad := range [][]byte{
		{byte(len(base) + 1), 5, 5, 'a', 'b', 'c', 'd', 'e'}, // wrong source size
		{byte(len(base)), 5, 0x80 | 0x01 | 0x10, 200, 5},     // copy past the base
		{byte(len(base)), 5, 3, 'a', 'b', 'c'},               // shorter than its size
	} {
		if _, err := applyDelta(base, bad); err == nil {
			t.Errorf("delta %v accepted", bad)
		}
	}
}
