package e2b_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/e2bfake"
)

// TestOneRoundTripPerCommand: a command that needs a secret file and
// standard input, and a file write, each cost one round trip to envd (the
// upload travels beside the start request); the command sees the secret
// private and its input, the secret is gone when the command returns, and
// removing it afterwards sends nothing.
func TestOneRoundTripPerCommand(t *testing.T) {
	t.Parallel()
	s := fake(t, e2bfake.Config{Latency: 20 * time.Millisecond})
	p := newProvider(t, s)
	info, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "rt"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	secret := info.Root + "/tmp/.credential-rt"
	if err := p.WriteSecret(t.Context(), info.ID, secret, []byte("s3cr3t\n")); err != nil {
		t.Fatal(err)
	}
	s.ResetCounts()
	res, err := p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Path: "/bin/sh",
		Args: []string{"-c", `stat -c %a "$1"; cat "$1"; cat`, "sh", secret}, Env: []string{"PATH=/usr/bin:/bin"},
		Stdin: []byte("from stdin\n"), Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); res.ExitCode != 0 || got != "600\ns3cr3t\nfrom stdin\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", res.ExitCode, got, res.Stderr)
	}
	if c := s.Counts(); c.RoundTrips != 1 || c.EnvdRequests != 2 || c.Processes != 1 {
		t.Fatalf("counts %+v: want one round trip (an upload beside one start)", c)
	}
	var left []string
	_ = filepath.WalkDir(s.Root(), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(path, "/tmp/") {
			left = append(left, path)
		}
		return nil
	})
	if len(left) != 0 {
		t.Fatalf("left in the sandbox: %q", left)
	}
	s.ResetCounts()
	if err := p.RemoveAll(t.Context(), info.ID, secret); err != nil {
		t.Fatal(err)
	}
	if c := s.Counts(); c.EnvdRequests != 0 {
		t.Fatalf("removing a secret its command removed sent %d requests", c.EnvdRequests)
	}
	created, err := p.WriteFile(t.Context(), info.ID, info.Root+"/ws", "a/b.txt", []byte("data"))
	if err != nil || !created {
		t.Fatalf("write: created %v, %v", created, err)
	}
	if c := s.Counts(); c.RoundTrips != 1 || c.EnvdRequests != 2 {
		t.Fatalf("write_file counts %+v: want one round trip", c)
	}
	got, err := p.ReadFile(t.Context(), info.ID, info.Root+"/ws", "a/b.txt", 0, 100)
	if err != nil || string(got.Data) != "data" {
		t.Fatalf("read back %q, %v", got.Data, err)
	}
}

// TestOneRoundTripPerGitProcess pins issue 17's target on Approach 1:
// every operation the E2B bench measures waits for at most one round trip
// to E2B per git process it runs (one for an operation that runs none),
// and runs no process but its git ones (write_file: its one write). The
// file reads, listings, removals and disk measures that go with a git
// command travel in its round trip (sandbox.Around); a clone's search for
// a workspace the bindings store may have lost runs beside its first
// command.
func TestOneRoundTripPerGitProcess(t *testing.T) {
	t.Parallel()
	env := backendtest.NewEnv(t)
	ex, s := backendtest.NewE2BEngine(t, env, e2bfake.Config{Latency: 20 * time.Millisecond})
	call := func(req backends.Request) e2bfake.Counts {
		t.Helper()
		s.ResetCounts()
		req.GetScope().Principal = env.Agent
		if _, err := ex.Execute(backendtest.Ctx(t), req); err != nil {
			t.Fatalf("%s: %v", req.Op(), err)
		}
		return s.Counts()
	}
	call(&backends.CloneRequest{Scope: backends.Scope{Workspace: "rt"}, URL: env.RepoURL})
	for i, op := range e2bOps(env, "rt", "pin") {
		for _, prep := range op.prep(i) {
			call(prep)
		}
		c := call(op.req(i))
		others := c.Processes - c.GitProcesses
		if op.name == "write_file" {
			others-- // its write script
		}
		if c.RoundTrips > max(c.GitProcesses, 1) || others != 0 {
			t.Errorf("%s: %d round trips, %d git processes, %d other processes (%+v); want at most one round trip per git process and no other process",
				op.name, c.RoundTrips, c.GitProcesses, others, c)
		}
	}
}
