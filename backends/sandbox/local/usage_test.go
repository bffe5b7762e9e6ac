package local_test

import (
	"context"
	"testing"

	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/internal/testkit"
)

// TestUsageMeasuresTheSandboxesCommands: the local provider measures from
// /proc what a sandbox's commands use: the resident memory of a running
// command (and of the helper it started, in its process group), and the
// CPU time of a command that burned CPU and ended. An idle sandbox uses
// nothing. Costs about 0.5 s (the CPU burner's run).
func TestUsageMeasuresTheSandboxesCommands(t *testing.T) {
	p, info := newSandbox(t)
	idle := create(t, p, sandbox.Owner{Project: "q"})
	first, err := p.Usage(t.Context(), info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if first.MemUsed != 0 || first.MemTotal == 0 {
		t.Fatalf("idle sandbox: usage %+v, want no memory used of a known total", first)
	}

	// A running command (a shell waiting on a sleeping child) uses memory.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = p.Exec(ctx, info.ID, sandbox.ExecRequest{Path: "/bin/sh", Args: []string{"-c", "sleep 30; :"}, Env: []string{pathEnv}})
	}()
	testkit.Eventually(t, "the running command's memory is measured", func() bool {
		u, err := p.Usage(t.Context(), info.ID)
		return err == nil && u.MemUsed > 0 && u.MemUsed < u.MemTotal
	})
	cancel()
	<-done

	// A command that burned CPU for half a second and ended counts in the
	// next sample.
	run(t, p, info, sandbox.ExecRequest{Path: "/bin/sh", Args: []string{"-c", "end=$(($(date +%s%N)+500000000)); while [ $(date +%s%N) -lt $end ]; do :; done"},
		Env: []string{pathEnv}, Timeout: testkit.Patience})
	u, err := p.Usage(t.Context(), info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.CPU <= 0 || u.CPU > 1 {
		t.Errorf("after a CPU burner: CPU %v, want in (0, 1]", u.CPU)
	}
	if u.MemUsed != 0 {
		t.Errorf("nothing running: memory used %d, want 0", u.MemUsed)
	}
	if u, err := p.Usage(t.Context(), idle.ID); err != nil || u.CPU != 0 || u.MemUsed != 0 {
		t.Errorf("the other, idle sandbox: %+v, %v; want nothing used", u, err)
	}
}
