package approach1_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/relaytest"
)

// TestNoTokenInTheSandboxThroughTheRelay: an agent's whole session (clone,
// write, commit, push, fetch, pull) with every remote command through the
// relay lands the commit on the remote under the agent's identity, and
// neither project token is anywhere git in the sandbox could see it: not
// in any file of the sandboxes' trees, not in the argv or environment of
// any git process (recorded by a wrapper outside the sandboxes) — plain,
// URL-encoded or as base64 of user:token.
func TestNoTokenInTheSandboxThroughTheRelay(t *testing.T) {
	env := backendtest.NewEnv(t)
	wrapper, record := relaytest.GitRecorder(t)
	ex, relay := relaytest.NewRelayedApproach1Once(t, env, wrapper)
	p := env.Agent
	backendtest.Clone(t, ex, env, p, "ws")
	s := backends.Scope{Workspace: "ws"}
	backendtest.Do[*backends.CheckoutResult](t, ex, p, &backends.CheckoutRequest{Scope: s, Branch: "agent/relayed", Create: true})
	backendtest.Do[*backends.WriteFileResult](t, ex, p, &backends.WriteFileRequest{Scope: s, Path: "notes.md", Content: "through the relay\n"})
	sha := backendtest.Do[*backends.CommitResult](t, ex, p, &backends.CommitRequest{Scope: s, Message: "relayed"}).SHA
	backendtest.Do[*backends.PushResult](t, ex, p, &backends.PushRequest{Scope: s})
	backendtest.Do[*backends.FetchResult](t, ex, p, &backends.FetchRequest{Scope: s})
	backendtest.Do[*backends.PullResult](t, ex, p, &backends.PullRequest{Scope: s})

	ctx := t.Context()
	if got, err := env.Remote.Ref(ctx, "demo", "refs/heads/agent/relayed"); err != nil || got != sha {
		t.Fatalf("the remote has %q (%v) for the pushed branch, want %s", got, err, sha)
	}
	author, err := exec.CommandContext(ctx, "git", "--git-dir="+filepath.Join(env.RemoteFS, "demo.git"), "log", "-1", "--format=%an <%ae>", sha).Output()
	if err != nil || strings.TrimSpace(string(author)) != p.AuthorName+" <"+p.AuthorEmail+">" {
		t.Errorf("the pushed commit's author: %q %v", author, err)
	}

	seen, err := os.ReadFile(record)
	if err != nil || !bytes.Contains(seen, []byte("/c/ggcap_")) {
		t.Fatalf("git in the sandbox did not go through the relay (%v):\n%s", err, seen)
	}
	forms := relaytest.TokenForms("x-access-token", backendtest.Token, backendtest.ReadToken)
	scan := func(what string, data []byte) {
		for _, f := range forms {
			if bytes.Contains(data, []byte(f)) {
				t.Errorf("a project token (as %q) is in %s", f, what)
			}
		}
	}
	scan("the argv or environment of a git process in the sandbox", seen)
	files := 0
	for _, root := range env.SandboxRoots {
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				data, _ := os.ReadFile(path)
				scan(path, data)
				files++
			}
			return nil
		})
	}
	if files == 0 {
		t.Fatal("no sandbox file was scanned")
	}
	var pushes int
	for _, e := range relay.Events() {
		if e.Refused != "" || e.CutOff {
			t.Errorf("relay event %+v", e)
		}
		if len(e.Updates) > 0 {
			pushes++
		}
	}
	if pushes != 1 {
		t.Errorf("%d pushes went through the relay, want 1", pushes)
	}
}

// TestRelayCutsACloneOverTheProjectLimit: a clone of a repository larger
// than the project's limits.max_repo_bytes is cut off by the relay while
// it streams, and the agent gets resource_exhausted naming the limit.
func TestRelayCutsACloneOverTheProjectLimit(t *testing.T) {
	env := backendtest.NewEnv(t)
	env.Project.MaxRepoBytes = 256 << 10
	big := make([]byte, 2<<20)
	_, _ = rand.Read(big) // incompressible
	if _, err := env.Remote.CommitFile(t.Context(), "demo", "main", "big.bin", base64.StdEncoding.EncodeToString(big), ""); err != nil {
		t.Fatal(err)
	}
	ex, relay := relaytest.NewRelayedApproach1(t, env, "")
	err := backendtest.Fail(t, ex, env.Agent, &backends.CloneRequest{Scope: backends.Scope{Workspace: "big"}, URL: env.RepoURL})
	if backends.CategoryOf(err) != backends.ResourceExhausted || !strings.Contains(backends.MessageOf(err), "size limit") {
		t.Errorf("a clone over the project's limit: %v", err)
	}
	cut := false
	for _, e := range relay.Events() {
		cut = cut || e.CutOff
	}
	if !cut {
		t.Errorf("the relay did not cut the transfer off: %+v", relay.Events())
	}
}

// TestRelayedBytesArePriced: with relay.egress_usd_per_gib, a clone's
// cost is the bytes the relay carried for it at that price (local
// sandboxes cost nothing else); without a price, nothing.
func TestRelayedBytesArePriced(t *testing.T) {
	const usdPerGiB = 1 << 30 // a dollar a byte, to see every byte
	env := backendtest.NewEnv(t)
	ex, relay := relaytest.NewRelayedApproach1Priced(t, env, usdPerGiB)
	res := backendtest.Clone(t, ex, env, env.Agent, "priced")
	var moved int64
	for _, e := range relay.Events() {
		moved += e.In + e.Out
	}
	if moved == 0 || res.Served.CostUSD != float64(moved) {
		t.Errorf("the clone cost %v USD, the relay carried %d bytes at a dollar each", res.Served.CostUSD, moved)
	}
	free, _ := relaytest.NewRelayedApproach1(t, env, "")
	if c := backendtest.Clone(t, free, env, env.Agent, "free").Served.CostUSD; c != 0 {
		t.Errorf("without a price the clone cost %v", c)
	}
}
