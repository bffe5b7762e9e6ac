package approach1_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/e2b"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/e2bfake"
)

// newE2BShelfWorld is newShelfWorld on sandboxes of a local E2B.
func newE2BShelfWorld(t *testing.T) (*shelfWorld, *e2bfake.Server) {
	t.Helper()
	const key = "e2b_shelfTestKEY0123456789abcdef"
	s, err := e2bfake.Start(e2bfake.Config{APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	a, err := e2b.NewAPI(e2b.APIConfig{BaseURL: s.URL(), APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e2b.NewProvider(e2b.ProviderConfig{API: a, EnvdURL: s.URL(), Template: "gitgate"})
	if err != nil {
		t.Fatal(err)
	}
	w := newShelfWorld(t, backendtest.NewEnv(t), shelfOptions{provider: p})
	w.host = func(b sandbox.Binding) sandbox.Binding {
		for _, sb := range s.Sandboxes() {
			if sb.ID == b.SandboxID {
				b.Root = sb.Dir + strings.TrimPrefix(b.Root, "/home/user")
				return b
			}
		}
		t.Fatalf("sandbox %s of %s is not on the local E2B", b.SandboxID, b.Key)
		return b
	}
	return w, s
}

// TestShelfOnE2B: on E2B sandboxes too, a workspace reaped with unsaved
// work is saved (through the provider's file operations) and restored
// intact into a new sandbox on its next use.
func TestShelfOnE2B(t *testing.T) {
	w, s := newE2BShelfWorld(t)
	backendtest.Clone(t, w.ex, w.env, w.env.Agent, "w")
	makeUnsavedWork(t, w, "w")
	before := stateOf(t, w, "w")
	old := w.binding(t, "w")
	if n := w.reap(t); n != 1 {
		t.Fatalf("reaped %d sandboxes, want 1", n)
	}
	if got := s.Sandboxes(); len(got) != 0 {
		t.Fatalf("sandboxes still running after the reap: %d (nothing may be kept running)", len(got))
	}
	if b := w.binding(t, "w"); b.Shelf == "" {
		t.Fatalf("binding after the reap = %+v, want it shelved", b)
	}
	st := backendtest.Do[*backends.StatusResult](t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: "w"}})
	if len(st.Notices) != 1 {
		t.Fatalf("notices = %q", st.Notices)
	}
	if now := w.binding(t, "w"); now.SandboxID == old.SandboxID || now.Shelf != "" {
		t.Fatalf("binding after the restore = %+v", now)
	}
	if after := stateOf(t, w, "w"); !reflect.DeepEqual(after, before) {
		t.Errorf("restored workspace differs:\n got %+v\nwant %+v", after, before)
	}
	if got := w.vaultEntries(t); len(got) != 0 {
		t.Errorf("vault after the restore holds %v", got)
	}
}

// TestLostWithDeadSandboxIsCounted: a sandbox that dies (its VM lost)
// cannot be saved from: the agent is told what was lost, as before, and
// now the operator sees a WARN line and the lost metric.
func TestLostWithDeadSandboxIsCounted(t *testing.T) {
	w, s := newE2BShelfWorld(t)
	backendtest.Clone(t, w.ex, w.env, w.env.Agent, "w")
	backendtest.Do[*backends.WriteFileResult](t, w.ex, w.env.Agent, &backends.WriteFileRequest{Scope: backends.Scope{Workspace: "w"}, Path: "a.txt", Content: "a"})
	s.Kill(w.binding(t, "w").SandboxID)
	backendtest.WantCategory(t, backendtest.Fail(t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: "w"}}), backends.Unavailable)
	err := backendtest.Fail(t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: "w"}})
	backendtest.WantCategory(t, err, backends.NotFound)
	if !strings.Contains(err.Error(), "uncommitted changes") {
		t.Fatalf("the agent is not told what was lost: %v", err)
	}
	if got := w.metric(t, "gitgate_workspaces_lost_total", "reason", "sandbox_gone"); got != 1 {
		t.Errorf("gitgate_workspaces_lost_total{reason=sandbox_gone} = %v, want 1", got)
	}
	if log := w.log.String(); !strings.Contains(log, "lost unsaved work") || !strings.Contains(log, "workspace=alpha/w") {
		t.Errorf("no WARN line for the lost work:\n%s", log)
	}
}

// TestDeadSandboxAtReap: a sandbox that died before the reaper could save
// its work is not retried forever: the reaper drops it, the bindings stay,
// and the agent's next call is told what was lost (WARN, metric).
func TestDeadSandboxAtReap(t *testing.T) {
	w, s := newE2BShelfWorld(t)
	backendtest.Clone(t, w.ex, w.env, w.env.Agent, "w")
	backendtest.Do[*backends.WriteFileResult](t, w.ex, w.env.Agent, &backends.WriteFileRequest{Scope: backends.Scope{Workspace: "w"}, Path: "a.txt", Content: "a"})
	s.Kill(w.binding(t, "w").SandboxID)
	w.reap(t)
	if n := w.reap(t); n != 0 {
		t.Fatalf("the dead sandbox was reaped again (%d)", n)
	}
	if got := w.vaultEntries(t); len(got) != 0 {
		t.Fatalf("vault holds %v", got)
	}
	if log := w.log.String(); !strings.Contains(log, "sandbox gone before the unsaved work") {
		t.Errorf("no WARN line for the sandbox found gone:\n%s", log)
	}
	err := backendtest.Fail(t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: "w"}})
	backendtest.WantCategory(t, err, backends.NotFound)
	if !strings.Contains(err.Error(), "lost with its sandbox") || !strings.Contains(err.Error(), "uncommitted changes") {
		t.Fatalf("the agent is not told what was lost: %v", err)
	}
	if got := w.metric(t, "gitgate_workspaces_lost_total", "reason", "sandbox_gone"); got != 1 {
		t.Errorf("gitgate_workspaces_lost_total{reason=sandbox_gone} = %v, want 1", got)
	}
}
