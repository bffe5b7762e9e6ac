package e2b_test

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/e2b"
	"github.com/gitgate/gitgate/internal/e2bfake"
)

const ownerPath = "/home/user/gitgate/.gitgate-owner.json"

// catOwner runs a command in sandbox id that prints the owner file (exit
// 1 when there is none).
func catOwner(ctx context.Context, p *e2b.Provider, id string) (sandbox.ExecResult, error) {
	return p.Exec(ctx, id, sandbox.ExecRequest{Path: "/bin/cat", Args: []string{ownerPath}, Timeout: time.Minute})
}

// ownerOnDisk is the owner file of sandbox id as it is in the sandbox ("" if
// there is none).
func ownerOnDisk(t *testing.T, s *e2bfake.Server, id string) string {
	t.Helper()
	for _, sb := range s.Sandboxes() {
		if sb.ID == id {
			data, _ := os.ReadFile(sb.Dir + "/gitgate/.gitgate-owner.json")
			return string(data)
		}
	}
	t.Fatalf("no sandbox %s", id)
	return ""
}

// ownerReads counts the owner-file downloads among the requests from n on.
func ownerReads(s *e2bfake.Server, n int) int {
	reads := 0
	for _, r := range s.Records()[n:] {
		if r.Method == http.MethodGet && r.Path == "/files" && strings.Contains(r.Query, ".gitgate-owner.json") {
			reads++
		}
	}
	return reads
}

