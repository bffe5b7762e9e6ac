package backendtest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// testConcurrency: 20 agents commit to one workspace at once and all
// succeed with no lost commit; 20 workspaces work in parallel.
func testConcurrency(t *testing.T, f Factory, o options) {
	env := NewEnv(t)
	ex := f(t, env)
	Clone(t, ex, env, env.Agent, "shared")
	n := o.agents(20)
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- commitOwnFile(t, ex, env, i)
		}()
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- ownWorkspace(t, ex, env, i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	lg := Do[*backends.LogResult](t, ex, env.Agent, &backends.LogRequest{Scope: scope("shared"), Limit: 50})
	subjects := map[string]bool{}
	for _, c := range lg.Commits {
		subjects[c.Subject] = true
	}
	for i := range n {
		if !subjects[fmt.Sprintf("agent %d", i)] {
			t.Errorf("commit of agent %d is missing from the history", i)
		}
	}
	if len(lg.Commits) != n+1 {
		t.Errorf("history has %d commits, want %d", len(lg.Commits), n+1)
	}
}

func commitOwnFile(t *testing.T, ex backends.Executor, env *Env, i int) error {
	p := env.Agent
	p.Agent = fmt.Sprintf("agent-%d", i)
	ctx := Ctx(t)
	path := fmt.Sprintf("agents/%02d.txt", i)
	w := &backends.WriteFileRequest{Scope: scope("shared"), Path: path, Content: fmt.Sprintf("agent %d\n", i)}
	w.Principal = p
	if _, err := ex.Execute(ctx, w); err != nil {
		return fmt.Errorf("agent %d write: %w", i, err)
	}
	c := &backends.CommitRequest{Scope: scope("shared"), Message: fmt.Sprintf("agent %d", i), Paths: []string{path}}
	c.Principal = p
	if _, err := ex.Execute(ctx, c); err != nil {
		if strings.Contains(err.Error(), "index.lock") {
			return fmt.Errorf("agent %d hit an index.lock error: %w", i, err)
		}
		return fmt.Errorf("agent %d commit: %w", i, err)
	}
	return nil
}

func ownWorkspace(t *testing.T, ex backends.Executor, env *Env, i int) error {
	ctx := Ctx(t)
	ws := uniq("par", i)
	steps := []backends.Request{
		&backends.CloneRequest{Scope: scope(ws), URL: env.RepoURL},
		&backends.WriteFileRequest{Scope: scope(ws), Path: "own.txt", Content: ws},
		&backends.CommitRequest{Scope: scope(ws), Message: "own " + ws},
		&backends.StatusRequest{Scope: scope(ws)},
	}
	for _, req := range steps {
		req.GetScope().Principal = env.Agent2
		if _, err := ex.Execute(ctx, req); err != nil {
			return fmt.Errorf("workspace %s %s: %w", ws, req.Op(), err)
		}
	}
	return nil
}
