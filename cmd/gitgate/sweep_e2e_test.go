package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// sandboxDirs returns the sandboxes in dir: those holding a workspace and
// the empty ones.
func sandboxDirs(t *testing.T, dir string) (withWork, empty []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "sbx-") {
			continue
		}
		ws, _ := os.ReadDir(filepath.Join(dir, e.Name(), "git"))
		if len(ws) > 0 {
			withWork = append(withWork, e.Name())
		} else {
			empty = append(empty, e.Name())
		}
	}
	return withWork, empty
}

// TestKilledServiceWarmSandboxesAreSwept: the warm sandboxes of a service
// killed with SIGKILL are removed by the next one; the sandbox holding a
// workspace stays, and the workspace is served again.
func TestKilledServiceWarmSandboxesAreSwept(t *testing.T) {
	w := newWorld(t)
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	w.sharedSandboxes = t.TempDir()
	addr, proc := w.startBackend(t)
	c, err := approach2.Dial(addr, approach2.ClientConfig{Token: serviceToken, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	ada := backends.Principal{Project: "alpha", Agent: "ada", AuthorName: "Ada Agent", AuthorEmail: "ada@agents.example"}
	backendtest.Do[*backends.CloneResult](t, c, ada, &backends.CloneRequest{Scope: backends.Scope{Workspace: "kept"}, URL: w.repoURL})
	_ = c.Close()
	var before []string
	testkit.Eventually(t, "the pool refills after the clone", func() bool {
		_, before = sandboxDirs(t, w.sharedSandboxes)
		return len(before) >= 1
	})
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = w.backendWait()

	addr, _ = w.startBackend(t)
	testkit.Eventually(t, "the killed service's warm sandboxes are swept", func() bool {
		_, empty := sandboxDirs(t, w.sharedSandboxes)
		for _, old := range before {
			for _, e := range empty {
				if e == old {
					return false
				}
			}
		}
		return true
	})
	withWork, _ := sandboxDirs(t, w.sharedSandboxes)
	if len(withWork) != 1 {
		t.Errorf("sandboxes holding a workspace after the sweep: %v, want the one", withWork)
	}
	c, err = approach2.Dial(addr, approach2.ClientConfig{Token: serviceToken, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	backendtest.Do[*backends.StatusResult](t, c, ada, &backends.StatusRequest{Scope: backends.Scope{Workspace: "kept"}})
	if !strings.Contains(w.logs.String(), "orphaned sandboxes swept") {
		t.Error("the sweep was not logged")
	}
}