// TestPooledSandboxIsFoundByItsOwner: a warm sandbox made without an owner
// (E2B metadata is fixed at creation) and handed to a project is found by
// that project from another process — after a restart, or when the
// bindings store lost its records — and by no other project, once a
// command ran there: the owner file travels with the first command (no
// upload of its own), is in the sandbox before it runs and stays after.
func TestPooledSandboxIsFoundByItsOwner(t *testing.T) {
	s := fake(t, e2bfake.Config{})
	ctx := t.Context()
	first := newProvider(t, s)
	warm, err := first.Create(ctx, sandbox.CreateOptions{TTL: time.Hour}) // as a pool makes them
	if err != nil {
		t.Fatal(err)
	}
	idle, err := first.Create(ctx, sandbox.CreateOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	alpha := sandbox.Owner{Project: "alpha"}
	other := newProvider(t, s) // a process that saw both while they were idle
	if found, err := other.Find(ctx, alpha); err != nil || len(found) != 0 {
		t.Fatalf("before it is handed out, alpha finds %v (%v)", found, err)
	}
	before := s.Counts()
	if err := first.RecordOwner(ctx, warm.ID, alpha); err != nil {
		t.Fatal(err)
	}
	if c := s.Counts(); c.EnvdRequests != before.EnvdRequests {
		t.Fatalf("RecordOwner sent %d requests to envd, want none (the first command carries the owner)", c.EnvdRequests-before.EnvdRequests)
	}
	if info, err := first.Lookup(ctx, warm.ID); err != nil || info.Owner != alpha {
		t.Fatalf("Lookup in the process that handed it out = %+v, %v; want owner alpha at once", info, err)
	}
	res, err := catOwner(ctx, first, warm.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || !strings.Contains(string(res.Stdout), `"alpha"`) {
		t.Fatalf("the first command after RecordOwner does not see the owner file: exit %d, stdout %q, stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	if got := ownerOnDisk(t, s, warm.ID); !strings.Contains(got, `"alpha"`) {
		t.Fatalf("after the command, the owner file is %q", got)
	}
	for name, p := range map[string]*e2b.Provider{"a new process": newProvider(t, s), "a process that saw it idle": other} {
		found, err := p.Find(ctx, alpha)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(found, func(i sandbox.Info) bool { return i.ID == warm.ID && i.Owner == alpha }) {
			t.Errorf("%s: alpha finds %v, want the warm sandbox %s", name, found, warm.ID)
		}
		if slices.ContainsFunc(found, func(i sandbox.Info) bool { return i.ID == idle.ID }) {
			t.Errorf("%s: alpha finds the idle sandbox %s", name, idle.ID)
		}
		if beta, _ := p.Find(ctx, sandbox.Owner{Project: "beta"}); len(beta) != 0 {
			t.Errorf("%s: beta finds %v", name, beta)
		}
	}
	if info, err := newProvider(t, s).Lookup(ctx, warm.ID); err != nil || info.Owner != alpha {
		t.Errorf("Lookup from a new process = %+v, %v; want owner alpha", info, err)
	}
	s.ResetCounts()
	if _, err := catOwner(ctx, first, warm.ID); err != nil {
		t.Fatal(err)
	}
	if c := s.Counts(); c.Uploads != 0 {
		t.Errorf("a later command uploads %d times: the owner file was delivered already", c.Uploads)
	}
}

// TestFindReadsNoOwnerOfItsOwnIdleSandboxes: the process whose pool made
// a sandbox knows whether it handed it out, so its Find reads no owner
// file there; another process (which may not know) reads it.
func TestFindReadsNoOwnerOfItsOwnIdleSandboxes(t *testing.T) {
	s := fake(t, e2bfake.Config{})
	ctx := t.Context()
	first := newProvider(t, s)
	var ids []string
	for range 2 {
		info, err := first.Create(ctx, sandbox.CreateOptions{TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.ID)
	}
	alpha := sandbox.Owner{Project: "alpha"}
	n := len(s.Records())
	if found, err := first.Find(ctx, alpha); err != nil || len(found) != 0 {
		t.Fatalf("alpha finds %v (%v)", found, err)
	}
	if reads := ownerReads(s, n); reads != 0 {
		t.Errorf("Find read the owner file of its own idle sandboxes %d times", reads)
	}
	if err := first.RecordOwner(ctx, ids[0], alpha); err != nil {
		t.Fatal(err)
	}
	n = len(s.Records())
	found, err := first.Find(ctx, alpha)
	if err != nil || len(found) != 1 || found[0].ID != ids[0] {
		t.Fatalf("after it was handed out, alpha finds %v (%v), want %s", found, err, ids[0])
	}
	if reads := ownerReads(s, n); reads != 0 {
		t.Errorf("Find read the owner file %d times", reads)
	}
	n = len(s.Records())
	if _, err := newProvider(t, s).Find(ctx, alpha); err != nil {
		t.Fatal(err)
	}
	if reads := ownerReads(s, n); reads == 0 {
		t.Error("another process's Find read no owner file of sandboxes it cannot know idle")
	}
}

// TestOwnerFileSentAgainAfterAFailedUpload: when the upload carrying the
// owner file fails, the file stays queued and the next command delivers
// it, before it runs.
func TestOwnerFileSentAgainAfterAFailedUpload(t *testing.T) {
	s := fake(t, e2bfake.Config{})
	p := newProviderWith(t, s, func(c *e2b.ProviderConfig) { c.KillGrace, c.StopWait = 100*time.Millisecond, 5*time.Second })
	ctx := t.Context()
	warm, err := p.Create(ctx, sandbox.CreateOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	alpha := sandbox.Owner{Project: "alpha"}
	if err := p.RecordOwner(ctx, warm.ID, alpha); err != nil {
		t.Fatal(err)
	}
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the server closes: the held upload is written then
	var once sync.Once
	s.SetHook(func(_, path string) {
		if path != "/files" {
			return
		}
		held := false
		once.Do(func() { held = true })
		if held { // the first upload never arrives in time: its call is cancelled
			cancel()
			select {
			case <-release:
			case <-time.After(time.Minute):
			}
		}
	})
	if _, err := catOwner(callCtx, p, warm.ID); err == nil {
		t.Fatal("the command whose upload was held did not fail")
	}
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ownerOnDisk(t, s, warm.ID); got != "" {
		t.Fatalf("the held upload arrived: %q", got)
	}
	res, err := catOwner(ctx, p, warm.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || !strings.Contains(string(res.Stdout), `"alpha"`) {
		t.Fatalf("the next command does not see the owner file: exit %d, stdout %q, stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	if found, err := newProvider(t, s).Find(ctx, alpha); err != nil || len(found) != 1 || found[0].ID != warm.ID {
		t.Fatalf("another process: alpha finds %v (%v), want %s", found, err, warm.ID)
	}
}

// TestOwnerFileOutlivesAFailedCommand: the owner file is not among the
// files removed after a command that failed once its upload was sent, and
// it stays queued (written again, harmlessly, by the next command).
func TestOwnerFileOutlivesAFailedCommand(t *testing.T) {
	s := fake(t, e2bfake.Config{})
	p := newProvider(t, s)
	ctx := t.Context()
	warm, err := p.Create(ctx, sandbox.CreateOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	alpha := sandbox.Owner{Project: "alpha"}
	if err := p.RecordOwner(ctx, warm.ID, alpha); err != nil {
		t.Fatal(err)
	}
	s.CutStreamsAfter(1)
	if _, err := catOwner(ctx, p, warm.ID); err == nil {
		t.Fatal("the command whose stream was cut did not fail")
	}
	s.CutStreamsAfter(0)
	if err := p.Wait(ctx); err != nil { // the failed call's uploads are removed
		t.Fatal(err)
	}
	if got := ownerOnDisk(t, s, warm.ID); !strings.Contains(got, `"alpha"`) {
		t.Fatalf("after the failed command and its cleanup, the owner file is %q", got)
	}
	s.ResetCounts()
	if res, err := catOwner(ctx, p, warm.ID); err != nil || res.ExitCode != 0 {
		t.Fatalf("exit %d, %v", res.ExitCode, err)
	}
	if c := s.Counts(); c.Uploads != 1 {
		t.Errorf("the next command uploaded %d times, want the owner file again (once)", c.Uploads)
	}
	if got := ownerOnDisk(t, s, warm.ID); !strings.Contains(got, `"alpha"`) {
		t.Fatalf("after the next command, the owner file is %q", got)
	}
}
