package approach1_test

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/e2bfake"
)

// TestForkSharedPackCountsOnceAgainstSandboxLimit: a fork hard-links its
// source's objects, so the sandbox limit counts them once. The repository
// has a 6 MiB pack (a random blob its history replaced) and a work tree of
// a few bytes; the sandbox limit is 10 MiB. The source and a fork (6 MiB
// of objects on disk, two small work trees) fit and the fork succeeds,
// although the two packs, counted per link, would be 12 MiB. A fresh clone
// beside the source (two real packs) is still refused: the limit holds
// for what is really on disk. Both providers measure: local (a walk) and
// E2B (du in the sandbox).
func TestForkSharedPackCountsOnceAgainstSandboxLimit(t *testing.T) {
	for _, provider := range []string{"local", "e2b"} {
		t.Run(provider, func(t *testing.T) { testForkSharedPackCountsOnce(t, provider) })
	}
}

func testForkSharedPackCountsOnce(t *testing.T, provider string) {
	const limit = 10 << 20
	env := backendtest.NewEnv(t)
	env.Project.MaxSandboxBytes = limit
	var ex backends.Executor
	if provider == "e2b" {
		ex, _ = backendtest.NewE2BOnce(t, env, e2bfake.Config{})
	} else {
		ex = backendtest.NewApproach1(t, env)
	}
	ctx := backendtest.Ctx(t)
	if err := env.Remote.CreateRepo(ctx, "packed", map[string]string{"README.md": "packed\n", "big.bin": rand.Text() + "\n"}); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 6<<20)
	_, _ = rand.Read(big)
	if _, err := env.Remote.CommitFile(ctx, "packed", "main", "big.bin", string(big), "a large blob"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Remote.CommitFile(ctx, "packed", "main", "big.bin", "small again\n", "the blob made small"); err != nil {
		t.Fatal(err)
	}
	url := env.Remote.RepoURL("packed")
	scope := func(ws string) backends.Scope { return backends.Scope{Workspace: ws} }
	backendtest.Do[*backends.CloneResult](t, ex, env.Agent, &backends.CloneRequest{Scope: scope("source"), URL: url})

	backendtest.Do[*backends.ForkWorkspaceResult](t, ex, env.Agent, &backends.ForkWorkspaceRequest{Scope: scope("fork"), Source: "source", Branch: "feat"})
	got := backendtest.Do[*backends.ReadFileResult](t, ex, env.Agent, &backends.ReadFileRequest{Scope: scope("fork"), Path: "big.bin"})
	if got.Content != "small again\n" {
		t.Fatalf("the fork's big.bin: %q", got.Content)
	}

	want := "sandbox disk limit of 10 MiB"
	err := backendtest.Fail(t, ex, env.Agent, &backends.CloneRequest{Scope: scope("clone"), URL: url})
	if backends.CategoryOf(err) != backends.ResourceExhausted || !strings.Contains(backends.MessageOf(err), want) {
		t.Fatalf("a second full clone (two real packs of 6 MiB) under a 10 MiB sandbox limit: %v; want resource_exhausted naming the %s", err, want)
	}
}
